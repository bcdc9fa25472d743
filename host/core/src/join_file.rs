//! The join file (`*.lifeline`): what the join page hands the customer so
//! that the agent joins with nothing to configure — the broker's address,
//! its certificate pin and the invitation, signed with the key of the
//! broker's TLS certificate.
//!
//! The file is TOML a person can read. Every line but the last is the
//! signed body, exactly as stored (bytes, comments included); the last line
//! is `signature = "BASE64"`, the signature of [`SIGNED_CONTEXT`] followed
//! by the body, made with the certificate's key under `signature_scheme`.
//!
//! The agent connects to `broker`, requires the certificate whose SHA-256
//! is `fingerprint`, and only then checks the signature with that
//! certificate's public key ([`SignedJoinFile::verify`]): a file changed
//! after the broker issued it, or pointing at another broker's certificate,
//! fails before any join message is sent.

use std::path::{Path, PathBuf};

use base64::Engine;
use rustls::SignatureScheme;
use rustls::pki_types::CertificateDer;
use rustls::sign::SigningKey;
use serde::Deserialize;
use toml::Spanned;

use crate::config::{ConfigError, Doc};
use crate::tls::Fingerprint;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The file's media type (served by the broker, registered by
/// `lifeline agent install-desktop`).
pub const MEDIA_TYPE: &str = "application/x-lifeline-join";
/// The file name extension.
pub const EXTENSION: &str = "lifeline";
/// Largest join file read (a real one is well under 1 KiB).
pub const MAX_JOIN_FILE_BYTES: usize = 16 * 1024;
/// Prefixed to the body before signing, so that a join-file signature can
/// never be taken for a signature of anything else made with the key.
pub const SIGNED_CONTEXT: &[u8] = b"Lifeline join file v1\n";
/// Longest text field (names, address, invitation).
pub const MAX_FIELD_CHARS: usize = 256;
/// Signature schemes a broker's key may sign with (the TLS 1.3 schemes of
/// ECDSA, Ed25519 and RSA keys), in the order offered to the key.
pub const SCHEMES: [SignatureScheme; 5] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA512,
];

const SIGNATURE_PREFIX: &str = "signature = \"";

/// A join-file problem, always naming the file.
#[derive(Debug, thiserror::Error)]
pub enum JoinFileError {
    #[error("cannot read join file {file}: {reason}")]
    Read { file: PathBuf, reason: String },
    #[error("join file {file} is larger than {MAX_JOIN_FILE_BYTES} bytes: not a join file")]
    TooLarge { file: PathBuf },
    #[error("join file {file} is not a valid join file")]
    Format {
        file: PathBuf,
        #[source]
        source: ConfigError,
    },
    #[error(
        "join file {file}:{line}: the last line must be the signature (signature = \"…\"); the file was cut short or altered"
    )]
    NoSignature { file: PathBuf, line: usize },
    #[error(
        "join file {file} was altered after the broker issued it: its signature does not match its content ({reason})"
    )]
    Altered { file: PathBuf, reason: String },
    #[error(
        "join file {file} is for another broker: its certificate pin {pinned} does not match the broker at {address}, which presented {presented}"
    )]
    OtherBroker {
        file: PathBuf,
        pinned: Fingerprint,
        address: String,
        presented: Fingerprint,
    },
    #[error("join file {file} expired at {at}; ask your technician for a new invitation")]
    Expired { file: PathBuf, at: String },
    #[error("cannot sign the join file: {0}")]
    Sign(String),
}

/// What a join file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinFields {
    /// `host:port` of the broker's session listener, as the customer reaches it.
    pub broker: String,
    /// TLS server name (SNI).
    pub server_name: String,
    /// SHA-256 of the broker's certificate.
    pub fingerprint: Fingerprint,
    /// The invitation: the personalised link's token (the same secret the
    /// link carries, nothing more).
    pub invitation: String,
    /// Who invites.
    pub operator: String,
    pub title: String,
    pub organisation: String,
    /// Milliseconds since the epoch: the invitation's expiry.
    pub expires_at: i64,
}

