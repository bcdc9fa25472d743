//! Agent settings for the features that reach into the customer's machine:
//! `[run_as]` (log in as another user), `[screen]` (the display shared with
//! the operator), `[power]` (remote reboot) and `[service]` (the agent as a
//! system service). Raw → validated like the
//! rest of the configuration (see [`crate::config`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use lifeline_core::config::{ConfigError, Doc};

/// PAM service whose stack checks a run-as password (`/etc/pam.d/lifeline`;
/// PAM falls back to `/etc/pam.d/other` when the file is absent).
pub const DEFAULT_PAM_SERVICE: &str = "lifeline";
/// Wrong run-as passwords in a row before the agent pauses logins.
pub const DEFAULT_MAX_FAILURES: u64 = 3;
/// How long run-as logins pause after too many wrong passwords.
pub const DEFAULT_LOCKOUT_SECS: u64 = 60;
/// Time the operator has to type the password once the customer consented.
pub const DEFAULT_CREDENTIAL_TIMEOUT_SECS: u64 = 120;
/// The default power backend.
pub const DEFAULT_REBOOT_COMMAND: [&str; 2] = ["systemctl", "reboot"];
/// Where `install-service` writes the unit by default.
pub const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";
/// The account the agent service runs as by default (run-as logins and
/// reboots need it).
pub const DEFAULT_SERVICE_ACCOUNT: &str = "root";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRunAs {
    pam_service: Option<Spanned<String>>,
    display: Option<Spanned<String>>,
    max_failures: Option<Spanned<u64>>,
    lockout_secs: Option<Spanned<u64>>,
    credential_timeout_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScreen {
    display: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPower {
    reboot_command: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    account: Option<Spanned<String>>,
    unit_dir: Option<Spanned<String>>,
}

/// An X display setting: where the customer's own access is suspended
/// during a run-as login (`[run_as] display`), and the display shared with
/// the operator (`[screen] display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Display {
    /// `$DISPLAY` of the agent's environment, if set.
    FromEnvironment,
    /// This X display (e.g. ":0").
    X(String),
    /// No display: for a run-as login only the agent's terminal is
    /// suspended; there is no screen to share.
    None,
}

/// `[screen]`: the X display plugins holding `screen.capture` and
/// `input.control` share (see [`crate::screen`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenConfig {
    pub display: Display,
}

impl Default for ScreenConfig {
    fn default() -> Self {
        ScreenConfig {
            display: Display::FromEnvironment,
        }
    }
}

/// `[run_as]`: logging the operator in as another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAsConfig {
    pub pam_service: String,
    pub display: Display,
    pub max_failures: u32,
    pub lockout: Duration,
    pub credential_timeout: Duration,
}

impl Default for RunAsConfig {
    fn default() -> Self {
        RunAsConfig {
            pam_service: DEFAULT_PAM_SERVICE.to_string(),
            display: Display::FromEnvironment,
            max_failures: DEFAULT_MAX_FAILURES as u32,
            lockout: Duration::from_secs(DEFAULT_LOCKOUT_SECS),
            credential_timeout: Duration::from_secs(DEFAULT_CREDENTIAL_TIMEOUT_SECS),
        }
    }
}

/// `[power]`: how the agent restarts the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerConfig {
    /// Program and arguments run to reboot.
    pub reboot_command: Vec<String>,
}

impl Default for PowerConfig {
    fn default() -> Self {
        PowerConfig {
            reboot_command: DEFAULT_REBOOT_COMMAND.map(String::from).to_vec(),
        }
    }
}

/// `[service]`: the agent as a systemd service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The account the service runs as.
    pub account: String,
    /// Folder the unit file goes into.
    pub unit_dir: PathBuf,
    /// `[customer]`: the customer's window after a restart.
    pub customer: super::customer::CustomerConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            account: DEFAULT_SERVICE_ACCOUNT.to_string(),
            unit_dir: PathBuf::from(DEFAULT_UNIT_DIR),
            customer: Default::default(),
        }
    }
}

/// A PAM service or account name: letters, digits, `.`, `_`, `-`.
pub(crate) fn plain_name(
    doc: &Doc<'_>,
    v: &Spanned<String>,
    key: &str,
) -> Result<String, ConfigError> {
    let s = v.get_ref();
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.clone())
    } else {
        Err(doc.invalid(
            &v.span(),
            key,
            format!("{s:?} is not a plain name (letters, digits, '.', '_', '-'; at most 64)"),
        ))
    }
}

pub(crate) fn validate_run_as(
    doc: &Doc<'_>,
    raw: Option<&RawRunAs>,
) -> Result<RunAsConfig, ConfigError> {
    let d = RunAsConfig::default();
    let Some(raw) = raw else { return Ok(d) };
    let display = display(doc, &raw.display, "run_as.display", "for terminal only")?;
    Ok(RunAsConfig {
        pam_service: match &raw.pam_service {
            Some(v) => plain_name(doc, v, "run_as.pam_service")?,
            None => d.pam_service,
        },
        display,
        max_failures: doc.bounded(
            &raw.max_failures,
            "run_as.max_failures",
            DEFAULT_MAX_FAILURES,
            20,
            "",
        )? as u32,
        lockout: Duration::from_secs(doc.bounded(
            &raw.lockout_secs,
            "run_as.lockout_secs",
            DEFAULT_LOCKOUT_SECS,
            3600,
            " seconds",
        )?),
        credential_timeout: Duration::from_secs(doc.bounded(
            &raw.credential_timeout_secs,
            "run_as.credential_timeout_secs",
            DEFAULT_CREDENTIAL_TIMEOUT_SECS,
            3600,
            " seconds",
        )?),
    })
}

