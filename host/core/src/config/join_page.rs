//! The broker's `[join]` table: what the join page offers the customer
//! besides the link — the agent to download and the signed join file
//! (`lifeline_core::join_file`). Every key is optional.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Doc};

/// Validated `[join]` of a broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinPageConfig {
    /// `host:port` of the session listener as customers reach it, written
    /// into join files. `None`: the host of `public_url` (or of the
    /// listener's address when it is a specific IP, else the first of
    /// `cert_names`) with the listener's port.
    pub public_session_address: Option<String>,
    /// TLS server name written into join files. `None`: the address's host
    /// when it is a name, else the first of `cert_names`.
    pub server_name: Option<String>,
    /// The agent program offered at `/download/lifeline`. `None`: the
    /// broker's own executable (one binary plays every role).
    pub agent_binary: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJoinPage {
    public_session_address: Option<Spanned<String>>,
    server_name: Option<Spanned<String>>,
    agent_binary: Option<Spanned<String>>,
}

/// `host:port` with a non-empty host and a port from 1 to 65535.
pub fn is_host_port(s: &str) -> bool {
    matches!(s.rsplit_once(':'), Some((h, p))
        if !h.is_empty() && !h.contains(char::is_whitespace) && p.parse::<u16>().is_ok_and(|p| p != 0))
}

pub(super) fn validate(doc: &Doc<'_>, raw: &RawJoinPage) -> Result<JoinPageConfig, ConfigError> {
    if let Some(a) = &raw.public_session_address
        && !is_host_port(a.get_ref())
    {
        return Err(doc.invalid(
            &a.span(),
            "join.public_session_address",
            format!(
                "{:?} is not host:port as customers reach the session listener, e.g. \"support.example.com:7443\"",
                a.get_ref()
            ),
        ));
    }
    if let Some(n) = &raw.server_name
        && (n.get_ref().is_empty() || n.get_ref().contains(char::is_whitespace))
    {
        return Err(doc.invalid(
            &n.span(),
            "join.server_name",
            "a host name such as \"support.example.com\"",
        ));
    }
    let agent_binary = match &raw.agent_binary {
        None => None,
        Some(p) => {
            let path = doc.path(p);
            if !path.is_file() {
                return Err(doc.invalid(
                    &p.span(),
                    "join.agent_binary",
                    format!(
                        "{} is not a file: give the path of the lifeline program customers download, or remove the key to offer the broker's own",
                        path.display()
                    ),
                ));
            }
            Some(path)
        }
    };
    Ok(JoinPageConfig {
        public_session_address: raw
            .public_session_address
            .as_ref()
            .map(|a| a.get_ref().clone()),
        server_name: raw.server_name.as_ref().map(|n| n.get_ref().clone()),
        agent_binary,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::BrokerConfig;

    const BROKER: &str = "[broker]\nlisten = \"127.0.0.1:7443\"\nhttps_listen = \"127.0.0.1:7444\"\ndata_dir = \"data\"\n";

    #[test]
    fn join_table_is_optional_and_validated() {
        let f = Path::new("/etc/lifeline/broker.toml");
        assert_eq!(
            BrokerConfig::parse(f, BROKER).unwrap().join,
            Default::default()
        );
        let ok = format!(
            "{BROKER}[join]\npublic_session_address = \"support.example.com:7443\"\nserver_name = \"support.example.com\"\n"
        );
        let c = BrokerConfig::parse(f, &ok).unwrap();
        assert_eq!(
            c.join.public_session_address.as_deref(),
            Some("support.example.com:7443")
        );
        for (bad, key) in [
            (
                "public_session_address = \"support.example.com\"",
                "join.public_session_address",
            ),
            (
                "public_session_address = \"h:0\"",
                "join.public_session_address",
            ),
            ("server_name = \"a b\"", "join.server_name"),
            ("agent_binary = \"no-such-program\"", "join.agent_binary"),
        ] {
            let text = format!("{BROKER}[join]\n{bad}\n");
            let err = BrokerConfig::parse(f, &text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{}:6: `{key}`", f.display())),
                "{err}"
            );
        }
        let err = BrokerConfig::parse(f, &format!("{BROKER}[join]\ncolour = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
