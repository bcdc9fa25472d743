//! Plugin-private key/value state: one JSON file per plugin, written
//! atomically, kept across calls, reloads and restarts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::host::HostError;

/// Keys one plugin may keep.
pub const MAX_KEYS: usize = 1024;
/// Longest key.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest value.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

pub struct KvStore {
    path: PathBuf,
    map: Mutex<Option<BTreeMap<String, String>>>,
}

impl KvStore {
    /// The store kept in `path` (created on first write).
    pub fn new(path: PathBuf) -> Self {
        KvStore {
            path,
            map: Mutex::new(None),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, String>) -> R) -> Result<R, String> {
        let mut guard = self
            .map
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        if guard.is_none() {
            let loaded = match std::fs::read_to_string(&self.path) {
                Ok(text) => serde_json::from_str(&text)
                    .map_err(|e| format!("plugin state {} is damaged: {e}", self.path.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
            };
            *guard = Some(loaded);
        }
        Ok(f(guard.as_mut().expect("loaded just above")))
    }

    fn save(&self, map: &BTreeMap<String, String>) -> Result<(), String> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let json = serde_json::to_vec(map).expect("string maps always serialise");
        lifeline_core::secrets::write_private(&self.path, &json).map_err(|e| e.to_string())
    }

    pub fn get(&self, key: &str) -> Result<Option<String>, String> {
        self.with(|m| m.get(key).cloned())
    }

    pub fn set(&self, key: &str, value: &str) -> Result<(), HostError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(HostError::Limit(format!(
                "a key has 1 to {MAX_KEY_BYTES} bytes"
            )));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(HostError::Limit(format!(
                "a value is limited to {} KiB",
                MAX_VALUE_BYTES >> 10
            )));
        }
        let snapshot = self
            .with(|m| {
                if !m.contains_key(key) && m.len() >= MAX_KEYS {
                    return Err(HostError::Limit(format!(
                        "a plugin keeps at most {MAX_KEYS} keys"
                    )));
                }
                m.insert(key.to_string(), value.to_string());
                Ok(m.clone())
            })
            .map_err(HostError::Failed)??;
        self.save(&snapshot).map_err(HostError::Failed)
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        let snapshot = self.with(|m| m.remove(key).map(|_| m.clone()))?;
        match snapshot {
            Some(m) => self.save(&m),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_across_instances() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state/p.json");
        let kv = KvStore::new(p.clone());
        assert_eq!(kv.get("a").unwrap(), None);
        kv.set("a", "1").unwrap();
        let kv2 = KvStore::new(p);
        assert_eq!(kv2.get("a").unwrap().as_deref(), Some("1"));
        kv2.delete("a").unwrap();
        assert_eq!(kv2.get("a").unwrap(), None);
        assert!(matches!(kv2.set("", "x"), Err(HostError::Limit(_))));
    }
}
