//! Building a Rust plugin folder (a `Cargo.toml` beside `plugin.toml`) for
//! wasm32-wasip2 before a test, as `scripts/build-plugins` does with
//! rustup, and putting the component where the manifest's entry says.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use lifeline_runtime::Manifest;
use lifeline_runtime::manifest::Runtime;

/// The Rust target of WASM plugins.
pub const WASM_TARGET: &str = "wasm32-wasip2";
/// The environment variable naming cargo's target folder; unset, a plugin
/// builds into its own `target/`.
pub const TARGET_DIR_VAR: &str = "CARGO_TARGET_DIR";

/// Where cargo puts the plugin's build: `$CARGO_TARGET_DIR` (made
/// absolute: cargo runs in the plugin's folder), or `DIR/target`.
pub fn target_dir(dir: &Path) -> Result<PathBuf> {
    match std::env::var_os(TARGET_DIR_VAR).filter(|v| !v.is_empty()) {
        Some(v) => std::path::absolute(PathBuf::from(v))
            .with_context(|| format!("resolving ${TARGET_DIR_VAR}")),
        None => Ok(dir.join("target")),
    }
}

/// True for a folder cargo builds (it has a Cargo.toml).
pub fn is_rust(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file()
}

/// The name of the `.wasm` file cargo writes: the library's name, by
/// default the package's with '-' as '_'.
fn artifact_name(dir: &Path) -> Result<String> {
    let file = dir.join("Cargo.toml");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| file.display().to_string())?;
    let name = |section: &str| {
        table
            .get(section)
            .and_then(|s| s.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_string)
    };
    match name("lib").or_else(|| name("package")) {
        Some(n) => Ok(n.replace('-', "_")),
        None => bail!("{}: no [package] name", file.display()),
    }
}

/// With rustup: refuses early, saying how to fix it, when the target is
/// not installed. Without rustup the build itself tells.
fn check_target() -> Result<()> {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output()
    else {
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && !installed.lines().any(|l| l.trim() == WASM_TARGET) {
        bail!(
            "the Rust target {WASM_TARGET} is not installed; install it with: rustup target add {WASM_TARGET}"
        );
    }
    Ok(())
}

/// Runs cargo; its messages go to standard error as they come.
fn cargo_build(dir: &Path, target: &Path) -> Result<()> {
    println!(
        "[build] cargo build --release --target {WASM_TARGET} (target folder {})",
        target.display()
    );
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", WASM_TARGET])
        .current_dir(dir)
        .env(TARGET_DIR_VAR, target)
        .stdin(Stdio::null())
        .status()
        .context("cannot run cargo (install Rust with rustup: https://rustup.rs)")?;
    if !status.success() {
        bail!(
            "building {} for {WASM_TARGET} failed ({status}); cargo's messages are above",
            dir.display()
        );
    }
    Ok(())
}

/// Copies the component to `entry` through a temporary file and a rename,
/// so an agent hot-reloading the folder never reads half a file.
fn install(built: &Path, entry: &Path) -> Result<u64> {
    let folder = entry.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".plugin-build-")
        .tempfile_in(folder)
        .with_context(|| format!("creating a temporary file in {}", folder.display()))?;
    let bytes =
        std::fs::copy(built, tmp.path()).with_context(|| format!("copying {}", built.display()))?;
    tmp.persist(entry)
        .with_context(|| format!("replacing {}", entry.display()))?;
    Ok(bytes)
}

/// Builds the Rust plugin in `dir` and copies the component to the
/// manifest's entry file; nothing to do for a folder without Cargo.toml.
pub fn rust_plugin(dir: &Path, manifest: &Manifest) -> Result<()> {
    if !is_rust(dir) {
        return Ok(());
    }
    if manifest.runtime != Runtime::Wasm {
        println!("[build] skipped: plugin.toml says runtime \"lua\", so Cargo.toml is not built");
        return Ok(());
    }
    check_target()?;
    let target = target_dir(dir)?;
    cargo_build(dir, &target)?;
    let built = target
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", artifact_name(dir)?));
    let bytes = install(&built, &manifest.entry)?;
    println!(
        "[build] {} -> {} ({} KiB)",
        built.display(),
        manifest.entry.display(),
        bytes.div_ceil(1024)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_is_named_after_the_library() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("Cargo.toml");
        std::fs::write(&file, "[package]\nname = \"my-plugin\"\n").unwrap();
        assert_eq!(artifact_name(d.path()).unwrap(), "my_plugin");
        std::fs::write(
            &file,
            "[package]\nname = \"my-plugin\"\n[lib]\nname = \"other\"\n",
        )
        .unwrap();
        assert_eq!(artifact_name(d.path()).unwrap(), "other");
    }
}
