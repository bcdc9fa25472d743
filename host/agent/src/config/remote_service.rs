//! The agent's `[remote_service]` table: license back office, organisation
//! ID and verification code, proxy, service account. Raw → typed like the
//! rest of the agent's configuration, through [`Doc`], so errors name the
//! file, the line and the key. (The broker's `[back_office]` is in
//! `lifeline_core::config::back_office`; the proxy types, shared by every
//! outgoing connection, in `lifeline_core::proxy`.)
//!
//! Secrets (the verification code, the proxy password) are never written
//! inline: they are read from a file that only its owner may read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use lifeline_core::config::fields::{MAX_NAME_CHARS, inline_refused, keys, name, read_secret};
use lifeline_core::config::{ConfigError, Doc};
use lifeline_core::proxy::{ManualProxy, ProxyAuth, ProxySetting, Secret, split_https_url};

/// Default time between two license checks: one day.
pub const DEFAULT_CHECK_INTERVAL_SECS: u64 = 24 * 3600;
/// Longest interval an admin may configure: 30 days.
pub const MAX_CHECK_INTERVAL_SECS: u64 = 30 * 24 * 3600;

/// How the license reaches the floating license server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseMode {
    /// The license server runs here: install into the license file's folder,
    /// then run the reload command if one is set.
    Local { reload_command: Option<Vec<String>> },
    /// The license server runs elsewhere; its license folder is shared and
    /// mounted here: install into it.
    Remote,
    /// Leave the new license in the download folder; the customer copies it.
    Manual,
}

impl LicenseMode {
    pub fn name(&self) -> &'static str {
        match self {
            LicenseMode::Local { .. } => "local",
            LicenseMode::Remote => "remote",
            LicenseMode::Manual => "manual",
        }
    }
}

/// Validated `[remote_service]` of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteServiceConfig {
    /// Off: no connection to the back office at all.
    pub enabled: bool,
    /// `https://host:port` of the back office (the broker's HTTPS listener).
    pub back_office: String,
    pub organisation_id: String,
    pub verification_code: Secret,
    /// Vendor keys (`ed25519:…`) whose signed licenses are accepted.
    pub vendor_keys: Vec<String>,
    pub check_interval: Duration,
    /// The installed license; its serial number identifies this installation.
    pub license_file: PathBuf,
    pub mode: LicenseMode,
    /// Where downloaded licenses are kept (manual mode: for the customer to copy).
    pub download_folder: PathBuf,
    pub proxy: ProxySetting,
    /// The account the agent service runs as (`lifeline agent install-service`).
    pub service_account: Option<String>,
}

impl RemoteServiceConfig {
    /// The proxy support sessions go through: only a manual one.
    pub fn session_proxy(&self) -> Option<&ManualProxy> {
        match &self.proxy {
            ProxySetting::Manual(p) => Some(p),
            ProxySetting::None | ProxySetting::Auto => None,
        }
    }
}

/// The folder, download folder, command and settings names the license
/// plugin finds (`[folders]`, `[admin_commands]`, `settings.read`).
pub mod names {
    /// The installed license's folder (writable unless the mode is manual).
    pub const LICENSE_FOLDER: &str = "license";
    /// Where downloaded licenses are kept.
    pub const DOWNLOAD_FOLDER: &str = "license-downloads";
    /// `reload_command` of the local license mode.
    pub const RELOAD_COMMAND: &str = "reload-license-server";
    /// The back office (`http.endpoint`).
    pub const BACK_OFFICE: &str = "back-office";
    /// The plugin whose settings these are.
    pub const PLUGIN: &str = "license";
}

