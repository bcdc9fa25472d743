//! The back office client: one HTTPS GET to the broker's HTTPS listener,
//! trusted like the session connection (pinned fingerprint or CA), through
//! the configured proxy (manual, or the system's for `auto`), authenticated
//! by the organisation ID and verification code.
//!
//! Hand-written HTTP/1.1 over rustls rather than ureq: the broker's
//! self-signed certificate is trusted by pinning its fingerprint, which
//! needs our own certificate verifier. The verification code is sent only
//! inside TLS and never appears in an error.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use lifeline_core::proxy::{self, ProxyError};
use lifeline_core::proxy::{ProxySetting, Secret, split_https_url};
use lifeline_core::tls::{self, Trust};
use rustls::pki_types::ServerName;

use crate::document::MAX_LICENSE_BYTES;

/// Time a download may take at each step (connect, each read, each write).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Time `lifeline agent status` waits for the back office.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest reply accepted from the back office (head + body).
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a chunked body. Sizes come from the server: checked arithmetic,
/// and no chunk or total beyond [`MAX_REPLY_BYTES`].
fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, FetchError> {
    let bad = |why: String| FetchError::BadReply(format!("bad chunked encoding: {why}"));
    let mut out = Vec::new();
    loop {
        let eol = find(b, b"\r\n").ok_or_else(|| bad("a chunk size line has no end".into()))?;
        let size_text = std::str::from_utf8(&b[..eol]).unwrap_or("?");
        let digits = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(digits, 16).map_err(|_| {
            bad(format!(
                "chunk size {:?} is not a hex number",
                digits.chars().take(20).collect::<String>()
            ))
        })?;
        if size > MAX_REPLY_BYTES.saturating_sub(out.len()) {
            return Err(bad(format!(
                "chunk of {size} bytes exceeds the {MAX_REPLY_BYTES}-byte reply limit"
            )));
        }
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let (chunk, rest) = (
            b.get(..size),
            b.get(size..).and_then(|r| r.strip_prefix(b"\r\n")),
        );
        let (Some(chunk), Some(rest)) = (chunk, rest) else {
            return Err(bad(format!("chunk of {size} bytes is cut short")));
        };
        out.extend_from_slice(chunk);
        b = rest;
    }
}

/// Parses a whole HTTP/1.1 reply.
pub fn parse_reply(raw: &[u8]) -> Result<Reply, FetchError> {
    let end =
        find(raw, b"\r\n\r\n").ok_or_else(|| FetchError::BadReply("no end of headers".into()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| FetchError::BadReply(format!("status line {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let body = &raw[end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        if body.len() < n {
            return Err(FetchError::BadReply(format!(
                "body cut short: {} of {n} bytes",
                body.len()
            )));
        }
        body[..n].to_vec()
    } else {
        body.to_vec()
    };
    Ok(Reply { status, body })
}

/// The first line of a reply body, for error messages.
fn message(body: &[u8]) -> String {
    let t = String::from_utf8_lossy(body);
    let line = t.lines().next().unwrap_or("").trim();
    line.chars().take(300).collect()
}

impl BackOffice {
    /// `host:port` of the back office.
    fn target(&self) -> Result<(String, String), FetchError> {
        let (host, port) =
            split_https_url(&self.url).ok_or_else(|| FetchError::BadUrl(self.url.clone()))?;
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok((host, target))
    }

    fn tcp(&self, host: &str, target: &str) -> Result<TcpStream, FetchError> {
        let via = match &self.proxy {
            ProxySetting::None => None,
            ProxySetting::Manual(p) => Some(p.clone()),
            ProxySetting::Auto => proxy::from_env(host, |k| std::env::var(k).ok()),
        };
        if let Some(p) = via {
            return Ok(proxy::tunnel_blocking(&p, target, self.timeout)?);
        }
        let connect = |reason: String| FetchError::Connect {
            address: target.to_string(),
            reason,
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(target)
            .map_err(|e| connect(e.to_string()))?
            .next()
            .ok_or_else(|| connect("the name resolves to no address".into()))?;
        let s =
            TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| connect(e.to_string()))?;
        s.set_read_timeout(Some(self.timeout))
            .and_then(|_| s.set_write_timeout(Some(self.timeout)))
            .map_err(|e| connect(e.to_string()))?;
        Ok(s)
    }

    /// One authenticated GET of `path` (below the back office URL).
    pub fn get(&self, path: &str) -> Result<Reply, FetchError> {
        let (host, target) = self.target()?;
        let mut tcp = self.tcp(&host, &target)?;
        let tls_err = |reason: String| FetchError::Tls {
            address: target.clone(),
            reason,
        };
        let config = tls::client_config(&self.trust).map_err(|e| tls_err(e.to_string()))?;
        let name = ServerName::try_from(host.clone()).map_err(|e| tls_err(e.to_string()))?;
        let mut conn = rustls::ClientConnection::new(Arc::clone(&config), name)
            .map_err(|e| tls_err(e.to_string()))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)
                .map_err(|e| tls_err(e.to_string()))?;
        }
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let io = |e: std::io::Error| FetchError::Io {
            address: target.clone(),
            reason: e.to_string(),
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: lifeline/{}\r\nAccept: application/toml, text/plain\r\n{ORG_HEADER}: {}\r\n{CODE_HEADER}: {}\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            self.organisation_id,
            self.code.expose(),
        );
        tls.write_all(req.as_bytes()).map_err(io)?;
        tls.flush().map_err(io)?;
        let mut raw = Vec::new();
        let r = (&mut tls)
            .take(MAX_REPLY_BYTES as u64 + 1)
            .read_to_end(&mut raw);
        match r {
            Ok(_) => {}
            // A peer that closes without close_notify after a full reply.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(io(e)),
        }
        if raw.len() > MAX_REPLY_BYTES {
            return Err(FetchError::BadReply(format!(
                "reply larger than {MAX_REPLY_BYTES} bytes"
            )));
        }
        let reply = parse_reply(&raw)?;
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
mod tests {
    use super::*;

    #[test]
    fn replies_parse_plain_and_chunked() {
        let r = parse_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = parse_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"hello");
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhello").is_err());
        assert!(parse_reply(b"garbage").is_err());
    }

    #[test]
    fn hostile_chunk_sizes_are_clear_errors_not_panics() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for (body, says) in [
            (&b"ffffffffffffffff\r\nab\r\n0\r\n\r\n"[..], "reply limit"),
            (&b"fffffffffffffffff\r\nab\r\n"[..], "not a hex number"),
            (&b"5\r\nab"[..], "cut short"),
            (&b"2\r\nabXY0\r\n\r\n"[..], "cut short"),
        ] {
            let raw = [head.as_slice(), body].concat();
            let err = parse_reply(&raw).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
