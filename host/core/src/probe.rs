//! Looking at a broker's certificate before trusting it: a TLS handshake
//! that accepts any certificate (its handshake signature still checked) and
//! returns the one presented, and nothing else — no Lifeline message is
//! sent. Used by `lifeline agent setup` / `operator setup` (show the
//! fingerprint, ask the person to confirm it) and by a join-file join (the
//! certificate must be the file's pin and its key must have signed the file).

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::client::{ConnectError, HANDSHAKE_TIMEOUT};
use crate::proxy::{ManualProxy, OpenError, Proxies};
use crate::tls::{self, Fingerprint};

/// What a broker presented.
#[derive(Debug, Clone)]
pub struct Presented {
    /// The leaf certificate.
    pub certificate: CertificateDer<'static>,
    pub fingerprint: Fingerprint,
    /// The subject's common name, when it has one.
    pub common_name: Option<String>,
    /// The DNS names the certificate is issued for.
    pub dns_names: Vec<String>,
}

/// Connects to `address` (through `proxy` when given), completes a TLS 1.3
/// handshake whatever certificate the broker presents, and returns it.
pub async fn presented_certificate(
    address: &str,
    server_name: &str,
    proxy: Option<&ManualProxy>,
) -> Result<Presented, ConnectError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, probe(address, server_name, proxy))
        .await
        .map_err(|_| ConnectError::Timeout(HANDSHAKE_TIMEOUT))?
}

async fn probe(
    address: &str,
    server_name: &str,
    proxy: Option<&ManualProxy>,
) -> Result<Presented, ConnectError> {
    let config = ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls::TlsError::from)?
        .dangerous()
        // Any certificate: this connection only looks at it (see
        // `PinnedVerifier`); the handshake still proves the key is held.
        .with_custom_certificate_verifier(Arc::new(tls::PinnedVerifier {
            expected: None,
            provider: tls::provider(),
        }))
        .with_no_client_auth();
    let proxies = match proxy {
        Some(p) => Proxies::manual(p)?,
        None => Proxies::direct(),
    };
    let tcp = match crate::proxy::open(&proxies, "https", address).await {
        Ok(tcp) => tcp,
        Err(OpenError::Proxy(e)) => return Err(e.into()),
        Err(OpenError::Direct(source)) => {
            return Err(ConnectError::Tcp {
                address: address.to_string(),
                source,
            });
        }
    };
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| ConnectError::ServerName(server_name.to_string()))?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Tls {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
        .ok_or_else(|| ConnectError::Tls {
            address: address.to_string(),
            reason: "the broker presented no certificate".into(),
        })?;
    Ok(describe(certificate))
}

/// Fingerprint and names of a certificate.
pub fn describe(certificate: CertificateDer<'static>) -> Presented {
    let dns_names = webpki::EndEntityCert::try_from(&certificate)
        .map(|c| c.valid_dns_names().map(str::to_string).collect())
        .unwrap_or_default();
    Presented {
        fingerprint: Fingerprint::of(&certificate),
        common_name: common_name(&certificate),
        dns_names,
        certificate,
    }
}

/// Longest common name read from a certificate.
const MAX_COMMON_NAME_BYTES: usize = 127;

/// The first common name (OID 2.5.4.3) in the certificate, with a short
/// string length: enough to show a person which certificate this is.
fn common_name(der: &[u8]) -> Option<String> {
    const CN_OID: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x03];
    // The subject comes after the issuer: the last common name is the subject's.
    let at = der.windows(CN_OID.len()).rposition(|w| w == CN_OID)?;
    let rest = der.get(at + CN_OID.len()..)?;
    let (&tag, rest) = rest.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    // UTF8String, PrintableString, IA5String; short-form length only.
    if !matches!(tag, 0x0c | 0x13 | 0x16) || len > MAX_COMMON_NAME_BYTES {
        return None;
    }
    let s = std::str::from_utf8(rest.get(..len)?).ok()?;
    Some(s.chars().filter(|c| !c.is_control()).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn common_name_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Example Support broker");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let p = super::describe(cert.der().clone());
        assert_eq!(p.common_name.as_deref(), Some("Example Support broker"));
        assert_eq!(p.dns_names, vec!["localhost".to_string()]);
    }
}