impl RemoteServiceConfig {
    /// What `[remote_service]` gives the license plugin, added to the
    /// agent's `[plugins]`: the license folder and the download folder, the
    /// reload command, and the plugin's settings; and, for every plugin's
    /// `http.request`, this proxy. What the admin wrote in `[plugins]`
    /// (names, `http_proxy`) wins.
    pub fn plugin_resources(&self, plugins: &mut super::PluginsConfig) {
        use super::FolderConfig;
        if plugins.http_proxy.is_none() {
            plugins.http_proxy = Some(self.proxy.clone());
        }
        let folder = self
            .license_file
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        let write = !matches!(self.mode, LicenseMode::Manual);
        plugins
            .folders
            .entry(names::LICENSE_FOLDER.into())
            .or_insert(FolderConfig {
                path: folder,
                write,
            });
        plugins
            .folders
            .entry(names::DOWNLOAD_FOLDER.into())
            .or_insert(FolderConfig {
                path: self.download_folder.clone(),
                write: true,
            });
        let mut settings = vec![
            ("enabled", self.enabled.to_string()),
            ("mode", self.mode.name().to_string()),
            (
                "check-interval-secs",
                self.check_interval.as_secs().to_string(),
            ),
            (
                "license-file",
                self.license_file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            ("license-path", self.license_file.display().to_string()),
            (
                "download-folder",
                self.download_folder.display().to_string(),
            ),
            ("back-office", self.back_office.clone()),
        ];
        if let LicenseMode::Local {
            reload_command: Some(argv),
        } = &self.mode
        {
            plugins
                .commands
                .entry(names::RELOAD_COMMAND.into())
                .or_insert_with(|| argv.clone());
            settings.push(("reload-command", names::RELOAD_COMMAND.into()));
        }
        let mine = plugins.settings.entry(names::PLUGIN.into()).or_default();
        for (k, v) in settings {
            mine.entry(k.to_string()).or_insert(v);
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteService {
    enabled: Spanned<bool>,
    back_office: Option<Spanned<String>>,
    organisation_id: Option<Spanned<String>>,
    verification_code: Option<Spanned<String>>,
    verification_code_file: Option<Spanned<String>>,
    #[serde(default)]
    vendor_keys: Vec<Spanned<String>>,
    check_interval_secs: Option<Spanned<u64>>,
    license_file: Option<Spanned<String>>,
    license_mode: Option<Spanned<String>>,
    reload_command: Option<Spanned<Vec<String>>>,
    download_folder: Option<Spanned<String>>,
    service_account: Option<Spanned<String>>,
    proxy: Option<RawProxy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    mode: Spanned<String>,
    host: Option<Spanned<String>>,
    port: Option<Spanned<u64>>,
    user: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    domain: Option<Spanned<String>>,
    no_proxy: Option<Spanned<Vec<String>>>,
}

/// A manual proxy's `no_proxy` entries: names, addresses, networks or `*`.
fn no_proxy(doc: &Doc<'_>, raw: &Option<Spanned<Vec<String>>>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = raw else {
        return Ok(Vec::new());
    };
    for e in list.get_ref() {
        let bad = e.is_empty()
            || e.len() > MAX_NAME_CHARS
            || e.chars()
                .any(|c| c == ',' || c.is_whitespace() || c.is_control());
        if bad {
            return Err(doc.invalid(
                &list.span(),
                "remote_service.proxy.no_proxy",
                format!(
                    "{e:?} is not a destination: use names (\"corp.example\" also matches its subdomains), addresses, networks like \"10.0.0.0/8\", or \"*\""
                ),
            ));
        }
    }
    Ok(list.get_ref().clone())
}

fn proxy(doc: &Doc<'_>, raw: &Option<RawProxy>) -> Result<ProxySetting, ConfigError> {
    let Some(p) = raw else {
        return Ok(ProxySetting::None);
    };
    inline_refused(
        doc,
        &p.password,
        "remote_service.proxy.password",
        "password_file",
    )?;
    let manual_only = [
        (&p.host, "host"),
        (&p.user, "user"),
        (&p.password_file, "password_file"),
        (&p.domain, "domain"),
    ];
    match p.mode.get_ref().as_str() {
        m @ ("none" | "auto") => {
            for (v, k) in manual_only {
                if let Some(v) = v {
                    return Err(doc.invalid(
                        &v.span(),
                        &format!("remote_service.proxy.{k}"),
                        format!("only used with mode = \"manual\", not {m:?}"),
                    ));
                }
            }
            if let Some(v) = &p.no_proxy {
                return Err(doc.invalid(
                    &v.span(),
                    "remote_service.proxy.no_proxy",
                    format!(
                        "only used with mode = \"manual\", not {m:?} (auto follows the environment's no_proxy)"
                    ),
                ));
            }
            Ok(if m == "none" {
                ProxySetting::None
            } else {
                ProxySetting::Auto
            })
        }
        "manual" => {
            let host = match &p.host {
                Some(h) => name(doc, h, "remote_service.proxy.host")?,
                None => {
                    return Err(doc.invalid(
                        &p.mode.span(),
                        "remote_service.proxy.host",
                        "a manual proxy needs host and port, e.g. host = \"proxy.example\", port = 3128",
                    ));
                }
            };
            let port = match &p.port {
                Some(v) if (1..=65535).contains(v.get_ref()) => *v.get_ref() as u16,
                Some(v) => {
                    return Err(doc.invalid(
                        &v.span(),
                        "remote_service.proxy.port",
                        format!("a port is 1 to 65535, got {}", v.get_ref()),
                    ));
                }
                None => {
                    return Err(doc.invalid(
                        &p.mode.span(),
                        "remote_service.proxy.port",
                        "a manual proxy needs a port, e.g. port = 3128",
                    ));
                }
            };
            let auth = match (&p.user, &p.password_file) {
                (None, None) => {
                    if let Some(d) = &p.domain {
                        return Err(doc.invalid(
                            &d.span(),
                            "remote_service.proxy.domain",
                            "a domain needs user and password_file too",
                        ));
                    }
                    None
                }
                (Some(u), Some(f)) => Some(ProxyAuth {
                    user: name(doc, u, "remote_service.proxy.user")?,
                    password: read_secret(doc, f, "remote_service.proxy.password_file")?,
                    domain: p
                        .domain
                        .as_ref()
                        .map(|d| name(doc, d, "remote_service.proxy.domain"))
                        .transpose()?,
                }),
                (Some(s), None) | (None, Some(s)) => {
                    return Err(doc.invalid(
                        &s.span(),
                        "remote_service.proxy.user/password_file",
                        "proxy authentication needs both user and password_file",
                    ));
                }
            };
            Ok(ProxySetting::Manual(ManualProxy {
                host,
                port,
                auth,
                no_proxy: no_proxy(doc, &p.no_proxy)?,
            }))
        }
        other => Err(doc.invalid(
            &p.mode.span(),
            "remote_service.proxy.mode",
            format!("{other:?} is not a proxy mode; use \"none\", \"auto\" or \"manual\""),
        )),
    }
}

fn required<'r>(
    doc: &Doc<'_>,
    enabled: &Spanned<bool>,
    v: &'r Option<Spanned<String>>,
    key: &str,
) -> Result<&'r Spanned<String>, ConfigError> {
    v.as_ref()
        .ok_or_else(|| doc.invalid(&enabled.span(), key, "is required in [remote_service]"))
}

/// Validates `[remote_service]` (called from `AgentConfig::parse`).
pub(super) fn validate(
    doc: &Doc<'_>,
    raw: &RawRemoteService,
) -> Result<RemoteServiceConfig, ConfigError> {
    inline_refused(
        doc,
        &raw.verification_code,
        "remote_service.verification_code",
        "verification_code_file",
    )?;
    let en = &raw.enabled;
    let url = required(doc, en, &raw.back_office, "remote_service.back_office")?;
    let back_office = url.get_ref().trim_end_matches('/').to_string();
    if split_https_url(&back_office).is_none() {
        return Err(doc.invalid(
            &url.span(),
            "remote_service.back_office",
            format!(
                "must be an https:// URL of the broker's HTTPS listener, e.g. \"https://support.example.com:7444\", got {:?}",
                url.get_ref()
            ),
        ));
    }
    let org = required(
        doc,
        en,
        &raw.organisation_id,
        "remote_service.organisation_id",
    )?;
    let code_file = required(
        doc,
        en,
        &raw.verification_code_file,
        "remote_service.verification_code_file",
    )?;
    let license_file = required(doc, en, &raw.license_file, "remote_service.license_file")?;
    let mode = match raw.license_mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "local")) => LicenseMode::Local {
            reload_command: match &raw.reload_command {
                Some(c) if c.get_ref().is_empty() || c.get_ref()[0].trim().is_empty() => {
                    return Err(doc.invalid(
                        &c.span(),
                        "remote_service.reload_command",
                        "a program and its arguments, e.g. [\"systemctl\", \"reload\", \"flexlm\"]",
                    ));
                }
                Some(c) => Some(c.get_ref().clone()),
                None => None,
            },
        },
        Some((m, other)) => {
            if let Some(c) = &raw.reload_command {
                return Err(doc.invalid(
                    &c.span(),
                    "remote_service.reload_command",
                    "only used with license_mode = \"local\"",
                ));
            }
            match other {
                "remote" => LicenseMode::Remote,
                "manual" => LicenseMode::Manual,
                _ => {
                    return Err(doc.invalid(
                        &m.span(),
                        "remote_service.license_mode",
                        format!("{other:?} is not a mode; use \"local\", \"remote\" or \"manual\""),
                    ));
                }
            }
        }
    };
    if raw.vendor_keys.is_empty() {
        return Err(doc.invalid(
            &en.span(),
            "remote_service.vendor_keys",
            "list at least one vendor key (\"ed25519:…\") whose licenses are accepted",
        ));
    }
    let license_file = doc.path(license_file);
    let download_folder = match &raw.download_folder {
        Some(d) => doc.path(d),
        None => license_file
            .parent()
            .unwrap_or(Path::new("."))
            .join("downloads"),
    };
    Ok(RemoteServiceConfig {
        enabled: *en.get_ref(),
        back_office,
        organisation_id: name(doc, org, "remote_service.organisation_id")?,
        verification_code: read_secret(doc, code_file, "remote_service.verification_code_file")?,
        vendor_keys: keys(doc, &raw.vendor_keys, "remote_service.vendor_keys")?,
        check_interval: Duration::from_secs(doc.bounded(
            &raw.check_interval_secs,
            "remote_service.check_interval_secs",
            DEFAULT_CHECK_INTERVAL_SECS,
            MAX_CHECK_INTERVAL_SECS,
            " seconds",
        )?),
        license_file,
        mode,
        download_folder,
        proxy: proxy(doc, &raw.proxy)?,
        service_account: raw
            .service_account
            .as_ref()
            .map(|a| account(doc, a))
            .transpose()?,
    })
}

