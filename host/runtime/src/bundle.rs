//! Signed plugin bundles: `pack` a plugin folder into a gzip'd tar, `sign`
//! it with an ed25519 key, `verify` it against trusted publisher keys, and
//! `install` it into a plugin folder. An installed folder keeps its
//! signature, so the agent verifies it again at every load.
//!
//! What is signed: the SHA-256 *content digest* of the plugin — every file's
//! relative path and SHA-256, sorted by path — so it is the same for the
//! archive and for the installed folder.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File holding the signature inside a bundle and an installed plugin.
pub const SIGNATURE_FILE: &str = "SIGNATURE.json";
/// Largest bundle accepted (compressed and unpacked).
pub const MAX_BUNDLE_BYTES: u64 = 64 << 20;
/// Most files a plugin may have.
pub const MAX_FILES: usize = 1000;
/// Prefix of a public key in configs and output.
pub const KEY_PREFIX: &str = "ed25519:";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{0}: the bundle is not signed (sign it with `lifeline plugin sign`)")]
    Unsigned(PathBuf),
    #[error("{0}: the content does not match its signature: the bundle was modified after signing")]
    Tampered(PathBuf),
    #[error("{path}: signed by {key}, which is not among the agent's trusted publisher keys")]
    Untrusted { path: PathBuf, key: String },
    #[error("{path}: unsafe entry {entry:?} (absolute path, \"..\", or not a regular file)")]
    UnsafeEntry { path: PathBuf, entry: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("invalid key {0}: expected {KEY_PREFIX} followed by base64 of 32 bytes")]
    BadKey(String),
}

#[derive(Serialize, Deserialize)]
struct SignatureFile {
    key: String,
    signature: String,
    digest: String,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BundleError + '_ {
    move |e| BundleError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// The files of a plugin: relative path → content.
pub type Files = BTreeMap<String, Vec<u8>>;

/// SHA-256 over (path, SHA-256 of content) of every file but the signature.
pub fn digest(files: &Files) -> [u8; 32] {
    let mut h = Sha256::new();
    for (path, data) in files.iter().filter(|(p, _)| p.as_str() != SIGNATURE_FILE) {
        h.update((path.len() as u64).to_be_bytes());
        h.update(path.as_bytes());
        h.update(Sha256::digest(data));
    }
    h.finalize().into()
}

fn safe_rel(path: &Path, bundle: &Path) -> Result<String, BundleError> {
    let ok = !path.as_os_str().is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    let s = path
        .to_str()
        .filter(|_| ok)
        .ok_or_else(|| BundleError::UnsafeEntry {
            path: bundle.to_owned(),
            entry: path.display().to_string(),
        })?;
    Ok(s.to_string())
}

/// Reads every regular file under `dir` (no symlinks).
pub fn read_dir_files(dir: &Path) -> Result<Files, BundleError> {
    let mut files = Files::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let p = entry.path();
            let ft = entry.file_type().map_err(io(&p))?;
            let rel = p.strip_prefix(dir).expect("walked from dir").to_owned();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let data = std::fs::read(&p).map_err(io(&p))?;
                total += data.len() as u64;
                if files.len() >= MAX_FILES || total > MAX_BUNDLE_BYTES {
                    return Err(BundleError::Invalid {
                        path: dir.to_owned(),
                        reason: "too many or too large files".into(),
                    });
                }
                files.insert(safe_rel(&rel, dir)?, data);
            } else {
                return Err(BundleError::UnsafeEntry {
                    path: dir.to_owned(),
                    entry: rel.display().to_string(),
                });
            }
        }
    }
    Ok(files)
}

/// Writes `files` as a deterministic gzip'd tar.
pub fn write_bundle(out: &Path, files: &Files) -> Result<(), BundleError> {
    let f = std::fs::File::create(out).map_err(io(out))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, data.as_slice())
            .map_err(io(out))?;
    }
    tar.into_inner()
        .map_err(io(out))?
        .finish()
        .map_err(io(out))?;
    Ok(())
}

