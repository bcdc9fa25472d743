//! `plugin.toml`: what a plugin is, what it may do and what an operator can
//! ask of it. Parsed raw (unknown keys refused) → validated, with errors
//! naming the file, the line and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeline_core::config::{ConfigError, Doc, read};
use serde::Deserialize;
use toml::Spanned;

use crate::capability::Capability;

/// File name of a plugin's manifest inside its folder.
pub const MANIFEST_FILE: &str = "plugin.toml";
/// Default memory limit of one plugin instance.
pub const DEFAULT_MEMORY_MB: u64 = 32;
/// Largest memory limit a manifest may ask for.
pub const MAX_MEMORY_MB: u64 = 1024;
/// Default time limit of one call.
pub const DEFAULT_TIME_PER_CALL_MS: u64 = 5_000;
/// Largest time limit a manifest may ask for (10 minutes).
pub const MAX_TIME_PER_CALL_MS: u64 = 600_000;
/// Default cap on output one call may stream.
pub const DEFAULT_OUTPUT_KB: u64 = 1024;
/// Largest output cap a manifest may ask for.
pub const MAX_OUTPUT_KB: u64 = 64 * 1024;
/// Longest plugin id.
pub const MAX_ID_CHARS: usize = 64;

/// Which engine runs the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Wasm,
    Lua,
}

/// One argument of an operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandArg {
    pub name: String,
    pub description: String,
    pub required: bool,
}

/// A command the operator can invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub description: String,
    pub args: Vec<CommandArg>,
    /// Run only by the host for a request the customer consented to as a
    /// whole (a script batch whose names and hashes they saw), never by an
    /// operator's `RunPlugin`. Manifest key `host_only = true`.
    ///
    /// Threat: an operator calling the command directly would run content
    /// the customer never saw, past the checks of the host's path.
    pub host_only: bool,
    /// Runs in the session's instance of this long-lived plugin (after the
    /// events before it), so it can start what the instance carries on: a
    /// stream, timers. Manifest key `live = true`; needs `session.events`.
    pub live: bool,
}