/// A user name the service may run as: a POSIX login name (optionally
/// `DOMAIN\name`).
fn account(doc: &Doc<'_>, v: &Spanned<String>) -> Result<String, ConfigError> {
    let s = v.get_ref();
    let user = s.rsplit_once('\\').map_or(s.as_str(), |(_, u)| u);
    let ok = !user.is_empty()
        && s.len() <= MAX_NAME_CHARS
        && !user.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-\\$".contains(c));
    if !ok {
        return Err(doc.invalid(
            &v.span(),
            "remote_service.service_account",
            format!("{s:?} is not an account name; use a login name such as \"lifeline\" or \"CORP\\\\svc-lifeline\""),
        ));
    }
    Ok(s.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;
    use lifeline_core::secrets;
    use std::os::unix::fs::PermissionsExt;

    const KEY: &str = "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn agent(dir: &Path, extra: &str) -> Result<AgentConfig, ConfigError> {
        let code = dir.join("code.secret");
        secrets::write_private(&code, b"s3cret-code\n").unwrap();
        let text = format!(
            "[agent]\ndata_dir = \"d\"\n[connection]\nbroker = \"127.0.0.1:1\"\n[remote_service]\nenabled = true\nback_office = \"https://127.0.0.1:7444\"\norganisation_id = \"ORG-1\"\nverification_code_file = \"code.secret\"\nvendor_keys = [\"{KEY}\"]\nlicense_file = \"lic/license.toml\"\n{extra}"
        );
        AgentConfig::parse(&dir.join("agent.toml"), &text)
    }

    #[test]
    fn remote_service_defaults_and_secret_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let c = agent(dir.path(), "").unwrap();
        let rs = c.remote_service.unwrap();
        assert_eq!(rs.verification_code.expose(), "s3cret-code");
        assert_eq!(rs.check_interval, Duration::from_secs(86400));
        assert_eq!(
            rs.mode,
            LicenseMode::Local {
                reload_command: None
            }
        );
        assert_eq!(rs.download_folder, dir.path().join("lic/downloads"));
        assert!(!format!("{rs:?}").contains("s3cret"));
        assert_eq!(
            split_https_url(&rs.back_office),
            Some(("127.0.0.1".into(), 7444))
        );
    }

    #[test]
    fn inline_secret_bad_mode_and_open_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = agent(dir.path(), "verification_code = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("agent.toml:12: `remote_service.verification_code`"),
            "{err}"
        );
        assert!(err.contains("chmod 600"), "{err}");
        let err = agent(dir.path(), "license_mode = \"cloud\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`remote_service.license_mode`") && err.contains("\"manual\""),
            "{err}"
        );
        let err = agent(
            dir.path(),
            "[remote_service.proxy]\nmode = \"manual\"\nhost = \"p\"\nport = 0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`remote_service.proxy.port`"), "{err}");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = agent(
            dir.path(),
            "[remote_service.proxy]\nmode = \"manual\"\nhost = \"p\"\nport = 3128\nuser = \"u\"\npassword_file = \"pw\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("readable by others"), "{err}");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = agent(
            dir.path(),
            "service_account = \"svc-lifeline\"\n[remote_service.proxy]\nmode = \"manual\"\nhost = \"p\"\nport = 3128\nuser = \"u\"\npassword_file = \"pw\"\ndomain = \"CORP\"\n",
        )
        .unwrap();
        let rs = c.remote_service.unwrap();
        assert_eq!(rs.service_account.as_deref(), Some("svc-lifeline"));
        let p = rs.session_proxy().unwrap();
        assert_eq!(p.auth.as_ref().unwrap().password.expose(), "hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(p.no_proxy.is_empty());
        // Plugins' HTTP follows the same proxy unless [plugins] names one.
        let mut pc = crate::config::PluginsConfig {
            dirs: vec![],
            trusted_keys: vec![],
            allow_unsigned: false,
            hot_reload: false,
            http_proxy: None,
            folders: Default::default(),
            settings: Default::default(),
            commands: Default::default(),
        };
        rs.plugin_resources(&mut pc);
        assert_eq!(pc.http_proxy, Some(rs.proxy.clone()));
        let manual = "[remote_service.proxy]\nmode = \"manual\"\nhost = \"p\"\nport = 3128\n";
        let c = agent(
            dir.path(),
            &format!("{manual}no_proxy = [\"corp.example\", \"10.0.0.0/8\", \"::1\"]\n"),
        )
        .unwrap();
        let p = c.remote_service.unwrap().session_proxy().unwrap().clone();
        assert_eq!(p.no_proxy, ["corp.example", "10.0.0.0/8", "::1"]);
        for (extra, says) in [
            (
                format!("{manual}no_proxy = [\"a.example, b.example\"]\n"),
                "is not a destination",
            ),
            (
                "[remote_service.proxy]\nmode = \"auto\"\nno_proxy = [\"a\"]\n".into(),
                "auto follows the environment's no_proxy",
            ),
        ] {
            let err = agent(dir.path(), &extra).unwrap_err().to_string();
            assert!(
                err.contains("`remote_service.proxy.no_proxy`") && err.contains(says),
                "{err}"
            );
        }
        let err = agent(dir.path(), "service_account = \"-rf\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`remote_service.service_account`"), "{err}");
    }
}