/// Reads a bundle, refusing unsafe entries and oversized content.
pub fn read_bundle(path: &Path) -> Result<Files, BundleError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    if f.metadata().map_err(io(path))?.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::Invalid {
            path: path.to_owned(),
            reason: "larger than 64 MiB".into(),
        });
    }
    let gz = flate2::read::GzDecoder::new(f).take(MAX_BUNDLE_BYTES * 4);
    let mut tar = tar::Archive::new(gz);
    let mut files = Files::new();
    let bad = |e: std::io::Error| BundleError::Invalid {
        path: path.to_owned(),
        reason: format!("not a plugin bundle ({e})"),
    };
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let rel = entry.path().map_err(bad)?.into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BundleError::UnsafeEntry {
                path: path.to_owned(),
                entry: rel.display().to_string(),
            });
        }
        let rel = safe_rel(&rel, path)?;
        let mut data = Vec::new();
        (&mut entry)
            .take(MAX_BUNDLE_BYTES)
            .read_to_end(&mut data)
            .map_err(bad)?;
        if files.len() >= MAX_FILES {
            return Err(BundleError::Invalid {
                path: path.to_owned(),
                reason: "too many files".into(),
            });
        }
        files.insert(rel, data);
    }
    if !files.contains_key(crate::manifest::MANIFEST_FILE) {
        return Err(BundleError::Invalid {
            path: path.to_owned(),
            reason: "no plugin.toml inside".into(),
        });
    }
    Ok(files)
}

/// Formats a public key as `ed25519:BASE64`.
pub fn public_key_string(key: &VerifyingKey) -> String {
    format!("{KEY_PREFIX}{}", B64.encode(key.as_bytes()))
}

pub fn parse_public_key(s: &str) -> Result<VerifyingKey, BundleError> {
    let b = s
        .trim()
        .strip_prefix(KEY_PREFIX)
        .and_then(|b| B64.decode(b).ok())
        .ok_or_else(|| BundleError::BadKey(s.into()))?;
    let arr: [u8; 32] = b.try_into().map_err(|_| BundleError::BadKey(s.into()))?;
    VerifyingKey::from_bytes(&arr).map_err(|_| BundleError::BadKey(s.into()))
}

/// A new signing key; the secret is written owner-only.
pub fn keygen(secret_out: &Path) -> Result<VerifyingKey, BundleError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let text = format!("{}\n", B64.encode(key.to_bytes()));
    lifeline_core::secrets::write_private(secret_out, text.as_bytes()).map_err(|e| {
        BundleError::Io {
            path: secret_out.to_owned(),
            reason: e.to_string(),
        }
    })?;
    Ok(key.verifying_key())
}

/// Reads a signing key file (must be private).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, BundleError> {
    lifeline_core::secrets::check_private(path).map_err(|e| BundleError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let b = B64.decode(text.trim()).map_err(|_| BundleError::Invalid {
        path: path.to_owned(),
        reason: "not a Lifeline signing key".into(),
    })?;
    let arr: [u8; 32] = b.try_into().map_err(|_| BundleError::Invalid {
        path: path.to_owned(),
        reason: "not a Lifeline signing key".into(),
    })?;
    Ok(SigningKey::from_bytes(&arr))
}

/// Adds (or replaces) the signature of `files`.
pub fn sign(files: &mut Files, key: &SigningKey) {
    let d = digest(files);
    let sig = key.sign(&d);
    let file = SignatureFile {
        key: public_key_string(&key.verifying_key()),
        signature: B64.encode(sig.to_bytes()),
        digest: hex::encode(d),
    };
    files.insert(
        SIGNATURE_FILE.into(),
        serde_json::to_vec_pretty(&file).expect("signature serialises"),
    );
}

