//! One loaded plugin, whichever engine runs it, and how a call can fail.

use std::sync::Arc;

use crate::capability::Capability;
use crate::host::CallContext;
use crate::lua::LuaPlugin;
use crate::manifest::{Manifest, Runtime};
use crate::wasm::{WasmEngine, WasmPlugin};
use crate::wit::Arg;

/// Why a plugin call did not return a result. Each ends only that call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("plugin {0:?} is not installed")]
    NoSuchPlugin(String),
    #[error("plugin {plugin} has no command {command:?}; it has: {known}")]
    NoSuchCommand {
        plugin: String,
        command: String,
        known: String,
    },
    /// The plugin returned an error of its own.
    #[error("the plugin reported an error: {0}")]
    Plugin(String),
    /// The plugin trapped or panicked.
    #[error("the plugin crashed: {0}")]
    Crashed(String),
    /// Time, memory or output limit.
    #[error("the plugin was stopped: {0}")]
    Limit(String),
    /// The plugin is being restarted after repeated crashes.
    #[error("the plugin is restarting after repeated crashes; try again in {0} ms")]
    Restarting(u64),
    #[error("cannot load the plugin: {0}")]
    Load(String),
}

/// The code of a plugin, ready to be called.
pub enum Code {
    Wasm(WasmPlugin),
    Lua(LuaPlugin),
}

/// A manifest with its loaded code.
pub struct Loaded {
    pub manifest: Arc<Manifest>,
    pub code: Code,
}

impl Loaded {
    /// Loads the entry file named by the manifest from `bytes`, its content
    /// as read (and, for a signed plugin, verified) once: the disk is not
    /// read again.
    pub fn load(
        manifest: Manifest,
        bytes: Vec<u8>,
        wasm: &WasmEngine,
    ) -> Result<Loaded, CallError> {
        let code = match manifest.runtime {
            Runtime::Wasm => Code::Wasm(wasm.load(&bytes, &manifest).map_err(CallError::Load)?),
            Runtime::Lua => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    CallError::Load(format!("{} is not UTF-8 text", manifest.entry.display()))
                })?;
                Code::Lua(
                    LuaPlugin::load(&manifest.id, &text, manifest.limits.memory_bytes)
                        .map_err(CallError::Load)?,
                )
            }
        };
        let loaded = Loaded {
            manifest: Arc::new(manifest),
            code,
        };
        let declared = loaded.manifest.grants(Capability::SessionEvents);
        match (declared, loaded.is_service()) {
            (true, false) => Err(CallError::Load(format!(
                "{} declares session.events but handles no events: export the service world (start, on-event, stop) or, in Lua, define on_event",
                loaded.manifest.entry.display()
            ))),
            (false, true) => Err(CallError::Load(format!(
                "{} handles session events but plugin.toml does not declare the capability session.events",
                loaded.manifest.entry.display()
            ))),
            _ => Ok(loaded),
        }
    }

    /// True for a long-lived plugin (it handles session events).
    pub fn is_service(&self) -> bool {
        match &self.code {
            Code::Wasm(w) => w.service,
            Code::Lua(l) => l.service,
        }
    }

    /// Runs one command. Blocking: call from a blocking thread.
    pub fn call(
        &self,
        ctx: CallContext,
        command: &str,
        args: &[Arg],
    ) -> (CallContext, Result<String, CallError>) {
        if self.manifest.command(command).is_none() {
            let known = self
                .manifest
                .commands
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let err = CallError::NoSuchCommand {
                plugin: self.manifest.id.clone(),
                command: command.into(),
                known,
            };
            return (ctx, Err(err));
        }
        match &self.code {
            Code::Wasm(w) => w.run(ctx, command, args),
            Code::Lua(l) => l.run(ctx, command, args),
        }
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Arg {
        Arg::Text(s.to_string())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Arg {
        Arg::Text(s)
    }
}
