//! Logging in and out of the web console: cookie sessions made from an
//! operator-protocol `Login` on an in-memory operator connection, and the
//! checks every other console route makes (cookie, CSRF token, origin).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lifeline_protocol::{OperatorProfile, ReplyBody, Request, Secret};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::HttpsConn;
use super::conn::Requester;
use super::error::ApiError;
use super::sessions::CookieSession;
use crate::Shared;

/// Name of the console's cookie.
pub const COOKIE_NAME: &str = "ll_console";
/// Header carrying the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: Secret,
}

/// What `login` and `me` answer.
#[derive(Serialize)]
pub struct Me {
    csrf: String,
    profile: OperatorProfile,
}

/// The `Set-Cookie` value of a new cookie session.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE_NAME}={id}; HttpOnly; Secure; SameSite=Strict; Path=/console")
}

/// The `Set-Cookie` value that deletes the cookie.
fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; HttpOnly; Secure; SameSite=Strict; Path=/console; Max-Age=0")
}

/// The console cookie's value among the request's cookies.
pub fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// The request's live cookie session, noted as used; 401 without one.
pub fn session(shared: &Shared, headers: &HeaderMap) -> Result<Arc<CookieSession>, ApiError> {
    let s = cookie_id(headers)
        .and_then(|id| shared.console.sessions.get(id))
        .ok_or(ApiError::NotLoggedIn)?;
    s.touch();
    Ok(s)
}

/// True when `given` is the session's CSRF token (constant time).
pub fn csrf_ok(s: &CookieSession, given: &str) -> bool {
    bool::from(s.csrf.as_bytes().ct_eq(given.as_bytes()))
}

/// The cookie session of a state-changing request: the cookie, then the
/// CSRF token in its header (403 when missing or wrong).
pub fn session_csrf(shared: &Shared, headers: &HeaderMap) -> Result<Arc<CookieSession>, ApiError> {
    let s = session(shared, headers)?;
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if csrf_ok(&s, given) {
        Ok(s)
    } else {
        Err(ApiError::Csrf)
    }
}

/// A JSON body, or 400 naming what is wrong with it.
pub fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t)
        .map_err(|e| ApiError::BadRequest(format!("bad request body: {}", e.body_text())))
}

/// `POST /console/api/login`.
pub async fn login(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<HttpsConn>,
    b: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = body(b)?;
    let requester = Requester::open(&shared, conn.peer);
    let req = Request::Login {
        username: b.username,
        password: b.password.expose().to_string(),
    };
    let (token, profile) = match requester.request(req).await? {
        ReplyBody::LoggedIn {
            token: Some(token),
            profile,
        } => (Secret::new(token), profile),
        other => {
            tracing::error!("console login: unexpected reply {other:?}");
            return Err(ApiError::Internal("unexpected reply to the login".into()));
        }
    };
    tracing::info!(operator = %profile.username, peer = %conn.peer, "console login");
    let (cookie, s) = shared
        .console
        .sessions
        .insert(requester, token, profile, conn.peer);
    let mut r = Json(Me {
        csrf: s.csrf.clone(),
        profile: s.profile.clone(),
    })
    .into_response();
    let v = HeaderValue::from_str(&set_cookie(&cookie))
        .map_err(|_| ApiError::Internal("cookie header".into()))?;
    r.headers_mut().insert(header::SET_COOKIE, v);
    Ok(r)
}

/// `GET /console/api/me`.
pub async fn me(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiError> {
    let s = session(&shared, &headers)?;
    Ok(Json(Me {
        csrf: s.csrf.clone(),
        profile: s.profile.clone(),
    }))
}

/// `POST /console/api/logout`: ends the broker login, the cookie session
/// and its sockets.
pub async fn logout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let s = session_csrf(&shared, &headers)?;
    if let Err(e) = s.request(&shared, Request::Logout).await {
        tracing::warn!(operator = %s.profile.username, "console logout: {e}");
    }
    if let Some(id) = cookie_id(&headers) {
        shared.console.sessions.remove(id);
    }
    tracing::info!(operator = %s.profile.username, "console logout");
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// True when the request's `Origin` is the broker's own HTTPS origin: the
/// scheme `https` and the `Host` the browser used.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
    match (get(header::ORIGIN), get(header::HOST)) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("https://")
            .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}
