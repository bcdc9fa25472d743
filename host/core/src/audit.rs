//! Append-only, hash-chained audit log (one JSON object per line).
//!
//! Entry `n` carries `seq = n`, the hash of entry `n-1` in `prev` (64 zeros
//! for the first), and its own `hash = SHA-256(JSON of {seq, at, prev,
//! event})`. Editing an entry breaks its hash; removing or reordering entries
//! breaks `seq` and `prev`. Removing entries from the end leaves a valid
//! chain, so the head (last seq and hash) is also kept in `FILE.head`,
//! written atomically after every append, and checked by [`verify`].

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

/// An open audit log, positioned at its end.
pub struct AuditLog {
    path: PathBuf,
    seq: u64,
    last_hash: String,
}

impl AuditLog {
    /// Opens (creating, mode 0600) the log; an existing log is verified first
    /// so a new entry is never chained onto a tampered one.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let (seq, last_hash) = if path.exists() {
            verify(path)?
        } else {
            (0, GENESIS_HASH.to_string())
        };
        Ok(AuditLog {
            path: path.to_owned(),
            seq,
            last_hash,
        })
    }

    /// Appends `event` and returns the new entry's hash.
    pub fn append(&mut self, event: &serde_json::Value) -> Result<String, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let body = Body {
            seq: self.seq + 1,
            at: crate::time::now_rfc3339(),
            prev: self.last_hash.clone(),
            event: event.clone(),
        };
        let hash = hash_of(&body);
        let entry = Entry { body, hash };
        let mut line = serde_json::to_vec(&entry).expect("audit entries always serialise");
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(&line).map_err(io)?;
        f.sync_data().map_err(io)?;
        self.seq = entry.body.seq;
        self.last_hash = entry.hash.clone();
        let head = serde_json::to_vec(&Head {
            seq: self.seq,
            hash: self.last_hash.clone(),
        })
        .expect("head always serialises");
        crate::secrets::write_private(&head_path(&self.path), &head).map_err(|e| {
            AuditError::Io {
                path: head_path(&self.path),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        Ok(entry.hash)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks every entry of the log at `path`; returns the last (seq, hash).
pub fn verify(path: &Path) -> Result<(u64, String), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let bad = |line: usize, problem: String| AuditError::Tampered {
        path: path.to_owned(),
        line,
        problem,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut seq = 0u64;
    let mut prev = GENESIS_HASH.to_string();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(io)?;
        let entry: Entry = serde_json::from_str(&line)
            .map_err(|e| bad(n, format!("not a valid audit entry ({e})")))?;
        if entry.body.seq != seq + 1 {
            return Err(bad(
                n,
                format!(
                    "sequence jumps from {seq} to {}: entries were removed or reordered",
                    entry.body.seq
                ),
            ));
        }
        if entry.body.prev != prev {
            return Err(bad(
                n,
                "does not chain to the previous entry: entries were removed or reordered".into(),
            ));
        }
        if hash_of(&entry.body) != entry.hash {
            return Err(bad(
                n,
                "content does not match its hash: the entry was edited".into(),
            ));
        }
        seq = entry.body.seq;
        prev = entry.hash;
    }
    let head_file = head_path(path);
    if let Ok(text) = std::fs::read_to_string(&head_file) {
        let head: Head = serde_json::from_str(&text).map_err(|e| {
            bad(
                0,
                format!("head file {} is unreadable ({e})", head_file.display()),
            )
        })?;
        if head.seq != seq || head.hash != prev {
            return Err(bad(
                seq as usize,
                format!(
                    "log ends at entry {seq} but its head file records entry {}: entries were removed from the end",
                    head.seq
                ),
            ));
        }
    }
    Ok((seq, prev))
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
}
