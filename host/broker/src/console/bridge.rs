//! `GET /console/ws`: one WebSocket per browser tab, bridged to a fresh
//! in-memory operator connection (`conn::open`) logged in with the cookie
//! session's broker login (`Request::Resume`).
//!
//! After the browser's first message (`{"csrf": token}`), text messages
//! are operator-protocol `Message` JSON both ways and binary messages are
//! session data (`n`, `n` bytes of session ID, the payload), as in
//! docs/console-protocol.md. The browser may send requests (but not
//! `login`, `resume`, `logout`: the cookie session does those) and session
//! messages; the broker's handler (`operator_side::run`) checks them as it
//! checks the CLI's.
//!
//! Both directions are bounded: the link's queues (`lifeline_core::link`)
//! towards the broker, a short local queue for the bridge's own replies,
//! and a browser that does not take a message within the broker's write
//! timeout (`broker.limits.write_timeout_secs`) is dropped, like an
//! operator client that stops reading.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as Ws, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use lifeline_core::link::{CloseReason, FrameReceiver, FrameSender, MISSED_HEARTBEATS};
use lifeline_protocol::frame::{MAX_SESSION_ID_BYTES, session_prefix};
use lifeline_protocol::{ErrorCode, Frame, MAX_FRAME_BYTES, Message, ReplyBody, Request};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::HttpsConn;
use super::auth;
use super::conn::{self, CONSOLE_REQUEST_TIMEOUT};
use super::error::ApiError;
use super::sessions::{CONSOLE_SOCKETS_PER_SESSION, CookieSession, Ended};
use crate::Shared;

/// Time a new socket has to send its CSRF token. Threat: sockets opened and
/// left silent holding a place.
pub const CONSOLE_WS_AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest WebSocket message either way: what one frame of the operator
/// protocol carries. Threat: a browser making the broker buffer more.
pub const CONSOLE_WS_MAX_MESSAGE: usize = MAX_FRAME_BYTES;

/// The bridge's own answers to the browser (refusals) queued before the
/// browser's further messages wait. Threat: a browser that sends bad
/// messages and does not read growing the queue.
pub const CONSOLE_WS_LOCAL_QUEUE: usize = 16;

/// WebSocket close codes (RFC 6455).
const CLOSE_POLICY: u16 = 1008;
const CLOSE_ERROR: u16 = 1011;
/// Longest close reason (a close frame's payload is at most 125 bytes).
const MAX_CLOSE_REASON_BYTES: usize = 120;

#[derive(Deserialize)]
struct CsrfHello {
    csrf: String,
}

/// The upgrade: cookie, origin and a free socket place first.
pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Extension(https): Extension<HttpsConn>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let s = match auth::session(&shared, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if !auth::same_origin(&headers) {
        return ApiError::Forbidden(
            "the console's WebSocket must be opened by the console's own page (Origin)".into(),
        )
        .into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => return r.into_response(),
    };
    let Ok(place) = Arc::clone(&s.sockets).try_acquire_owned() else {
        return ApiError::RateLimited {
            message: format!(
                "at most {CONSOLE_SOCKETS_PER_SESSION} console tabs per login; close another one"
            ),
            retry_after_secs: 5,
        }
        .into_response();
    };
    ws.max_message_size(CONSOLE_WS_MAX_MESSAGE)
        .max_frame_size(CONSOLE_WS_MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            run(shared, s, https, socket).await;
            drop(place);
        })
}

/// Why the bridge ended, and what the browser is told.
struct Close {
    code: u16,
    reason: String,
}

impl Close {
    fn policy(reason: impl Into<String>) -> Close {
        Close {
            code: CLOSE_POLICY,
            reason: reason.into(),
        }
    }
    fn error(reason: impl Into<String>) -> Close {
        Close {
            code: CLOSE_ERROR,
            reason: reason.into(),
        }
    }
}

