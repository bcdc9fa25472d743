//! HTTP proxies: a tunnel with `CONNECT host:port` (HTTP/1.1, Basic
//! authentication), for support sessions (async) and license downloads
//! (blocking), and the system proxy from the environment.
//!
//! The proxy password never appears in an error or a log line.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A secret read from a private file (`Debug` never shows it; overwritten
/// when dropped): the same type that carries passwords on the wire.
pub use lifeline_protocol::Secret;

/// Proxy authentication (HTTP Basic; a domain is sent as `DOMAIN\user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    pub user: String,
    pub password: Secret,
    pub domain: Option<String>,
}

/// A proxy by host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualProxy {
    pub host: String,
    pub port: u16,
    pub auth: Option<ProxyAuth>,
}

/// Which proxy outgoing connections use (the agent's
/// `[remote_service.proxy]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySetting {
    /// Direct connections.
    None,
    /// The system proxy from the environment (`https_proxy`, `http_proxy`,
    /// `no_proxy`), for license and update downloads only — never for
    /// support sessions.
    Auto,
    /// This proxy for every outgoing connection, support sessions included.
    Manual(ManualProxy),
}

/// `https://host:port` → (host, port); anything else is `None`.
pub fn split_https_url(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// Largest reply head a proxy may send to `CONNECT`.
pub const MAX_CONNECT_REPLY_BYTES: usize = 16 * 1024;

/// Why a tunnel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot reach the proxy {proxy}: {source}")]
    Unreachable {
        proxy: String,
        source: std::io::Error,
    },
    #[error(
        "the proxy {proxy} refused the credentials: proxy authentication required (407; it answered {status:?}); check remote_service.proxy user, password_file and domain"
    )]
    AuthRequired { proxy: String, status: String },
    #[error("the proxy {proxy} refused to connect to {target}: {status}")]
    Refused {
        proxy: String,
        target: String,
        status: String,
    },
    #[error("the proxy {proxy} sent a malformed reply: {reason}")]
    BadReply { proxy: String, reason: String },
    #[error("talking to the proxy {proxy}: {source}")]
    Io {
        proxy: String,
        source: std::io::Error,
    },
}

/// `host:port` of the proxy.
pub fn address(p: &ManualProxy) -> String {
    if p.host.contains(':') {
        format!("[{}]:{}", p.host, p.port)
    } else {
        format!("{}:{}", p.host, p.port)
    }
}

/// The `CONNECT` request for `target` (`host:port`).
pub fn connect_request(target: &str, auth: Option<&ProxyAuth>) -> String {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(a) = auth {
        let user = match &a.domain {
            Some(d) => format!("{d}\\{}", a.user),
            None => a.user.clone(),
        };
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", a.password.expose()));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// Checks the proxy's reply head (status line and headers).
pub fn check_reply(proxy: &str, target: &str, head: &[u8]) -> Result<(), ProxyError> {
    let text = String::from_utf8_lossy(head);
    let status_line = text.lines().next().unwrap_or("").trim().to_string();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(ProxyError::BadReply {
            proxy: proxy.into(),
            reason: format!("status line {status_line:?}"),
        });
    }
    match code {
        "200" => Ok(()),
        // 407 is the standard answer; some proxies (tinyproxy's BasicAuth)
        // answer 401 to a CONNECT with wrong credentials.
        "407" | "401" => Err(ProxyError::AuthRequired {
            proxy: proxy.into(),
            status: status_line,
        }),
        _ => Err(ProxyError::Refused {
            proxy: proxy.into(),
            target: target.into(),
            status: status_line,
        }),
    }
}

fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Adds one byte read from the proxy (`None`: the connection closed) to the
/// reply head; errors when the head ends early or grows too long.
fn push_reply_byte(proxy: &str, head: &mut Vec<u8>, byte: Option<u8>) -> Result<(), ProxyError> {
    let reason = match byte {
        _ if head.len() >= MAX_CONNECT_REPLY_BYTES => {
            format!("reply head longer than {MAX_CONNECT_REPLY_BYTES} bytes")
        }
        None => "connection closed before the reply".to_string(),
        Some(b) => {
            head.push(b);
            return Ok(());
        }
    };
    Err(ProxyError::BadReply {
        proxy: proxy.to_string(),
        reason,
    })
}

/// Opens a tunnel to `target` through `p` (async, for support sessions).
/// The reply is read byte by byte so nothing after the head is consumed.
pub async fn tunnel(p: &ManualProxy, target: &str) -> Result<tokio::net::TcpStream, ProxyError> {
    let proxy = address(p);
    let mut s = tokio::net::TcpStream::connect(&proxy)
        .await
        .map_err(|source| ProxyError::Unreachable {
            proxy: proxy.clone(),
            source,
        })?;
    let io = |source| ProxyError::Io {
        proxy: proxy.clone(),
        source,
    };
    s.write_all(connect_request(target, p.auth.as_ref()).as_bytes())
        .await
        .map_err(io)?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head_complete(&head) {
        let n = s.read(&mut byte).await.map_err(io)?;
        push_reply_byte(&proxy, &mut head, (n > 0).then_some(byte[0]))?;
    }
    check_reply(&proxy, target, &head)?;
    Ok(s)
}

/// Opens a tunnel to `target` through `p` (blocking, for downloads).
pub fn tunnel_blocking(
    p: &ManualProxy,
    target: &str,
    timeout: Duration,
) -> Result<std::net::TcpStream, ProxyError> {
    let proxy = address(p);
    let unreachable = |source| ProxyError::Unreachable {
        proxy: proxy.clone(),
        source,
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&proxy)
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| {
            unreachable(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the name resolves to no address",
            ))
        })?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    let io = |source| ProxyError::Io {
        proxy: proxy.clone(),
        source,
    };
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    s.write_all(connect_request(target, p.auth.as_ref()).as_bytes())
        .map_err(io)?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head_complete(&head) {
        let n = s.read(&mut byte).map_err(io)?;
        push_reply_byte(&proxy, &mut head, (n > 0).then_some(byte[0]))?;
    }
    check_reply(&proxy, target, &head)?;
    Ok(s)
}

