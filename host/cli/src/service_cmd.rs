//! `lifeline agent install-service` / `uninstall-service`: the agent as a
//! systemd service, so that it comes back after a reboot and rejoins the
//! session it left (see `lifeline agent service`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use lifeline_agent::config::AgentConfig;

/// The unit's name.
pub const UNIT_NAME: &str = "lifeline-agent.service";
/// Seconds systemd waits before restarting a failed agent.
pub const RESTART_SECS: u32 = 5;

/// The unit file's text.
pub fn unit_file(exe: &Path, config: &Path, account: &str) -> String {
    format!(
        "# Installed by `lifeline agent install-service`; remove with `lifeline agent uninstall-service`.
[Unit]
Description=Lifeline agent: rejoins a remote-support session after a reboot
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={account}
ExecStart={exe} agent service --config {config}
Restart=on-failure
RestartSec={RESTART_SECS}

[Install]
WantedBy=multi-user.target
",
        exe = exe.display(),
        config = config.display(),
    )
}

fn systemctl(args: &[&str]) -> Result<()> {
    let status = Command::new("systemctl")
        .args(args)
        .status()
        .with_context(|| format!("running systemctl {}", args.join(" ")))?;
    if !status.success() {
        bail!("systemctl {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// `dirs`: the unit file's folder and the window's autostart folder (each
/// `None`: from the configuration).
pub fn install(
    config: &Path,
    account: Option<String>,
    dirs: (Option<PathBuf>, Option<PathBuf>),
    run_systemctl: bool,
) -> Result<ExitCode> {
    let (unit_dir, autostart_dir) = dirs;
    let cfg = AgentConfig::load(config)?;
    let account = account.unwrap_or_else(|| cfg.service_account().to_string());
    if nix::unistd::User::from_name(&account)
        .ok()
        .flatten()
        .is_none()
    {
        bail!("the service account {account:?} does not exist on this computer");
    }
    let config =
        std::path::absolute(config).with_context(|| format!("resolving {}", config.display()))?;
    let exe = std::env::current_exe().context("finding the lifeline executable")?;
    let dir = unit_dir.unwrap_or(cfg.service.unit_dir);
    let path = dir.join(UNIT_NAME);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&path, unit_file(&exe, &config, &account))
        .with_context(|| format!("writing {}", path.display()))?;
    println!("Wrote {}", path.display());
    // The customer's window comes back at their desktop login.
    let autostart = autostart_dir.unwrap_or(cfg.service.customer.autostart_dir);
    let entry = autostart.join(crate::window_cmd::AUTOSTART_FILE);
    std::fs::create_dir_all(&autostart)
        .with_context(|| format!("creating {}", autostart.display()))?;
    std::fs::write(&entry, crate::window_cmd::autostart_entry(&exe, &config))
        .with_context(|| format!("writing {}", entry.display()))?;
    println!("Wrote {}", entry.display());
    if run_systemctl {
        systemctl(&["daemon-reload"])?;
        systemctl(&["enable", UNIT_NAME])?;
        println!("Enabled {UNIT_NAME}: it starts at boot and after a failure.");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall(
    config: &Path,
    dirs: (Option<PathBuf>, Option<PathBuf>),
    run_systemctl: bool,
) -> Result<ExitCode> {
    let (unit_dir, autostart_dir) = dirs;
    let cfg = AgentConfig::load(config)?;
    let path = unit_dir.unwrap_or(cfg.service.unit_dir).join(UNIT_NAME);
    let entry = autostart_dir
        .unwrap_or_else(|| cfg.service.customer.autostart_dir.clone())
        .join(crate::window_cmd::AUTOSTART_FILE);
    if entry.is_file() {
        std::fs::remove_file(&entry).with_context(|| format!("removing {}", entry.display()))?;
        println!("Removed {}", entry.display());
    }
    if run_systemctl {
        // Already stopped or disabled is fine.
        let _ = systemctl(&["disable", "--now", UNIT_NAME]);
    }
    match std::fs::remove_file(&path) {
        Ok(()) => println!("Removed {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("{} is not installed", path.display());
        }
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    if run_systemctl {
        systemctl(&["daemon-reload"])?;
    }
    Ok(ExitCode::SUCCESS)
}
