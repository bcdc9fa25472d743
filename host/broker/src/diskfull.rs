//! Keeping the broker useful when its disk is full.
//!
//! At start the broker sets aside [`DISK_RESERVE_BYTES`] in a file of its
//! data folder ([`DISK_RESERVE_FILE`]). When a write fails because the disk
//! is full, the reserve is deleted and the broker enters *disk-full mode*:
//!
//! - **keeps working** (small rows, written into the freed reserve): operator
//!   login and resume (one login-token row), logout, invitation creation (one
//!   session row), joins by connection ID, link or short link (one row
//!   updated), attach, detach, state changes and ending sessions, and every
//!   read: session lists, reports, the join pages;
//! - **relayed but not recorded**: report events. Each dropped event is
//!   counted per session and logged once per session as a warning; when
//!   space is back, a note in each affected report says how many events
//!   were lost and when;
//! - **fails with a clear error**: larger writes such as script uploads and
//!   license publishing (the caller sees "the broker's database failed").
//!
//! The sweeper checks free space every `SWEEP_EVERY`; with
//! [`DISK_RESUME_FREE_BYTES`] free it writes the reserve again and recording
//! resumes. Nothing in disk-full mode ends a session or stops the broker.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Name of the reserve file in the broker's data folder.
pub const DISK_RESERVE_FILE: &str = "disk-reserve";
/// Bytes kept aside for the small writes of logins, joins and state changes
/// once the disk is full (about 500 SQLite pages of WAL). Guards: a full
/// disk (from reports or anything else) locking everybody out.
pub const DISK_RESERVE_BYTES: u64 = 2 << 20;
/// Free bytes needed, besides the reserve, before recording resumes.
pub const DISK_RESUME_FREE_BYTES: u64 = 2 << 20;

/// The reserve file and whether the broker is in disk-full mode.
pub struct DiskReserve {
    dir: PathBuf,
    full: AtomicBool,
}

impl DiskReserve {
    /// Sets up the reserve in `dir`; a disk already full starts in
    /// disk-full mode.
    pub fn new(dir: &Path) -> DiskReserve {
        let r = DiskReserve {
            dir: dir.to_owned(),
            full: AtomicBool::new(false),
        };
        if let Err(e) = r.write_reserve() {
            tracing::warn!(
                "cannot set aside {DISK_RESERVE_BYTES} bytes in {}: {e}; report events are not recorded until there is space",
                r.path().display()
            );
            r.remove_reserve();
            r.full.store(true, Ordering::SeqCst);
        }
        r
    }

    fn path(&self) -> PathBuf {
        self.dir.join(DISK_RESERVE_FILE)
    }

    /// True in disk-full mode: optional writes (report events) are skipped.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    /// Enters disk-full mode and frees the reserve for the small writes.
    /// Returns true when this call freed it.
    pub fn release(&self) -> bool {
        if self.full.swap(true, Ordering::SeqCst) {
            return false;
        }
        tracing::warn!(
            "the broker's disk is full ({}): freed the {DISK_RESERVE_BYTES}-byte reserve; logins and joins go on, report events are relayed but not recorded until space is freed",
            self.dir.display()
        );
        self.remove_reserve();
        true
    }

    /// Leaves disk-full mode when there is room for the reserve and
    /// [`DISK_RESUME_FREE_BYTES`] more. Returns true when it did.
    pub fn try_restore(&self) -> bool {
        if !self.is_full() {
            return false;
        }
        let free = match rustix::fs::statvfs(&self.dir) {
            Ok(s) => s.f_bavail.saturating_mul(s.f_frsize),
            Err(e) => {
                tracing::warn!("cannot read the free space of {}: {e}", self.dir.display());
                return false;
            }
        };
        if free < DISK_RESERVE_BYTES + DISK_RESUME_FREE_BYTES {
            return false;
        }
        if let Err(e) = self.write_reserve() {
            tracing::warn!("cannot write the disk reserve again: {e}");
            self.remove_reserve();
            return false;
        }
        self.full.store(false, Ordering::SeqCst);
        tracing::info!("the broker's disk has space again: report events are recorded again");
        true
    }

    /// Writes the reserve (real blocks, not a sparse file) and syncs it.
    fn write_reserve(&self) -> std::io::Result<()> {
        let path = self.path();
        if std::fs::metadata(&path).is_ok_and(|m| m.len() >= DISK_RESERVE_BYTES) {
            return Ok(());
        }
        let mut f = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 64 * 1024];
        let mut left = DISK_RESERVE_BYTES;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        f.sync_all()
    }

    fn remove_reserve(&self) {
        match std::fs::remove_file(self.path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!("cannot delete {}: {e}", self.path().display()),
        }
        // Let the file system hand out the freed blocks at once.
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
    }
}
