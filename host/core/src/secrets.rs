//! Files that hold secrets (keys, passwords, tokens): refuse them when others
//! can read them, and write them owner-only and atomically.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A secret file problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error(
        "{path} holds a secret but is readable by others (mode {mode:04o}); run `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("cannot access secret file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Refuses `path` when its group or others have any permission on it.
pub fn check_private(path: &Path) -> Result<(), SecretFileError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Writes `bytes` to `path` with mode 0600, atomically (temporary file in the
/// same folder, fsync, rename), so a crash never leaves a half-written secret.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_file_is_refused_private_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        write_private(&p, b"secret").unwrap();
        check_private(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = check_private(&p).unwrap_err().to_string();
        assert!(
            err.contains("readable by others") && err.contains("chmod 600"),
            "{err}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"secret");
    }
}
