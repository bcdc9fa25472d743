//! Lifeline licenses: the signed document ([`document`]), comparing an
//! installed license with a candidate ([`diff`]), fetching from the back
//! office over HTTPS through the configured proxy ([`fetch`]), installing
//! atomically with a backup ([`install`]), and the agent's update steps
//! with their persisted status ([`updater`]).

pub mod diff;
pub mod document;
pub mod fetch;
pub mod install;
pub mod updater;

use std::path::PathBuf;

pub use diff::{Changes, Verdict, compare};
pub use document::License;
pub use fetch::{BackOffice, FetchError};
pub use updater::{Check, Updater};

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
    #[error(
        "the remote service is disabled (remote_service.enabled = false): no connection to the back office is made"
    )]
    Disabled,
    #[error("the agent has no [remote_service] configured")]
    NotConfigured,
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("license refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Install(#[from] install::InstallError),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