/// Checks the signature of `files` (from `origin`) against `trusted` keys;
/// returns the publisher key.
pub fn verify(
    files: &Files,
    origin: &Path,
    trusted: &[VerifyingKey],
) -> Result<VerifyingKey, BundleError> {
    let raw = files
        .get(SIGNATURE_FILE)
        .ok_or_else(|| BundleError::Unsigned(origin.to_owned()))?;
    let sf: SignatureFile = serde_json::from_slice(raw).map_err(|e| BundleError::Invalid {
        path: origin.to_owned(),
        reason: format!("unreadable {SIGNATURE_FILE}: {e}"),
    })?;
    let key = parse_public_key(&sf.key)?;
    let sig_bytes: [u8; 64] = B64
        .decode(&sf.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| BundleError::Tampered(origin.to_owned()))?;
    key.verify(&digest(files), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| BundleError::Tampered(origin.to_owned()))?;
    if !trusted.contains(&key) {
        return Err(BundleError::Untrusted {
            path: origin.to_owned(),
            key: sf.key,
        });
    }
    Ok(key)
}

/// Writes `files` into `plugins_root/<id>` atomically (staging folder, then
/// rename); an older version is replaced only once the new one is complete.
pub fn install(files: &Files, plugins_root: &Path, id: &str) -> Result<PathBuf, BundleError> {
    let target = plugins_root.join(id);
    // Random names created exclusively (mkdtemp, 0700): nothing planted at
    // a predictable name is followed or reused.
    let fresh = |what: &str| {
        tempfile::Builder::new()
            .prefix(&format!(".{id}.{what}-"))
            .tempdir_in(plugins_root)
            .map_err(io(plugins_root))
    };
    let staging = fresh("installing")?;
    for (rel, data) in files {
        let p = staging.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&p, data).map_err(io(&p))?;
    }
    // The installed folder is readable like any plugin folder.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(io(staging.path()))?;
    let old = fresh("old")?;
    if target.exists() {
        // Replaces the empty folder `old` (rename(2) allows it for folders).
        std::fs::rename(&target, old.path()).map_err(io(&target))?;
    }
    let staging = staging.keep();
    std::fs::rename(&staging, &target).map_err(io(&staging))?;
    // The previous version, now in `old`, is removed with it.
    drop(old);
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Files {
        let mut f = Files::new();
        f.insert("plugin.toml".into(), b"[plugin]\n".to_vec());
        f.insert("main.lua".into(), b"return {}".to_vec());
        f
    }

    #[test]
    fn sign_verify_tamper_untrusted_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        let public = keygen(&key_file).unwrap();
        let key = load_signing_key(&key_file).unwrap();
        let mut files = sample();
        let origin = Path::new("b.llpkg");
        assert!(matches!(
            verify(&files, origin, &[public]),
            Err(BundleError::Unsigned(_))
        ));
        sign(&mut files, &key);
        verify(&files, origin, &[public]).unwrap();
        let out = dir.path().join("b.llpkg");
        write_bundle(&out, &files).unwrap();
        let back = read_bundle(&out).unwrap();
        assert_eq!(back, files);
        let other = SigningKey::generate(&mut rand::rngs::OsRng).verifying_key();
        assert!(matches!(
            verify(&files, origin, &[other]),
            Err(BundleError::Untrusted { .. })
        ));
        files.insert("main.lua".into(), b"return {evil=1}".to_vec());
        assert!(matches!(
            verify(&files, origin, &[public]),
            Err(BundleError::Tampered(_))
        ));
        assert_eq!(
            parse_public_key(&public_key_string(&public)).unwrap(),
            public
        );
    }

    #[test]
    fn unsafe_entries_are_refused() {
        assert!(safe_rel(Path::new("../x"), Path::new("b")).is_err());
        assert!(safe_rel(Path::new("/etc/passwd"), Path::new("b")).is_err());
        assert!(safe_rel(Path::new("a/b.lua"), Path::new("b")).is_ok());
    }
}
