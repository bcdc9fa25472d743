//! `lifeline license …` (show, keygen, sign, can-update), `lifeline broker
//! license …` (publish, hash-code) and the agent's `status` and
//! `license-check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use lifeline_agent::config::AgentConfig;
use lifeline_agent::config::remote_service::RemoteServiceConfig;
use lifeline_core::config::BrokerConfig;
use lifeline_core::proxy::ProxySetting;
use lifeline_license::document::{self, License, fmt_date};
use lifeline_license::fetch::{BackOffice, STATUS_TIMEOUT};

use crate::cli::ConfigArg;
use crate::input;

/// Exit code of `license can-update` for bad input.
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Subcommand, Debug)]
pub enum LicenseCmd {
    /// Show a license like a product's About box (serial, expiry, maintenance first).
    Show {
        file: PathBuf,
        /// Verify the signature with this vendor key (`ed25519:…`).
        #[arg(long = "trusted-key")]
        trusted: Vec<String>,
        /// Verify with the vendor keys of this agent configuration.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Create a vendor signing key: the secret goes to FILE (mode 0600), the
    /// public key (for vendor_keys) is printed.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a license file (the [license] fields) with the vendor key.
    Sign {
        file: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Write the signed license here (default: in place).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// May a product update released on this date be installed under the
    /// maintenance contract? Exit 0 yes, 1 no, 2 bad input.
    CanUpdate {
        /// The update's release date, YYYY-MM-DD.
        #[arg(long)]
        release_date: String,
        /// The license file.
        #[arg(long, conflicts_with = "config")]
        license: Option<PathBuf>,
        /// An agent configuration: its installed license (signature checked).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum BrokerLicenseCmd {
    /// Verify a signed license against [back_office] vendor_keys and publish it.
    Publish {
        file: PathBuf,
        /// The organisation that owns the serial (only it can fetch the
        /// license); may be left out when [back_office] has one organisation.
        #[arg(long)]
        organisation: Option<String>,
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Hash an organisation's verification code (read from stdin or prompted)
    /// for [back_office] verification_code_hash.
    HashCode {
        #[arg(long)]
        code_stdin: bool,
    },
}

fn verify_with(l: &License, file: &Path, keys: &[String]) -> Result<&'static str> {
    if keys.is_empty() {
        return Ok("not checked (give --trusted-key or --config)");
    }
    l.verify(file, keys)?;
    Ok("valid")
}

pub async fn license(cmd: LicenseCmd) -> Result<ExitCode> {
    match cmd {
        LicenseCmd::Show {
            file,
            mut trusted,
            config,
        } => {
            if let Some(c) = config {
                let cfg = AgentConfig::load(&c)?;
                let rs = cfg
                    .remote_service
                    .with_context(|| format!("{}: no [remote_service] section", c.display()))?;
                trusted.extend(rs.vendor_keys);
            }
            let l = License::load(&file)?;
            let sig = verify_with(&l, &file, &trusted)?;
            println!("{}", l.about(chrono::Utc::now().date_naive()));
            println!("Signature:        {sig}");
            Ok(ExitCode::SUCCESS)
        }
        LicenseCmd::Keygen { out } => {
            let public = document::keygen(&out)?;
            println!("Secret key written to {} (mode 0600).", out.display());
            println!("{}", document::public_key_string(&public));
            Ok(ExitCode::SUCCESS)
        }
        LicenseCmd::Sign { file, key, out } => {
            let key = document::load_signing_key(&key)?;
            let mut l = License::load(&file)?;
            l.sign(&key);
            let out = out.unwrap_or(file);
            std::fs::write(&out, l.to_toml())
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "Signed license for serial {} written to {}.",
                l.serial,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        LicenseCmd::CanUpdate {
            release_date,
            license,
            config,
        } => match can_update(&release_date, license, config) {
            Ok((yes, reason)) => {
                println!("{} {reason}", if yes { "yes:" } else { "no:" });
                Ok(ExitCode::from(u8::from(!yes)))
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                Ok(ExitCode::from(EXIT_BAD_INPUT))
            }
        },
    }
}

fn can_update(
    release: &str,
    license: Option<PathBuf>,
    config: Option<PathBuf>,
) -> Result<(bool, String)> {
    let date = chrono::NaiveDate::parse_from_str(release, "%Y-%m-%d").with_context(|| {
        format!("--release-date {release:?} is not a date; write YYYY-MM-DD, e.g. 2026-12-01")
    })?;
    let l = match (license, config) {
        (Some(f), None) => License::load(&f)?,
        (None, Some(c)) => {
            let cfg = AgentConfig::load(&c)?;
            let rs = cfg
                .remote_service
                .as_ref()
                .with_context(|| format!("{}: no [remote_service] section", c.display()))?;
            installed(rs)?
        }
        _ => bail!("give --license FILE or --config agent.toml"),
    };
    let m = fmt_date(l.maintenance_end);
    Ok(if l.covers_release(date) {
        (
            true,
            format!(
                "the update released {release} is covered: maintenance for serial {} runs until {m}",
                l.serial
            ),
        )
    } else {
        (
            false,
            format!(
                "the update released {release} is not covered: maintenance for serial {} ended {m}; extend the maintenance contract to install it",
                l.serial
            ),
        )
    })
}

pub fn broker(cmd: BrokerLicenseCmd) -> Result<ExitCode> {
    match cmd {
        BrokerLicenseCmd::Publish {
            file,
            organisation,
            cfg,
        } => {
            let cfg = BrokerConfig::load(&cfg.config)?;
            let org = organisation.as_deref();
            match lifeline_broker::back_office::publish_for(&cfg, &file, org)? {
                lifeline_broker::back_office::Published::New(l) => println!(
                    "Published the license for serial {} (issued {}, maintenance until {}).",
                    l.serial,
                    l.issued.to_rfc3339(),
                    fmt_date(l.maintenance_end)
                ),
                lifeline_broker::back_office::Published::AlreadyThere(l) => println!(
                    "The license for serial {} (issued {}) was already published.",
                    l.serial,
                    l.issued.to_rfc3339()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        BrokerLicenseCmd::HashCode { code_stdin } => {
            let code = input::password("Verification code: ", code_stdin)?;
            let hash = lifeline_broker::accounts::hash_password(&code)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn proxy_text(p: &ProxySetting) -> String {
    match p {
        ProxySetting::None => "none (direct connections)".into(),
        ProxySetting::Auto => {
            match lifeline_core::proxy::from_env("back-office", |k| std::env::var(k).ok()) {
                Some(p) => format!(
                    "auto: the system proxy {}:{} (license downloads only)",
                    p.host, p.port
                ),
                None => "auto: no system proxy set (https_proxy / http_proxy)".into(),
            }
        }
        ProxySetting::Manual(m) => format!(
            "manual: {}{} (all connections)",
            lifeline_core::proxy::address(m),
            m.auth
                .as_ref()
                .map(|a| format!(", user {}", a.user))
                .unwrap_or_default()
        ),
    }
}

/// `systemctl is-active lifeline-agent`, or why it cannot be told.
pub fn service_state() -> String {
    match std::process::Command::new("systemctl")
        .args(["is-active", "lifeline-agent"])
        .output()
    {
        Ok(o) => {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if s.is_empty() { "unknown".into() } else { s }
        }
        Err(_) => "unknown: no systemd".into(),
    }
}

pub async fn agent_status(c: ConfigArg) -> Result<ExitCode> {
    let cfg = AgentConfig::load(&c.config)?;
    let Some(rs) = cfg.remote_service.clone() else {
        println!(
            "Remote service:    not configured (no [remote_service] in {})",
            c.config.display()
        );
        println!("Service:           {}", service_state());
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "Remote service:    {} (organisation {}, license mode {})",
        if rs.enabled { "enabled" } else { "disabled" },
        rs.organisation_id,
        rs.mode.name()
    );
    println!("Proxy:             {}", proxy_text(&rs.proxy));
    let connection = if rs.enabled {
        let bo = BackOffice {
            url: rs.back_office.clone(),
            trust: cfg.endpoint.trust.clone(),
            proxy: rs.proxy.clone(),
            organisation_id: rs.organisation_id.clone(),
            code: rs.verification_code.clone(),
            timeout: STATUS_TIMEOUT,
        };
        match tokio::task::spawn_blocking(move || bo.hello()).await? {
            Ok(text) => format!("connected to {}: {text}", rs.back_office),
            Err(e) => format!("not connected: {e}"),
        }
    } else {
        "not connected: the remote service is disabled (remote_service.enabled = false); no connection is made".into()
    };
    println!("Back office:       {connection}");
    println!("Last check:        {}", last_check(&cfg));
    match installed(&rs) {
        Ok(l) => println!(
            "Installed license: serial {}, expires {}, maintenance until {}",
            l.serial,
            fmt_date(l.expires),
            fmt_date(l.maintenance_end)
        ),
        Err(e) => println!("Installed license: not readable: {e}"),
    }
    println!("Service account:   {}", cfg.service_account());
    println!("Service:           {}", service_state());
    Ok(ExitCode::SUCCESS)
}

/// The installed license of `[remote_service]`, signature checked.
fn installed(rs: &RemoteServiceConfig) -> Result<License> {
    let l = License::load(&rs.license_file)?;
    l.verify(&rs.license_file, &rs.vendor_keys)?;
    Ok(l)
}

/// The last check the license plugin recorded (its `state.kv`).
fn last_check(cfg: &AgentConfig) -> String {
    let kv = lifeline_runtime::kv::KvStore::new(
        cfg.data_dir
            .join("plugin-state")
            .join("kv")
            .join("license.json"),
    );
    let get = |k: &str| kv.get(k).ok().flatten();
    match (get("last_check"), get("last_result")) {
        (Some(when), Some(result)) => {
            let failed = if get("last_ok").as_deref() == Some("false") {
                "failed: "
            } else {
                ""
            };
            format!("{when} — {failed}{result}")
        }
        _ => "never (the license plugin has not checked yet)".into(),
    }
}

/// Prints what the unattended check shows.
struct Printed;

impl lifeline_agent::CustomerUi for Printed {
    fn show(&self, line: &str) {
        println!("{line}");
    }
}

pub async fn license_check(c: ConfigArg, watch: bool) -> Result<ExitCode> {
    let cfg = AgentConfig::load(&c.config)?;
    if cfg.remote_service.is_none() {
        bail!("{}: no [remote_service] section", c.config.display());
    }
    if watch {
        let stop = crate::signals::stop_signal()?;
        // The license plugin's own schedule, as the agent service runs it.
        lifeline_agent::background::run(&cfg, Arc::new(Printed), stop).await?;
        return Ok(ExitCode::SUCCESS);
    }
    // The license plugin checks (and installs by policy): without it,
    // there is no license check.
    match lifeline_agent::background::call(&cfg, Arc::new(Printed), "license", "update").await? {
        Ok(text) => {
            if !text.contains('\n') {
                println!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => bail!("{}: license check: {why}", c.config.display()),
    }
}
