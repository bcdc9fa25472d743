//! The session listener: accepts TCP, runs TLS and the versioned handshake
//! under a deadline, then hands the connection to the agent or operator
//! handler. A bad peer only ever closes its own connection, with a logged
//! reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lifeline_core::link::spawn_link;
use lifeline_protocol::{
    ClientRole, ErrorCode, Frame, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES, Message,
    PROTOCOL_NAME, PROTOCOL_VERSION, read_frame, write_frame,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::Shared;

/// Time a new connection has for TLS and its `Hello`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until the listener fails.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            handle(tcp, peer, acceptor, shared).await;
        });
    }
}

async fn handle(tcp: TcpStream, peer: SocketAddr, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    tcp.set_nodelay(true).ok();
    let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let role = handshake(&mut tls, &shared.name).await?;
        Ok::<_, String>((tls, role))
    })
    .await;
    let (tls, role) = match hs {
        Err(_) => {
            tracing::info!(%peer, "closed connection: no handshake within {HANDSHAKE_TIMEOUT:?}");
            return;
        }
        Ok(Err(reason)) => {
            tracing::info!(%peer, "closed connection: {reason}");
            return;
        }
        Ok(Ok(x)) => x,
    };
    let link = spawn_link(tls, shared.cfg.heartbeat, MAX_FRAME_BYTES);
    match role {
        ClientRole::Agent => crate::agent_side::run(shared, link, peer).await,
        ClientRole::Operator => crate::operator_side::run(shared, link, peer).await,
    }
}

/// Reads and checks the `Hello`; answers `Welcome` or a precise error.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut S,
    broker_name: &str,
) -> Result<ClientRole, String> {
    let refuse = |code, message: String| Frame::Control(Message::Error { code, message });
    let frame = match read_frame(tls, MAX_HANDSHAKE_FRAME_BYTES).await {
        Ok(f) => f,
        Err(e) => {
            let reason = format!("bad handshake: {e}");
            let _ = write_frame(tls, &refuse(ErrorCode::BadHandshake, reason.clone())).await;
            return Err(reason);
        }
    };
    let (protocol, version, role) = match frame {
        Frame::Control(Message::Hello {
            protocol,
            version,
            role,
            ..
        }) => (protocol, version, role),
        other => {
            let reason = format!("bad handshake: expected hello, got {}", kind_of(&other));
            let _ = write_frame(tls, &refuse(ErrorCode::BadHandshake, reason.clone())).await;
            return Err(reason);
        }
    };
    if protocol != PROTOCOL_NAME || version != PROTOCOL_VERSION {
        let reason = format!(
            "protocol mismatch: this broker speaks {PROTOCOL_NAME} version {PROTOCOL_VERSION}, the client speaks {protocol} version {version}; update the older side"
        );
        let _ = write_frame(tls, &refuse(ErrorCode::VersionMismatch, reason.clone())).await;
        return Err(reason);
    }
    write_frame(
        tls,
        &Frame::Control(Message::Welcome {
            version: PROTOCOL_VERSION,
            broker: broker_name.to_string(),
        }),
    )
    .await
    .map_err(|e| format!("cannot send welcome: {e}"))?;
    Ok(role)
}

/// A short name of a frame for log lines (never its content).
pub fn kind_of(f: &Frame) -> String {
    match f {
        Frame::Data(d) => format!("{} data bytes", d.len()),
        Frame::Control(m) => {
            let v = serde_json::to_value(m).unwrap_or_default();
            format!(
                "{} message",
                v.get("type").and_then(|t| t.as_str()).unwrap_or("?")
            )
        }
    }
}
