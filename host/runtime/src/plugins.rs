//! The set of plugins an agent has: loading (with signature checks), calls
//! with crash accounting and restart backoff, and reload beside the running
//! version (new calls go to the new version; calls in flight finish on the
//! old one, which they hold by `Arc`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;

use crate::bundle;
use crate::engine::{CallError, Loaded};
use crate::host::{CallContext, HostEnv, SessionPort};
use crate::kv::KvStore;
use crate::manifest::{MANIFEST_FILE, Manifest, Runtime};
use crate::wasm::WasmEngine;
use crate::wit::Arg;

/// The key of `entry` in a plugin's [`bundle::Files`]: its path relative to
/// `dir`, with `/` between folders.
fn entry_key(dir: &Path, entry: &Path) -> Option<String> {
    let rel = entry.strip_prefix(dir).ok()?;
    let parts: Option<Vec<&str>> = rel
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| match c {
            std::path::Component::Normal(n) => n.to_str(),
            _ => None,
        })
        .collect();
    Some(parts?.join("/"))
}

/// Consecutive crashes after which a plugin is paused and restarted.
pub const CRASHES_BEFORE_BACKOFF: u32 = 3;
/// First pause after repeated crashes; doubles each time, up to the max.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// How the agent runs its plugins.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Folders holding one sub-folder per plugin.
    pub plugin_dirs: Vec<PathBuf>,
    /// Plugin-private state (`state.kv`).
    pub state_dir: PathBuf,
    pub env: HostEnv,
    /// Publisher keys whose signatures are accepted.
    pub trusted_keys: Vec<VerifyingKey>,
    /// Development switch: load unsigned plugins (never for production).
    pub allow_unsigned: bool,
}

/// What an operator sees of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub id: String,
    pub version: String,
    pub runtime: Runtime,
    pub description: String,
    pub commands: Vec<crate::manifest::Command>,
    pub capabilities: Vec<String>,
}

struct Health {
    crashes: u32,
    backoff: Duration,
    paused_until: Option<Instant>,
}

struct Slot {
    dir: PathBuf,
    current: Arc<Loaded>,
    kv: Arc<KvStore>,
    health: Mutex<Health>,
}

pub struct PluginHost {
    cfg: RuntimeConfig,
    env: Arc<HostEnv>,
    wasm: WasmEngine,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
}

impl PluginHost {
    /// Starts the engines and removes temporary folders (and the process
    /// groups, see [`crate::cgroup::sweep_stale`], and the temporary files
    /// of [`crate::folder::sweep_stale`]) a crash left behind.
    pub fn new(cfg: RuntimeConfig) -> Result<Self, String> {
        crate::cgroup::sweep_stale();
        crate::folder::sweep_stale(&cfg.env.folders);
        if cfg.env.temp_root.exists() {
            let _ = std::fs::remove_dir_all(&cfg.env.temp_root);
        }
        let wasm = WasmEngine::new(&cfg.state_dir.join("wasm-cache"))?;
        Ok(PluginHost {
            env: Arc::new(cfg.env.clone()),
            cfg,
            wasm,
            slots: RwLock::new(BTreeMap::new()),
        })
    }

