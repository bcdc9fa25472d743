//! Proxies for every outgoing connection: the settings (`[remote_service.proxy]`,
//! `[plugins] http_proxy`, the system proxy from the environment), the one
//! place that decides proxy or direct for a destination and with which
//! credentials ([`Proxies`], on hyper-util's `Matcher`: curl's `no_proxy`
//! rules, the code reqwest itself runs), and HTTP `CONNECT` tunnels
//! (hyper-util's `Tunnel`, the one reqwest uses for HTTPS through a proxy).
//!
//! Sessions, rejoins and the back office open their connection with
//! [`open`]; plugins' HTTP gives reqwest [`Proxies::reqwest_proxies`], so both
//! follow the same rules. Proxy authentication is HTTP Basic only (a domain
//! is sent as `DOMAIN\user`): NTLM and Negotiate need several round trips on
//! one connection, which neither hyper-util's tunnel nor reqwest can do.
//!
//! The proxy password never appears in an error, a log line or a URL: it
//! goes from its [`Secret`] straight into a `Proxy-Authorization` header
//! value marked sensitive (`Debug` shows `Sensitive`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tower_service::Service;
use zeroize::Zeroizing;

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
    /// Destinations reached directly, in `no_proxy` syntax: names (matching
    /// their subdomains too; a leading dot is optional), IP addresses,
    /// networks like `10.0.0.0/8`, or `*`.
    pub no_proxy: Vec<String>,
}

/// Which proxy outgoing connections use (the agent's
/// `[remote_service.proxy]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySetting {
    /// Direct connections.
    None,
    /// The system proxy from the environment (`https_proxy`, `http_proxy`,
    /// `all_proxy`, `no_proxy`), for license downloads and plugins' HTTP —
    /// never for support sessions.
    Auto,
    /// This proxy for every outgoing connection, support sessions included.
    Manual(ManualProxy),
}

/// Environment variables of the system proxy, upper case first (as curl,
/// hyper-util and reqwest read them).
pub const ENV_HTTPS_PROXY: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];
pub const ENV_HTTP_PROXY: [&str; 2] = ["HTTP_PROXY", "http_proxy"];
pub const ENV_ALL_PROXY: [&str; 2] = ["ALL_PROXY", "all_proxy"];
pub const ENV_NO_PROXY: [&str; 2] = ["NO_PROXY", "no_proxy"];

/// Bytes of the proxy's reply to `CONNECT` kept to name its status in an
/// error (the status line; hyper-util itself refuses a reply head over 8 KiB).
pub const STATUS_PEEK_BYTES: usize = 128;

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

/// `host:port` (IPv6 in brackets).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `host:port` of the proxy.
pub fn address(p: &ManualProxy) -> String {
    host_port(&p.host, p.port)
}

/// Why a proxy could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot reach the proxy {proxy}: {reason}")]
    Unreachable { proxy: String, reason: String },
    #[error(
        "the proxy {proxy} refused the credentials: proxy authentication required ({}); check remote_service.proxy user, password_file and domain (Basic authentication only)",
        answered(*.status)
    )]
    CredentialsRefused { proxy: String, status: u16 },
    #[error(
        "the proxy {proxy} requires authentication ({}); set remote_service.proxy user and password_file (Basic authentication only)",
        answered(*.status)
    )]
    AuthRequired { proxy: String, status: u16 },
    #[error("the proxy {proxy} refused to connect to {target}: {status}")]
    Refused {
        proxy: String,
        target: String,
        status: String,
    },
    #[error("the proxy {proxy} sent a malformed reply to CONNECT {target}: {reason}")]
    BadReply {
        proxy: String,
        target: String,
        reason: String,
    },
    #[error("talking to the proxy {proxy}: {reason}")]
    Io { proxy: String, reason: String },
    #[error(
        "the proxy {what} is not usable: only http:// proxies are supported (e.g. http://proxy.example:3128)"
    )]
    Unsupported { what: String },
    #[error("{0:?} is not a host:port destination")]
    BadDestination(String),
}

/// `407`, or `407; it answered 401` for a proxy that answers otherwise.
fn answered(status: u16) -> String {
    match status {
        407 => "407".into(),
        s => format!("407; it answered {s}"),
    }
}

/// Percent-decodes the user or password of a proxy URL.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
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

/// Parses `http://[user:password@]host[:port][/]` (`[plugins] http_proxy`).
/// `None` for anything else.
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
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (hostport, 80),
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
        no_proxy: Vec::new(),
    })
}

