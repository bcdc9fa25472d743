//! `[plugins.settings.<id>]` and `[plugins.commands]` in the agent's config:
//! settings the admin gives one plugin (`settings.read`), and commands the
//! admin lets plugins run by name (`command.admin`), e.g. reloading a
//! license server. A plugin chooses neither the program nor its arguments.
//!
//! ```toml
//! [plugins.settings.collect-logs]
//! upload-to = "https://support.example.com/upload"
//!
//! [plugins.commands]
//! reload-app = ["/usr/bin/systemctl", "reload", "myapp"]
//! ```

use std::collections::BTreeMap;

use toml::Spanned;

use super::{ConfigError, Doc};
use lifeline_core::config::valid_folder_name as valid_name;

/// Most settings one plugin may have.
pub const MAX_SETTINGS: usize = 64;
/// Longest setting value.
pub const MAX_SETTING_CHARS: usize = 4096;
/// Most words of one admin command.
pub const MAX_COMMAND_WORDS: usize = 64;

/// The raw `[plugins.settings]`: plugin id → name → value.
pub(super) type RawSettings =
    BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<toml::Value>>>;
/// The raw `[plugins.commands]`: name → argv.
pub(super) type RawCommands = BTreeMap<Spanned<String>, Spanned<Vec<String>>>;

/// A setting's value as text: strings as they are, numbers and booleans
/// written out; anything else is refused.
fn text(doc: &Doc<'_>, key: &str, v: &Spanned<toml::Value>) -> Result<String, ConfigError> {
    let t = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => {
            return Err(doc.invalid(
                &v.span(),
                key,
                "a setting is a string, a number or true/false",
            ));
        }
    };
    if t.chars().count() > MAX_SETTING_CHARS {
        return Err(doc.invalid(
            &v.span(),
            key,
            format!("at most {MAX_SETTING_CHARS} characters"),
        ));
    }
    Ok(t)
}

pub(super) fn validate_settings(
    doc: &Doc<'_>,
    raw: &RawSettings,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (plugin, table) in raw {
        if table.len() > MAX_SETTINGS {
            return Err(doc.invalid(
                &plugin.span(),
                "plugins.settings",
                format!("at most {MAX_SETTINGS} settings per plugin"),
            ));
        }
        let mut settings = BTreeMap::new();
        for (name, v) in table {
            let key = format!("plugins.settings.{}.{}", plugin.get_ref(), name.get_ref());
            if !valid_name(name.get_ref()) {
                return Err(doc.invalid(&name.span(), &key, "a setting name is a-z, 0-9 and -"));
            }
            settings.insert(name.get_ref().clone(), text(doc, &key, v)?);
        }
        out.insert(plugin.get_ref().clone(), settings);
    }
    Ok(out)
}

pub(super) fn validate_commands(
    doc: &Doc<'_>,
    raw: &RawCommands,
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, argv) in raw {
        let key = format!("plugins.commands.{}", name.get_ref());
        if !valid_name(name.get_ref()) {
            return Err(doc.invalid(&name.span(), &key, "a command name is a-z, 0-9 and -"));
        }
        let words = argv.get_ref();
        if words.is_empty() || words.len() > MAX_COMMAND_WORDS || words[0].trim().is_empty() {
            return Err(doc.invalid(
                &argv.span(),
                &key,
                format!(
                    "a program and its arguments, 1 to {MAX_COMMAND_WORDS} words, e.g. [\"/usr/bin/systemctl\", \"reload\", \"myapp\"]"
                ),
            ));
        }
        out.insert(name.get_ref().clone(), words.clone());
    }
    Ok(out)
}
