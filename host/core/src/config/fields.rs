//! Values several roles' sections share: names, vendor keys, and secrets
//! read from private files (the agent's `[remote_service]`, the broker's
//! `[back_office]`). Errors name the file, the line and the key.

use toml::Spanned;

use super::{ConfigError, Doc};
use crate::proxy::Secret;
use crate::secrets;

/// Longest organisation ID, user or domain name.
pub const MAX_NAME_CHARS: usize = 128;
/// Largest secret file read (verification code, proxy password).
pub const MAX_SECRET_BYTES: u64 = 4096;

/// Reads a secret file: private (0600), not empty, first line only.
pub fn read_secret(doc: &Doc<'_>, p: &Spanned<String>, key: &str) -> Result<Secret, ConfigError> {
    let path = doc.path(p);
    secrets::check_private(&path)?;
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if len > MAX_SECRET_BYTES {
        return Err(doc.invalid(
            &p.span(),
            key,
            format!("{} is larger than {MAX_SECRET_BYTES} bytes", path.display()),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        doc.invalid(
            &p.span(),
            key,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        return Err(doc.invalid(&p.span(), key, format!("{} is empty", path.display())));
    }
    Ok(Secret::new(line))
}

/// Refuses a secret written inline (`key`), pointing to `file_key`.
pub fn inline_refused(
    doc: &Doc<'_>,
    v: &Option<Spanned<String>>,
    key: &str,
    file_key: &str,
) -> Result<(), ConfigError> {
    match v {
        Some(s) => Err(doc.invalid(
            &s.span(),
            key,
            format!("secrets are not written inline; put it in a file only you can read (chmod 600) and set {file_key} = \"path\""),
        )),
        None => Ok(()),
    }
}

/// A name: 1 to [`MAX_NAME_CHARS`] printable characters, trimmed.
pub fn name(doc: &Doc<'_>, v: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
    let s = v.get_ref().trim();
    if s.is_empty() || s.chars().count() > MAX_NAME_CHARS || s.chars().any(char::is_control) {
        return Err(doc.invalid(
            &v.span(),
            key,
            format!("must be 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(s.to_string())
}

/// Checks an `ed25519:BASE64` public key.
pub fn is_public_key(s: &str) -> bool {
    use base64::Engine;
    s.strip_prefix("ed25519:")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|b| b.len() == 32)
}

/// A list of vendor keys (`ed25519:…`).
pub fn keys(
    doc: &Doc<'_>,
    list: &[Spanned<String>],
    key: &str,
) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .map(|k| {
            if is_public_key(k.get_ref()) {
                Ok(k.get_ref().clone())
            } else {
                Err(doc.invalid(
                    &k.span(),
                    key,
                    "a vendor key is \"ed25519:\" and 44 base64 characters, as printed by `lifeline license keygen`",
                ))
            }
        })
        .collect()
}
