//! HTTP(S) for the `http.request` capability: only to hosts the manifest
//! allows, through the agent's configured proxy, with bounded responses.

use std::time::Duration;

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

/// Performs one request if the URL's host is allowed.
pub fn request(
    allowed: &[String],
    proxy: Option<&str>,
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
    let proxy = match proxy {
        Some(p) => {
            Some(ureq::Proxy::new(p).map_err(|e| HostError::Failed(format!("proxy {p:?}: {e}")))?)
        }
        None => None,
    };
    let config = ureq::Agent::config_builder()
        .proxy(proxy)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req
        .body(body.to_vec())
        .map_err(|e| HostError::Failed(format!("bad request: {e}")))?;
    let mut resp = agent
        .run(req)
        .map_err(|e| HostError::Failed(format!("{method} {url}: {e}")))?;
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
    let body = resp
        .body_mut()
        .with_config()
        .limit(limit as u64)
        .read_to_vec()
        .map_err(|e| HostError::Limit(format!("response body: {e}")))?;
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
