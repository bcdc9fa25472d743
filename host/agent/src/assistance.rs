//! "Allow remote assistance": the switch that turns every join off on this
//! computer. The admin sets `[agent] allow_remote_assistance` in agent.toml;
//! the customer sets an override in the agent's data folder with
//! `lifeline agent allow-remote-assistance on|off` ([`OVERRIDE_FILE`]).
//! Either one off means off: the admin's off wins over the customer's on,
//! and the customer may always turn it off. While off, the agent refuses
//! every join, join-file join and rejoin before it connects.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The customer's override, in the agent's data folder.
pub const OVERRIDE_FILE: &str = "remote-assistance.toml";
/// The command that changes the customer's override.
pub const COMMAND: &str = "lifeline agent allow-remote-assistance";

#[derive(Debug, thiserror::Error)]
pub enum AssistanceError {
    #[error("cannot read {path}: {reason}; fix or delete it, or run `{COMMAND} on|off`")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The customer's choice as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub allow: bool,
    /// The account that set it.
    pub set_by: String,
    /// When (RFC 3339).
    pub set_at: String,
}

/// Whether remote assistance is allowed, and who decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switch {
    /// On (the admin did not turn it off, nor did the customer).
    On { customer: Option<Override> },
    /// Turned off in agent.toml.
    OffByAdmin,
    /// Turned off by the customer.
    OffByCustomer(Override),
}

impl Switch {
    pub fn allowed(&self) -> bool {
        matches!(self, Switch::On { .. })
    }

    /// One line for `lifeline agent status`.
    pub fn describe(&self) -> String {
        match self {
            Switch::On { customer: None } => "on".into(),
            Switch::On { customer: Some(o) } => {
                format!("on (turned on by {} at {})", o.set_by, o.set_at)
            }
            Switch::OffByAdmin => {
                "off (turned off by the administrator: [agent] allow_remote_assistance = false)"
                    .into()
            }
            Switch::OffByCustomer(o) => {
                format!("off (turned off by {} at {})", o.set_by, o.set_at)
            }
        }
    }

    /// Why a join is refused, and how to turn assistance back on.
    pub fn refusal(&self) -> Option<String> {
        match self {
            Switch::On { .. } => None,
            Switch::OffByAdmin => Some(
                "remote assistance is turned off on this computer by the administrator; \
                 turn it on with `allow_remote_assistance = true` in the [agent] section of the agent's configuration"
                    .into(),
            ),
            Switch::OffByCustomer(o) => Some(format!(
                "remote assistance is turned off on this computer by you ({} at {}); turn it on with `{COMMAND} on`",
                o.set_by, o.set_at
            )),
        }
    }
}

fn override_path(data_dir: &Path) -> PathBuf {
    data_dir.join(OVERRIDE_FILE)
}

/// The customer's override, if one was set.
pub fn load_override(data_dir: &Path) -> Result<Option<Override>, AssistanceError> {
    let path = override_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AssistanceError::Read {
                path,
                reason: e.to_string(),
            });
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| AssistanceError::Read {
            path,
            reason: e.message().to_string(),
        })
}

/// The switch from the admin's setting and the customer's override.
pub fn state(admin_allows: bool, data_dir: &Path) -> Result<Switch, AssistanceError> {
    let customer = load_override(data_dir)?;
    Ok(match (admin_allows, customer) {
        (false, _) => Switch::OffByAdmin,
        (true, Some(o)) if !o.allow => Switch::OffByCustomer(o),
        (true, customer) => Switch::On { customer },
    })
}

/// Stores the customer's choice (by the account running the command).
pub fn set(data_dir: &Path, allow: bool) -> Result<Override, AssistanceError> {
    std::fs::create_dir_all(data_dir).map_err(|source| AssistanceError::Write {
        path: data_dir.to_owned(),
        source,
    })?;
    let o = Override {
        allow,
        set_by: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "the customer".into()),
        set_at: lifeline_core::time::now_rfc3339(),
    };
    let text = format!(
        "# \"Allow remote assistance\", set with `{COMMAND} on|off`.\n{}",
        toml::to_string(&o).expect("a flat struct of strings and a bool serialises")
    );
    let path = override_path(data_dir);
    std::fs::write(&path, text).map_err(|source| AssistanceError::Write { path, source })?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_off_wins_and_customer_may_turn_off() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            state(true, dir.path()).unwrap(),
            Switch::On { customer: None }
        );
        set(dir.path(), true).unwrap();
        assert!(state(true, dir.path()).unwrap().allowed());
        let off = state(false, dir.path()).unwrap();
        assert_eq!(off, Switch::OffByAdmin);
        assert!(off.refusal().unwrap().contains("by the administrator"));
        set(dir.path(), false).unwrap();
        let s = state(true, dir.path()).unwrap();
        assert!(!s.allowed());
        assert!(s.refusal().unwrap().contains("by you"), "{s:?}");
        assert!(s.refusal().unwrap().contains(&format!("{COMMAND} on")));
        std::fs::write(dir.path().join(OVERRIDE_FILE), "allow = maybe").unwrap();
        let err = state(true, dir.path()).unwrap_err().to_string();
        assert!(err.contains(OVERRIDE_FILE), "{err}");
    }
}