async fn run(shared: Arc<Shared>, s: Arc<CookieSession>, https: HttpsConn, mut socket: WebSocket) {
    let mut ended = s.ended();
    let first = tokio::time::timeout(CONSOLE_WS_AUTH_TIMEOUT, socket.recv()).await;
    let csrf_ok = match first {
        Ok(Some(Ok(Ws::Text(t)))) => {
            serde_json::from_str::<CsrfHello>(t.as_str()).is_ok_and(|h| auth::csrf_ok(&s, &h.csrf))
        }
        _ => false,
    };
    let now = *ended.borrow();
    if !csrf_ok || now != Ended::Open {
        let why = if now == Ended::Open {
            "the first message must be {\"csrf\": token} of this login"
        } else {
            now.reason()
        };
        close(&mut socket, Close::policy(why)).await;
        return;
    }
    s.touch();
    let mut link = conn::open(&shared, https.peer);
    if let Err(why) = resume(&mut link, &s).await {
        link.tx.close("the console could not log in");
        close(&mut socket, Close::error(why)).await;
        return;
    }
    tracing::debug!(peer = %https.peer, operator = %s.profile.username, "console socket open");
    let wait = shared.cfg.limits.write_timeout;
    let heartbeat = shared.cfg.heartbeat;
    let (mut sink, mut stream) = socket.split();
    let (local_tx, mut local_rx) = mpsc::channel(CONSOLE_WS_LOCAL_QUEUE);
    let why = tokio::select! {
        why = to_browser(&mut sink, &mut link.rx, &link.close_reason, &mut local_rx, wait, heartbeat) => why,
        why = from_browser(&mut stream, &link.tx, &local_tx, &s, heartbeat * MISSED_HEARTBEATS) => why,
        end = ended.wait_for(|e| *e != Ended::Open) => {
            Close::policy(end.map_or("the console session ended", |e| e.reason()))
        }
    };
    tracing::info!(
        peer = %https.peer,
        operator = %s.profile.username,
        "console socket closed: {}",
        why.reason
    );
    link.tx
        .close(format!("the console's socket closed: {}", why.reason));
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close_frame(why))).await;
}

/// Logs the new connection in with the cookie session's broker login.
async fn resume(link: &mut lifeline_core::link::Link, s: &CookieSession) -> Result<(), String> {
    let id = 0;
    let body = Request::Resume {
        token: s.token().expose().to_string(),
    };
    link.tx
        .send(Frame::Control(Message::Request { id, body }))
        .await
        .map_err(|_| link.close_reason.get())?;
    let answer = tokio::time::timeout(CONSOLE_REQUEST_TIMEOUT, async {
        while let Some(f) = link.rx.recv().await {
            if let Frame::Control(Message::Reply { id: 0, body }) = f {
                return Some(body);
            }
        }
        None
    })
    .await;
    match answer {
        Ok(Some(ReplyBody::LoggedIn { .. })) => Ok(()),
        Ok(Some(ReplyBody::Error { message, .. })) => Err(message),
        Ok(Some(other)) => Err(format!("unexpected reply {other:?}")),
        Ok(None) => Err(link.close_reason.get()),
        Err(_) => Err("the broker did not answer".into()),
    }
}

fn close_frame(why: Close) -> Ws {
    let mut reason = why.reason;
    if reason.len() > MAX_CLOSE_REASON_BYTES {
        let mut cut = MAX_CLOSE_REASON_BYTES;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    Ws::Close(Some(CloseFrame {
        code: why.code,
        reason: reason.into(),
    }))
}

async fn close(socket: &mut WebSocket, why: Close) {
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(close_frame(why))).await;
}

