//! The agent's `[customer]` table: where the customer's window finds the
//! agent service after a restart, and who may connect.
//!
//! ```toml
//! [customer]
//! users = ["anna"]                          # besides root and the one who joined
//! socket = "/run/lifeline/customer.sock"    # the service's customer channel
//! autostart_dir = "/etc/xdg/autostart"      # where install-service puts the window's entry
//! ```

use std::path::PathBuf;

use lifeline_core::config::{ConfigError, Doc};
use serde::Deserialize;
use toml::Spanned;

/// Default path of the agent service's customer socket.
pub const DEFAULT_SOCKET: &str = "/run/lifeline/customer.sock";
/// Default folder of XDG autostart entries (every desktop user's).
pub const DEFAULT_AUTOSTART_DIR: &str = "/etc/xdg/autostart";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCustomer {
    #[serde(default)]
    users: Vec<Spanned<String>>,
    socket: Option<Spanned<String>>,
    autostart_dir: Option<Spanned<String>>,
}

/// `[customer]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerConfig {
    /// Accounts allowed on the socket besides root and the desktop user
    /// who joined (recorded in the rejoin ticket).
    pub users: Vec<String>,
    pub socket: PathBuf,
    pub autostart_dir: PathBuf,
}

impl Default for CustomerConfig {
    fn default() -> Self {
        CustomerConfig {
            users: Vec::new(),
            socket: PathBuf::from(DEFAULT_SOCKET),
            autostart_dir: PathBuf::from(DEFAULT_AUTOSTART_DIR),
        }
    }
}

pub(crate) fn validate(
    doc: &Doc<'_>,
    raw: Option<&RawCustomer>,
) -> Result<CustomerConfig, ConfigError> {
    let d = CustomerConfig::default();
    let Some(raw) = raw else { return Ok(d) };
    let users = raw
        .users
        .iter()
        .map(|u| super::machine::plain_name(doc, u, "customer.users"))
        .collect::<Result<_, _>>()?;
    Ok(CustomerConfig {
        users,
        socket: raw.socket.as_ref().map_or(d.socket, |p| doc.path(p)),
        autostart_dir: raw
            .autostart_dir
            .as_ref()
            .map_or(d.autostart_dir, |p| doc.path(p)),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::AgentConfig;
    use std::path::Path;

    fn parse(extra: &str) -> Result<AgentConfig, String> {
        let base = "[agent]\ndata_dir = \"d\"\n[connection]\nbroker = \"127.0.0.1:7443\"\n";
        AgentConfig::parse(
            Path::new("/etc/lifeline/agent.toml"),
            &format!("{base}{extra}"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_settings_and_bad_names() {
        let c = parse("").unwrap().service.customer;
        assert_eq!(c, super::CustomerConfig::default());
        let c = parse(
            "[customer]\nusers = [\"anna\"]\nsocket = \"run/c.sock\"\nautostart_dir = \"auto\"\n",
        )
        .unwrap()
        .service
        .customer;
        assert_eq!(c.users, ["anna"]);
        assert_eq!(c.socket, Path::new("/etc/lifeline/run/c.sock"));
        assert_eq!(c.autostart_dir, Path::new("/etc/lifeline/auto"));
        let err = parse("[customer]\nusers = [\"a b\"]\n").unwrap_err();
        assert!(err.contains("customer.users"), "{err}");
        let err = parse("[customer]\ncolour = 1\n").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }
}
