//! The operator web console's server side, under `/console` on the HTTPS
//! listener (contract: docs/console-protocol.md).
//!
//! The console speaks the operator protocol itself: every WebSocket
//! (`bridge`) and every cookie session (`sessions`, `auth`) is an in-memory
//! operator connection (`conn`) served by `operator_side::run`, so who sees
//! and may do what is decided in one place, for the CLI and the browser
//! alike. Beside it, plain HTTP for what a browser needs: logging in and
//! out, the report download (`report`), the invitation e-mail (`mail`),
//! and the static files (`assets`).
//!
//! | module | what |
//! |---|---|
//! | [`assets`] | `GET /console/`, `GET /console/assets/{path}` |
//! | [`auth`] | `POST /console/api/login`, `GET /console/api/me`, `POST /console/api/logout`; cookie, CSRF and origin checks |
//! | [`bridge`] | `GET /console/ws` |
//! | [`report`] | `GET /console/api/sessions/{id}/report` |
//! | [`mail`] | `POST /console/api/invitations/{id}/email` |

pub mod assets;
pub mod auth;
pub mod bridge;
pub mod conn;
pub mod error;
pub mod integrity;
pub mod mail;
pub mod report;
pub mod sessions;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware::map_response;
use axum::response::{Redirect, Response};
use axum::routing::{any, get, post};
use lifeline_core::config::BrokerConfig;

use crate::Shared;
use crate::connlimit::ConnPermit;

pub use sessions::{
    CONSOLE_MAX_SESSIONS, CONSOLE_SESSION_IDLE, CONSOLE_SESSION_MAX, CONSOLE_SOCKETS_PER_SESSION,
};

/// Largest request body of the console's API (logins, e-mail addresses).
/// Threat: a client making the broker buffer large bodies.
pub const CONSOLE_MAX_BODY_BYTES: usize = 16 * 1024;

/// The `Content-Security-Policy` of every console response: nothing but
/// the console's own files, no inline script or style, no framing.
/// `'wasm-unsafe-eval'` lets the page compile WebAssembly (the end-to-end
/// module, `WebAssembly.instantiate`) and nothing else: JavaScript `eval`
/// and `new Function` stay refused.
pub const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// The HTTPS connection a request came on (set per connection by
/// `https::serve`): the browser's address, and the connection's place in
/// the HTTPS listener's limit, which a WebSocket keeps for its lifetime.
#[derive(Clone, Debug)]
pub struct HttpsConn {
    pub peer: SocketAddr,
    pub permit: Arc<ConnPermit>,
}

/// The console's state in [`Shared`].
pub struct ConsoleState {
    pub sessions: sessions::Console,
    /// `None` without `[smtp]`.
    pub mailer: Option<mail::Mailer>,
}

impl ConsoleState {
    pub fn new(cfg: &BrokerConfig) -> Result<ConsoleState, mail::MailError> {
        Ok(ConsoleState {
            sessions: sessions::Console::default(),
            mailer: cfg.smtp.as_ref().map(mail::Mailer::new).transpose()?,
        })
    }
}

/// The console's routes, for `https::router`.
pub fn routes() -> Router<Arc<Shared>> {
    let api = Router::new()
        .route("/console/api/login", post(auth::login))
        .route("/console/api/me", get(auth::me))
        .route("/console/api/logout", post(auth::logout))
        .route(
            "/console/api/invitations/{session_id}/email",
            post(mail::send),
        )
        .route(
            "/console/api/sessions/{session_id}/report",
            get(report::download),
        )
        .route("/console/api/{*rest}", any(assets::no_route))
        .layer(DefaultBodyLimit::max(CONSOLE_MAX_BODY_BYTES))
        .layer(map_response(no_store));
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(assets::index))
        .route("/console/assets/{*path}", get(assets::file))
        .route("/console/ws", get(bridge::upgrade))
        .route("/console/{*rest}", any(assets::no_route))
        .merge(api)
        .layer(map_response(security_headers))
}

async fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}