/// Broker → browser: frames of the operator connection, the bridge's own
/// replies, and a ping every heartbeat. Ends when the connection ends or
/// the browser does not take a message within `wait`.
async fn to_browser(
    sink: &mut SplitSink<WebSocket, Ws>,
    rx: &mut FrameReceiver,
    closed: &CloseReason,
    local: &mut mpsc::Receiver<Ws>,
    wait: Duration,
    heartbeat: Duration,
) -> Close {
    let start = tokio::time::Instant::now() + heartbeat;
    let mut ping = tokio::time::interval_at(start, heartbeat);
    loop {
        let msg = tokio::select! {
            f = rx.recv() => match f {
                Some(f) => match to_ws(f) {
                    Some(m) => m,
                    None => continue,
                },
                None => return Close::error(format!("the broker closed the connection: {}", closed.get())),
            },
            m = local.recv() => match m {
                Some(m) => m,
                None => return Close::error("closed"),
            },
            _ = ping.tick() => Ws::Ping(Bytes::new()),
        };
        match tokio::time::timeout(wait, sink.send(msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Close::error(format!("the browser's socket failed: {e}")),
            Err(_) => {
                return Close::error(format!(
                    "the browser stopped reading: a message could not be sent within {} s",
                    wait.as_secs_f32()
                ));
            }
        }
    }
}

/// A frame of the operator connection as a WebSocket message.
fn to_ws(f: Frame) -> Option<Ws> {
    match f {
        Frame::Control(m) => {
            let json = serde_json::to_string(&m).expect("messages always serialise to JSON");
            Some(Ws::Text(json.into()))
        }
        Frame::SessionData { session, payload } => {
            let mut b = session_prefix(&session);
            b.extend_from_slice(&payload);
            Some(Ws::Binary(b.into()))
        }
        // The broker names the session of every data frame to operators.
        Frame::Data(_) => None,
    }
}

/// Browser → broker: requests and session messages (text), session data
/// (binary). A message the bridge refuses is answered, the socket stays.
async fn from_browser(
    stream: &mut SplitStream<WebSocket>,
    tx: &FrameSender,
    local: &mpsc::Sender<Ws>,
    s: &CookieSession,
    silence: Duration,
) -> Close {
    loop {
        let m = match tokio::time::timeout(silence, stream.next()).await {
            Err(_) => {
                return Close::error(format!(
                    "nothing from the browser for {} s",
                    silence.as_secs()
                ));
            }
            Ok(None) | Ok(Some(Ok(Ws::Close(_)))) => {
                return Close {
                    code: 1000,
                    reason: "closed by the browser".into(),
                };
            }
            Ok(Some(Err(e))) => return Close::error(format!("the browser's socket failed: {e}")),
            Ok(Some(Ok(m))) => m,
        };
        let frame = match m {
            Ws::Text(t) => from_text(t.as_str()),
            Ws::Binary(b) => from_binary(&b),
            Ws::Ping(_) | Ws::Pong(_) => continue,
            Ws::Close(_) => continue,
        };
        s.touch();
        let sent = match frame {
            Ok(f) => tx.send(f).await.is_ok(),
            Err(refusal) => {
                let json = serde_json::to_string(&refusal).expect("messages serialise");
                local.send(Ws::Text(json.into())).await.is_ok()
            }
        };
        if !sent {
            return Close::error("the broker closed the connection");
        }
    }
}

fn bad(message: impl Into<String>) -> Box<Message> {
    Box::new(Message::Error {
        code: ErrorCode::BadMessage,
        message: message.into(),
    })
}

/// A text message from the browser as a frame for the broker, or the
/// message that refuses it.
pub fn from_text(text: &str) -> Result<Frame, Box<Message>> {
    let m: Message = serde_json::from_str(text)
        .map_err(|e| bad(format!("not a message of the operator protocol: {e}")))?;
    match m {
        Message::Request {
            id,
            body: Request::Login { .. } | Request::Resume { .. } | Request::Logout,
        } => Err(Box::new(Message::Reply {
            id,
            body: ReplyBody::Error {
                code: ErrorCode::BadMessage,
                message: "the console logs in and out over HTTP (/console/api/login, /console/api/logout)".into(),
            },
        })),
        m @ (Message::Request { .. } | Message::Session { .. }) => Ok(Frame::Control(m)),
        _ => Err(bad(
            "the console sends only request and session messages",
        )),
    }
}

/// A binary message from the browser (`n`, session ID, payload) as a
/// session data frame, or the message that refuses it.
pub fn from_binary(b: &[u8]) -> Result<Frame, Box<Message>> {
    let n = usize::from(*b.first().ok_or_else(|| bad("an empty binary message"))?);
    if n == 0 || n > MAX_SESSION_ID_BYTES || b.len() < 1 + n {
        return Err(bad(format!(
            "a binary message starts with the session ID's length (1 to {MAX_SESSION_ID_BYTES}) and the ID"
        )));
    }
    let session = std::str::from_utf8(&b[1..1 + n])
        .map_err(|_| bad("the session ID of a binary message is not UTF-8"))?
        .to_string();
    Ok(Frame::SessionData {
        session,
        payload: b[1 + n..].to_vec(),
    })
}
