//! The console API's errors: each becomes an HTTP status and a JSON body
//! `{"error": "..."}` (plus `retry_after_secs` when rate-limited).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lifeline_protocol::ErrorCode;

use super::conn::ConnError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No cookie session (none sent, unknown, expired or logged out).
    #[error("not logged in to the console (or the console session expired); log in again")]
    NotLoggedIn,
    /// A wrong username or password.
    #[error("{0}")]
    BadCredentials(String),
    /// A state-changing request without the cookie session's CSRF token.
    #[error("missing or wrong X-CSRF-Token header")]
    Csrf,
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The mail server refused or could not be reached.
    #[error("{0}")]
    BadGateway(String),
    /// Details are in the broker's log.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotLoggedIn | ApiError::BadCredentials(_) => StatusCode::UNAUTHORIZED,
            ApiError::Csrf | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A refusal of the operator protocol, as the HTTP error it means.
    pub fn from_broker(code: ErrorCode, message: String) -> ApiError {
        match code {
            ErrorCode::BadCredentials => ApiError::BadCredentials(message),
            ErrorCode::NotLoggedIn => ApiError::NotLoggedIn,
            ErrorCode::RateLimited => ApiError::RateLimited {
                retry_after_secs: crate::retry_after_secs(&message),
                message,
            },
            ErrorCode::NoSuchSession | ErrorCode::InvalidInvitation => ApiError::NotFound(message),
            ErrorCode::WrongState => ApiError::Conflict(message),
            ErrorCode::Internal => ApiError::Internal(message),
            ErrorCode::Invalid
            | ErrorCode::BadMessage
            | ErrorCode::BadHandshake
            | ErrorCode::VersionMismatch => ApiError::BadRequest(message),
        }
    }
}

impl From<ConnError> for ApiError {
    fn from(e: ConnError) -> ApiError {
        match e {
            ConnError::Broker { code, message } => ApiError::from_broker(code, message),
            other => {
                tracing::warn!("console: operator connection: {other}");
                ApiError::Internal(format!("the broker could not answer: {other}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = serde_json::json!({ "error": self.to_string() });
        let retry = match &self {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry {
            body["retry_after_secs"] = secs.into();
        }
        let mut r = (status, Json(body)).into_response();
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}