/// An X display (`":0"`, `"host:1.0"`), `"none"`, or unset: `$DISPLAY`.
fn display(
    doc: &Doc<'_>,
    v: &Option<Spanned<String>>,
    key: &str,
    none_means: &str,
) -> Result<Display, ConfigError> {
    match v {
        None => Ok(Display::FromEnvironment),
        Some(v) if v.get_ref() == "none" => Ok(Display::None),
        Some(v) if v.get_ref().contains(':') => Ok(Display::X(v.get_ref().clone())),
        Some(v) => Err(doc.invalid(
            &v.span(),
            key,
            format!(
                "{:?} is not an X display; use e.g. \":0\", or \"none\" {none_means}",
                v.get_ref()
            ),
        )),
    }
}

pub(crate) fn validate_screen(
    doc: &Doc<'_>,
    raw: Option<&RawScreen>,
) -> Result<ScreenConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(ScreenConfig::default());
    };
    Ok(ScreenConfig {
        display: display(doc, &raw.display, "screen.display", "for no screen sharing")?,
    })
}

pub(crate) fn validate_power(
    doc: &Doc<'_>,
    raw: Option<&RawPower>,
) -> Result<PowerConfig, ConfigError> {
    let Some(cmd) = raw.and_then(|r| r.reboot_command.as_ref()) else {
        return Ok(PowerConfig::default());
    };
    if cmd.get_ref().first().is_none_or(|p| p.trim().is_empty()) {
        return Err(doc.invalid(
            &cmd.span(),
            "power.reboot_command",
            "needs a program, e.g. [\"systemctl\", \"reboot\"]",
        ));
    }
    Ok(PowerConfig {
        reboot_command: cmd.get_ref().clone(),
    })
}

pub(crate) fn validate_service(
    doc: &Doc<'_>,
    raw: Option<&RawService>,
    customer: Option<&super::customer::RawCustomer>,
) -> Result<ServiceConfig, ConfigError> {
    let customer = super::customer::validate(doc, customer)?;
    let d = ServiceConfig {
        customer,
        ..ServiceConfig::default()
    };
    let Some(raw) = raw else { return Ok(d) };
    Ok(ServiceConfig {
        customer: d.customer,
        account: match &raw.account {
            Some(v) => plain_name(doc, v, "service.account")?,
            None => d.account,
        },
        unit_dir: raw.unit_dir.as_ref().map_or(d.unit_dir, |p| doc.path(p)),
    })
}

impl crate::config::AgentConfig {
    /// The account the agent service runs as: `[remote_service]
    /// service_account` when set (the remote-service settings the customer's
    /// admin fills in), else `[service] account`.
    pub fn service_account(&self) -> &str {
        self.remote_service
            .as_ref()
            .and_then(|r| r.service_account.as_deref())
            .unwrap_or(&self.service.account)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::AgentConfig;
    use std::path::Path;

    const AGENT: &str = "[agent]\ndata_dir = \"d\"\n[connection]\nbroker = \"127.0.0.1:7443\"\n";

    fn parse(extra: &str) -> Result<AgentConfig, String> {
        AgentConfig::parse(
            Path::new("/etc/lifeline/agent.toml"),
            &format!("{AGENT}{extra}"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_settings() {
        let c = parse("").unwrap();
        assert_eq!(c.run_as, super::RunAsConfig::default());
        assert_eq!(c.screen.display, super::Display::FromEnvironment);
        assert_eq!(c.power.reboot_command, ["systemctl", "reboot"]);
        assert_eq!(c.service.account, "root");
        let c = parse(
            "[run_as]\ndisplay = \":3\"\nmax_failures = 5\n[power]\nreboot_command = [\"/sbin/reboot\"]\n[service]\naccount = \"support\"\nunit_dir = \"units\"\n",
        )
        .unwrap();
        assert_eq!(c.run_as.display, super::Display::X(":3".into()));
        assert_eq!(c.run_as.max_failures, 5);
        assert_eq!(c.power.reboot_command, ["/sbin/reboot"]);
        assert_eq!(c.service.unit_dir, Path::new("/etc/lifeline/units"));
        let c = parse("[screen]\ndisplay = \":1\"\n").unwrap();
        assert_eq!(c.screen.display, super::Display::X(":1".into()));
        let c = parse("[screen]\ndisplay = \"none\"\n").unwrap();
        assert_eq!(c.screen.display, super::Display::None);
    }

    #[test]
    fn bad_settings_name_file_line_and_key() {
        for (extra, key, line) in [
            ("[run_as]\ndisplay = \"screen\"\n", "run_as.display", 6),
            ("[run_as]\nmax_failures = 0\n", "run_as.max_failures", 6),
            ("[screen]\ndisplay = \"wayland-0\"\n", "screen.display", 6),
            (
                "[run_as]\npam_service = \"../etc/x\"\n",
                "run_as.pam_service",
                6,
            ),
            ("[power]\nreboot_command = []\n", "power.reboot_command", 6),
            ("[service]\naccount = \"a b\"\n", "service.account", 6),
        ] {
            let e = parse(extra).unwrap_err();
            assert!(
                e.contains(&format!("/etc/lifeline/agent.toml:{line}: `{key}`")),
                "{e}"
            );
        }
        let e = parse("[power]\nreboot = [\"x\"]\n").unwrap_err();
        assert!(e.contains("unknown field `reboot`"), "{e}");
    }
}
