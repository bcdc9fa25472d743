//! Append-only, hash-chained audit log (one JSON object per line).
//!
//! Entry `n` carries `seq = n`, the hash of entry `n-1` in `prev` (64 zeros
//! for the first), and its own `hash = SHA-256(JSON of {seq, at, prev,
//! event})`. Editing an entry breaks its hash; removing or reordering entries
//! breaks `seq` and `prev`. Removing entries from the end leaves a valid
//! chain, so the head (last seq and hash) is also kept in `FILE.head`,
//! written atomically after every append, and checked by [`verify`].
//!
//! Crash safety: the log itself is the source of truth. An entry is synced
//! before the head is written, so after a crash (or a full disk) the head
//! may lag behind the log; [`AuditLog::open`] then rolls the head forward when
//! the extra entries chain from the entry the head names, and records that.
//! A last line without its newline is a write that never completed: it is
//! cut off and recorded too. The head may never be *ahead* of the log (that
//! is entries removed from the end).
//!
//! Writers: every open and append holds an exclusive lock on the log file
//! (`flock`), and an append first reads whatever other writers (another
//! `AuditLog` in this process, a license check in another process) added
//! since, so concurrent writers never fork the chain.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `prev` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log {path}, line {line}: {problem}")]
    Tampered {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Body {
    seq: u64,
    at: String,
    prev: String,
    event: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    body: Body,
    hash: String,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct Head {
    seq: u64,
    hash: String,
}

fn hash_of(body: &Body) -> String {
    let json = serde_json::to_vec(body).expect("audit entries always serialise");
    hex::encode(Sha256::digest(&json))
}

fn head_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

/// The end of the verified part of a log: last entry and byte length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tip {
    seq: u64,
    hash: String,
    len: u64,
}

impl Tip {
    fn genesis() -> Self {
        Tip {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
            len: 0,
        }
    }
}

/// What a scan found besides the chain itself.
struct Scan {
    /// Bytes of a last line without its newline (an incomplete write).
    torn: u64,
    /// Hash of the entry with the sequence number asked for, if seen.
    hash_at: Option<String>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

fn tampered(path: &Path, line: u64, problem: String) -> AuditError {
    AuditError::Tampered {
        path: path.to_owned(),
        line: usize::try_from(line).unwrap_or(usize::MAX),
        problem,
    }
}

/// Checks one complete line against the chain so far and advances `tip`.
fn check_line(path: &Path, tip: &mut Tip, line: &[u8]) -> Result<(), AuditError> {
    let n = tip.seq + 1;
    let entry: Entry = serde_json::from_slice(line)
        .map_err(|e| tampered(path, n, format!("not a valid audit entry ({e})")))?;
    if entry.body.seq != n {
        return Err(tampered(
            path,
            n,
            format!(
                "sequence jumps from {} to {}: entries were removed or reordered",
                tip.seq, entry.body.seq
            ),
        ));
    }
    if entry.body.prev != tip.hash {
        return Err(tampered(
            path,
            n,
            "does not chain to the previous entry: entries were removed or reordered".into(),
        ));
    }
    if hash_of(&entry.body) != entry.hash {
        return Err(tampered(
            path,
            n,
            "content does not match its hash: the entry was edited".into(),
        ));
    }
    tip.seq = n;
    tip.hash = entry.hash;
    Ok(())
}

/// Reads entries from `reader` (positioned at `tip.len`) to its end,
/// checking that they chain from `tip`.
fn scan(
    path: &Path,
    mut reader: impl BufRead,
    tip: &mut Tip,
    want: Option<u64>,
) -> Result<Scan, AuditError> {
    let mut found = Scan {
        torn: 0,
        hash_at: (want == Some(tip.seq)).then(|| tip.hash.clone()),
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io_err(path))?;
        if n == 0 {
            return Ok(found);
        }
        if buf.last() != Some(&b'\n') {
            found.torn = n as u64;
            return Ok(found);
        }
        check_line(path, tip, &buf[..n - 1])?;
        tip.len += n as u64;
        if want == Some(tip.seq) {
            found.hash_at = Some(tip.hash.clone());
        }
    }
}

fn read_head(path: &Path) -> Result<Option<Head>, AuditError> {
    let head_file = head_path(path);
    let text = match std::fs::read_to_string(&head_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&head_file)(e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        tampered(
            path,
            0,
            format!("head file {} is unreadable ({e})", head_file.display()),
        )
    })
}

/// Checks the head against a scanned log: it may lag behind (a crash
/// between entry and head), never be ahead or name another entry.
fn check_head(path: &Path, head: &Head, tip: &Tip, scan: &Scan) -> Result<(), AuditError> {
    if head.seq > tip.seq {
        return Err(tampered(
            path,
            tip.seq,
            format!(
                "log ends at entry {} but its head file records entry {}: entries were removed from the end",
                tip.seq, head.seq
            ),
        ));
    }
    if scan.hash_at.as_deref() != Some(head.hash.as_str()) {
        return Err(tampered(
            path,
            head.seq,
            format!(
                "entry {} is not the one its head file records: the log was rewritten",
                head.seq
            ),
        ));
    }
    Ok(())
}

