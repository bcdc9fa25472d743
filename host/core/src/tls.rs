//! TLS 1.3 for every Lifeline connection.
//!
//! The broker presents either a CA-issued certificate (configured files) or a
//! self-signed one it generates on first start and keeps in its data folder.
//! Clients trust the broker in one of three ways, chosen by their config:
//! a pinned SHA-256 fingerprint, a private CA file, or the webpki roots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::secrets::{self, SecretFileError};

/// File name of the generated self-signed certificate inside the data folder.
pub const SELF_SIGNED_CERT_FILE: &str = "broker-cert.pem";
/// File name of the generated private key inside the data folder (mode 0600).
pub const SELF_SIGNED_KEY_FILE: &str = "broker-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{path} contains no {what}")]
    Empty { what: &'static str, path: PathBuf },
    #[error(transparent)]
    Secret(#[from] SecretFileError),
    #[error("cannot create the self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration error: {0}")]
    Config(#[from] rustls::Error),
    #[error(
        "invalid certificate fingerprint {0:?}: expected 64 hex digits (colons optional), e.g. SHA256:AB:CD:…"
    )]
    BadFingerprint(String),
}

/// The broker's certificate chain and key.
pub struct Identity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 fingerprint of the leaf certificate.
    pub fingerprint: Fingerprint,
    /// True when the certificate was generated just now.
    pub generated: bool,
}

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert: &[u8]) -> Self {
        Fingerprint(Sha256::digest(cert).into())
    }

    /// Parses `SHA256:AB:CD:…`, `ab:cd:…` or plain hex (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, TlsError> {
        let t = s.trim();
        let t = t
            .strip_prefix("SHA256:")
            .or_else(|| t.strip_prefix("sha256:"))
            .unwrap_or(t);
        let hexdigits: String = t.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(&hexdigits).map_err(|_| TlsError::BadFingerprint(s.into()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| TlsError::BadFingerprint(s.into()))?;
        Ok(Fingerprint(arr))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SHA256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The one crypto provider of the project (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads a configured certificate and key, or the self-signed pair in
/// `data_dir`, generating it on first start.
pub fn load_or_create_identity(
    data_dir: &Path,
    configured: Option<(&Path, &Path)>,
    names: &[String],
) -> Result<Identity, TlsError> {
    let (cert_path, key_path) = match configured {
        Some((c, k)) => (c.to_owned(), k.to_owned()),
        None => (
            data_dir.join(SELF_SIGNED_CERT_FILE),
            data_dir.join(SELF_SIGNED_KEY_FILE),
        ),
    };
    let mut generated = false;
    if configured.is_none() && !cert_path.exists() {
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        secrets::write_private(&key_path, ck.key_pair.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, ck.cert.pem()).map_err(|e| TlsError::Read {
            what: "certificate",
            path: cert_path.clone(),
            reason: e.to_string(),
        })?;
        generated = true;
    }
    let certs = load_certs(&cert_path)?;
    secrets::check_private(&key_path)?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Read {
        what: "private key",
        path: key_path.clone(),
        reason: e.to_string(),
    })?;
    let fingerprint = Fingerprint::of(&certs[0]);
    Ok(Identity {
        certs,
        key,
        fingerprint,
        generated,
    })
}

/// Reads every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_err = |e: String| TlsError::Read {
        what: "certificate",
        path: path.to_owned(),
        reason: e,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what: "certificate",
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Server side: TLS 1.3 only.
pub fn server_config(id: &Identity) -> Result<Arc<ServerConfig>, TlsError> {
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(id.certs.clone(), id.key.clone_key())?;
    Ok(Arc::new(cfg))
}

/// How a client decides to trust the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Accept exactly the certificate with this fingerprint.
    Pinned(Fingerprint),
    /// Verify the chain against this CA file (PEM).
    CaFile(PathBuf),
    /// Verify the chain against the public webpki roots.
    WebPki,
}

/// Client side: TLS 1.3 only, trusting per `trust`.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut cfg = match trust {
        Trust::Pinned(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                expected: Some(*fp),
                provider: provider(),
            }))
            .with_no_client_auth(),
        Trust::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(path)? {
                roots.add(c)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::WebPki => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    // SSLKEYLOGFILE, as curl and browsers honour it: whoever sets this
    // process's environment may have its TLS session keys written there,
    // to read a packet capture (the end-to-end test does, to show that
    // even with the TLS keys a capture at the broker holds no session
    // content). Unset, nothing is written. The broker's server side does
    // not log keys.
    cfg.key_log = Arc::new(rustls::KeyLogFile::new());
    Ok(Arc::new(cfg))
}

/// Accepts only the certificate whose SHA-256 fingerprint is pinned; the
/// signature of the handshake is still verified against that certificate.
///
/// `expected: None` accepts any certificate and serves only
/// [`crate::probe`], which shows the customer or operator the fingerprint
/// before they trust it; nothing but that look is sent over such a
/// connection (threat: a connection that trusts anything carrying session
/// traffic).
#[derive(Debug)]
pub(crate) struct PinnedVerifier {
    pub(crate) expected: Option<Fingerprint>,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(expected) = self.expected else {
            return Ok(ServerCertVerified::assertion());
        };
        let got = Fingerprint::of(end_entity);
        if got == expected {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "broker certificate does not match the pinned fingerprint: expected {expected}, broker presented {got}"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_formats_parse_back() {
        let fp = Fingerprint::of(b"hello");
        let s = fp.to_string();
        assert!(s.starts_with("SHA256:"));
        assert_eq!(Fingerprint::parse(&s).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&s.to_lowercase()).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&hex::encode(fp.0)).unwrap(), fp);
        assert!(Fingerprint::parse("SHA256:AB").is_err());
    }

    #[test]
    fn self_signed_identity_is_created_once_and_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string()];
        let a = load_or_create_identity(dir.path(), None, &names).unwrap();
        assert!(a.generated);
        let b = load_or_create_identity(dir.path(), None, &names).unwrap();
        assert!(!b.generated);
        assert_eq!(a.fingerprint, b.fingerprint);
        secrets::check_private(&dir.path().join(SELF_SIGNED_KEY_FILE)).unwrap();
        server_config(&a).unwrap();
    }
}
