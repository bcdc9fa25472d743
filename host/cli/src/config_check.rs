//! `lifeline config check`: validates any role's file, telling the role by
//! its top-level table. The roles' configs live with their crates (the
//! agent's in `lifeline_agent::config`, the others in `lifeline_core::config`).

use std::path::Path;

use lifeline_agent::config::AgentConfig;
use lifeline_core::config::{BrokerConfig, ConfigError, Doc, OperatorConfig, read};
use lifeline_core::consent::Policy;

/// Which role a config file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Broker,
    Agent,
    Operator,
    Policy,
}

/// Validates any role's file, telling the role by its top-level table
/// (`lifeline config check`).
pub fn check_file(file: &Path) -> Result<Role, ConfigError> {
    let text = read(file)?;
    let doc = Doc::new(file, &text);
    let table: toml::Table = doc.parse()?;
    let roles: Vec<Role> = [
        ("broker", Role::Broker),
        ("agent", Role::Agent),
        ("operator", Role::Operator),
        ("policy", Role::Policy),
    ]
    .into_iter()
    .filter(|(k, _)| table.contains_key(*k))
    .map(|(_, r)| r)
    .collect();
    match roles.as_slice() {
        [Role::Broker] => BrokerConfig::parse(file, &text).map(|_| Role::Broker),
        [Role::Agent] => AgentConfig::parse(file, &text).map(|_| Role::Agent),
        [Role::Operator] => OperatorConfig::load(file).map(|_| Role::Operator),
        [Role::Policy] => Policy::parse(file, &text).map(|_| Role::Policy),
        _ => Err(ConfigError::UnknownRole {
            file: file.to_owned(),
        }),
    }
}
