//! `lifeline agent setup` / `lifeline operator setup`: connect to a broker
//! once without trusting it, show its certificate, let a person confirm the
//! fingerprint (or a script give it with `--yes-fingerprint`), and write a
//! complete configuration — or, for an existing file, change only
//! `[connection]`'s broker, server name and fingerprint, keeping comments
//! and every other key. Nothing is written unless the result is a valid
//! configuration and the fingerprint was confirmed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use lifeline_core::config::join_page::is_host_port;
use lifeline_core::probe::Presented;
use lifeline_core::tls::Fingerprint;

use crate::cli::SetupArgs;

/// Which role's configuration is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupRole {
    Agent,
    Operator,
}

impl SetupRole {
    fn name(self) -> &'static str {
        match self {
            SetupRole::Agent => "agent",
            SetupRole::Operator => "operator",
        }
    }
}

/// Where a role's configuration lives when none is given:
/// `$XDG_CONFIG_HOME/lifeline/ROLE.toml`, else `~/.config/lifeline/ROLE.toml`.
pub fn default_config_path(role: SetupRole) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".config"))
        })?;
    Some(base.join("lifeline").join(format!("{}.toml", role.name())))
}

/// The data folder a new configuration names: `…/share/lifeline/ROLE`.
fn default_data_dir(role: SetupRole) -> Result<PathBuf> {
    let agent = lifeline_agent::joinfile::default_data_dir()?;
    Ok(match role {
        SetupRole::Agent => agent,
        SetupRole::Operator => agent.with_file_name("operator"),
    })
}

pub async fn setup(role: SetupRole, args: SetupArgs) -> Result<ExitCode> {
    if !is_host_port(&args.broker) {
        bail!(
            "--broker {:?} is not host:port of the broker's session listener, e.g. support.example.com:7443",
            args.broker
        );
    }
    let expected = args
        .yes_fingerprint
        .as_deref()
        .map(Fingerprint::parse)
        .transpose()?;
    let file = match args.config.clone().or_else(|| default_config_path(role)) {
        Some(f) => f,
        None => bail!("HOME is not set: give --config FILE"),
    };
    let host = args
        .broker
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or_default()
        .to_string();
    let server_name = args.server_name.clone().unwrap_or(host);
    let presented =
        lifeline_core::probe::presented_certificate(&args.broker, &server_name, None).await?;
    show(&args.broker, &presented);
    match expected {
        Some(fp) if fp == presented.fingerprint => {
            println!("The fingerprint matches --yes-fingerprint.");
        }
        Some(fp) => bail!(
            "the broker at {} presented {}, not {fp} given with --yes-fingerprint; nothing was written to {}",
            args.broker,
            presented.fingerprint,
            file.display()
        ),
        None => {
            if !confirm()? {
                bail!(
                    "the broker was not trusted; nothing was written to {}",
                    file.display()
                );
            }
        }
    }
    let text = configuration(role, &file, &args, &presented.fingerprint)?;
    write_atomically(&file, &text)?;
    crate::config_check::check_file(&file)?;
    println!(
        "Wrote {}: it trusts the broker at {} by its certificate {}.",
        file.display(),
        args.broker,
        presented.fingerprint
    );
    Ok(ExitCode::SUCCESS)
}

fn show(broker: &str, p: &Presented) {
    println!("The broker at {broker} presents this certificate:");
    if let Some(cn) = &p.common_name {
        say!("  Subject:      CN={cn}");
    }
    if !p.dns_names.is_empty() {
        say!("  Names:        {}", p.dns_names.join(", "));
    }
    println!("  Fingerprint:  {}", p.fingerprint);
    println!(
        "Compare the fingerprint with the one your administrator gave you (`lifeline broker fingerprint` on the broker)."
    );
}

