//! The per-call temporary folder, reached only through its directory
//! descriptor.
//!
//! During a run-as login the folder belongs to that user, whose processes
//! can plant symbolic links, FIFOs or hard links in it at any time while
//! the agent (root) reads, writes and hands files over. So nothing here goes
//! through a path from the outside: every name is resolved beneath the
//! folder's descriptor (`cap-std`: `openat`, never leaving the folder, not
//! even through a link), a file is written as a new file (`O_EXCL`) and
//! renamed over its name, and ownership is handed over with `fchown` on the
//! descriptor that was written, never through a path.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use crate::host::HostError;
use crate::process::Identity;

/// Largest file a plugin may read or write in its temporary folder.
pub const MAX_FILE_BYTES: usize = 16 << 20;
/// Mode of a file the agent writes into the folder (the run-as user, who
/// owns it, may change it).
pub const FILE_MODE: u32 = 0o644;

/// One call's temporary folder: removed when dropped (`std`'s removal does
/// not follow links).
pub struct TempFolder {
    dir: tempfile::TempDir,
    root: Dir,
}

/// Who files are handed to (`None`: they stay the agent's).
type Owner<'a> = Option<&'a Identity>;

pub(crate) fn io_err(what: &str, e: std::io::Error) -> HostError {
    match e.kind() {
        // cap-std's answer to a path that would leave the folder.
        std::io::ErrorKind::PermissionDenied => HostError::Denied(format!("{what}: {e}")),
        _ => HostError::Failed(format!("{what}: {e}")),
    }
}

fn hand_over(f: &impl std::os::fd::AsFd, owner: Owner, what: &str) -> Result<(), HostError> {
    if let Some(id) = owner {
        // `fchownat(fd, "", AT_EMPTY_PATH)`: also for cap-std's `O_PATH`
        // folder descriptors, which `fchown` refuses.
        rustix::fs::chownat(
            f,
            "",
            Some(rustix::fs::Uid::from_raw(id.uid)),
            Some(rustix::fs::Gid::from_raw(id.gid)),
            rustix::fs::AtFlags::EMPTY_PATH,
        )
        .map_err(|e| HostError::Failed(format!("{what}: cannot hand it to {}: {e}", id.user)))?;
    }
    Ok(())
}

/// Reads the regular file `path` beneath `dir` (`rel`: how the plugin
/// named it, for errors), at most [`MAX_FILE_BYTES`]; a FIFO cannot block
/// the agent, and with `no_hard_links` a file with other hard links is
/// refused.
pub(crate) fn read_regular(
    dir: &Dir,
    path: &Path,
    rel: &str,
    no_hard_links: bool,
) -> Result<Vec<u8>, HostError> {
    let mut opts = OpenOptions::new();
    opts.read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    let f = dir
        .open_with(path, &opts)
        .map_err(|e| io_err(rel, e))?
        .into_std();
    let meta = f.metadata().map_err(|e| io_err(rel, e))?;
    if !meta.is_file() {
        return Err(HostError::Denied(format!("{rel:?} is not a regular file")));
    }
    if no_hard_links && meta.nlink() > 1 {
        return Err(HostError::Denied(format!(
            "{rel:?} has other hard links: refused"
        )));
    }
    let mut data = Vec::new();
    f.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| io_err(rel, e))?;
    if data.len() > MAX_FILE_BYTES {
        return Err(HostError::Limit(format!(
            "{rel} is larger than {} MiB",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(data)
}

/// Checks a plugin's relative path: anything that could leave the folder
/// by its spelling (absolute, `..`) is refused. Returns the folder
/// components and the file name.
pub(crate) fn split(rel: &str) -> Result<(Vec<&std::ffi::OsStr>, &std::ffi::OsStr), HostError> {
    split_in(rel, "the plugin's temporary folder")
}

/// [`split`] for a folder described as `place` in the error.
pub(crate) fn split_in<'a>(
    rel: &'a str,
    place: &str,
) -> Result<(Vec<&'a std::ffi::OsStr>, &'a std::ffi::OsStr), HostError> {
    let outside = || HostError::Denied(format!("{rel:?} is outside {place}"));
    let p = Path::new(rel);
    if rel.is_empty() || p.is_absolute() {
        return Err(outside());
    }
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::CurDir => {}
            _ => return Err(outside()),
        }
    }
    let name = parts.pop().ok_or_else(outside)?;
    Ok((parts, name))
}

