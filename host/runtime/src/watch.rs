//! Hot reload: a notify watcher on the plugin folders. Events are debounced
//! per plugin folder; folders (not files) are watched, so editors' atomic
//! renames are seen. A failed reload keeps the running version and is
//! reported; the next save is still picked up. A plugin whose folder is
//! deleted is unloaded (a folder without its manifest, as during some
//! editors' saves, is left alone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::plugins::PluginHost;

/// Quiet time after the last change before a plugin is reloaded.
pub const DEBOUNCE: Duration = Duration::from_millis(20);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    Reloaded {
        id: String,
        version: String,
    },
    Failed {
        dir: PathBuf,
        error: String,
    },
    /// The plugin's folder is gone: new calls find no such plugin.
    Removed {
        id: String,
        dir: PathBuf,
    },
}

/// Keeps the watcher alive; dropping it stops hot reload.
pub struct HotReload {
    _watcher: notify::RecommendedWatcher,
}

/// The plugin folder (direct child of a root) a changed path belongs to.
fn plugin_dir_of(roots: &[PathBuf], path: &Path) -> Option<PathBuf> {
    roots.iter().find_map(|root| {
        let rel = path.strip_prefix(root).ok()?;
        let first = rel.components().next()?;
        let name = first.as_os_str().to_str()?;
        (!name.starts_with('.')).then(|| root.join(name))
    })
}

/// Watches the host's plugin folders and reloads changed plugins, reporting
/// each outcome to `report`.
pub fn start(
    host: Arc<PluginHost>,
    roots: Vec<PathBuf>,
    report: impl Fn(ReloadEvent) + Send + 'static,
) -> Result<HotReload, String> {
    let (tx, rx) = mpsc::channel::<PathBuf>();
    let roots_w = roots.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            // Reading files (our own loads included) is not a change.
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            for p in ev.paths {
                if let Some(d) = plugin_dir_of(&roots_w, &p) {
                    let _ = tx.send(d);
                }
            }
        }
    })
    .map_err(|e| format!("cannot start the plugin watcher: {e}"))?;
    for r in &roots {
        watcher
            .watch(r, RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch {}: {e}", r.display()))?;
    }
    std::thread::Builder::new()
        .name("plugin-reload".into())
        .spawn(move || {
            let mut pending: BTreeMap<PathBuf, Instant> = BTreeMap::new();
            loop {
                let wait = pending.values().min().map(|t| t.saturating_duration_since(Instant::now()));
                let got = match wait {
                    Some(w) => rx.recv_timeout(w),
                    None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                };
                match got {
                    Ok(dir) => {
                        pending.insert(dir, Instant::now() + DEBOUNCE);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                let now = Instant::now();
                let due: Vec<PathBuf> = pending.iter().filter(|(_, t)| **t <= now).map(|(d, _)| d.clone()).collect();
                for dir in due {
                    pending.remove(&dir);
                    if !dir.exists() {
                        if let Some(id) = host.unload_dir(&dir) {
                            tracing::info!(plugin = %id, "removed: its folder is gone");
                            report(ReloadEvent::Removed { id, dir });
                        }
                        continue;
                    }
                    if !dir.join(crate::manifest::MANIFEST_FILE).exists() {
                        continue;
                    }
                    match host.load_dir(&dir) {
                        Ok((id, version)) => {
                            tracing::info!(plugin = %id, %version, "reloaded");
                            report(ReloadEvent::Reloaded { id, version });
                        }
                        Err(error) => {
                            tracing::warn!(dir = %dir.display(), "reload failed, the running version stays: {error}");
                            report(ReloadEvent::Failed { dir, error });
                        }
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the reload thread: {e}"))?;
    Ok(HotReload { _watcher: watcher })
}