/// Percent-decodes the user or password of a proxy URL.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `http://[user:password@]host[:port][/]` (a proxy URL from the
/// environment). `None` for anything else.
pub fn parse_proxy_url(url: &str) -> Option<ManualProxy> {
    let rest = url.trim().strip_prefix("http://").or_else(|| {
        // A bare host:port is common in environment variables.
        (!url.contains("://")).then_some(url.trim())
    })?;
    let authority = rest.split('/').next()?;
    let (auth, hostport) = match authority.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    let auth = auth.map(|a| {
        let (u, p) = a.split_once(':').unwrap_or((a, ""));
        ProxyAuth {
            user: percent_decode(u),
            password: Secret::new(percent_decode(p)),
            domain: None,
        }
    });
    Some(ManualProxy {
        host: host.to_string(),
        port,
        auth,
    })
}

/// True when `host` matches a `no_proxy` list (`*`, exact names, domain
/// suffixes with or without a leading dot).
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| {
            let e = e.to_ascii_lowercase();
            let e = e.split(':').next().unwrap_or("");
            e == "*"
                || host == e.trim_start_matches('.')
                || host.ends_with(&format!(".{}", e.trim_start_matches('.')))
        })
}

/// The system proxy for an HTTPS request to `host`, from an environment
/// lookup (`https_proxy`, `HTTPS_PROXY`, then `http_proxy`, `HTTP_PROXY`;
/// `no_proxy`/`NO_PROXY` exclude hosts).
pub fn from_env(host: &str, var: impl Fn(&str) -> Option<String>) -> Option<ManualProxy> {
    let get = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
    };
    if let Some(np) = get(["no_proxy", "NO_PROXY"])
        && no_proxy_matches(&np, host)
    {
        return None;
    }
    get(["https_proxy", "HTTPS_PROXY"])
        .or_else(|| get(["http_proxy", "HTTP_PROXY"]))
        .and_then(|u| parse_proxy_url(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_carries_basic_auth_with_domain() {
        let auth = ProxyAuth {
            user: "svc".into(),
            password: Secret::new("pw"),
            domain: Some("CORP".into()),
        };
        let r = connect_request("b.example:7444", Some(&auth));
        assert!(r.starts_with("CONNECT b.example:7444 HTTP/1.1\r\n"));
        let token = base64::engine::general_purpose::STANDARD.encode("CORP\\svc:pw");
        assert!(r.contains(&format!("Proxy-Authorization: Basic {token}\r\n")));
        assert!(r.ends_with("\r\n\r\n"));
    }

    #[test]
    fn replies_are_classified_without_secrets() {
        assert!(check_reply("p:1", "t:2", b"HTTP/1.1 200 Connection established\r\n\r\n").is_ok());
        let e = check_reply(
            "p:1",
            "t:2",
            b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n",
        )
        .unwrap_err();
        assert!(matches!(e, ProxyError::AuthRequired { .. }), "{e}");
        let e = check_reply("p:1", "t:2", b"HTTP/1.1 403 Forbidden\r\n\r\n").unwrap_err();
        assert!(e.to_string().contains("refused to connect to t:2"), "{e}");
        assert!(check_reply("p:1", "t:2", b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn environment_proxy_and_no_proxy() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = from_env(
            "b.example",
            env(&[("HTTPS_PROXY", "http://u:p%40ss@proxy:3128/")]),
        )
        .unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        assert_eq!(p.auth.unwrap().password.expose(), "p@ss");
        let p = from_env("b.example", env(&[("http_proxy", "proxy2:8080")])).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy2", 8080));
        assert!(
            from_env(
                "lic.b.example",
                env(&[
                    ("https_proxy", "http://proxy:1"),
                    ("no_proxy", ".b.example")
                ])
            )
            .is_none()
        );
        assert!(
            from_env(
                "127.0.0.1",
                env(&[
                    ("https_proxy", "http://proxy:1"),
                    ("NO_PROXY", "localhost,127.0.0.1")
                ])
            )
            .is_none()
        );
        assert!(from_env("b.example", env(&[])).is_none());
    }
}
