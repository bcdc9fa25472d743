//! `fs.folder`: folders the agent's admin names in `[plugins.folders]`,
//! reached by a plugin whose manifest lists them (`[folders] allow`), only
//! through the folder's descriptor (cap-std): no name leaves the folder,
//! links included. Writing needs `write = true` from the admin and replaces
//! a file atomically: a new file (`O_EXCL`), written and synced, renamed
//! over the name, then the folder synced, so a reader sees the old file or
//! the new one, never half of it, and a planted link is replaced, not
//! written through.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use crate::host::HostError;
use crate::tempfs::{MAX_FILE_BYTES, io_err, read_regular, split_in};
use crate::wit;

/// Entries one listing returns at most.
pub const MAX_LIST_ENTRIES: usize = 4096;
/// Mode of a file a plugin writes.
pub const FILE_MODE: u32 = 0o644;
/// Prefix of the temporary file a write creates beside its target (then
/// the writer's process ID, a random number and `.tmp`), so that what a
/// writer killed between creating and renaming it left can be told apart.
pub const TEMP_PREFIX: &str = ".lifeline-";

/// A folder as the agent's admin configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub path: PathBuf,
    pub write: bool,
}

/// The admin's folders, by name.
pub type Folders = BTreeMap<String, Folder>;

fn open(folders: &Folders, allowed: &[String], name: &str) -> Result<(Dir, bool), HostError> {
    if !allowed.iter().any(|a| a == name) {
        return Err(HostError::NotDeclared(format!(
            "folder {name:?} is not in the plugin's [folders] allow"
        )));
    }
    let f = folders.get(name).ok_or_else(|| {
        HostError::Failed(format!(
            "this agent has no folder {name:?} in [plugins.folders]"
        ))
    })?;
    let dir = Dir::open_ambient_dir(&f.path, cap_std::ambient_authority())
        .map_err(|e| io_err(&f.path.display().to_string(), e))?;
    Ok((dir, f.write))
}

/// Removes the temporary files that writers no longer running left in the
/// admin's writable folders (an agent killed between creating the new
/// file and renaming it over the target; found by the fault test
/// `tests/e2e/faults/kill_license.rs`). The target itself is untouched:
/// the old or the new file, whole. Files of a live writer are kept.
pub fn sweep_stale(folders: &Folders) {
    for f in folders.values().filter(|f| f.write) {
        let Ok(entries) = std::fs::read_dir(&f.path) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(owner) = name
                .strip_prefix(TEMP_PREFIX)
                .filter(|r| r.ends_with(".tmp"))
                .and_then(|r| r.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let running = owner == std::process::id()
                || std::path::Path::new(&format!("/proc/{owner}")).exists();
            if !running && e.file_type().is_ok_and(|t| t.is_file()) {
                tracing::warn!("removing {} left by a stopped writer", e.path().display());
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The entries of `rel` ("" for the folder itself), sorted by name.
pub fn list(
    folders: &Folders,
    allowed: &[String],
    name: &str,
    rel: &str,
) -> Result<Vec<wit::DirEntry>, HostError> {
    let (root, _) = open(folders, allowed, name)?;
    let dir = if rel.is_empty() || rel == "." {
        root
    } else {
        let (parts, last) = split_in(rel, &format!("folder {name:?}"))?;
        let p: PathBuf = parts.iter().chain([&last]).collect();
        root.open_dir(&p).map_err(|e| io_err(rel, e))?
    };
    let mut out = Vec::new();
    for e in dir.entries().map_err(|e| io_err(rel, e))? {
        let e = e.map_err(|e| io_err(rel, e))?;
        if out.len() == MAX_LIST_ENTRIES {
            return Err(HostError::Limit(format!(
                "{name}/{rel} has more than {MAX_LIST_ENTRIES} entries"
            )));
        }
        let meta = e.metadata().map_err(|e| io_err(rel, e))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.into_std().duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        out.push(wit::DirEntry {
            name: e.file_name().to_string_lossy().into_owned(),
            is_dir: meta.is_dir(),
            size: meta.len(),
            modified_secs: modified,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`].
pub fn read(
    folders: &Folders,
    allowed: &[String],
    name: &str,
    rel: &str,
) -> Result<Vec<u8>, HostError> {
    let (root, _) = open(folders, allowed, name)?;
    let (parts, last) = split_in(rel, &format!("folder {name:?}"))?;
    let p: PathBuf = parts.iter().chain([&last]).collect();
    // The admin's folder (logs may be hard-linked by rotation): only
    // regular files, bounded.
    read_regular(&root, &p, rel, false)
}

/// Replaces `rel` (its folder must exist) atomically.
pub fn write(
    folders: &Folders,
    allowed: &[String],
    name: &str,
    rel: &str,
    data: &[u8],
) -> Result<(), HostError> {
    // A writable folder the admin named is created on first write (a
    // download folder that does not exist yet); a read-only one never is.
    if let Some(f) = folders.get(name)
        && f.write
        && allowed.iter().any(|a| a == name)
        && !f.path.exists()
    {
        std::fs::create_dir_all(&f.path).map_err(|e| io_err(&f.path.display().to_string(), e))?;
    }
    let (root, writable) = open(folders, allowed, name)?;
    if !writable {
        return Err(HostError::Denied(format!(
            "folder {name:?} is read-only ([plugins.folders] {name} has no write = true)"
        )));
    }
    if data.len() > MAX_FILE_BYTES {
        return Err(HostError::Limit(format!(
            "a file is limited to {} MiB",
            MAX_FILE_BYTES >> 20
        )));
    }
    let (parts, last) = split_in(rel, &format!("folder {name:?}"))?;
    let sub: PathBuf = parts.iter().collect();
    let dir = if parts.is_empty() {
        root
    } else {
        root.open_dir(&sub).map_err(|e| io_err(rel, e))?
    };
    let tmp = format!(
        "{TEMP_PREFIX}{}-{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    );
    let written = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).mode(FILE_MODE);
        let mut f = dir
            .open_with(&tmp, &opts)
            .map_err(|e| io_err(rel, e))?
            .into_std();
        f.write_all(data).map_err(|e| io_err(rel, e))?;
        f.sync_all().map_err(|e| io_err(rel, e))?;
        dir.rename(&tmp, &dir, last).map_err(|e| io_err(rel, e))?;
        // The rename itself is durable once the folder is synced (cap-std's
        // descriptor is `O_PATH`, which cannot be synced: open it for reading).
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::openat(&dir, ".", flags, Mode::empty())
            .and_then(|fd| rustix::fs::fsync(&fd))
            .map_err(|e| io_err(rel, e.into()))
    })();
    if written.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    written
}
