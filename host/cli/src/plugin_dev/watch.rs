//! `lifeline plugin watch`: `plugin test` again on every save. The plugin's
//! folder is watched with notify (its sub-folders recursively, except
//! build output); what the test itself writes (cargo's target folder, the
//! built component, Cargo.lock, saved streams, editors' hidden and backup
//! files) is ignored, so a run never triggers the next.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use notify::{RecursiveMode, Watcher};

use super::{Sandbox, TestArgs, build, plugin_dir, run_once};

/// Quiet time after the last change before the test runs again (an
/// editor's save is several events).
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// What changes in the plugin's folder do not start a run.
#[derive(Clone)]
struct Ignored {
    /// Folders whose content never matters (build output, saved streams).
    dirs: Vec<PathBuf>,
    /// A Rust plugin's built component and lock file are written by the run.
    rust: bool,
}

impl Ignored {
    fn new(dir: &Path, args: &TestArgs) -> Result<Ignored> {
        let rust = build::is_rust(dir);
        let mut dirs = vec![dir.join("target")];
        if rust {
            dirs.push(build::target_dir(dir)?);
        }
        if let Some(s) = &args.streams_dir {
            dirs.push(std::path::absolute(s).context("resolving --streams-dir")?);
        }
        Ok(Ignored { dirs, rust })
    }

    fn matters(&self, path: &Path) -> bool {
        if self.dirs.iter().any(|d| path.starts_with(d)) {
            return false;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let editor_file = name.starts_with('.') || name.ends_with('~') || name == "4913";
        let built = self.rust && (name.ends_with(".wasm") || name == "Cargo.lock");
        !editor_file && !built
    }
}

/// Watches the folder itself (not recursively: its target/ can hold
/// thousands of folders) and each sub-folder that is not ignored.
fn watch_tree(w: &mut notify::RecommendedWatcher, dir: &Path, ignored: &Ignored) -> Result<()> {
    let fail = |p: &Path, e: notify::Error| anyhow!("cannot watch {}: {e}", p.display());
    w.watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| fail(dir, e))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() && ignored.matters(&path) {
            w.watch(&path, RecursiveMode::Recursive)
                .map_err(|e| fail(&path, e))?;
        }
    }
    Ok(())
}

/// Waits for a relevant change, then for [`DEBOUNCE`] of quiet; returns
/// the last changed path.
fn next_change(rx: &mpsc::Receiver<PathBuf>) -> Result<PathBuf> {
    let mut last = rx.recv().context("the file watcher stopped")?;
    loop {
        match rx.recv_timeout(DEBOUNCE) {
            Ok(p) => last = p,
            Err(mpsc::RecvTimeoutError::Timeout) => return Ok(last),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(anyhow!("the file watcher stopped"));
            }
        }
    }
}

/// Runs the test, then again after every change, until interrupted.
pub fn watch(args: &TestArgs, sandbox: &Sandbox) -> Result<ExitCode> {
    let dir = plugin_dir(&args.dir)?;
    let ignored = Ignored::new(&dir, args)?;
    let (tx, rx) = mpsc::channel::<PathBuf>();
    let filter = ignored.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        // Reading files (the test's own loads included) is not a change.
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        for p in ev.paths.into_iter().filter(|p| filter.matters(p)) {
            let _ = tx.send(p);
        }
    })
    .context("cannot start the file watcher")?;
    watch_tree(&mut watcher, &dir, &ignored)?;
    loop {
        let verdict = match run_once(args, sandbox) {
            Ok(true) => "passed".to_string(),
            Ok(false) => "FAILED".to_string(),
            Err(e) => format!("error: {e:#}"),
        };
        println!(
            "[watch] {verdict}; waiting for changes in {} (Ctrl-C stops)",
            dir.display()
        );
        let changed = next_change(&rx)?;
        println!();
        println!("[watch] {} changed; testing again", changed.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_output_and_editor_files_are_ignored() {
        let ig = Ignored {
            dirs: vec![PathBuf::from("/p/x/target")],
            rust: true,
        };
        for (path, matters) in [
            ("/p/x/src/lib.rs", true),
            ("/p/x/plugin.toml", true),
            ("/p/x/target/wasm32-wasip2/release/x.wasm", false),
            ("/p/x/plugin.wasm", false),
            ("/p/x/Cargo.lock", false),
            ("/p/x/.plugin-build-abc", false),
            ("/p/x/src/.lib.rs.swp", false),
            ("/p/x/src/lib.rs~", false),
        ] {
            assert_eq!(ig.matters(Path::new(path)), matters, "{path}");
        }
        let lua = Ignored {
            dirs: vec![],
            rust: false,
        };
        assert!(lua.matters(Path::new("/p/y/main.lua")));
    }
}