/// Asks on the terminal; anything but y/yes is no.
fn confirm() -> Result<bool> {
    print!("Trust this broker? [y/N] ");
    std::io::stdout().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer from standard input")?;
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // The answer was not echoed: end the prompt's line.
        println!();
    }
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// The new text of `file`: its `[connection]` changed, or a new
/// configuration. Validated as the role's configuration before it is
/// returned.
fn configuration(
    role: SetupRole,
    file: &Path,
    args: &SetupArgs,
    fp: &Fingerprint,
) -> Result<String> {
    let mut doc = match std::fs::read_to_string(file) {
        Ok(text) => text
            .parse::<toml_edit::DocumentMut>()
            .with_context(|| format!("{} is not valid TOML", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => new_document(role)?,
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    if !doc.contains_table(role.name()) {
        bail!(
            "{} has no [{}] table: it is not an {} configuration; give another --config",
            file.display(),
            role.name(),
            role.name()
        );
    }
    let conn = doc
        .entry("connection")
        .or_insert(toml_edit::table())
        .as_table_mut()
        .with_context(|| format!("{}: `connection` is not a table", file.display()))?;
    conn["broker"] = toml_edit::value(args.broker.as_str());
    if let Some(n) = &args.server_name {
        conn["server_name"] = toml_edit::value(n.as_str());
    }
    conn["fingerprint"] = toml_edit::value(fp.to_string());
    // A pin replaces a private CA (the two may not be set together).
    conn.remove("ca_file");
    let text = doc.to_string();
    match role {
        SetupRole::Agent => {
            lifeline_agent::config::AgentConfig::parse(file, &text)?;
        }
        SetupRole::Operator => {
            lifeline_core::config::OperatorConfig::parse(file, &text)?;
        }
    }
    Ok(text)
}

fn new_document(role: SetupRole) -> Result<toml_edit::DocumentMut> {
    let data_dir = default_data_dir(role)?;
    let (what, extra) = match role {
        SetupRole::Agent => ("the customer's side", ""),
        SetupRole::Operator => (
            "the technician's side",
            "# username = \"alice\"   # default for `lifeline operator login`\n",
        ),
    };
    let text = format!(
        "# Lifeline {role}: {what}. Written by `lifeline {role} setup`.\n\
         # Check with: lifeline config check THIS-FILE\n\n\
         [{role}]\n\
         data_dir = {data_dir}\n{extra}\n\
         [connection]\n",
        role = role.name(),
        data_dir = toml_edit::value(data_dir.to_string_lossy().into_owned()),
    );
    Ok(text.parse()?)
}

/// Writes through a temporary file in the same folder, keeping the old
/// file's permissions (an operator file may hold a password: 0600).
fn write_atomically(file: &Path, text: &str) -> Result<()> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    let perms = match std::fs::metadata(file) {
        Ok(m) => m.permissions(),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o644)
        }
    };
    std::fs::set_permissions(tmp.path(), perms)?;
    tmp.persist(file)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(broker: &str) -> SetupArgs {
        SetupArgs {
            broker: broker.into(),
            server_name: None,
            config: None,
            yes_fingerprint: None,
        }
    }

    #[test]
    fn existing_file_keeps_comments_and_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent.toml");
        std::fs::write(
            &f,
            "# my agent\n[agent]\ndata_dir = \"d\" # here\nconsent_timeout_secs = 30\n\n[connection]\n# where\nbroker = \"old:1\"\nca_file = \"ca.pem\"\nheartbeat_secs = 20\n",
        )
        .unwrap();
        let fp = Fingerprint::of(b"x");
        let text = configuration(SetupRole::Agent, &f, &args("new.example:7443"), &fp).unwrap();
        for kept in [
            "# my agent",
            "# here",
            "consent_timeout_secs = 30",
            "# where",
            "heartbeat_secs = 20",
        ] {
            assert!(text.contains(kept), "{kept} in {text}");
        }
        assert!(text.contains("broker = \"new.example:7443\""), "{text}");
        assert!(
            text.contains(&fp.to_string()) && !text.contains("ca_file"),
            "{text}"
        );
        // An operator file is not an agent's.
        let err = configuration(SetupRole::Operator, &f, &args("h:1"), &fp).unwrap_err();
        assert!(err.to_string().contains("no [operator] table"), "{err}");
    }
}