/// Per-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    pub time_per_call: Duration,
    pub output_bytes: u64,
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    pub runtime: Runtime,
    /// The code file, resolved against the manifest's folder.
    pub entry: PathBuf,
    pub description: String,
    /// Declared capabilities with the consent text shown to the customer.
    pub capabilities: BTreeMap<Capability, String>,
    pub limits: Limits,
    pub commands: Vec<Command>,
    /// Hosts `http.request` may reach (exact host names).
    pub http_hosts: Vec<String>,
    /// Folders of the agent's `[plugins.folders]` that `fs.folder` may
    /// reach (by name; the admin decides what each name is).
    pub folders: Vec<String>,
    /// Endpoints the agent's admin names that `http.endpoint` may reach.
    pub endpoints: Vec<String>,
    /// Commands the agent's admin names that `command.admin` may run.
    pub admin_commands: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    plugin: RawPlugin,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    capabilities: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    commands: Vec<RawCommand>,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    folders: Option<RawFolders>,
    #[serde(default)]
    endpoints: Option<RawFolders>,
    #[serde(default)]
    admin_commands: Option<RawFolders>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    id: Spanned<String>,
    version: Spanned<String>,
    runtime: Spanned<String>,
    entry: Spanned<String>,
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mb: Option<Spanned<u64>>,
    time_per_call_ms: Option<Spanned<u64>>,
    output_kb: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    name: Spanned<String>,
    description: String,
    #[serde(default)]
    args: Vec<RawArg>,
    #[serde(default)]
    host_only: bool,
    #[serde(default)]
    live: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArg {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    allow_hosts: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFolders {
    allow: Vec<Spanned<String>>,
}

/// The names of an `allow` list of things the agent's admin names
/// (`[folders]`, `[endpoints]`, `[admin_commands]`); the list needs `cap`.
fn admin_names(
    doc: &lifeline_core::config::Doc<'_>,
    raw: Option<&RawFolders>,
    capabilities: &BTreeMap<Capability, String>,
    (table, cap): (&str, Capability),
) -> Result<Vec<String>, ConfigError> {
    let Some(f) = raw else {
        return Ok(Vec::new());
    };
    let key = format!("{table}.allow");
    if !capabilities.contains_key(&cap) {
        let span = f.allow.first().map(|s| s.span()).unwrap_or(0..0);
        return Err(doc.invalid(
            &span,
            &key,
            format!("declare the \"{cap}\" capability to use [{table}]"),
        ));
    }
    let mut out = Vec::new();
    for name in &f.allow {
        if !lifeline_core::config::valid_folder_name(name.get_ref()) {
            return Err(doc.invalid(
                &name.span(),
                &key,
                format!("{:?} is not a name: a-z, 0-9 and -", name.get_ref()),
            ));
        }
        out.push(name.get_ref().clone());
    }
    Ok(out)
}

/// True for ids like `sysinfo` or `script-library`.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_CHARS
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn limit(
    doc: &Doc<'_>,
    v: &Option<Spanned<u64>>,
    key: &str,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    doc.bounded(v, key, default, max, "")
}

impl Manifest {
    /// Reads `DIR/plugin.toml`.
    pub fn load_dir(dir: &Path) -> Result<Self, ConfigError> {
        let file = dir.join(MANIFEST_FILE);
        let text = read(&file)?;
        Self::parse(&file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let doc = Doc::new(file, text);
        let raw: RawManifest = doc.parse()?;
        let p = &raw.plugin;
        if !is_identifier(p.id.get_ref()) {
            return Err(doc.invalid(
                &p.id.span(),
                "plugin.id",
                format!("{:?} is not a plugin id: lower-case letters, digits, '-' or '_', starting with a letter, at most {MAX_ID_CHARS}", p.id.get_ref()),
            ));
        }
        let v = p.version.get_ref();
        if v.split('.').count() != 3
            || !v
                .split('.')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(doc.invalid(
                &p.version.span(),
                "plugin.version",
                format!("{v:?} is not a version like \"1.2.3\""),
            ));
        }
        let runtime = match p.runtime.get_ref().as_str() {
            "wasm" => Runtime::Wasm,
            "lua" => Runtime::Lua,
            other => {
                return Err(doc.invalid(
                    &p.runtime.span(),
                    "plugin.runtime",
                    format!("{other:?} is not a runtime; use \"wasm\" or \"lua\""),
                ));
            }
        };
        let entry_raw = Path::new(p.entry.get_ref());
        if entry_raw.is_absolute()
            || entry_raw
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(doc.invalid(
                &p.entry.span(),
                "plugin.entry",
                "must be a file inside the plugin's folder (no absolute path, no \"..\")",
            ));
        }
        let mut capabilities = BTreeMap::new();
        for (name, text) in &raw.capabilities {
            let key = format!("capabilities.{name}");
            let cap = Capability::parse(name)
                .filter(|c| c.declarable())
                .ok_or_else(|| {
                    let known: Vec<_> = crate::capability::ALL
                        .iter()
                        .filter(|c| c.declarable())
                        .map(|c| c.name())
                        .collect();
                    doc.invalid(
                        &text.span(),
                        &key,
                        format!(
                            "{name:?} is not a capability a plugin can declare; known: {}",
                            known.join(", ")
                        ),
                    )
                })?;
            if cap.needs_consent() && text.get_ref().trim().is_empty() {
                return Err(doc.invalid(
                    &text.span(),
                    &key,
                    "give the consent text the customer will read",
                ));
            }
            capabilities.insert(cap, text.get_ref().trim().to_string());
        }
        let mut names = std::collections::BTreeSet::new();
        let mut commands = Vec::new();
        for c in &raw.commands {
            if !is_identifier(c.name.get_ref()) {
                return Err(doc.invalid(
                    &c.name.span(),
                    "commands.name",
                    format!(
                        "{:?} is not a command name (lower-case, digits, '-', '_')",
                        c.name.get_ref()
                    ),
                ));
            }
            if c.live && !capabilities.contains_key(&Capability::SessionEvents) {
                return Err(doc.invalid(
                    &c.name.span(),
                    "commands.live",
                    format!(
                        "command {:?} is live, which needs a long-lived plugin: declare \"session.events\"",
                        c.name.get_ref()
                    ),
                ));
            }
            if !names.insert(c.name.get_ref().clone()) {
                return Err(doc.invalid(
                    &c.name.span(),
                    "commands.name",
                    format!("command {:?} is declared twice", c.name.get_ref()),
                ));
            }
            commands.push(Command {
                name: c.name.get_ref().clone(),
                description: c.description.clone(),
                args: c
                    .args
                    .iter()
                    .map(|a| CommandArg {
                        name: a.name.clone(),
                        description: a.description.clone(),
                        required: a.required,
                    })
                    .collect(),
                host_only: c.host_only,
                live: c.live,
            });
        }
        let mut http_hosts = Vec::new();
        if let Some(h) = &raw.http {
            if !capabilities.contains_key(&Capability::HttpRequest) {
                let span = h.allow_hosts.first().map(|s| s.span()).unwrap_or(0..0);
                return Err(doc.invalid(
                    &span,
                    "http.allow_hosts",
                    "declare the \"http.request\" capability to use [http]",
                ));
            }
            for host in &h.allow_hosts {
                let v = host.get_ref();
                if v.is_empty() || v.contains(['/', ':', ' ', '*']) {
                    return Err(doc.invalid(
                        &host.span(),
                        "http.allow_hosts",
                        format!("{v:?} is not a host name like \"licenses.example.com\""),
                    ));
                }
                http_hosts.push(v.to_ascii_lowercase());
            }
        }
        let folders = admin_names(
            &doc,
            raw.folders.as_ref(),
            &capabilities,
            ("folders", Capability::FsFolder),
        )?;
        let endpoints = admin_names(
            &doc,
            raw.endpoints.as_ref(),
            &capabilities,
            ("endpoints", Capability::HttpEndpoint),
        )?;
        let admin_commands = admin_names(
            &doc,
            raw.admin_commands.as_ref(),
            &capabilities,
            ("admin_commands", Capability::CommandAdmin),
        )?;
        let l = raw.limits.as_ref();
        let none = None;
        let limits = Limits {
            memory_bytes: limit(
                &doc,
                l.map_or(&none, |l| &l.memory_mb),
                "limits.memory_mb",
                DEFAULT_MEMORY_MB,
                MAX_MEMORY_MB,
            )? << 20,
            time_per_call: Duration::from_millis(limit(
                &doc,
                l.map_or(&none, |l| &l.time_per_call_ms),
                "limits.time_per_call_ms",
                DEFAULT_TIME_PER_CALL_MS,
                MAX_TIME_PER_CALL_MS,
            )?),
            output_bytes: limit(
                &doc,
                l.map_or(&none, |l| &l.output_kb),
                "limits.output_kb",
                DEFAULT_OUTPUT_KB,
                MAX_OUTPUT_KB,
            )? << 10,
        };
        Ok(Manifest {
            id: p.id.get_ref().clone(),
            version: v.clone(),
            runtime,
            entry: doc.path(&p.entry),
            description: p.description.clone(),
            capabilities,
            limits,
            commands,
            http_hosts,
            folders,
            endpoints,
            admin_commands,
        })
    }

    /// True when the manifest declares (or implicitly has) `cap`.
    pub fn grants(&self, cap: Capability) -> bool {
        cap.implicit() || self.capabilities.contains_key(&cap)
    }

    pub fn command(&self, name: &str) -> Option<&Command> {
        self.commands.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[plugin]
id = "sysinfo"
version = "0.1.0"
runtime = "wasm"
entry = "sysinfo.wasm"
description = "System information"

[limits]
memory_mb = 16

[capabilities]
"system.info" = "Read this computer's system information"

[[commands]]
name = "show"
description = "Show one category or all"
args = [{ name = "category", description = "os, cpu, …" }]
"#;

    #[test]
    fn good_manifest() {
        let m = Manifest::parse(Path::new("/p/sysinfo/plugin.toml"), GOOD).unwrap();
        assert_eq!(m.entry, Path::new("/p/sysinfo/sysinfo.wasm"));
        assert_eq!(m.limits.memory_bytes, 16 << 20);
        assert_eq!(
            m.limits.time_per_call,
            Duration::from_millis(DEFAULT_TIME_PER_CALL_MS)
        );
        assert!(m.grants(Capability::SystemInfo) && m.grants(Capability::Log));
        assert!(!m.grants(Capability::ProcessSpawn));
        assert_eq!(m.command("show").unwrap().args[0].name, "category");
    }

    #[test]
    fn bad_manifests_are_located() {
        for (from, to, want) in [
            (
                "runtime = \"wasm\"",
                "runtime = \"python\"",
                "plugin.toml:5: `plugin.runtime`",
            ),
            (
                "\"system.info\" =",
                "\"system.everything\" =",
                "\"system.everything\" is not a capability a plugin can declare; known: log,",
            ),
            (
                "\"system.info\" =",
                "\"script.run\" =",
                "\"script.run\" is not a capability a plugin can declare",
            ),
            ("memory_mb = 16", "memory_mb = 0", "`limits.memory_mb`"),
            (
                "entry = \"sysinfo.wasm\"",
                "entry = \"../x.wasm\"",
                "inside the plugin's folder",
            ),
            ("id = \"sysinfo\"", "id = \"Sys Info\"", "not a plugin id"),
            (
                "description = \"System information\"",
                "descripton = \"x\"",
                "unknown field `descripton`",
            ),
        ] {
            let text = GOOD.replace(from, to);
            let err = Manifest::parse(Path::new("plugin.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{want} in {err}");
        }
    }
}