/// Opens the log file for reading and appending (created 0600) and takes
/// the exclusive writer lock, held until the file is dropped.
fn open_locked(path: &Path) -> Result<std::fs::File, AuditError> {
    let f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.lock().map_err(io_err(path))?;
    Ok(f)
}

/// An open audit log, positioned at its end.
pub struct AuditLog {
    path: PathBuf,
    tip: Tip,
}

impl AuditLog {
    /// Opens (creating, mode 0600) the log; an existing log is verified first
    /// so a new entry is never chained onto a tampered one. A head lagging
    /// behind the log is rolled forward and an incomplete last line cut off;
    /// either is recorded in a new entry (`audit_log_repaired`).
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let file = open_locked(path)?;
        let head = read_head(path)?;
        let mut tip = Tip::genesis();
        let found = scan(
            path,
            BufReader::new(&file),
            &mut tip,
            head.as_ref().map(|h| h.seq),
        )?;
        if let Some(h) = &head {
            check_head(path, h, &tip, &found)?;
        }
        let mut log = AuditLog {
            path: path.to_owned(),
            tip,
        };
        let behind = head.as_ref().map_or(0, |h| log.tip.seq - h.seq);
        if found.torn > 0 {
            log.cut_torn(&file, found.torn)?;
        }
        if found.torn > 0 || behind > 0 {
            log.append_locked(
                &file,
                &serde_json::json!({
                    "event": "audit_log_repaired",
                    "incomplete_bytes_removed": found.torn,
                    "entries_after_head": behind,
                }),
            )?;
        }
        Ok(log)
    }

    /// Appends `event` and returns the new entry's hash.
    pub fn append(&mut self, event: &serde_json::Value) -> Result<String, AuditError> {
        let file = open_locked(&self.path)?;
        self.catch_up(&file)?;
        self.append_locked(&file, event)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Under the lock: reads and checks what other writers appended since
    /// this log last wrote or read.
    fn catch_up(&mut self, file: &std::fs::File) -> Result<(), AuditError> {
        use std::io::{Seek, SeekFrom};
        let len = file.metadata().map_err(io_err(&self.path))?.len();
        if len == self.tip.len {
            return Ok(());
        }
        if len < self.tip.len {
            return Err(tampered(
                &self.path,
                self.tip.seq,
                format!(
                    "the log shrank from {} to {len} bytes while it was open: entries were removed",
                    self.tip.len
                ),
            ));
        }
        let mut reader = BufReader::new(file);
        reader
            .seek(SeekFrom::Start(self.tip.len))
            .map_err(io_err(&self.path))?;
        let mut tip = self.tip.clone();
        let found = scan(&self.path, reader, &mut tip, None)?;
        self.tip = tip;
        if found.torn > 0 {
            self.cut_torn(file, found.torn)?;
            self.append_locked(
                file,
                &serde_json::json!({
                    "event": "audit_log_repaired",
                    "incomplete_bytes_removed": found.torn,
                    "entries_after_head": 0,
                }),
            )?;
        }
        Ok(())
    }

    /// Cuts an incomplete last line off (a write that never completed).
    fn cut_torn(&self, file: &std::fs::File, bytes: u64) -> Result<(), AuditError> {
        tracing::warn!(
            log = %self.path.display(),
            "audit log: removing an incomplete last line ({bytes} bytes) left by an interrupted write"
        );
        file.set_len(self.tip.len).map_err(io_err(&self.path))?;
        file.sync_all().map_err(io_err(&self.path))
    }

    /// Under the lock: writes one entry, syncs it, then the head. A failed
    /// write is cut off again so the log never keeps half an entry.
    fn append_locked(
        &mut self,
        mut file: &std::fs::File,
        event: &serde_json::Value,
    ) -> Result<String, AuditError> {
        let body = Body {
            seq: self.tip.seq + 1,
            at: crate::time::now_rfc3339(),
            prev: self.tip.hash.clone(),
            event: event.clone(),
        };
        let hash = hash_of(&body);
        let entry = Entry { body, hash };
        let mut line = serde_json::to_vec(&entry).expect("audit entries always serialise");
        line.push(b'\n');
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            let _ = file.set_len(self.tip.len);
            return Err(io_err(&self.path)(e));
        }
        self.tip = Tip {
            seq: entry.body.seq,
            hash: entry.hash.clone(),
            len: self.tip.len + line.len() as u64,
        };
        self.write_head();
        Ok(entry.hash)
    }

    /// Writes the head; a failure (full disk) is logged, not returned: the
    /// entry is durable and the next open rolls the head forward.
    fn write_head(&self) {
        let head = serde_json::to_vec(&Head {
            seq: self.tip.seq,
            hash: self.tip.hash.clone(),
        })
        .expect("head always serialises");
        if let Err(e) = crate::secrets::write_private(&head_path(&self.path), &head) {
            tracing::warn!("audit log head not updated (the next start repairs it): {e}");
        }
    }
}

