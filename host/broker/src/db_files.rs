//! The database's files hold operators' password hashes, login-token hashes
//! and every session report: they are owner-only (mode 0600) whatever the
//! broker's umask. SQLite gives its `-wal` and `-shm` files the main file's
//! mode, so creating the main file 0600 before SQLite opens it covers new
//! ones; files left by older versions are tightened on every start.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// Mode of `broker.db` and its `-wal`, `-shm` and `-journal` files.
pub const DB_FILE_MODE: u32 = 0o600;

/// The suffixes SQLite adds to the database's name for its side files.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::FileMode {
        path: path.to_owned(),
        source,
    }
}

/// Creates `db` owner-only if it is missing and makes it and its side
/// files owner-only if they exist. Call before opening the database.
pub fn make_private(db: &Path) -> Result<(), StoreError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(DB_FILE_MODE)
        .open(db)
        .map_err(io(db))?;
    for path in std::iter::once(db.to_owned()).chain(SIDE_FILES.map(|s| with_suffix(db, s))) {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o7777 != DB_FILE_MODE => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(DB_FILE_MODE))
                    .map_err(io(&path))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DB_FILE, Store};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn database_and_wal_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .add_operator(
                "$argon2id$x",
                &lifeline_protocol::OperatorProfile {
                    username: "alice".into(),
                    name: "Alice".into(),
                    email: String::new(),
                    title: String::new(),
                },
            )
            .unwrap();
        let db = dir.path().join(DB_FILE);
        for p in [
            db.clone(),
            with_suffix(&db, "-wal"),
            with_suffix(&db, "-shm"),
        ] {
            assert_eq!(mode(&p), DB_FILE_MODE, "{}", p.display());
        }
        drop(store);
        // Files an older version left readable are tightened on open.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::open(dir.path()).unwrap();
        assert_eq!(mode(&db), DB_FILE_MODE);
    }
}
