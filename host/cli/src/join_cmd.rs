//! `lifeline agent join` (a join file, a connection ID or a link),
//! `lifeline agent allow-remote-assistance on|off` and the customer's part
//! of `lifeline agent status`.
//!
//! Which agent configuration: `--config` (or `LIFELINE_CONFIG`), else the
//! one `lifeline agent setup` writes (`~/.config/lifeline/agent.toml`) when
//! it exists; a join file needs none (built-in defaults).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use lifeline_agent::assistance;
use lifeline_agent::config::AgentConfig;
use lifeline_core::join_file;

use crate::setup_cmd::{SetupRole, default_config_path};

/// The agent configuration to use: the given one, or the default file when
/// it exists.
pub fn config_path(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| default_config_path(SetupRole::Agent).filter(|p| p.is_file()))
}

/// Is `arg` a join file rather than a connection ID or link?
fn is_join_file(arg: &str) -> bool {
    let p = Path::new(arg);
    p.is_file()
        && (join_file::looks_like_join_file(p)
            || p.extension().is_some_and(|e| e == join_file::EXTENSION))
}

pub async fn join(
    config: Option<PathBuf>,
    file: Option<PathBuf>,
    code_or_link: Option<String>,
    ui: crate::window_cmd::UiArgs,
) -> Result<ExitCode> {
    let file = file.or_else(|| {
        code_or_link
            .as_deref()
            .filter(|a| is_join_file(a))
            .map(PathBuf::from)
    });
    let (customer, window) = crate::window_cmd::customer(&ui).await?;
    let outcome = match file {
        Some(f) => {
            let jf = join_file::load(&f)?;
            let cfg = match config_path(config) {
                Some(c) => {
                    let mut cfg = AgentConfig::load(&c)?;
                    lifeline_agent::joinfile::apply(&mut cfg, &jf.fields);
                    cfg
                }
                None => lifeline_agent::joinfile::default_config(&jf.fields)?,
            };
            lifeline_agent::join_file_with(&cfg, &jf, customer).await?
        }
        None => {
            let code = code_or_link.context("give a join file, a connection ID or a link")?;
            let Some(c) = config_path(config) else {
                bail!(
                    "joining with a connection ID or link needs the agent's configuration: give --config FILE, \
                     or run `lifeline agent setup --broker HOST:PORT` once; \
                     or join with the join file from the invitation's page (no configuration needed)"
                );
            };
            let cfg = AgentConfig::load(&c)?;
            lifeline_agent::join_with(&cfg, &code, customer).await?
        }
    };
    crate::window_cmd::finish(window).await;
    say!(
        "Session {} is over ({}).",
        outcome.session.session_id,
        outcome.reason
    );
    Ok(ExitCode::SUCCESS)
}

/// The admin's switch and data folder of the configuration in use
/// (defaults without one).
fn switch_inputs(config: Option<&Path>) -> Result<(bool, PathBuf)> {
    match config {
        Some(c) => {
            let cfg = AgentConfig::load(c)?;
            Ok((cfg.allow_remote_assistance, cfg.data_dir))
        }
        None => Ok((true, lifeline_agent::joinfile::default_data_dir()?)),
    }
}

pub fn allow(config: Option<PathBuf>, on: bool) -> Result<ExitCode> {
    let config = config_path(config);
    let (admin, data_dir) = switch_inputs(config.as_deref())?;
    assistance::set(&data_dir, on)?;
    let now = assistance::state(admin, &data_dir)?;
    println!("Allow remote assistance: {}", now.describe());
    if on && !now.allowed() {
        println!("It stays off: the administrator turned remote assistance off on this computer.");
    }
    Ok(ExitCode::SUCCESS)
}

/// The customer's part of `lifeline agent status`: the switch, the broker,
/// the data folder, a waiting rejoin ticket, the service.
pub fn status(config: Option<&Path>) -> Result<()> {
    let (admin, data_dir) = switch_inputs(config)?;
    let switch = assistance::state(admin, &data_dir)?;
    println!("Remote assistance: {}", switch.describe());
    match config {
        Some(c) => {
            let cfg = AgentConfig::load(c)?;
            println!("Configuration:     {}", c.display());
            println!("Broker:            {}", cfg.endpoint.address);
            let trust = match &cfg.endpoint.trust {
                lifeline_core::tls::Trust::Pinned(fp) => fp.to_string(),
                lifeline_core::tls::Trust::CaFile(p) => format!("CA file {}", p.display()),
                lifeline_core::tls::Trust::WebPki => "the public web PKI roots".into(),
            };
            println!("Fingerprint:       {trust}");
            let unit = cfg.service.unit_dir.join(crate::service_cmd::UNIT_NAME);
            println!(
                "Service unit:      {}",
                if unit.is_file() {
                    format!("installed ({})", unit.display())
                } else {
                    format!("not installed (no {})", unit.display())
                }
            );
        }
        None => println!(
            "Configuration:     none (join files bring their broker; `lifeline agent setup` writes one)"
        ),
    }
    println!("Data folder:       {}", data_dir.display());
    let ticket = match lifeline_agent::reboot::load(&data_dir) {
        Ok(Some(t)) => format!(
            "waiting for session {}, valid until {}",
            t.session_id,
            lifeline_core::time::millis_to_rfc3339(t.expires_at)
        ),
        Ok(None) => "none".into(),
        Err(e) => format!("unreadable: {e}"),
    };
    println!("Rejoin ticket:     {ticket}");
    Ok(())
}
