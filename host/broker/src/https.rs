//! The broker's HTTPS side: the join page behind each personalised link,
//! short links (redirects to the personalised link), a landing page, the
//! license back office's routes (`back_office`), and the operator web
//! console under `/console` (`console`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::Shared;
use crate::server::HANDSHAKE_TIMEOUT;

/// Longest path segment looked up (tokens are 43 characters).
pub const MAX_SEGMENT_CHARS: usize = 128;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/j/{token}", get(join_page))
        .route("/s/{code}", get(short_link))
        .merge(crate::join_files::routes())
        .merge(crate::back_office::routes())
        .merge(crate::console::routes())
        .with_state(shared)
}

/// Bytes hyper buffers per connection (request header included): bounds
/// the memory each open HTTPS connection can claim. Join pages, redirects
/// and back-office requests need a few KiB.
pub const HTTP_MAX_BUF_BYTES: usize = 64 * 1024;

pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let app = router(Arc::clone(&shared));
    let limits = shared.cfg.limits.clone();
    let mut http = hyper::server::conn::http1::Builder::new();
    // Without a timer hyper applies no header-read timeout at all; with it
    // the timeout also ends idle keep-alive connections.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.http_header_timeout)
        .max_buf_size(HTTP_MAX_BUF_BYTES);
    let http = Arc::new(http);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        // Small writes (a WebSocket handshake, a pushed session message)
        // go out at once instead of waiting for Nagle's delayed ACK
        // (40 ms): measured in docs/benchmarks.md, "Web console".
        let _ = tcp.set_nodelay(true);
        let permit = match shared.https_conns.admit(peer.ip()) {
            Ok(p) => p,
            // No TLS for refused connections: a flood costs nothing (the
            // limiter logs refusals, at most once a minute).
            Err(_) => continue,
        };
        // Shared with the requests: a console WebSocket keeps the
        // connection's place for as long as it is open.
        let permit = Arc::new(permit);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(crate::back_office::Peer(peer.ip())))
                .layer(axum::Extension(crate::console::HttpsConn {
                    peer,
                    permit: Arc::clone(&permit),
                })),
        );
        let http = Arc::clone(&http);
        let lifetime = limits.http_connection;
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "https TLS handshake failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            // Upgrades: the console's WebSocket (which then lives on in
            // its own task, beyond `lifetime`).
            let conn = http
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            match tokio::time::timeout(lifetime, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "https connection: {e}"),
                Err(_) => tracing::info!(
                    %peer,
                    "https connection closed: open longer than {} s (broker.limits.http_connection_secs)",
                    lifetime.as_secs()
                ),
            }
            drop(permit);
        });
    }
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head><body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\">{body}</body></html>",
        esc(title)
    );
    let mut r = (status, Html(html)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

fn invalid_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Invitation not valid",
        "<h1>This invitation is not valid</h1><p>The link is wrong, has expired, or was already used. \
         Please ask your technician for a new invitation.</p>",
    )
}

async fn landing(State(s): State<Arc<Shared>>) -> Response {
    page(
        StatusCode::OK,
        &s.name,
        &format!(
            "<h1>{}</h1><p>Lifeline remote support. If your technician gave you a connection ID, run \
             <code>lifeline agent join 123456</code> with the digits you were given.</p>",
            esc(&s.name)
        ),
    )
}

/// The invitation behind a link token, when it can still be used
/// (`Ok(None)`: unknown, used, expired or no longer invited).
pub(crate) fn open_invitation(
    s: &Shared,
    token: &str,
) -> Result<Option<crate::store::SessionRow>, crate::store::StoreError> {
    if token.len() > MAX_SEGMENT_CHARS {
        return Ok(None);
    }
    let Some(row) = s.store.session_by_link_token(token)? else {
        return Ok(None);
    };
    let now = lifeline_core::time::now_millis();
    let usable = row.used_at.is_none()
        && row.expires_at >= now
        && row.state == lifeline_protocol::SessionState::Invited;
    Ok(usable.then_some(row))
}

async fn join_page(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let row = match open_invitation(&s, &token) {
        Ok(Some(r)) => r,
        Ok(None) => return invalid_link(),
        Err(e) => {
            tracing::error!("join page: {e}");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "<p>Please try again.</p>",
            );
        }
    };
    let op = s.store.operator_by_id(row.operator_id).ok().flatten();
    let (name, title) = op
        .map(|o| (o.profile.name, o.profile.title))
        .unwrap_or_default();
    let link = format!("{}/j/{token}", s.public_url);
    let digest = s.join.agent_digest().await;
    page(
        StatusCode::OK,
        "Your support session",
        &format!(
            "<h1>Hello {user}</h1>\
             <p><b>{name}</b>{title} of {broker} invites you to a remote-support session for ticket <b>{ticket}</b>.</p>\
             <h2>Start the session</h2><ol>\
             <li>Install Lifeline on this computer if it is not there yet{download}.</li>\
             <li>Download the <a href=\"/j/{token}/{join_file}\" download>join file</a> and open it with Lifeline, \
             or run this command in a terminal (nothing to configure):\
             <pre>lifeline agent join ~/Downloads/{join_file_stem}</pre>\
             On a computer already set up for {broker} you can also run:<pre>lifeline agent join {link}</pre></li>\
             <li>Lifeline shows who is helping you. Nothing happens on your computer without your consent, \
             and you can end the session at any time by typing <code>/end</code>.</li></ol>\
             <p>This invitation can be used once and expires at {expires} (UTC).</p>",
            user = esc(&row.end_user),
            name = esc(&name),
            title = if title.is_empty() {
                String::new()
            } else {
                format!(", {}", esc(&title))
            },
            broker = esc(&s.name),
            ticket = esc(&row.ticket),
            link = esc(&link),
            token = esc(&token),
            join_file = crate::join_files::JOIN_FILE_NAME,
            join_file_stem = esc(&crate::join_files::download_name(&row.ticket)),
            download = match digest {
                Ok(d) => format!(
                    ": <a href=\"{}\" download>download Lifeline</a> \
                     (SHA-256 <code class=\"agent-sha256\">{d}</code>), then <code>chmod +x lifeline</code>",
                    crate::join_files::DOWNLOAD_PATH
                ),
                Err(_) => String::new(),
            },
            expires = esc(&lifeline_core::time::millis_to_rfc3339(row.expires_at)),
        ),
    )
}

async fn short_link(State(s): State<Arc<Shared>>, Path(code): Path<String>) -> Response {
    if code.len() > MAX_SEGMENT_CHARS {
        return invalid_link();
    }
    match s.store.session_by_short_code(&code) {
        Ok(Some(row))
            if row.used_at.is_none() && row.expires_at >= lifeline_core::time::now_millis() =>
        {
            let target = format!("{}/j/{}", s.public_url, row.link_token);
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&target) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        _ => invalid_link(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(super::esc("<b>\"x\"&'"), "&lt;b&gt;&quot;x&quot;&amp;&#39;");
    }
}
