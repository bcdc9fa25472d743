//! The cache of compiled WASM components. An entry is native code that
//! wasmtime maps and runs without further checks, so:
//!
//! - the folder is the agent's alone: created 0700, and refused (with an
//!   error naming it) when it is not owned by the agent's user or can be
//!   written by group or others; it is then used only through its
//!   descriptor;
//! - an entry is named after the SHA-256 of the *verified* source bytes and
//!   the engine's compatibility hash, and carries the source digest and the
//!   SHA-256 of the artifact, checked before the bytes read (once, into
//!   memory) are deserialized. A corrupt, truncated or misplaced entry is
//!   recompiled from the verified source.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use sha2::{Digest, Sha256};

/// First bytes of a cache entry (format version 1).
pub const ENTRY_MAGIC: &[u8; 8] = b"LLCWASM1";
/// Largest cache entry read: guards the agent's memory against a huge file.
pub const MAX_ENTRY_BYTES: u64 = 512 << 20;
/// Mode of the cache folder when the agent creates it.
pub const DIR_MODE: u32 = 0o700;
/// Mode bits that make a cache folder refused (group or others may write).
pub const UNSAFE_DIR_BITS: u32 = 0o022;

const HEADER: usize = ENTRY_MAGIC.len() + 32 + 32;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot create or open the WASM cache folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the WASM cache folder {path} is owned by uid {owner}, not by the agent's uid {agent}: refused (remove it, or give it to the agent's user with mode 0700)"
    )]
    Owner {
        path: PathBuf,
        owner: u32,
        agent: u32,
    },
    #[error(
        "the WASM cache folder {path} can be written by group or others (mode {mode:o}): refused (chmod 700 it, or remove it)"
    )]
    Writable { path: PathBuf, mode: u32 },
}

/// The open cache folder.
pub struct WasmCache {
    dir: Dir,
    path: PathBuf,
}

impl WasmCache {
    /// Creates `path` (0700) if missing and checks who may write it.
    pub fn open(path: &Path) -> Result<WasmCache, CacheError> {
        let io = |source| CacheError::Io {
            path: path.to_owned(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(path)
            .map_err(io)?;
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority()).map_err(io)?;
        // Checked on the open descriptor: what is checked is what is used.
        let meta = dir.into_std_file();
        let m = meta.metadata().map_err(io)?;
        let agent = nix::unistd::geteuid().as_raw();
        if m.uid() != agent {
            return Err(CacheError::Owner {
                path: path.to_owned(),
                owner: m.uid(),
                agent,
            });
        }
        if m.mode() & UNSAFE_DIR_BITS != 0 {
            return Err(CacheError::Writable {
                path: path.to_owned(),
                mode: m.mode() & 0o7777,
            });
        }
        Ok(WasmCache {
            dir: Dir::from_std_file(meta),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The artifact stored under `name` for the source whose SHA-256 is
    /// `source`, if the entry is intact; `None` otherwise (logged).
    pub fn get(&self, name: &str, source: &[u8; 32]) -> Option<Vec<u8>> {
        let mut f = self.dir.open(name).ok()?.into_std();
        let mut raw = Vec::new();
        if let Err(e) = (&mut f).take(MAX_ENTRY_BYTES + 1).read_to_end(&mut raw) {
            tracing::warn!(
                "cannot read the cache entry {}/{name}: {e}",
                self.path.display()
            );
            return None;
        }
        match check(&raw, source) {
            Ok(()) => Some(raw.split_off(HEADER)),
            Err(why) => {
                tracing::warn!(
                    "cache entry {}/{name} refused ({why}); recompiling",
                    self.path.display()
                );
                None
            }
        }
    }

    /// Stores `artifact` (compiled from the source whose SHA-256 is
    /// `source`) under `name`: written to a new file, then renamed.
    pub fn put(&self, name: &str, source: &[u8; 32], artifact: &[u8]) {
        let tmp = format!(".{name}.{:016x}.tmp", rand::random::<u64>());
        let written = self
            .write_new(&tmp, source, artifact)
            .and_then(|()| self.dir.rename(&tmp, &self.dir, name));
        if let Err(e) = written {
            let _ = self.dir.remove_file(&tmp);
            tracing::warn!(
                "cannot store the cache entry {}/{name}: {e}",
                self.path.display()
            );
        }
    }

    fn write_new(&self, tmp: &str, source: &[u8; 32], artifact: &[u8]) -> std::io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).mode(0o600);
        let mut f = self.dir.open_with(tmp, &opts)?.into_std();
        f.write_all(ENTRY_MAGIC)?;
        f.write_all(source)?;
        f.write_all(&Sha256::digest(artifact))?;
        // No fsync: a torn entry after a crash fails its digest and is
        // recompiled.
        f.write_all(artifact)
    }
}

/// Checks an entry's header against the expected source digest and its
/// artifact against the stored digest.
fn check(raw: &[u8], source: &[u8; 32]) -> Result<(), &'static str> {
    if raw.len() as u64 > MAX_ENTRY_BYTES {
        return Err("too large");
    }
    if raw.len() < HEADER || &raw[..ENTRY_MAGIC.len()] != ENTRY_MAGIC {
        return Err("not a Lifeline cache entry");
    }
    let (stored_source, rest) = raw[ENTRY_MAGIC.len()..].split_at(32);
    let (stored_digest, artifact) = rest.split_at(32);
    if stored_source != source {
        return Err("compiled from other source bytes");
    }
    if Sha256::digest(artifact).as_slice() != stored_digest {
        return Err("the artifact does not match its digest");
    }
    Ok(())
}
