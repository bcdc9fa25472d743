//! The window server's routes: every request's Host must be this server
//! (127.0.0.1:PORT or localhost:PORT: a page of another site that a DNS
//! rebinding points at 127.0.0.1 is refused), the launch token is
//! exchanged for the cookie at `/open`, and the static files are served
//! under [`super::WINDOW_CSP`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{Auth, COOKIE, WINDOW_CSP, assets, socket};
use crate::channel::Hub;

/// Longest body of `/open` (a form with the token).
pub const MAX_OPEN_BODY_BYTES: usize = 1024;

/// What every handler sees.
#[derive(Clone)]
pub(crate) struct App {
    pub hub: Arc<Hub>,
    pub auth: Arc<Auth>,
}

pub(crate) fn router(hub: Arc<Hub>, auth: Arc<Auth>) -> Router {
    let app = App { hub, auth };
    Router::new()
        .route("/", get(index))
        .route("/open", post(open))
        .route("/ws", get(socket::upgrade))
        .route("/{*path}", get(file))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_OPEN_BODY_BYTES))
        .layer(from_fn_with_state(app.clone(), host_check))
        .layer(map_response(security_headers))
        .with_state(app)
}

/// Whether `host` (a Host header, or an Origin without its scheme) names
/// this server.
pub(crate) fn is_this_server(host: &str, port: u16) -> bool {
    host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}")
}

async fn host_check(State(app): State<App>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !is_this_server(host, app.auth.port) {
        return (
            StatusCode::FORBIDDEN,
            "This address is not the Lifeline window.",
        )
            .into_response();
    }
    next.run(req).await
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(WINDOW_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

async fn index() -> Response {
    assets::get("index.html").unwrap_or_else(not_found)
}

async fn file(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    assets::get(&path).unwrap_or_else(not_found)
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such file").into_response()
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `POST /open` with `token=…` (the launcher's form): the token is burnt
/// and exchanged for the cookie; the browser goes on to the page.
async fn open(State(app): State<App>, body: Bytes) -> Response {
    let given = std::str::from_utf8(&body)
        .ok()
        .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("token=")))
        .unwrap_or("");
    let accepted = {
        let mut token = app.auth.token.lock().unwrap_or_else(|p| p.into_inner());
        let ok = token.as_deref().is_some_and(|t| same_secret(t, given));
        if ok {
            *token = None;
        }
        ok
    };
    if !accepted {
        return (
            StatusCode::FORBIDDEN,
            "This window link was already used or is not valid. Start the Lifeline window again.",
        )
            .into_response();
    }
    let _ = std::fs::remove_file(&app.auth.launcher);
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        app.auth.cookie
    );
    let mut r = (StatusCode::SEE_OTHER, "").into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    r
}

/// Whether the request carries this server's cookie.
pub(crate) fn has_cookie(headers: &HeaderMap, auth: &Auth) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix(&format!("{COOKIE}=")))
        .any(|v| same_secret(v, &auth.cookie))
}

/// Whether the request's Origin is this server's page.
pub(crate) fn origin_ok(headers: &HeaderMap, port: u16) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .and_then(|o| o.strip_prefix("http://"))
        .is_some_and(|o| is_this_server(o, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_server_and_its_own_page() {
        assert!(is_this_server("127.0.0.1:5000", 5000));
        assert!(is_this_server("localhost:5000", 5000));
        for bad in ["127.0.0.1:5001", "evil.example:5000", "127.0.0.1", ""] {
            assert!(!is_this_server(bad, 5000), "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:5000"),
        );
        assert!(origin_ok(&h, 5000));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_ok(&h, 5000));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