impl TempFolder {
    /// Creates a fresh folder `PREFIX-random` under `root` (created if
    /// missing), handed to `owner` through its descriptor.
    pub fn create(root: &Path, prefix: &str, owner: Owner) -> Result<Self, HostError> {
        std::fs::create_dir_all(root)
            .map_err(|e| HostError::Failed(format!("cannot create {}: {e}", root.display())))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir_in(root)
            .map_err(|e| {
                HostError::Failed(format!(
                    "cannot create a temporary folder in {}: {e}",
                    root.display()
                ))
            })?;
        let what = dir.path().display().to_string();
        let root = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority())
            .map_err(|e| io_err(&what, e))?;
        hand_over(&root, owner, &what)?;
        Ok(TempFolder { dir, root })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Removes the folder now, reporting a failure (dropping it removes it
    /// too, silently).
    pub fn remove(self) -> Result<(), HostError> {
        let what = self.dir.path().display().to_string();
        drop(self.root);
        self.dir
            .close()
            .map_err(|e| HostError::Failed(format!("cannot remove {what}: {e}")))
    }

    /// Reads `rel`: a regular file with no other hard link, at most
    /// [`MAX_FILE_BYTES`]. Links are followed only within the folder.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, HostError> {
        let (parts, name) = split(rel)?;
        let path: PathBuf = parts.iter().chain([&name]).collect();
        // A hard link could be another file of the system.
        read_regular(&self.root, &path, rel, true)
    }

    /// Writes `rel` (creating its folders, handed to `owner`): as a new
    /// file renamed over the name, so a link or hard link planted there is
    /// replaced, never written through.
    pub fn write(&self, rel: &str, data: &[u8], owner: Owner) -> Result<(), HostError> {
        if data.len() > MAX_FILE_BYTES {
            return Err(HostError::Limit(format!(
                "a file is limited to {} MiB",
                MAX_FILE_BYTES >> 20
            )));
        }
        let (parts, name) = split(rel)?;
        let dir = self.subfolder(&parts, owner, rel)?;
        if dir
            .symlink_metadata(name)
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(HostError::Denied(format!("{rel:?} is a symbolic link")));
        }
        let tmp = format!(".lifeline-{:016x}.tmp", rand::random::<u64>());
        let written = Self::new_file(&dir, &tmp, data, owner, rel)
            .and_then(|()| dir.rename(&tmp, &dir, name).map_err(|e| io_err(rel, e)));
        if written.is_err() {
            let _ = dir.remove_file(&tmp);
        }
        written
    }

    fn new_file(
        dir: &Dir,
        tmp: &str,
        data: &[u8],
        owner: Owner,
        rel: &str,
    ) -> Result<(), HostError> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).mode(FILE_MODE);
        let mut f = dir
            .open_with(tmp, &opts)
            .map_err(|e| io_err(rel, e))?
            .into_std();
        f.write_all(data).map_err(|e| io_err(rel, e))?;
        hand_over(&f, owner, rel)
    }

    /// Opens (creating as needed) the folder `parts` beneath the root; the
    /// folders it creates are handed to `owner`.
    fn subfolder(
        &self,
        parts: &[&std::ffi::OsStr],
        owner: Owner,
        rel: &str,
    ) -> Result<Dir, HostError> {
        let mut dir = self.root.try_clone().map_err(|e| io_err(rel, e))?;
        for part in parts {
            let created = match dir.create_dir(part) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(io_err(rel, e)),
            };
            let next = dir.open_dir(part).map_err(|e| io_err(rel, e))?;
            if created {
                hand_over(&next, owner, rel)?;
            }
            dir = next;
        }
        Ok(dir)
    }
}
