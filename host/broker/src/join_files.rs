//! What the join page offers besides the link: the agent program
//! (`/download/lifeline`, with its SHA-256 on the page) and the signed join
//! file (`/j/{token}/join.lifeline`, see `lifeline_core::join_file`), so
//! that the customer joins with nothing to configure.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lifeline_core::config::BrokerConfig;
use lifeline_core::join_file::{self, JoinFields};
use lifeline_core::tls::{self, Fingerprint, Identity, TlsError};
use rustls::sign::SigningKey;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use crate::Shared;
use crate::store::SessionRow;

/// Path of the agent download.
pub const DOWNLOAD_PATH: &str = "/download/lifeline";
/// File name of the join file under a join page (`/j/{token}/…`).
pub const JOIN_FILE_NAME: &str = "join.lifeline";
/// Bytes read from the agent binary at a time while serving it.
pub const DOWNLOAD_CHUNK_BYTES: usize = 64 * 1024;

/// What the broker needs to issue join files.
pub struct JoinIssuer {
    /// The key of the broker's TLS certificate.
    signer: Arc<dyn SigningKey>,
    pub fingerprint: Fingerprint,
    /// `host:port` of the session listener as customers reach it.
    pub session_address: String,
    pub server_name: String,
    /// The program offered for download.
    pub agent_binary: Option<PathBuf>,
    /// SHA-256 (hex) of the agent binary, with the size and modification
    /// time it was computed for: a binary replaced on disk is hashed again.
    digest: Mutex<Option<(u64, SystemTime, String)>>,
}

impl JoinIssuer {
    /// From the broker's identity and the session listener's bound address.
    pub fn new(
        cfg: &BrokerConfig,
        identity: &Identity,
        bound: SocketAddr,
    ) -> Result<Self, TlsError> {
        let signer = tls::provider()
            .key_provider
            .load_private_key(identity.key.clone_key())?;
        let session_address = session_address(cfg, bound);
        let host = session_address
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or("");
        let server_name = cfg.join.server_name.clone().unwrap_or_else(|| {
            if host.parse::<IpAddr>().is_ok() || host.is_empty() {
                first_cert_name(cfg)
            } else {
                host.to_string()
            }
        });
        let agent_binary = cfg
            .join
            .agent_binary
            .clone()
            .or_else(|| std::env::current_exe().ok());
        Ok(JoinIssuer {
            signer,
            fingerprint: identity.fingerprint,
            session_address,
            server_name,
            agent_binary,
            digest: Mutex::new(None),
        })
    }

    /// SHA-256 (hex) of the agent binary as it is on disk now.
    pub async fn agent_digest(&self) -> Result<String, String> {
        let path = self
            .agent_binary
            .clone()
            .ok_or_else(|| "no agent binary is configured".to_string())?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let key = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let mut cached = self.digest.lock().await;
        if let Some((len, mtime, hex)) = cached.as_ref()
            && (*len, *mtime) == key
        {
            return Ok(hex.clone());
        }
        let hex = tokio::task::spawn_blocking(move || hash_file(&path))
            .await
            .map_err(|e| e.to_string())??;
        *cached = Some((key.0, key.1, hex.clone()));
        Ok(hex)
    }
}

fn first_cert_name(cfg: &BrokerConfig) -> String {
    cfg.cert_names
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".into())
}

/// The configured public session address, or one derived from the public
/// URL's host (or the bound IP, or the first certificate name) and the
/// listener's port.
fn session_address(cfg: &BrokerConfig, bound: SocketAddr) -> String {
    if let Some(a) = &cfg.join.public_session_address {
        return a.clone();
    }
    let from_url = cfg.public_url.as_ref().and_then(|u| {
        let authority = u.strip_prefix("https://")?.split('/').next()?;
        let host = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && !h.ends_with(':') => h,
            _ => authority,
        };
        (!host.is_empty()).then(|| host.to_string())
    });
    let host = from_url.unwrap_or_else(|| match bound.ip() {
        ip if ip.is_unspecified() => first_cert_name(cfg),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    });
    format!("{host}:{}", bound.port())
}

fn hash_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; DOWNLOAD_CHUNK_BYTES];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(DOWNLOAD_PATH, get(download))
        .route(&format!("/j/{{token}}/{JOIN_FILE_NAME}"), get(join_file))
}

/// The join file of a valid invitation: the same checks as its join page.
async fn join_file(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let row = match crate::https::open_invitation(&s, &token) {
        Ok(Some(r)) => r,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!("join file: {e}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let text = match issue(&s, &row) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("join file: {e}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut r = text.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(join_file::MEDIA_TYPE),
    );
    let name = format!("attachment; filename=\"{}\"", download_name(&row.ticket));
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The join file's name when downloaded: `support-TICKET.lifeline`.
pub fn download_name(ticket: &str) -> String {
    format!("{}.{}", file_stem(ticket), join_file::EXTENSION)
}

/// A file name from the ticket: `support-T-42`, only safe characters.
fn file_stem(ticket: &str) -> String {
    let safe: String = ticket
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(40)
        .collect();
    if safe.is_empty() {
        "support".into()
    } else {
        format!("support-{safe}")
    }
}

fn issue(s: &Shared, row: &SessionRow) -> Result<String, join_file::JoinFileError> {
    let op = s.store.operator_by_id(row.operator_id).ok().flatten();
    let (operator, title) = op
        .map(|o| (o.profile.name, o.profile.title))
        .unwrap_or_default();
    let fields = JoinFields {
        broker: s.join.session_address.clone(),
        server_name: s.join.server_name.clone(),
        fingerprint: s.join.fingerprint,
        invitation: row.link_token.clone(),
        operator,
        title,
        organisation: s.name.clone(),
        expires_at: row.expires_at,
    };
    join_file::issue(&fields, s.join.signer.as_ref())
}

/// The agent program, streamed from disk.
async fn download(State(s): State<Arc<Shared>>) -> Response {
    let Some(path) = s.join.agent_binary.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("agent download: {}: {e}", path.display());
            return StatusCode::NOT_FOUND.into_response();
        }
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; DOWNLOAD_CHUNK_BYTES];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"lifeline\""),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> BrokerConfig {
        let text = format!(
            "[broker]\nlisten = \"0.0.0.0:7443\"\nhttps_listen = \"0.0.0.0:7444\"\ndata_dir = \"d\"\n{extra}"
        );
        BrokerConfig::parse(std::path::Path::new("/b.toml"), &text).expect("valid test config")
    }

    #[test]
    fn session_address_from_config_url_or_listener() {
        let bound: SocketAddr = "0.0.0.0:7443".parse().expect("address");
        let c = config("public_url = \"https://support.example.com:7444/\"\n");
        assert_eq!(session_address(&c, bound), "support.example.com:7443");
        let c = config("");
        assert_eq!(session_address(&c, bound), "localhost:7443");
        let lo: SocketAddr = "127.0.0.1:5000".parse().expect("address");
        assert_eq!(session_address(&c, lo), "127.0.0.1:5000");
        let v6: SocketAddr = "[::1]:5000".parse().expect("address");
        assert_eq!(session_address(&c, v6), "[::1]:5000");
        let c = config("[join]\npublic_session_address = \"relay.example.net:443\"\n");
        assert_eq!(session_address(&c, bound), "relay.example.net:443");
    }

    #[test]
    fn ticket_makes_a_safe_file_name() {
        assert_eq!(file_stem("T-42"), "support-T-42");
        assert_eq!(file_stem("../\"x\"; rm"), "support-xrm");
        assert_eq!(file_stem("«»"), "support");
    }
}
