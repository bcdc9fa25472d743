//! Role configuration: TOML parsed into raw structs (unknown keys refused),
//! then validated into typed configs. Every error names the file, the line
//! and the key, and says what would be valid.
//!
//! Here is what every role shares ([`Doc`], [`ConfigError`], [`read`], the
//! `[connection]` table, the policy, names and secrets) and the broker's
//! and operator's configs; the agent's configuration and its feature
//! sections are in the agent crate (`lifeline_agent::config`).
//!
//! Relative paths in a file are resolved against that file's folder.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::client::Endpoint;
use crate::secrets;
use crate::tls::{Fingerprint, Trust};

/// Default lifetime of an invitation (connection ID, links): 10 minutes.
pub const DEFAULT_INVITATION_TTL_SECS: u64 = 600;
/// Longest lifetime an admin may configure for an invitation: 7 days.
pub const MAX_INVITATION_TTL_SECS: u64 = 7 * 24 * 3600;
/// Default lifetime of a rejoin ticket (remote reboot): 15 minutes.
pub const DEFAULT_REJOIN_TTL_SECS: u64 = 900;
/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT_SECS: u64 = 15;

/// A configuration problem, always naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {reason}")]
    Read { file: PathBuf, reason: String },
    #[error("{file}:{line}:{column}: {message}\n    | {source_line}")]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
        source_line: String,
    },
    #[error("{file}:{line}: `{key}`: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error(
        "{file}: cannot tell which role this file configures; expected exactly one top-level table of [broker], [agent], [operator] or [policy]"
    )]
    UnknownRole { file: PathBuf },
    #[error(transparent)]
    Secret(#[from] secrets::SecretFileError),
}

/// A TOML document being validated: its path and text, for error positions.
/// Shared with other raw → typed parsers (plugin manifests).
pub struct Doc<'a> {
    file: &'a Path,
    text: &'a str,
}

impl<'a> Doc<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Doc { file, text }
    }

    /// Line and column (from 1) of a byte span's start.
    pub fn line_of(&self, span: &Range<usize>) -> (usize, usize) {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = start - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    /// An error at `span` about `key`.
    pub fn invalid(
        &self,
        span: &Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: self.line_of(span).0,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Deserialises the raw form; unknown keys and wrong types are located.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let (line, column) = self.line_of(&span);
            ConfigError::Parse {
                file: self.file.to_owned(),
                line,
                column,
                message: e.message().trim().to_string(),
                source_line: self.text.lines().nth(line - 1).unwrap_or("").to_string(),
            }
        })
    }

    /// A path from the file, resolved against the file's folder.
    pub fn path(&self, p: &Spanned<String>) -> PathBuf {
        let raw = Path::new(p.get_ref());
        if raw.is_absolute() {
            raw.to_owned()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(raw)
        }
    }

    /// An optional number between 1 and `max` (`unit` names it in errors).
    pub fn bounded(
        &self,
        v: &Option<Spanned<u64>>,
        key: &str,
        default: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) if *s.get_ref() == 0 || *s.get_ref() > max => Err(self.invalid(
                &s.span(),
                key,
                format!("must be between 1 and {max}{unit}, got {}", s.get_ref()),
            )),
            Some(s) => Ok(*s.get_ref()),
        }
    }

    /// An optional number of seconds between 1 and `max`.
    pub fn secs(
        &self,
        v: &Option<Spanned<u64>>,
        key: &str,
        default: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.bounded(v, key, default, max, " seconds")
            .map(Duration::from_secs)
    }

    /// An IP address with port.
    pub fn addr(&self, v: &Spanned<String>, key: &str) -> Result<SocketAddr, ConfigError> {
        v.get_ref().parse().map_err(|_| {
            self.invalid(
                &v.span(),
                key,
                format!(
                    "{:?} is not an IP address with port, e.g. \"127.0.0.1:7443\" or \"0.0.0.0:7443\"",
                    v.get_ref()
                ),
            )
        })
    }
}

/// Reads a TOML file, naming it in the error.
pub fn read(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
        file: file.to_owned(),
        reason: e.to_string(),
    })
}

