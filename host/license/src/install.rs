//! Installing a license file: atomically (temporary file in the same
//! folder, fsync, rename, fsync of the folder), keeping the previous file as
//! `NAME.bak`, then running the license server's reload command if one is
//! set. Any failure before the rename leaves the previous license in place.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest time the reload command may run before it is killed.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Most output of the reload command kept for the report.
pub const MAX_RELOAD_OUTPUT_CHARS: usize = 2000;

/// Why a license could not be installed (the previous one is kept).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot write the license into {folder}: {reason}; the previous license is kept")]
    Write { folder: PathBuf, reason: String },
    #[error("{0} has no folder")]
    NoFolder(PathBuf),
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub path: PathBuf,
    /// The previous license, when there was one.
    pub backup: Option<PathBuf>,
}

/// Path of the backup kept beside `dest`.
pub fn backup_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    dest.with_file_name(name)
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let folder = path.parent().ok_or("no folder")?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".new-{}", std::process::id()));
    let tmp = folder.join(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself survives a crash once the folder is synced.
        std::fs::File::open(folder)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| e.to_string())
}

/// Installs `bytes` as `dest`, keeping the previous file as `dest.bak`.
pub fn install(dest: &Path, bytes: &[u8]) -> Result<Installed, InstallError> {
    let folder = dest
        .parent()
        .ok_or_else(|| InstallError::NoFolder(dest.to_owned()))?;
    let werr = |reason: String| InstallError::Write {
        folder: folder.to_owned(),
        reason,
    };
    std::fs::create_dir_all(folder).map_err(|e| werr(e.to_string()))?;
    let backup = match std::fs::read(dest) {
        Ok(previous) => {
            let b = backup_path(dest);
            write_atomic(&b, &previous)
                .map_err(|e| werr(format!("backup {}: {e}", b.display())))?;
            Some(b)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(werr(format!("reading the installed license: {e}"))),
    };
    write_atomic(dest, bytes).map_err(werr)?;
    Ok(Installed {
        path: dest.to_owned(),
        backup,
    })
}

/// Runs the reload command; `Ok(output)` when it exited 0.
pub fn reload(command: &[String]) -> Result<String, String> {
    let (program, args) = command.split_first().ok_or("empty reload command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() > RELOAD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {} s and was stopped",
                    RELOAD_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    let out = child
        .wait_with_output()
        .map(|o| {
            let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
            t.push_str(&String::from_utf8_lossy(&o.stderr));
            t.trim()
                .chars()
                .take(MAX_RELOAD_OUTPUT_CHARS)
                .collect::<String>()
        })
        .unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{program} failed ({status}): {out}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `folder` read-only even for root (chmod, plus `chattr +i`
    /// where available); false when the folder is still writable.
    pub fn make_read_only(folder: &Path, on: bool) -> bool {
        use std::os::unix::fs::PermissionsExt;
        let mode = if on { 0o555 } else { 0o755 };
        let chattr = |flag: &str| {
            let _ = Command::new("chattr")
                .arg(flag)
                .arg(folder)
                .stderr(Stdio::null())
                .status();
        };
        if on {
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(mode)).unwrap();
            chattr("+i");
        } else {
            chattr("-i");
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let probe = folder.join(".probe");
        let writable = std::fs::write(&probe, b"x").is_ok();
        let _ = std::fs::remove_file(&probe);
        !writable
    }

    #[test]
    fn install_keeps_backup_and_failed_write_keeps_previous() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("lic").join("license.toml");
        let first = install(&dest, b"one").unwrap();
        assert_eq!(first.backup, None);
        let second = install(&dest, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        assert_eq!(std::fs::read(second.backup.unwrap()).unwrap(), b"one");
        let folder = dest.parent().unwrap();
        if !make_read_only(folder, true) {
            eprintln!("cannot make a folder read-only here; skipped");
            return;
        }
        let r = install(&dest, b"three");
        make_read_only(folder, false);
        let err = r.unwrap_err().to_string();
        assert!(err.contains("previous license is kept"), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(folder).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file left behind");
    }

    #[test]
    fn reload_reports_success_and_failure() {
        assert_eq!(
            reload(&["sh".into(), "-c".into(), "echo reloaded".into()]).unwrap(),
            "reloaded"
        );
        let e = reload(&["sh".into(), "-c".into(), "echo no >&2; exit 3".into()]).unwrap_err();
        assert!(e.contains("failed") && e.contains("no"), "{e}");
    }
}
