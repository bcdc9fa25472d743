//! The page's WebSocket: refused without the window's cookie or from
//! another Origin; then the channel's events go out as JSON text messages
//! (first what happened so far) and the customer's commands come in.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::http::{App, has_cookie, origin_ok};
use crate::channel::{self, CustomerEvent, MAX_LINE_BYTES, Subscription};

/// `GET /ws`.
pub(crate) async fn upgrade(
    State(app): State<App>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if !has_cookie(&headers, &app.auth) {
        return (
            StatusCode::FORBIDDEN,
            "not opened through the launcher: no window cookie",
        )
            .into_response();
    }
    if !origin_ok(&headers, app.auth.port) {
        return (StatusCode::FORBIDDEN, "foreign origin").into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => return r.into_response(),
    };
    ws.max_message_size(MAX_LINE_BYTES)
        .max_frame_size(MAX_LINE_BYTES)
        .on_upgrade(move |socket| serve(app, socket))
}

async fn send(sink: &mut (impl SinkExt<Message> + Unpin), ev: &CustomerEvent) -> bool {
    let Ok(json) = serde_json::to_string(ev) else {
        return false;
    };
    sink.send(Message::Text(json.into())).await.is_ok()
}

async fn serve(app: App, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let Subscription {
        backlog,
        mut events,
    } = app.hub.subscribe();
    for ev in &backlog {
        if !send(&mut sink, ev).await {
            return;
        }
    }
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => if !send(&mut sink, &ev).await { return },
                // Too slow: the page reconnects and starts over from
                // what is current.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
            },
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let outcome = match channel::parse(text.as_str()) {
                    Ok(cmd) => app.hub.command(cmd).await,
                    Err(e) => Err(e.to_string()),
                };
                if let Err(message) = outcome
                    && !send(&mut sink, &CustomerEvent::Refused { message }).await
                {
                    return;
                }
            }
        }
    }
}