// ---------------------------------------------------------------- broker

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBrokerFile {
    broker: RawBroker,
    back_office: Option<back_office::RawBackOffice>,
    smtp: Option<smtp::RawSmtp>,
    join: Option<join_page::RawJoinPage>,
    store: Option<store::RawStore>,
    cluster: Option<Spanned<cluster::RawCluster>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    name: Option<String>,
    listen: Spanned<String>,
    https_listen: Spanned<String>,
    public_url: Option<Spanned<String>>,
    data_dir: Spanned<String>,
    cert_names: Option<Vec<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    invitation_ttl_secs: Option<Spanned<u64>>,
    rejoin_ttl_secs: Option<Spanned<u64>>,
    heartbeat_secs: Option<Spanned<u64>>,
    script_categories: Option<Spanned<Vec<String>>>,
    limits: Option<crate::limits::RawLimits>,
}

/// Script categories when the admin defines none.
pub const DEFAULT_SCRIPT_CATEGORIES: [&str; 4] = ["Diagnostics", "Maintenance", "Network", "Other"];

/// Validated broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Shown to clients in the handshake and on the join page.
    pub name: String,
    /// Session listener (TLS, Lifeline protocol).
    pub listen: SocketAddr,
    /// HTTPS listener: join pages and short links.
    pub https_listen: SocketAddr,
    /// Base URL links are built from, e.g. `https://support.example.com:7444`;
    /// `None`: `https://` + the address the HTTPS listener is bound to.
    pub public_url: Option<String>,
    /// Database, generated certificate.
    pub data_dir: PathBuf,
    /// Names the self-signed certificate is issued for.
    pub cert_names: Vec<String>,
    /// A CA-issued certificate and key, instead of the self-signed one.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub invitation_ttl: Duration,
    /// Lifetime of a rejoin ticket: how long a rebooting customer has to come back.
    pub rejoin_ttl: Duration,
    pub heartbeat: Duration,
    /// Categories a library script must belong to (defined by the admin).
    pub script_categories: Vec<String>,
    /// License back office (`[back_office]`); `None`: not offered.
    pub back_office: Option<back_office::BackOfficeConfig>,
    /// Connection-resource limits (`[broker.limits]`).
    pub limits: crate::limits::BrokerLimits,
    /// The mail server the web console sends invitations through
    /// (`[smtp]`); `None`: the console offers a `mailto:` link instead.
    pub smtp: Option<smtp::SmtpConfig>,
    /// What the join page offers besides the link (`[join]`).
    pub join: join_page::JoinPageConfig,
    /// Where the broker keeps its data (`[store]`): SQLite by default.
    pub store: store::StoreConfig,
    /// Other brokers this one routes sessions with (`[cluster]`); `None`:
    /// it runs alone.
    pub cluster: Option<cluster::ClusterConfig>,
}