/// Checks every entry of the log at `path`; returns the last (seq, hash).
/// Read-only: a head lagging behind the log (a crash between entry and
/// head) is accepted when the entry it names is in the chain; an incomplete
/// last line (a write that never completed) is ignored.
pub fn verify(path: &Path) -> Result<(u64, String), AuditError> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    let head = read_head(path)?;
    let mut tip = Tip::genesis();
    let found = scan(
        path,
        BufReader::new(f),
        &mut tip,
        head.as_ref().map(|h| h.seq),
    )?;
    if let Some(h) = &head {
        check_head(path, h, &tip, &found)?;
    }
    Ok((tip.seq, tip.hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.log");
        let mut log = AuditLog::open(&p).unwrap();
        for i in 0..n {
            log.append(&json!({"event": "test", "i": i})).unwrap();
        }
        (dir, p)
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write(p: &Path, l: &[String]) {
        std::fs::write(p, l.join("\n") + "\n").unwrap();
    }

    #[test]
    fn intact_log_verifies_and_reopens() {
        let (_d, p) = log_with(3);
        assert_eq!(verify(&p).unwrap().0, 3);
        let mut log = AuditLog::open(&p).unwrap();
        log.append(&json!({"event": "more"})).unwrap();
        assert_eq!(verify(&p).unwrap().0, 4);
    }

    #[test]
    fn edit_remove_reorder_truncate_are_detected() {
        let (_d, p) = log_with(4);
        let orig = lines(&p);

        let mut edited = orig.clone();
        edited[1] = edited[1].replace("\"i\":1", "\"i\":7");
        write(&p, &edited);
        assert!(verify(&p).unwrap_err().to_string().contains("edited"));

        let mut removed = orig.clone();
        removed.remove(1);
        write(&p, &removed);
        assert!(verify(&p).unwrap_err().to_string().contains("removed"));

        let mut reordered = orig.clone();
        reordered.swap(1, 2);
        write(&p, &reordered);
        assert!(verify(&p).unwrap_err().to_string().contains("line 2"));

        write(&p, &orig[..3]);
        assert!(
            verify(&p)
                .unwrap_err()
                .to_string()
                .contains("removed from the end")
        );

        write(&p, &orig);
        verify(&p).unwrap();
    }
    #[test]
    fn crash_between_entry_and_head_is_rolled_forward() {
        let (_d, p) = log_with(3);
        let old_head = std::fs::read(head_path(&p)).unwrap();
        AuditLog::open(&p)
            .unwrap()
            .append(&json!({"event": "synced, then the crash"}))
            .unwrap();
        // The crash: the entry is on disk, the head still names entry 3.
        std::fs::write(head_path(&p), &old_head).unwrap();
        assert_eq!(verify(&p).unwrap().0, 4);
        let mut log = AuditLog::open(&p).unwrap();
        let last = lines(&p).pop().unwrap();
        assert!(
            last.contains("audit_log_repaired") && last.contains("\"entries_after_head\":1"),
            "{last}"
        );
        log.append(&json!({"event": "after"})).unwrap();
        assert_eq!(verify(&p).unwrap().0, 6);
        let head: Head = serde_json::from_slice(&std::fs::read(head_path(&p)).unwrap()).unwrap();
        assert_eq!(head.seq, 6);
    }

    #[test]
    fn torn_last_line_is_cut_off_and_recorded() {
        let (_d, p) = log_with(2);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":3,\"at\":\"2026").unwrap();
        drop(f);
        assert_eq!(verify(&p).unwrap().0, 2);
        let mut log = AuditLog::open(&p).unwrap();
        let all = lines(&p);
        assert_eq!(all.len(), 3);
        assert!(
            all[2].contains("audit_log_repaired")
                && all[2].contains("\"incomplete_bytes_removed\":19"),
            "{}",
            all[2]
        );
        log.append(&json!({"event": "after"})).unwrap();
        assert_eq!(verify(&p).unwrap().0, 4);
    }

    #[test]
    fn head_ahead_or_naming_another_entry_is_refused_on_open() {
        let (_d, p) = log_with(3);
        let orig = lines(&p);
        write(&p, &orig[..2]);
        let err = AuditLog::open(&p).err().unwrap().to_string();
        assert!(err.contains("removed from the end"), "{err}");
        write(&p, &orig);
        let fake = serde_json::to_vec(&Head {
            seq: 2,
            hash: "ab".repeat(32),
        })
        .unwrap();
        std::fs::write(head_path(&p), fake).unwrap();
        let err = AuditLog::open(&p).err().unwrap().to_string();
        assert!(err.contains("rewritten"), "{err}");
    }

    #[test]
    fn concurrent_writers_never_fork_the_chain() {
        let (_d, p) = log_with(1);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut log = AuditLog::open(&p).unwrap();
                    for i in 0..25 {
                        log.append(&json!({"writer": w, "i": i})).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(verify(&p).unwrap().0, 101);
        assert_eq!(lines(&p).len(), 101);
    }
}
