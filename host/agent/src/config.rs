//! The agent's configuration (`agent.toml`): TOML parsed into raw structs
//! (unknown keys refused), then validated into [`AgentConfig`]. Every error
//! names the file, the line and the key, and says what would be valid.
//!
//! The shared pieces — [`Doc`], [`ConfigError`], the `[connection]` table,
//! TLS trust, secrets and the policy — are in `lifeline_core::config`; the
//! agent's feature sections are here: `[plugins]` (with [`folders`] and
//! [`plugin_admin`]), [`machine`] (`[run_as]`, `[screen]`, `[power]`,
//! `[service]`) and [`remote_service`].
//!
//! Relative paths in a file are resolved against that file's folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeline_core::client::Endpoint;
use lifeline_core::config::{ConfigError, Doc, RawConnection, read};
use lifeline_core::consent::Policy;
use lifeline_core::proxy::ProxySetting;
use serde::Deserialize;
use toml::Spanned;

pub mod customer;
pub mod folders;
pub mod machine;
pub mod plugin_admin;
pub mod remote_service;

pub use folders::FolderConfig;

/// Default time the customer has to answer a consent prompt.
pub const DEFAULT_CONSENT_TIMEOUT_SECS: u64 = 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgentFile {
    agent: RawAgent,
    connection: RawConnection,
    plugins: Option<RawPlugins>,
    run_as: Option<machine::RawRunAs>,
    screen: Option<machine::RawScreen>,
    power: Option<machine::RawPower>,
    service: Option<machine::RawService>,
    customer: Option<customer::RawCustomer>,
    remote_service: Option<remote_service::RawRemoteService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    dirs: Vec<Spanned<String>>,
    #[serde(default)]
    trusted_keys: Vec<Spanned<String>>,
    #[serde(default)]
    allow_unsigned: bool,
    #[serde(default = "yes")]
    hot_reload: bool,
    http_proxy: Option<Spanned<String>>,
    #[serde(default)]
    folders: std::collections::BTreeMap<Spanned<String>, folders::RawFolder>,
    #[serde(default)]
    settings: plugin_admin::RawSettings,
    #[serde(default)]
    commands: plugin_admin::RawCommands,
}

fn yes() -> bool {
    true
}

/// The agent's plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    /// Folders holding one sub-folder per plugin.
    pub dirs: Vec<PathBuf>,
    /// Publisher keys (`ed25519:BASE64`) whose signed plugins load.
    pub trusted_keys: Vec<String>,
    /// Development switch: load unsigned plugins. Never in production.
    pub allow_unsigned: bool,
    /// Reload plugins when their files change.
    pub hot_reload: bool,
    /// Proxy for plugins' `http.request` (`http_proxy =
    /// "http://proxy.example:3128"`); `None`: the `[remote_service.proxy]`
    /// (added by `RemoteServiceConfig::plugin_resources`), else direct.
    pub http_proxy: Option<ProxySetting>,
    /// Folders plugins holding `fs.folder` may reach by name.
    pub folders: std::collections::BTreeMap<String, FolderConfig>,
    /// Settings per plugin id (`settings.read`).
    pub settings: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Commands plugins holding `command.admin` may run by name.
    pub commands: std::collections::BTreeMap<String, Vec<String>>,
}

fn validate_plugins(doc: &Doc<'_>, raw: &RawPlugins) -> Result<PluginsConfig, ConfigError> {
    use base64::Engine;
    let mut trusted_keys = Vec::new();
    for k in &raw.trusted_keys {
        let ok = k
            .get_ref()
            .strip_prefix("ed25519:")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|b| b.len() == 32);
        if !ok {
            return Err(doc.invalid(
                &k.span(),
                "plugins.trusted_keys",
                "a publisher key is \"ed25519:\" and 44 base64 characters, as printed by `lifeline plugin keygen`",
            ));
        }
        trusted_keys.push(k.get_ref().clone());
    }
    let http_proxy = match &raw.http_proxy {
        Some(p) => match lifeline_core::proxy::parse_proxy_url(p.get_ref()) {
            Some(m) if p.get_ref().starts_with("http://") => Some(ProxySetting::Manual(m)),
            _ => {
                return Err(doc.invalid(
                    &p.span(),
                    "plugins.http_proxy",
                    "an http:// proxy URL like \"http://proxy.example:3128\"",
                ));
            }
        },
        None => None,
    };
    Ok(PluginsConfig {
        dirs: raw.dirs.iter().map(|d| doc.path(d)).collect(),
        trusted_keys,
        allow_unsigned: raw.allow_unsigned,
        hot_reload: raw.hot_reload,
        http_proxy,
        folders: folders::validate(doc, &raw.folders)?,
        settings: plugin_admin::validate_settings(doc, &raw.settings)?,
        commands: plugin_admin::validate_commands(doc, &raw.commands)?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    data_dir: Spanned<String>,
    consent_timeout_secs: Option<Spanned<u64>>,
    policy: Option<Spanned<String>>,
    allow_remote_assistance: Option<bool>,
}

/// Validated agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub endpoint: Endpoint,
    /// Audit log and agent state.
    pub data_dir: PathBuf,
    /// Time the customer has to answer; no answer counts as deny.
    pub consent_timeout: Duration,
    /// Unattended policy; `None` means always ask the customer.
    pub policy: Option<Policy>,
    /// The admin's "Allow remote assistance" switch (default on); the
    /// customer may also turn it off (`crate::assistance`).
    pub allow_remote_assistance: bool,
    /// Feature plugins; `None`: the agent runs none.
    pub plugins: Option<PluginsConfig>,
    pub run_as: machine::RunAsConfig,
    /// The display shared with the operator (`screen.capture`).
    pub screen: machine::ScreenConfig,
    pub power: machine::PowerConfig,
    pub service: machine::ServiceConfig,
    /// License back office, proxy, service account; `None`: not configured.
    pub remote_service: Option<remote_service::RemoteServiceConfig>,
}

impl AgentConfig {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = read(file)?;
        Self::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let doc = Doc::new(file, text);
        let raw: RawAgentFile = doc.parse()?;
        let policy = match &raw.agent.policy {
            Some(p) => Some(Policy::load(&doc.path(p))?),
            None => None,
        };
        let remote_service = raw
            .remote_service
            .as_ref()
            .map(|r| remote_service::validate(&doc, r))
            .transpose()?;
        let plugins = raw
            .plugins
            .as_ref()
            .map(|p| validate_plugins(&doc, p))
            .transpose()?;
        Ok(AgentConfig {
            endpoint: raw.connection.validate(&doc)?,
            data_dir: doc.path(&raw.agent.data_dir),
            consent_timeout: doc.secs(
                &raw.agent.consent_timeout_secs,
                "agent.consent_timeout_secs",
                DEFAULT_CONSENT_TIMEOUT_SECS,
                3600,
            )?,
            policy,
            allow_remote_assistance: raw.agent.allow_remote_assistance.unwrap_or(true),
            plugins,
            run_as: machine::validate_run_as(&doc, raw.run_as.as_ref())?,
            screen: machine::validate_screen(&doc, raw.screen.as_ref())?,
            power: machine::validate_power(&doc, raw.power.as_ref())?,
            service: machine::validate_service(&doc, raw.service.as_ref(), raw.customer.as_ref())?,
            remote_service,
        })
    }
}