impl BrokerConfig {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = read(file)?;
        Self::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let doc = Doc { file, text };
        let raw: RawBrokerFile = doc.parse()?;
        let b = raw.broker;
        let public_url = match &b.public_url {
            None => None,
            Some(u) => {
                let url = u.get_ref().trim_end_matches('/').to_string();
                if !url.starts_with("https://") || url.len() <= "https://".len() {
                    return Err(doc.invalid(
                        &u.span(),
                        "broker.public_url",
                        format!("must be an https:// URL such as \"https://support.example.com:7444\", got {:?}", u.get_ref()),
                    ));
                }
                Some(url)
            }
        };
        let tls_files = match (&b.tls_cert, &b.tls_key) {
            (None, None) => None,
            (Some(c), Some(k)) => {
                let key = doc.path(k);
                if key.exists() {
                    secrets::check_private(&key)?;
                }
                Some((doc.path(c), key))
            }
            (Some(s), None) | (None, Some(s)) => {
                return Err(doc.invalid(
                    &s.span(),
                    "broker.tls_cert/tls_key",
                    "give both tls_cert and tls_key, or neither (a self-signed certificate is then generated)",
                ));
            }
        };
        let script_categories = match &b.script_categories {
            None => DEFAULT_SCRIPT_CATEGORIES
                .iter()
                .map(|c| c.to_string())
                .collect(),
            Some(list) => {
                let cats: Vec<String> = list
                    .get_ref()
                    .iter()
                    .map(|c| c.trim().to_string())
                    .collect();
                let mut seen = std::collections::BTreeSet::new();
                if cats.is_empty()
                    || cats
                        .iter()
                        .any(|c| c.is_empty() || c.len() > 64 || !seen.insert(c.to_lowercase()))
                {
                    return Err(doc.invalid(
                        &list.span(),
                        "broker.script_categories",
                        "a non-empty list of distinct names of 1 to 64 characters, e.g. [\"Diagnostics\", \"Network\"]",
                    ));
                }
                cats
            }
        };
        let store = store::validate_store(&doc, &raw.store.unwrap_or_default())?;
        let cluster = raw
            .cluster
            .as_ref()
            .map(|c| {
                let shared = matches!(store, store::StoreConfig::Postgres(_));
                cluster::validate_cluster(&doc, c.get_ref(), &c.span(), shared)
            })
            .transpose()?;
        Ok(BrokerConfig {
            store,
            cluster,
            back_office: raw
                .back_office
                .as_ref()
                .map(|r| back_office::validate_back_office(&doc, r))
                .transpose()?,
            smtp: raw
                .smtp
                .as_ref()
                .map(|r| smtp::validate_smtp(&doc, r))
                .transpose()?,
            join: join_page::validate(&doc, &raw.join.unwrap_or_default())?,
            script_categories,
            limits: crate::limits::validate(&doc, &b.limits.unwrap_or_default())?,
            name: b.name.unwrap_or_else(|| "Lifeline broker".into()),
            listen: doc.addr(&b.listen, "broker.listen")?,
            https_listen: doc.addr(&b.https_listen, "broker.https_listen")?,
            public_url,
            data_dir: doc.path(&b.data_dir),
            cert_names: b
                .cert_names
                .unwrap_or_else(|| vec!["localhost".into(), "127.0.0.1".into()]),
            tls_files,
            invitation_ttl: doc.secs(
                &b.invitation_ttl_secs,
                "broker.invitation_ttl_secs",
                DEFAULT_INVITATION_TTL_SECS,
                MAX_INVITATION_TTL_SECS,
            )?,
            rejoin_ttl: doc.secs(
                &b.rejoin_ttl_secs,
                "broker.rejoin_ttl_secs",
                DEFAULT_REJOIN_TTL_SECS,
                24 * 3600,
            )?,
            heartbeat: doc.secs(
                &b.heartbeat_secs,
                "broker.heartbeat_secs",
                DEFAULT_HEARTBEAT_SECS,
                3600,
            )?,
        })
    }
}

// ---------------------------------------------------------------- connection (agent + operator)

/// The raw `[connection]` table of an agent's or operator's file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnection {
    broker: Spanned<String>,
    server_name: Option<String>,
    fingerprint: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    heartbeat_secs: Option<Spanned<u64>>,
}

impl RawConnection {
    /// The broker's address, TLS trust and heartbeat.
    pub fn validate(&self, doc: &Doc<'_>) -> Result<Endpoint, ConfigError> {
        let address = self.broker.get_ref().clone();
        let host = address.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
        let host = match host {
            Some((h, Ok(_))) if !h.is_empty() => {
                h.trim_start_matches('[').trim_end_matches(']').to_string()
            }
            _ => {
                return Err(doc.invalid(
                    &self.broker.span(),
                    "connection.broker",
                    format!("{address:?} is not host:port, e.g. \"support.example.com:7443\""),
                ));
            }
        };
        let trust = match (&self.fingerprint, &self.ca_file) {
            (Some(_), Some(c)) => {
                return Err(doc.invalid(
                    &c.span(),
                    "connection.ca_file",
                    "set either fingerprint (pin the broker's certificate) or ca_file, not both",
                ));
            }
            (Some(fp), None) => {
                Trust::Pinned(Fingerprint::parse(fp.get_ref()).map_err(|e| {
                    doc.invalid(&fp.span(), "connection.fingerprint", e.to_string())
                })?)
            }
            (None, Some(ca)) => Trust::CaFile(doc.path(ca)),
            (None, None) => Trust::WebPki,
        };
        Ok(Endpoint {
            address,
            server_name: self.server_name.clone().unwrap_or(host),
            trust,
            heartbeat: doc.secs(
                &self.heartbeat_secs,
                "connection.heartbeat_secs",
                DEFAULT_HEARTBEAT_SECS,
                3600,
            )?,
        })
    }
}

