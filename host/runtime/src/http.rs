//! HTTP(S) for the `http.request` capability: only to hosts the manifest
//! allows, through the agent's proxy rules (`lifeline_core::proxy`, the
//! same as sessions and the back office), with bounded responses.
//!
//! reqwest's blocking client: host calls are synchronous and run on their
//! own threads (never a runtime's worker), and the client runs its own.
//! HTTPS trusts the public webpki roots (TLS 1.2 and 1.3, the project's
//! ring provider); redirects are not followed.

use std::io::Read;
use std::time::Duration;

use lifeline_core::proxy::{self, Proxies, ProxySetting};

use crate::host::HostError;

/// Time one request may take, connect to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body a plugin may send.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Mirrors the WIT `http-response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The host part of an `http://` or `https://` URL, lower-cased.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Plugins' HTTPS trust: the public webpki roots.
fn tls_config() -> Result<rustls::ClientConfig, HostError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(
        rustls::ClientConfig::builder_with_provider(lifeline_core::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| HostError::Failed(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// What went wrong with a request, naming the proxy when one was used.
fn explain(e: &reqwest::Error, route: Option<&proxy::Route>, target: &str) -> String {
    if e.is_timeout() {
        return format!("no answer within {REQUEST_TIMEOUT:?}");
    }
    // The causes below reqwest's own line (which repeats the URL).
    let cause = std::error::Error::source(e)
        .map(proxy::error_chain)
        .unwrap_or_else(|| e.to_string());
    match route {
        Some(r) => match proxy::tunnel_failure(e, r, target) {
            Some(p) => p.to_string(),
            None if e.is_connect() => format!("cannot reach the proxy {}: {cause}", r.name()),
            None => format!("through the proxy {}: {cause}", r.name()),
        },
        None => cause,
    }
}

/// Performs one request if the URL's host is allowed.
pub fn request(
    allowed: &[String],
    proxy: Option<&ProxySetting>,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    limit: usize,
) -> Result<Response, HostError> {
    let host =
        host_of(url).ok_or_else(|| HostError::Failed(format!("{url:?} is not an http(s) URL")))?;
    if !allowed.contains(&host) {
        return Err(HostError::Denied(format!(
            "host {host:?} is not in the plugin's [http] allow_hosts"
        )));
    }
    if body.len() > MAX_REQUEST_BYTES {
        return Err(HostError::Limit(format!(
            "a request body is limited to {} MiB",
            MAX_REQUEST_BYTES >> 20
        )));
    }
    let bad = |e: &dyn std::fmt::Display| HostError::Failed(format!("bad request: {e}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e))?;
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| bad(&e))?;
    let proxies = Proxies::from_setting(proxy).map_err(|e| HostError::Failed(e.to_string()))?;
    let route = proxies.route_url(parsed.as_str());
    let mut builder = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls_config()?)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    for p in proxies.reqwest_proxies() {
        builder = builder.proxy(p);
    }
    let client = builder
        .build()
        .map_err(|e| HostError::Failed(format!("HTTP client: {e}")))?;
    let mut req = client.request(method.clone(), parsed.clone());
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad(&e))?;
        let value = reqwest::header::HeaderValue::from_str(v).map_err(|e| bad(&e))?;
        req = req.header(name, value);
    }
    let target = proxy::host_port(&host, parsed.port_or_known_default().unwrap_or(80));
    let resp = req.body(body.to_vec()).send().map_err(|e| {
        HostError::Failed(format!(
            "{method} {url}: {}",
            explain(&e, route.as_ref(), &target)
        ))
    })?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    let too_large = || HostError::Limit(format!("response body: larger than {limit} bytes"));
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    resp.take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| HostError::Failed(format!("response body: {e}")))?;
    if body.len() > limit {
        return Err(too_large());
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_parsed_and_checked() {
        assert_eq!(
            host_of("https://Licenses.Example.com:8443/x?y").as_deref(),
            Some("licenses.example.com")
        );
        assert_eq!(host_of("http://u:p@h/").as_deref(), Some("h"));
        assert_eq!(host_of("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(host_of("ftp://h/"), None);
        let err = request(
            &["a.example".into()],
            None,
            "GET",
            "http://b.example/",
            &[],
            &[],
            10,
        )
        .unwrap_err();
        assert!(matches!(err, HostError::Denied(_)));
    }
}