/// The `Proxy-Authorization` value for Basic authentication, marked
/// sensitive; the plain text is wiped after encoding.
pub fn basic_auth(auth: &ProxyAuth) -> Result<HeaderValue, ProxyError> {
    let user = match &auth.domain {
        Some(d) => format!("{d}\\{}", auth.user),
        None => auth.user.clone(),
    };
    let plain = Zeroizing::new(format!("{user}:{}", auth.password.expose()));
    let value = Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(plain.as_bytes())
    ));
    let mut h = HeaderValue::from_str(&value).map_err(|_| ProxyError::Unsupported {
        what: "credentials (user or domain with control characters)".into(),
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// Where one destination goes: through this proxy, with these credentials.
#[derive(Clone)]
pub struct Route {
    /// `http://host:port/` of the proxy (never with credentials).
    pub uri: Uri,
    auth: Option<HeaderValue>,
}

impl Route {
    /// `host:port` of the proxy, for messages.
    pub fn name(&self) -> String {
        self.uri
            .authority()
            .map_or_else(|| self.uri.to_string(), |a| a.to_string())
    }

    /// True when credentials are sent to the proxy.
    pub fn authenticates(&self) -> bool {
        self.auth.is_some()
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("proxy", &self.name())
            .field("authenticates", &self.authenticates())
            .finish()
    }
}

/// The proxy rules of one setting: which destinations go through which
/// proxy, with which credentials. hyper-util's `Matcher` decides (scheme,
/// `no_proxy`); the credentials are per destination scheme.
#[derive(Clone, Default)]
pub struct Proxies {
    matcher: Option<Arc<Matcher>>,
    /// Credentials for `http://` destinations, then `https://` ones.
    http_auth: Option<HeaderValue>,
    https_auth: Option<HeaderValue>,
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Matcher's Debug shows proxy URIs without credentials.
        f.debug_struct("Proxies")
            .field("matcher", &self.matcher)
            .finish()
    }
}

/// True for a `no_proxy` list holding `*`: every destination direct, IP
/// addresses included (as curl; hyper-util's `*` covers names only).
fn excludes_all(no_proxy: &str) -> bool {
    no_proxy.split(',').any(|e| e.trim() == "*")
}

/// A proxy URL as hyper-util parses it: its URI without credentials and the
/// Basic credentials it carried. Only `http://` proxies.
fn parse_with_matcher(what: &str, value: &str) -> Result<(Uri, Option<HeaderValue>), ProxyError> {
    let unsupported = || ProxyError::Unsupported { what: what.into() };
    let probe = Uri::from_static("http://probe.invalid/");
    let i = Matcher::builder()
        .all(value.to_string())
        .build()
        .intercept(&probe)
        .ok_or_else(unsupported)?;
    if i.uri().scheme_str() != Some("http") {
        return Err(unsupported());
    }
    Ok((i.uri().clone(), i.basic_auth().cloned()))
}

impl Proxies {
    /// Every destination directly.
    pub fn direct() -> Proxies {
        Proxies::default()
    }

    /// The rules of a setting; `env` looks up the environment (for `Auto`).
    pub fn new(
        setting: &ProxySetting,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Proxies, ProxyError> {
        match setting {
            ProxySetting::None => Ok(Proxies::direct()),
            ProxySetting::Auto => Proxies::system(env),
            ProxySetting::Manual(p) => Proxies::manual(p),
        }
    }

    /// The rules of an optional setting (`None`: direct), from the
    /// process's environment.
    pub fn from_setting(setting: Option<&ProxySetting>) -> Result<Proxies, ProxyError> {
        match setting {
            None => Ok(Proxies::direct()),
            Some(s) => Proxies::new(s, |k| std::env::var(k).ok()),
        }
    }

    /// One proxy for every destination but those in its `no_proxy`.
    pub fn manual(p: &ManualProxy) -> Result<Proxies, ProxyError> {
        let uri = format!("http://{}", address(p));
        let (_, _) = parse_with_matcher(&format!("host {:?}", p.host), &uri)?;
        let auth = p.auth.as_ref().map(basic_auth).transpose()?;
        if excludes_all(&p.no_proxy.join(",")) {
            return Ok(Proxies::direct());
        }
        let matcher = Matcher::builder().all(uri).no(p.no_proxy.join(",")).build();
        Ok(Proxies {
            matcher: Some(Arc::new(matcher)),
            http_auth: auth.clone(),
            https_auth: auth,
        })
    }

    /// The system proxy: `HTTPS_PROXY` for https destinations, `HTTP_PROXY`
    /// for http ones, `ALL_PROXY` for both when those are unset, minus
    /// `NO_PROXY` (each also in lower case).
    pub fn system(env: impl Fn(&str) -> Option<String>) -> Result<Proxies, ProxyError> {
        let get = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let all = get(ENV_ALL_PROXY);
        let http = get(ENV_HTTP_PROXY).or_else(|| all.clone());
        let https = get(ENV_HTTPS_PROXY).or(all);
        let parse = |v: &Option<(&'static str, String)>| {
            v.as_ref()
                .map(|(name, value)| parse_with_matcher(&format!("in {name}"), value))
                .transpose()
        };
        let (http_p, https_p) = (parse(&http)?, parse(&https)?);
        let mut b = Matcher::builder();
        if let Some((uri, _)) = &http_p {
            b = b.http(uri.to_string());
        }
        if let Some((uri, _)) = &https_p {
            b = b.https(uri.to_string());
        }
        let no = get(ENV_NO_PROXY).map(|(_, v)| v).unwrap_or_default();
        if excludes_all(&no) {
            return Ok(Proxies::direct());
        }
        Ok(Proxies {
            matcher: Some(Arc::new(b.no(no).build())),
            http_auth: http_p.and_then(|(_, a)| a),
            https_auth: https_p.and_then(|(_, a)| a),
        })
    }

    fn auth_for(&self, scheme: Option<&str>) -> Option<HeaderValue> {
        match scheme {
            Some("https") => self.https_auth.clone(),
            _ => self.http_auth.clone(),
        }
    }

    /// The proxy for `dst` (`http://…` or `https://…`), or `None`: direct.
    pub fn route(&self, dst: &Uri) -> Option<Route> {
        let i = self.matcher.as_ref()?.intercept(dst)?;
        Some(Route {
            uri: i.uri().clone(),
            auth: self.auth_for(dst.scheme_str()),
        })
    }

    /// [`Proxies::route`] for a URL; `None` also when it does not parse.
    pub fn route_url(&self, url: &str) -> Option<Route> {
        self.route(&url.parse().ok()?)
    }

    /// The same rules for reqwest: one custom proxy per destination scheme,
    /// asking [`Proxies::route`], with the credentials as a sensitive header
    /// (never in a proxy URL). Give them after `ClientBuilder::no_proxy()`,
    /// which stops reqwest reading the environment itself.
    pub fn reqwest_proxies(&self) -> Vec<reqwest::Proxy> {
        ["http", "https"]
            .into_iter()
            .map(|scheme| {
                let rules = self.clone();
                let p = reqwest::Proxy::custom(move |url: &reqwest::Url| {
                    if url.scheme() != scheme {
                        return None;
                    }
                    let dst: Uri = url.as_str().parse().ok()?;
                    rules.route(&dst).map(|r| r.uri.to_string())
                });
                match self.auth_for(Some(scheme)) {
                    Some(h) => p.custom_http_auth(h),
                    None => p,
                }
            })
            .collect()
    }
}

/// The system proxy that license downloads to `host` use, for display
/// (`lifeline agent status`): its address only.
pub fn from_env(host: &str, var: impl Fn(&str) -> Option<String>) -> Option<ManualProxy> {
    let dst: Uri = format!("https://{}/", host_port(host, 443)).parse().ok()?;
    let route = Proxies::system(var).ok()?.route(&dst)?;
    let authority = route.uri.authority()?;
    Some(ManualProxy {
        host: authority.host().trim_matches(['[', ']']).to_string(),
        port: authority.port_u16().unwrap_or(80),
        auth: None,
        no_proxy: Vec::new(),
    })
}

/// Why [`open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Direct: the destination did not answer.
    #[error("{0}")]
    Direct(#[source] std::io::Error),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

/// Opens a TCP connection to `address` (`host:port`), direct or through
/// the proxy the rules name for `scheme://address` (a tunnel).
pub async fn open(proxies: &Proxies, scheme: &str, address: &str) -> Result<TcpStream, OpenError> {
    let dst: Uri = format!("{scheme}://{address}/")
        .parse()
        .map_err(|_| ProxyError::BadDestination(address.into()))?;
    match proxies.route(&dst) {
        Some(route) => Ok(tunnel_via(&route, &dst).await?),
        None => TcpStream::connect(address).await.map_err(OpenError::Direct),
    }
}

/// hyper-util's tunnel error (its type is public but not exported by name).
type TunnelError = <Tunnel<Recording> as Service<Uri>>::Error;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens a tunnel to `target` (`host:port`) through `p` whatever its
/// `no_proxy` says. Connections that follow the rules use [`open`].
pub async fn tunnel(p: &ManualProxy, target: &str) -> Result<TcpStream, ProxyError> {
    let dst: Uri = format!("https://{target}/")
        .parse()
        .map_err(|_| ProxyError::BadDestination(target.into()))?;
    let route = Proxies::manual(&ManualProxy {
        no_proxy: Vec::new(),
        ..p.clone()
    })?
    .route(&dst)
    .ok_or_else(|| ProxyError::BadDestination(target.into()))?;
    tunnel_via(&route, &dst).await
}

/// Opens a `CONNECT` tunnel to `dst` through `route` (hyper-util's
/// `Tunnel`), returning the TCP stream past the proxy's reply.
pub async fn tunnel_via(route: &Route, dst: &Uri) -> Result<TcpStream, ProxyError> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let mut t = Tunnel::new(
        route.uri.clone(),
        Recording {
            inner: http,
            seen: Arc::clone(&seen),
        },
    );
    if let Some(a) = &route.auth {
        t = t.with_auth(a.clone());
    }
    let target = dst
        .authority()
        .map_or_else(|| dst.to_string(), |a| a.to_string());
    let result = match std::future::poll_fn(|cx| t.poll_ready(cx)).await {
        Ok(()) => t.call(dst.clone()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(io) => Ok(io.into_inner().inner),
        Err(e) => {
            let status = status_of(&seen.lock().unwrap_or_else(|p| p.into_inner()));
            Err(explain_tunnel(&e, route, &target, status))
        }
    }
}

/// Finds a tunnel failure anywhere in an error's chain (reqwest's errors
/// carry hyper-util's) and explains it; `None` when there is none.
pub fn tunnel_failure(
    err: &(dyn std::error::Error + 'static),
    route: &Route,
    target: &str,
) -> Option<ProxyError> {
    let mut e = Some(err);
    while let Some(cur) = e {
        if let Some(t) = cur.downcast_ref::<TunnelError>() {
            return Some(explain_tunnel(t, route, target, None));
        }
        e = cur.source();
    }
    None
}

/// One line from an error and its sources (`a: b: c`), without repeats.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut e = Some(err);
    while let Some(cur) = e {
        let s = cur.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        e = cur.source();
    }
    parts.join(": ")
}

fn explain_tunnel(e: &TunnelError, route: &Route, target: &str, status: Option<u16>) -> ProxyError {
    let proxy = route.name();
    let refused = |status: u16| {
        if route.authenticates() {
            ProxyError::CredentialsRefused {
                proxy: proxy.clone(),
                status,
            }
        } else {
            ProxyError::AuthRequired {
                proxy: proxy.clone(),
                status,
            }
        }
    };
    match e {
        TunnelError::ConnectFailed(source) => ProxyError::Unreachable {
            proxy,
            reason: error_chain(source.as_ref()),
        },
        TunnelError::ProxyAuthRequired => refused(407),
        // 407 is the standard answer; some proxies (tinyproxy's BasicAuth)
        // answer 401 to a CONNECT with wrong credentials.
        TunnelError::TunnelUnsuccessful if status == Some(401) => refused(401),
        TunnelError::TunnelUnsuccessful => ProxyError::Refused {
            proxy,
            target: target.into(),
            status: match status {
                Some(s) => format!("it answered {s}"),
                None => "it answered neither 200 nor 407".into(),
            },
        },
        TunnelError::Io(io) => ProxyError::Io {
            proxy,
            reason: io.to_string(),
        },
        other => ProxyError::BadReply {
            proxy,
            target: target.into(),
            reason: other.to_string(),
        },
    }
}

/// The status code in the first bytes of the proxy's reply.
fn status_of(head: &[u8]) -> Option<u16> {
    let mut headers = [httparse::EMPTY_HEADER; 0];
    let mut res = httparse::Response::new(&mut headers);
    // A partial or header-heavy reply still has its status line parsed.
    let _ = res.parse(head);
    res.code
}

/// The TCP connector under the tunnel, keeping the first
/// [`STATUS_PEEK_BYTES`] the proxy sends so an error can name its status.
#[derive(Clone)]
struct Recording {
    inner: HttpConnector,
    seen: Arc<Mutex<Vec<u8>>>,
}

type Recorded = TokioIo<Peek<TcpStream>>;

impl Service<Uri> for Recording {
    type Response = Recorded;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Recorded, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let seen = Arc::clone(&self.seen);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(TokioIo::new(Peek {
                inner: io.into_inner(),
                seen,
            }))
        })
    }
}

/// A stream that copies the first bytes it reads.
struct Peek<T> {
    inner: T,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Peek<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let room = STATUS_PEEK_BYTES.saturating_sub(seen.len());
            let new = &buf.filled()[before..];
            seen.extend_from_slice(&new[..new.len().min(room)]);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Peek<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