    /// Loads every plugin folder; returns the errors of those that failed.
    pub fn load_all(&self) -> Vec<(PathBuf, String)> {
        let mut errors = Vec::new();
        for root in &self.cfg.plugin_dirs {
            let Ok(entries) = std::fs::read_dir(root) else {
                errors.push((root.clone(), "cannot read the plugin folder".into()));
                continue;
            };
            let mut dirs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join(MANIFEST_FILE).is_file())
                .collect();
            dirs.sort();
            for d in dirs {
                if let Err(e) = self.load_dir(&d) {
                    errors.push((d, e));
                }
            }
        }
        errors
    }

    /// Reads the plugin once into memory, checks the signature of exactly
    /// those bytes (unless unsigned plugins are allowed), then parses the
    /// manifest and loads the code from them. Nothing changes on error.
    pub fn prepare(&self, dir: &Path) -> Result<Loaded, String> {
        let (manifest, code) = self.read_plugin(dir)?;
        Loaded::load(manifest, code, &self.wasm).map_err(|e| e.to_string())
    }

    /// The manifest and the entry file's bytes of the plugin in `dir`, read
    /// once (and verified when signatures are required).
    fn read_plugin(&self, dir: &Path) -> Result<(Manifest, Vec<u8>), String> {
        let manifest_file = dir.join(MANIFEST_FILE);
        let mut files = if self.cfg.allow_unsigned {
            // Development: the folder may hold sources and builds; read
            // just the manifest here and the entry file below.
            let text = std::fs::read(&manifest_file)
                .map_err(|e| format!("cannot read {}: {e}", manifest_file.display()))?;
            bundle::Files::from([(MANIFEST_FILE.to_string(), text)])
        } else {
            let files = bundle::read_dir_files(dir).map_err(|e| e.to_string())?;
            bundle::verify(&files, dir, &self.cfg.trusted_keys).map_err(|e| e.to_string())?;
            files
        };
        let manifest = {
            let text = files
                .get(MANIFEST_FILE)
                .ok_or_else(|| format!("{}: no such file", manifest_file.display()))?;
            Manifest::parse(&manifest_file, &String::from_utf8_lossy(text))
                .map_err(|e| e.to_string())?
        };
        let entry = &manifest.entry;
        let key = entry_key(dir, entry)
            .ok_or_else(|| format!("{}: not inside {}", entry.display(), dir.display()))?;
        let code = match files.remove(&key) {
            Some(code) => code,
            None if self.cfg.allow_unsigned => {
                std::fs::read(entry).map_err(|e| format!("cannot read {}: {e}", entry.display()))?
            }
            None => {
                return Err(format!(
                    "{}: no such file in the signed plugin",
                    entry.display()
                ));
            }
        };
        Ok((manifest, code))
    }

    /// Loads (or reloads) the plugin in `dir`; on error the running version
    /// stays. Returns the id and version now live.
    pub fn load_dir(&self, dir: &Path) -> Result<(String, String), String> {
        let loaded = self.prepare(dir)?;
        let id = loaded.manifest.id.clone();
        let version = loaded.manifest.version.clone();
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = slots.get(&id).filter(|s| s.dir != dir) {
            return Err(format!(
                "plugin id {id:?} is already used by {}",
                other.dir.display()
            ));
        }
        let kv = slots
            .get(&id)
            .map(|s| Arc::clone(&s.kv))
            .unwrap_or_else(|| {
                Arc::new(KvStore::new(
                    self.cfg.state_dir.join("kv").join(format!("{id}.json")),
                ))
            });
        slots.insert(
            id.clone(),
            Arc::new(Slot {
                dir: dir.to_owned(),
                current: Arc::new(loaded),
                kv,
                health: Mutex::new(Health {
                    crashes: 0,
                    backoff: BACKOFF_START,
                    paused_until: None,
                }),
            }),
        );
        Ok((id, version))
    }

    /// Unloads the plugin loaded from `dir` (its folder was deleted): its
    /// commands are gone, calls in flight finish, a long-lived instance
    /// stops at its next safe point. Returns its id, if one was loaded.
    pub fn unload_dir(&self, dir: &Path) -> Option<String> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let id = slots.iter().find(|(_, s)| s.dir == dir)?.0.clone();
        slots.remove(&id);
        Some(id)
    }

    /// The plugin loaded from `dir`, if any.
    pub fn id_of_dir(&self, dir: &Path) -> Option<String> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|s| s.dir == dir)
            .map(|s| s.current.manifest.id.clone())
    }

    pub fn list(&self) -> Vec<PluginInfo> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|s| {
                let m = &s.current.manifest;
                PluginInfo {
                    id: m.id.clone(),
                    version: m.version.clone(),
                    runtime: m.runtime,
                    description: m.description.clone(),
                    commands: m.commands.clone(),
                    capabilities: m
                        .capabilities
                        .keys()
                        .map(|c| c.name().to_string())
                        .collect(),
                }
            })
            .collect()
    }

    /// The version of plugin `id` now live, with its state.
    pub fn current(&self, id: &str) -> Option<(Arc<Loaded>, Arc<KvStore>)> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|s| (Arc::clone(&s.current), Arc::clone(&s.kv)))
    }

    /// The long-lived plugins (see [`crate::service`]).
    pub fn service_ids(&self) -> Vec<String> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, s)| s.current.is_service())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// What every plugin call gets from the agent.
    pub fn env(&self) -> Arc<HostEnv> {
        Arc::clone(&self.env)
    }

    pub fn manifest(&self, id: &str) -> Option<Arc<Manifest>> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|s| Arc::clone(&s.current.manifest))
    }

    /// Runs a command (blocking: call from a blocking thread).
    pub fn call(
        &self,
        id: &str,
        command: &str,
        args: &[Arg],
        port: Arc<dyn SessionPort>,
    ) -> Result<String, CallError> {
        let slot = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| CallError::NoSuchPlugin(id.to_string()))?;
        {
            let mut h = slot.health.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(until) = h.paused_until {
                let now = Instant::now();
                if now < until {
                    return Err(CallError::Restarting((until - now).as_millis() as u64));
                }
                h.paused_until = None;
                drop(h);
                // Restart: a fresh load from disk replaces a state that kept crashing.
                if let Err(e) = self.load_dir(&slot.dir) {
                    tracing::warn!(plugin = id, "restart failed, keeping the old version: {e}");
                }
                return self.call_slot(&*self.slot(id)?, command, args, port);
            }
        }
        self.call_slot(&slot, command, args, port)
    }

    fn slot(&self, id: &str) -> Result<Arc<Slot>, CallError> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| CallError::NoSuchPlugin(id.to_string()))
    }

    fn call_slot(
        &self,
        slot: &Slot,
        command: &str,
        args: &[Arg],
        port: Arc<dyn SessionPort>,
    ) -> Result<String, CallError> {
        let loaded = Arc::clone(&slot.current);
        let ctx = CallContext::new(
            Arc::clone(&loaded.manifest),
            port,
            Arc::clone(&slot.kv),
            Arc::clone(&self.env),
        );
        let (ctx, result) = loaded.call(ctx, command, args);
        drop(ctx); // removes the call's temporary folder
        let mut h = slot.health.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Err(CallError::Crashed(_)) | Err(CallError::Limit(_)) => {
                h.crashes += 1;
                if h.crashes >= CRASHES_BEFORE_BACKOFF {
                    h.paused_until = Some(Instant::now() + h.backoff);
                    tracing::warn!(plugin = %loaded.manifest.id, "crashed {} times in a row; restarting in {:?}", h.crashes, h.backoff);
                    h.backoff = (h.backoff * 2).min(BACKOFF_MAX);
                    h.crashes = 0;
                }
            }
            _ => {
                h.crashes = 0;
                h.backoff = BACKOFF_START;
            }
        }
        result
    }
}
