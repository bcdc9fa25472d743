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
/// Most bytes of each of the reload command's pipes (stdout, stderr) kept
/// in memory; the rest is read and dropped. Both pipes are drained while
/// the command runs, so a chatty command never blocks on a full pipe (64 KiB
/// on Linux) and a hostile one cannot fill the agent's memory.
pub const MAX_RELOAD_CAPTURE_BYTES: usize = 16 * 1024;
/// How long output is still collected after the command exited (a child it
/// left in the background may hold the pipes open).
pub const RELOAD_OUTPUT_GRACE: Duration = Duration::from_secs(1);

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

/// Writes `bytes` to `path` through a temporary file (random name, created
/// `O_EXCL`, so no planted file or link is followed), fsync and rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let folder = path.parent().ok_or("no folder")?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".new-");
    let result = (|| -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(folder)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        // The rename itself survives a crash once the folder is synced.
        std::fs::File::open(folder)?.sync_all()
    })();
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

/// Output read from one pipe so far (at most [`MAX_RELOAD_CAPTURE_BYTES`]).
type Captured = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// Reads `pipe` to its end on a thread, keeping the first bytes; returns
/// the buffer and the thread (finished once the pipe closed).
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> (Captured, std::thread::JoinHandle<()>) {
    let kept = Captured::default();
    let buf = std::sync::Arc::clone(&kept);
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
            let room = MAX_RELOAD_CAPTURE_BYTES.saturating_sub(b.len());
            b.extend_from_slice(&chunk[..n.min(room)]);
        }
    });
    (kept, reader)
}

/// The captured text of both pipes, waiting at most [`RELOAD_OUTPUT_GRACE`]
/// for them to close.
fn collect(pipes: Vec<(Captured, std::thread::JoinHandle<()>)>) -> String {
    let until = Instant::now() + RELOAD_OUTPUT_GRACE;
    let mut t = String::new();
    for (kept, reader) in pipes {
        while !reader.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let b = kept.lock().unwrap_or_else(|p| p.into_inner());
        t.push_str(&String::from_utf8_lossy(&b));
    }
    t.trim().chars().take(MAX_RELOAD_OUTPUT_CHARS).collect()
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
    let pipes: Vec<_> = [
        child.stdout.take().map(drain),
        child.stderr.take().map(drain),
    ]
    .into_iter()
    .flatten()
    .collect();
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
    let out = collect(pipes);
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

    #[test]
    fn chatty_reload_command_is_drained_and_capped() {
        // 1 MiB on each pipe: far past what a pipe buffers, so undrained
        // pipes would block the command until the timeout.
        let out = reload(&[
            "sh".into(),
            "-c".into(),
            "head -c 1048576 /dev/zero | tr '\\0' a; head -c 1048576 /dev/zero | tr '\\0' b >&2; echo done".into(),
        ])
        .unwrap();
        assert_eq!(out.chars().count(), MAX_RELOAD_OUTPUT_CHARS);
        assert!(out.starts_with("aaaa"), "{}", &out[..10]);
    }

    #[test]
    fn planted_link_at_the_old_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("license.toml");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let old_tmp = dir
            .path()
            .join(format!(".license.toml.new-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_tmp).unwrap();
        install(&dest, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
    }
}