/// A join file read from disk, not yet verified.
#[derive(Debug, Clone)]
pub struct SignedJoinFile {
    pub file: PathBuf,
    pub fields: JoinFields,
    scheme: SignatureScheme,
    body: Vec<u8>,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJoinFile {
    format: Spanned<u32>,
    organisation: Spanned<String>,
    operator: Spanned<String>,
    title: Spanned<String>,
    broker: Spanned<String>,
    server_name: Spanned<String>,
    fingerprint: Spanned<String>,
    invitation: Spanned<String>,
    expires_at: Spanned<String>,
    signature_scheme: Spanned<String>,
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Writes a signed join file with `key` (the broker certificate's key).
pub fn issue(fields: &JoinFields, key: &dyn SigningKey) -> Result<String, JoinFileError> {
    let signer = key.choose_scheme(&SCHEMES).ok_or_else(|| {
        JoinFileError::Sign(format!(
            "the certificate's key ({:?}) signs with none of {SCHEMES:?}",
            key.algorithm()
        ))
    })?;
    let body = format!(
        "# Lifeline join file: open it with Lifeline, or run\n\
         #   lifeline agent join THIS-FILE\n\
         # to join the remote-support session below. It is signed by the broker:\n\
         # a changed file is refused.\n\
         format = {FORMAT_VERSION}\n\
         organisation = {}\n\
         operator = {}\n\
         title = {}\n\
         broker = {}\n\
         server_name = {}\n\
         fingerprint = {}\n\
         invitation = {}\n\
         expires_at = {}\n\
         signature_scheme = {}\n",
        quoted(&fields.organisation),
        quoted(&fields.operator),
        quoted(&fields.title),
        quoted(&fields.broker),
        quoted(&fields.server_name),
        quoted(&fields.fingerprint.to_string()),
        quoted(&fields.invitation),
        quoted(&crate::time::millis_to_rfc3339(fields.expires_at)),
        quoted(&format!("{:?}", signer.scheme())),
    );
    let sig = signer
        .sign(&signed_message(body.as_bytes()))
        .map_err(|e| JoinFileError::Sign(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig);
    Ok(format!("{body}{SIGNATURE_PREFIX}{b64}\"\n"))
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    [SIGNED_CONTEXT, body].concat()
}

/// Reads and parses a join file (no verification yet).
pub fn load(file: &Path) -> Result<SignedJoinFile, JoinFileError> {
    let read_err = |reason: String| JoinFileError::Read {
        file: file.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(file).map_err(|e| read_err(e.to_string()))?;
    if meta.len() > MAX_JOIN_FILE_BYTES as u64 {
        return Err(JoinFileError::TooLarge {
            file: file.to_owned(),
        });
    }
    let bytes = std::fs::read(file).map_err(|e| read_err(e.to_string()))?;
    parse(file, &bytes)
}

/// Does this file look like a join file (its first line is the header
/// [`issue`] writes)? Used to tell a file from a connection ID or link.
pub fn looks_like_join_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 32];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n].starts_with(b"# Lifeline join file")
}

/// Parses a join file's bytes; `file` names it in errors.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<SignedJoinFile, JoinFileError> {
    if bytes.len() > MAX_JOIN_FILE_BYTES {
        return Err(JoinFileError::TooLarge {
            file: file.to_owned(),
        });
    }
    let format_err = |source: ConfigError| JoinFileError::Format {
        file: file.to_owned(),
        source,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| JoinFileError::Read {
        file: file.to_owned(),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    let (body, last) = match trimmed.rfind('\n') {
        Some(i) => (&text[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let last_line = body.matches('\n').count() + 1;
    let no_sig = || JoinFileError::NoSignature {
        file: file.to_owned(),
        line: last_line,
    };
    let b64 = last
        .strip_prefix(SIGNATURE_PREFIX)
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(no_sig)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| no_sig())?;
    let doc = Doc::new(file, body);
    let raw: RawJoinFile = doc.parse().map_err(format_err)?;
    let fields = validate(&doc, &raw).map_err(format_err)?;
    let scheme = SCHEMES
        .iter()
        .find(|s| format!("{s:?}") == *raw.signature_scheme.get_ref())
        .copied()
        .ok_or_else(|| {
            format_err(doc.invalid(
                &raw.signature_scheme.span(),
                "signature_scheme",
                format!("one of {SCHEMES:?}"),
            ))
        })?;
    Ok(SignedJoinFile {
        file: file.to_owned(),
        fields,
        scheme,
        body: body.as_bytes().to_vec(),
        signature,
    })
}

fn validate(doc: &Doc<'_>, raw: &RawJoinFile) -> Result<JoinFields, ConfigError> {
    if *raw.format.get_ref() != FORMAT_VERSION {
        return Err(doc.invalid(
            &raw.format.span(),
            "format",
            format!(
                "this Lifeline reads join files of format {FORMAT_VERSION}, not {}; download the file again or update Lifeline",
                raw.format.get_ref()
            ),
        ));
    }
    let text = |v: &Spanned<String>, key: &str, empty_ok: bool| {
        let s = v.get_ref();
        if (!empty_ok && s.trim().is_empty())
            || s.chars().count() > MAX_FIELD_CHARS
            || s.chars().any(char::is_control)
        {
            return Err(doc.invalid(
                &v.span(),
                key,
                format!("must be 1 to {MAX_FIELD_CHARS} characters on one line"),
            ));
        }
        Ok(s.clone())
    };
    let broker = text(&raw.broker, "broker", false)?;
    if !matches!(broker.rsplit_once(':'), Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0))
    {
        return Err(doc.invalid(
            &raw.broker.span(),
            "broker",
            format!("{broker:?} is not host:port"),
        ));
    }
    let invitation = text(&raw.invitation, "invitation", false)?;
    if !invitation
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(doc.invalid(
            &raw.invitation.span(),
            "invitation",
            "an invitation token is URL-safe base64 (letters, digits, '-', '_')",
        ));
    }
    let fingerprint = Fingerprint::parse(raw.fingerprint.get_ref())
        .map_err(|e| doc.invalid(&raw.fingerprint.span(), "fingerprint", e.to_string()))?;
    let expires_at = chrono::DateTime::parse_from_rfc3339(raw.expires_at.get_ref())
        .map_err(|e| {
            doc.invalid(
                &raw.expires_at.span(),
                "expires_at",
                format!("not an RFC 3339 time such as 2026-12-07T10:00:00Z: {e}"),
            )
        })?
        .timestamp_millis();
    Ok(JoinFields {
        broker,
        server_name: text(&raw.server_name, "server_name", false)?,
        fingerprint,
        invitation,
        operator: text(&raw.operator, "operator", false)?,
        title: text(&raw.title, "title", true)?,
        organisation: text(&raw.organisation, "organisation", false)?,
        expires_at,
    })
}

impl SignedJoinFile {
    /// Refuses a file past its expiry (`now`: milliseconds since the epoch).
    pub fn check_expiry(&self, now: i64) -> Result<(), JoinFileError> {
        if self.fields.expires_at < now {
            return Err(JoinFileError::Expired {
                file: self.file.clone(),
                at: crate::time::millis_to_rfc3339(self.fields.expires_at),
            });
        }
        Ok(())
    }

    /// Checks the file against the certificate the broker at
    /// `fields.broker` presented: it must be the pinned one, and its key
    /// must have signed the file.
    pub fn verify(&self, presented: &CertificateDer<'_>) -> Result<(), JoinFileError> {
        let got = Fingerprint::of(presented);
        if got != self.fields.fingerprint {
            return Err(JoinFileError::OtherBroker {
                file: self.file.clone(),
                pinned: self.fields.fingerprint,
                address: self.fields.broker.clone(),
                presented: got,
            });
        }
        let altered = |reason: String| JoinFileError::Altered {
            file: self.file.clone(),
            reason,
        };
        let algs = crate::tls::provider().signature_verification_algorithms;
        let alg = algs
            .mapping
            .iter()
            .find(|(s, _)| *s == self.scheme)
            .and_then(|(_, a)| a.first())
            .ok_or_else(|| altered(format!("unsupported scheme {:?}", self.scheme)))?;
        let cert = webpki::EndEntityCert::try_from(presented)
            .map_err(|e| altered(format!("cannot read the broker's certificate: {e}")))?;
        cert.verify_signature(*alg, &signed_message(&self.body), &self.signature)
            .map_err(|e| altered(format!("{e:?}")))
    }
}

#[cfg(test)]
#[path = "join_file_tests.rs"]
mod tests;
