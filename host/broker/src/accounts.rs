//! Operator accounts: argon2id password hashes and login tokens.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Shortest password an operator may set.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (argon2 input bound, and a sanity limit).
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// How long a login token stays valid: 12 hours.
pub const LOGIN_TOKEN_TTL_MS: i64 = 12 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must have at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks a new password against the rules.
pub fn check_new_password(pw: &str) -> Result<(), PasswordError> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Hashes with argon2id (default parameters: 19 MiB, 2 passes). Slow on
/// purpose: call from a blocking thread.
pub fn hash_password(pw: &str) -> Result<String, PasswordError> {
    check_new_password(pw)?;
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A valid hash of a random password, verified against when the username is
/// unknown so that timing does not tell which usernames exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(&random_token_bytes::<16>(), &salt)
            .map(|h| h.to_string())
            .expect("hashing random bytes with a fresh salt cannot fail")
    })
}

/// True when `pw` matches the stored PHC-format `hash`.
pub fn verify_password(pw: &str, hash: &str) -> bool {
    if pw.len() > MAX_PASSWORD_CHARS * 4 {
        return false;
    }
    PasswordHash::new(hash)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

fn random_token_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A fresh 256-bit token, URL-safe base64 (43 characters).
pub fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_token_bytes::<32>())
}

/// What the database keeps of a token: its SHA-256, so a leaked database
/// does not hand out live logins.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verify_and_rules() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
        assert!(!verify_password("anything", dummy_hash()));
        assert_eq!(new_token().len(), 43);
        assert_ne!(new_token(), new_token());
    }
}
