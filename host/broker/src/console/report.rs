//! `GET /console/api/sessions/{session_id}/report?format=txt|json`: the
//! whole report as a download, read page by page with the operator
//! protocol's `Report` on the cookie session's connection (so the same
//! rules decide whose report it is), formatted by the same functions as
//! `lifeline operator report` (`lifeline_protocol::report`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lifeline_protocol::{ReportEvent, SessionSummary};
use serde::Deserialize;

use super::auth;
use super::error::ApiError;
use super::sessions::CookieSession;
use crate::Shared;

/// Most report pages read for one download. Threat: a report whose pages
/// never end keeping a request (and the broker) busy for ever; reports
/// are bounded by the report quota far below this.
pub const CONSOLE_MAX_REPORT_PAGES: usize = 100_000;

#[derive(Deserialize)]
pub struct Format {
    format: Option<String>,
}

/// The download handler.
pub async fn download(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    Query(q): Query<Format>,
) -> Result<Response, ApiError> {
    let s = auth::session(&shared, &headers)?;
    let json = match q.format.as_deref() {
        None | Some("txt") => false,
        Some("json") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format {other:?}: use txt or json"
            )));
        }
    };
    let (summary, events) = whole_report(&shared, &s, &session_id).await?;
    let (text, content_type, ext) = if json {
        (
            lifeline_protocol::report::to_json(&summary, &events),
            "application/json; charset=utf-8",
            "json",
        )
    } else {
        (
            lifeline_protocol::report::to_text(&summary, &events),
            "text/plain; charset=utf-8",
            "txt",
        )
    };
    let name: String = summary
        .session_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let mut r = text.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let disposition = format!("attachment; filename=\"lifeline-report-{name}.{ext}\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// Every page of a report.
async fn whole_report(
    shared: &Arc<Shared>,
    s: &CookieSession,
    session_id: &str,
) -> Result<(SessionSummary, Vec<ReportEvent>), ApiError> {
    lifeline_protocol::report::all_pages(session_id, CONSOLE_MAX_REPORT_PAGES, |req| {
        s.request(shared, req)
    })
    .await
    .map_err(|e| e.map_or_else(ApiError::from, ApiError::Internal))
}
