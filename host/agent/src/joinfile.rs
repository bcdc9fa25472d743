//! Joining with a join file (`lifeline agent join FILE`): the file says
//! where the broker is, pins its certificate and carries the invitation
//! (`lifeline_core::join_file`). With no agent.toml the agent runs on
//! built-in defaults ([`default_config`]); with one, the file's broker and
//! pin replace its `[connection]` ([`apply`]).
//!
//! Before any join message, [`check`] refuses an expired file, connects to
//! the file's broker requiring the pinned certificate, and verifies the
//! file's signature with that certificate's key.

use std::path::{Path, PathBuf};

use lifeline_core::client::Endpoint;
use lifeline_core::config::ConfigError;
use lifeline_core::join_file::{JoinFields, SignedJoinFile};
use lifeline_core::tls::Trust;

use crate::AgentError;
use crate::config::AgentConfig;

/// The data folder under the user's data directory
/// (`$XDG_DATA_HOME/lifeline/agent`, else `~/.local/share/lifeline/agent`).
pub const DATA_SUBDIR: &str = "lifeline/agent";
/// The plugin folder next to the `lifeline` program, used when present.
pub const PLUGINS_NEXT_TO_BINARY: &str = "plugins";
/// In that folder: the publisher keys (`ed25519:…`, one a line) whose
/// signed plugins load; without it no plugin loads.
pub const TRUSTED_KEYS_FILE: &str = "trusted-keys.txt";

/// The agent's data folder when no configuration names one.
pub fn default_data_dir() -> Result<PathBuf, ConfigError> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/share"))
        })
        .ok_or_else(|| ConfigError::Read {
            file: PathBuf::from("$HOME"),
            reason: "neither XDG_DATA_HOME nor HOME is set: give --config FILE".into(),
        })?;
    Ok(base.join(DATA_SUBDIR))
}

/// The plugin folder next to the program, when it exists.
pub fn default_plugin_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.join(PLUGINS_NEXT_TO_BINARY);
    dir.is_dir().then_some(dir)
}

/// The configuration of an agent started with only a join file: the
/// file's broker and pin, the default data folder, signed plugins from
/// [`default_plugin_dir`], consent asked of the customer, no policy.
pub fn default_config(fields: &JoinFields) -> Result<AgentConfig, ConfigError> {
    let data_dir = default_data_dir()?;
    let mut doc = toml::Table::new();
    let mut agent = toml::Table::new();
    agent.insert("data_dir".into(), path_value(&data_dir));
    doc.insert("agent".into(), agent.into());
    let mut conn = toml::Table::new();
    conn.insert("broker".into(), fields.broker.clone().into());
    conn.insert("server_name".into(), fields.server_name.clone().into());
    conn.insert("fingerprint".into(), fields.fingerprint.to_string().into());
    doc.insert("connection".into(), conn.into());
    if let Some(dir) = default_plugin_dir() {
        let keys: Vec<toml::Value> = std::fs::read_to_string(dir.join(TRUSTED_KEYS_FILE))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("ed25519:"))
            .map(|l| l.to_string().into())
            .collect();
        let mut plugins = toml::Table::new();
        plugins.insert("dirs".into(), toml::Value::Array(vec![path_value(&dir)]));
        plugins.insert("trusted_keys".into(), toml::Value::Array(keys));
        plugins.insert("hot_reload".into(), false.into());
        doc.insert("plugins".into(), plugins.into());
    }
    let text = toml::to_string(&doc).expect("a table of strings serialises");
    AgentConfig::parse(Path::new("(built-in agent defaults)"), &text)
}

fn path_value(p: &Path) -> toml::Value {
    p.to_string_lossy().into_owned().into()
}

/// An agent.toml given with a join file: the file's broker and pin
/// replace the `[connection]` (the heartbeat stays).
pub fn apply(cfg: &mut AgentConfig, fields: &JoinFields) {
    cfg.endpoint = Endpoint {
        address: fields.broker.clone(),
        server_name: fields.server_name.clone(),
        trust: Trust::Pinned(fields.fingerprint),
        heartbeat: cfg.endpoint.heartbeat,
    };
}

/// Refuses an expired file; connects to the file's broker (no Lifeline
/// message is sent) and requires the pinned certificate and the file's
/// signature by its key.
pub async fn check(cfg: &AgentConfig, file: &SignedJoinFile) -> Result<(), AgentError> {
    file.check_expiry(lifeline_core::time::now_millis())?;
    let proxy = cfg.remote_service.as_ref().and_then(|r| r.session_proxy());
    let presented = lifeline_core::probe::presented_certificate(
        &file.fields.broker,
        &file.fields.server_name,
        proxy,
    )
    .await?;
    file.verify(&presented.certificate)?;
    Ok(())
}