// ---------------------------------------------------------------- operator

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperatorFile {
    operator: RawOperator,
    connection: RawConnection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    username: Option<String>,
    password: Option<String>,
    data_dir: Spanned<String>,
}

/// Validated operator-client configuration.
#[derive(Clone)]
pub struct OperatorConfig {
    pub endpoint: Endpoint,
    /// Holds the login token (mode 0600).
    pub data_dir: PathBuf,
    pub username: Option<String>,
    /// For unattended scripts only; the file must then be private.
    pub password: Option<String>,
}

impl std::fmt::Debug for OperatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorConfig")
            .field("endpoint", &self.endpoint)
            .field("data_dir", &self.data_dir)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl OperatorConfig {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = read(file)?;
        let cfg = Self::parse(file, &text)?;
        if cfg.password.is_some() {
            secrets::check_private(file)?;
        }
        Ok(cfg)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let doc = Doc { file, text };
        let raw: RawOperatorFile = doc.parse()?;
        Ok(OperatorConfig {
            endpoint: raw.connection.validate(&doc)?,
            data_dir: doc.path(&raw.operator.data_dir),
            username: raw.operator.username,
            password: raw.operator.password,
        })
    }
}

// ---------------------------------------------------------------- sections

pub mod back_office;
pub mod cluster;
pub mod fields;
pub mod join_page;
mod policy;
pub mod smtp;
pub mod store;

/// Longest folder name (`[plugins.folders]`, a manifest's `fs.folder`).
pub const MAX_FOLDER_NAME_CHARS: usize = 32;

/// A folder name is lower-case letters, digits and `-`, like a plugin id.
pub fn valid_folder_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_FOLDER_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKER: &str = r#"
[broker]
listen = "127.0.0.1:7443"
https_listen = "127.0.0.1:7444"
public_url = "https://localhost:7444/"
data_dir = "data"
"#;

    #[test]
    fn broker_defaults_and_relative_paths() {
        let c = BrokerConfig::parse(Path::new("/etc/lifeline/broker.toml"), BROKER).unwrap();
        assert_eq!(c.data_dir, Path::new("/etc/lifeline/data"));
        assert_eq!(c.public_url.as_deref(), Some("https://localhost:7444"));
        assert_eq!(c.invitation_ttl, Duration::from_secs(600));
    }

    #[test]
    fn unknown_key_names_file_line_and_valid_keys() {
        let text = BROKER.replace("\nlisten = ", "\nlisen = ");
        let err = BrokerConfig::parse(Path::new("b.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("b.toml:3:"), "{err}");
        assert!(
            err.contains("lisen") && err.contains("expected one of"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_and_bad_value_are_located() {
        let text = format!("{BROKER}invitation_ttl_secs = \"ten\"\n");
        let err = BrokerConfig::parse(Path::new("b.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("b.toml:7:"), "{err}");
        assert!(err.contains("invitation_ttl_secs"), "{err}");
        let text = BROKER.replace("127.0.0.1:7443", "localhost");
        let err = BrokerConfig::parse(Path::new("b.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.toml:3: `broker.listen`"), "{err}");
    }

    #[test]
    fn operator_file_with_password_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("operator.toml");
        std::fs::write(
            &f,
            "[operator]\ndata_dir = \"d\"\nusername = \"a\"\npassword = \"pw\"\n[connection]\nbroker = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = OperatorConfig::load(&f).unwrap_err().to_string();
        assert!(err.contains("readable by others"), "{err}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = OperatorConfig::load(&f).unwrap();
        assert!(!format!("{c:?}").contains("pw\""));
    }
}
