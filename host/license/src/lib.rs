//! Lifeline licenses as the vendor's and the admin's tools see them: the
//! signed document ([`document`]: parse, sign, verify, About box),
//! comparing two licenses ([`diff`], for the back office and the CLI), and
//! the back office client ([`fetch`]: HTTPS through the configured proxy,
//! the agent's `back-office` endpoint). Checking for an update and
//! installing it is the license plugin's (`plugins/license`).

pub mod document;
pub mod fetch;

use std::path::PathBuf;

pub use document::License;
pub use fetch::{BackOffice, FetchError};

/// A license problem, naming the file or the field.
#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    #[error(transparent)]
    Document(#[from] lifeline_core::config::ConfigError),
    #[error("cannot read {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{origin}: a license is at most {max} bytes")]
    TooLarge { origin: PathBuf, max: usize },
    #[error("{0}: not a text (UTF-8) license file")]
    NotText(PathBuf),
    #[error("{0}: `license.signature` is missing; sign it with `lifeline license sign`")]
    Unsigned(PathBuf),
    #[error(
        "{0}: `license.signature` does not match the content for any trusted vendor key (the file was changed, or signed by another vendor)"
    )]
    BadSignature(PathBuf),
    #[error("{0:?} is not a vendor key; expected \"ed25519:\" and 44 base64 characters")]
    BadKey(String),
    #[error("{0}: not a Lifeline license signing key")]
    BadKeyFile(PathBuf),
    #[error(transparent)]
    Secret(#[from] lifeline_core::secrets::SecretFileError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
