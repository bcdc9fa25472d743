//! The back office client: one HTTPS GET to the broker's HTTPS listener,
//! trusted like the session connection (pinned fingerprint or CA), through
//! the configured proxy (manual, or the system's for `auto`), authenticated
//! by the organisation ID and verification code.
//!
//! The connection is opened like a session's (`lifeline_core::proxy::open`:
//! the same proxy rules and tunnel), TLS is the agent's rustls config (its
//! pinning verifier), and HTTP/1.1 is hyper's client. Blocking for its
//! callers (plugin host calls, `spawn_blocking`): each request runs on a
//! runtime of its own, so it never nests in the caller's. The verification
//! code is sent only inside TLS, as a header marked sensitive, and never
//! appears in an error.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, HOST, HeaderValue, USER_AGENT};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use lifeline_core::proxy::{self, OpenError, Proxies, ProxyError};
use lifeline_core::proxy::{ProxySetting, Secret, host_port, split_https_url};
use lifeline_core::tls::{self, Trust};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::document::MAX_LICENSE_BYTES;

/// Time one request may take, connect to last byte.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Time `lifeline agent status` waits for the back office.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest reply body accepted from the back office (hyper bounds the head).
pub const MAX_REPLY_BYTES: usize = MAX_LICENSE_BYTES + 16 * 1024;
/// Header carrying the service organisation ID.
pub const ORG_HEADER: &str = "x-lifeline-organisation";
/// Header carrying the verification code.
pub const CODE_HEADER: &str = "x-lifeline-verification-code";
/// Path prefix of the back office's license routes.
pub const LICENSE_PATH: &str = "/license/v1";

/// Why the back office could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0:?} is not an https:// back office URL")]
    BadUrl(String),
    #[error("{0:?} is not a back office path (a URL path starting with /)")]
    BadPath(String),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("cannot reach the back office at {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error("TLS with the back office {address} failed: {reason}")]
    Tls { address: String, reason: String },
    #[error(
        "the back office refused the organisation ID or verification code ({status}): {message}"
    )]
    Unauthorized { status: u16, message: String },
    #[error("the back office limits failed attempts: {message}")]
    RateLimited { message: String },
    #[error("the back office answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the back office sent a malformed reply: {0}")]
    BadReply(String),
    #[error("talking to the back office {address}: {reason}")]
    Io { address: String, reason: String },
    #[error("the back office {address} did not answer within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
}

/// A reply: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Where and how to ask the back office.
#[derive(Debug, Clone)]
pub struct BackOffice {
    pub url: String,
    pub trust: Trust,
    pub proxy: ProxySetting,
    pub organisation_id: String,
    pub code: Secret,
    pub timeout: Duration,
}

/// The first line of a reply body, for error messages.
fn message(body: &[u8]) -> String {
    let t = String::from_utf8_lossy(body);
    let line = t.lines().next().unwrap_or("").trim();
    line.chars().take(300).collect()
}

impl BackOffice {
    /// One authenticated GET of `path` (below the back office URL).
    pub fn get(&self, path: &str) -> Result<Reply, FetchError> {
        let (host, port) =
            split_https_url(&self.url).ok_or_else(|| FetchError::BadUrl(self.url.clone()))?;
        let address = host_port(&host, port);
        let io = |reason: String| FetchError::Io {
            address: address.clone(),
            reason,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io(format!("cannot start the request's runtime: {e}")))?;
        let reply = rt
            .block_on(async {
                tokio::time::timeout(self.timeout, self.exchange(&host, &address, path)).await
            })
            .map_err(|_| FetchError::Timeout {
                address: address.clone(),
                timeout: self.timeout,
            })??;
        match reply.status {
            200..=299 | 404 => Ok(reply),
            401 | 403 => Err(FetchError::Unauthorized {
                status: reply.status,
                message: message(&reply.body),
            }),
            429 => Err(FetchError::RateLimited {
                message: message(&reply.body),
            }),
            s => Err(FetchError::Status {
                status: s,
                message: message(&reply.body),
            }),
        }
    }

    /// Connect (direct or tunnelled), TLS, then the request and its
    /// bounded reply.
    async fn exchange(&self, host: &str, address: &str, path: &str) -> Result<Reply, FetchError> {
        let bad_path = || FetchError::BadPath(path.chars().take(100).collect());
        if !path.starts_with('/') {
            return Err(bad_path());
        }
        let uri: http::Uri = path.parse().map_err(|_| bad_path())?;
        let proxies = Proxies::new(&self.proxy, |k| std::env::var(k).ok())?;
        let tcp = match proxy::open(&proxies, "https", address).await {
            Ok(tcp) => tcp,
            Err(OpenError::Proxy(e)) => return Err(e.into()),
            Err(OpenError::Direct(e)) => {
                return Err(FetchError::Connect {
                    address: address.into(),
                    reason: e.to_string(),
                });
            }
        };
        let tls_err = |reason: String| FetchError::Tls {
            address: address.into(),
            reason,
        };
        let config = tls::client_config(&self.trust).map_err(|e| tls_err(e.to_string()))?;
        let name = ServerName::try_from(host.to_string()).map_err(|e| tls_err(e.to_string()))?;
        let stream = TlsConnector::from(Arc::clone(&config))
            .connect(name, tcp)
            .await
            .map_err(|e| tls_err(e.to_string()))?;
        let io = |e: &(dyn std::error::Error + 'static)| FetchError::Io {
            address: address.into(),
            reason: proxy::error_chain(e),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| io(&e))?;
        let driver = tokio::spawn(conn);
        let mut code = HeaderValue::from_str(self.code.expose()).map_err(|_| {
            FetchError::BadReply("the verification code cannot be sent in a header".into())
        })?;
        code.set_sensitive(true);
        let request = http::Request::get(uri)
            .header(HOST, address)
            .header(USER_AGENT, concat!("lifeline/", env!("CARGO_PKG_VERSION")))
            .header(ACCEPT, "application/toml, text/plain")
            .header(ORG_HEADER, &self.organisation_id)
            .header(CODE_HEADER, code)
            .body(Empty::<Bytes>::new())
            .map_err(|_| bad_path())?;
        let response = sender.send_request(request).await.map_err(|e| io(&e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    FetchError::BadReply(format!("reply larger than {MAX_REPLY_BYTES} bytes"))
                } else {
                    io(e.as_ref())
                }
            })?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(Reply { status, body })
    }

    /// Checks that the back office answers and accepts the organisation.
    pub fn hello(&self) -> Result<String, FetchError> {
        let reply = self.get(&format!("{LICENSE_PATH}/hello"))?;
        if reply.status == 404 {
            return Err(FetchError::Status {
                status: 404,
                message: "no license back office at this address (an older broker?)".into(),
            });
        }
        Ok(message(&reply.body))
    }
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
