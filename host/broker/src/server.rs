//! The session listener: accepts TCP, runs TLS and the versioned handshake
//! under a deadline, then hands the connection to the agent or operator
//! handler. A bad peer only ever closes its own connection, with a logged
//! reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lifeline_core::lean_tls;
use lifeline_core::link::{Link, spawn_link_with};
use lifeline_protocol::{
    ClientRole, ErrorCode, Frame, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES, Message,
    PROTOCOL_NAME, PROTOCOL_VERSION, read_frame, write_frame,
};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::Shared;

/// Time a new connection has for TLS and its `Hello`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Refused connections told why at once (TLS, `Hello`, `Error`); beyond
/// this many in progress, further refusals are plain closes. Bounds the
/// work a flood past the connection caps can cause.
pub const MAX_PENDING_REFUSALS: usize = 32;
/// Time a refused connection has to complete TLS and send its `Hello`
/// before it is closed without an explanation.
pub const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest a refused connection is still read after its refusal was
/// written. An agent sends its join right behind its `Hello`; closing with
/// those bytes unread makes the kernel reset the connection, which can
/// discard the refusal before the client reads it. Read until the client
/// closes, within this time and [`REFUSAL_DRAIN_BYTES`].
pub const REFUSAL_DRAIN: Duration = Duration::from_secs(1);
/// Most bytes read (and dropped) from a refused connection.
pub const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;

/// Accepts connections until the listener fails.
/// Each connection's TLS is [`lean_tls`]: an idle agent's connection holds
/// no TLS buffer (rustls's buffered connection keeps 4 KiB).
pub async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, shared: Arc<Shared>) {
    let refusals = Arc::new(Semaphore::new(MAX_PENDING_REFUSALS));
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
        let acceptor = Arc::clone(&tls);
        let permit = match shared.session_conns.admit(peer.ip()) {
            Ok(p) => p,
            Err(refusal) => {
                if let Ok(slot) = Arc::clone(&refusals).try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(tcp, acceptor, refusal.to_string()).await;
                        drop(slot);
                    });
                }
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            handle(tcp, peer, acceptor, shared).await;
            drop(permit);
        });
    }
}

/// Tells a refused client why (within [`REFUSAL_TIMEOUT`]) and closes.
async fn refuse(tcp: TcpStream, acceptor: Arc<ServerConfig>, message: String) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        let mut tls = lean_tls::accept(tcp, acceptor).await.ok()?;
        // Read the Hello first: closing with it unread would reset the
        // connection before the client reads the reason.
        read_frame(&mut tls, MAX_HANDSHAKE_FRAME_BYTES).await.ok()?;
        let error = Message::Error {
            code: ErrorCode::RateLimited,
            message,
        };
        write_frame(&mut tls, &Frame::Control(error)).await.ok()?;
        close_refused(&mut tls).await;
        Some(())
    })
    .await;
}

/// Closes a connection whose refusal was written: sends the TLS close,
/// then reads what the client still sends until it closes too (bounded by
/// [`REFUSAL_DRAIN`] and [`REFUSAL_DRAIN_BYTES`]), so the close does not
/// reset the connection under the refusal.
async fn close_refused<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S) {
    let _ = tokio::time::timeout(REFUSAL_DRAIN, async {
        let _ = tls.shutdown().await;
        let mut buf = [0u8; 4096];
        let mut seen = 0;
        while seen < REFUSAL_DRAIN_BYTES {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen += n,
            }
        }
    })
    .await;
}

async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Arc<ServerConfig>,
    shared: Arc<Shared>,
) {
    // Boxed, and a function of its own: the TLS accept and handshake states
    // and the TLS stream itself (kilobytes) are freed or moved into the
    // link once done, instead of sizing this task, which lives as long as
    // the connection (docs/benchmarks.md, "Idle agents", After).
    let Some((link, role)) = Box::pin(open(tcp, peer, acceptor, &shared)).await else {
        return;
    };
    // The operator's handler is boxed: inline, its state (the larger of
    // the two) would size the task of every idle agent too.
    match role {
        ClientRole::Agent => crate::agent_side::run(shared, link, peer).await,
        ClientRole::Operator => Box::pin(crate::operator_side::run(shared, link, peer)).await,
    }
}

/// TLS and the versioned handshake within [`HANDSHAKE_TIMEOUT`], then the
/// connection's link; `None` (the reason logged) when either failed.
async fn open(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Arc<ServerConfig>,
    shared: &Shared,
) -> Option<(Link, ClientRole)> {
    tcp.set_nodelay(true).ok();
    let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut tls = lean_tls::accept(tcp, acceptor)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        match handshake(&mut tls, &shared.name).await {
            Ok(role) => Ok::<_, String>((tls, role)),
            Err(reason) => {
                close_refused(&mut tls).await;
                Err(reason)
            }
        }
    })
    .await;
    let (tls, role) = match hs {
        Err(_) => {
            tracing::info!(%peer, "closed connection: no handshake within {HANDSHAKE_TIMEOUT:?}");
            return None;
        }
        Ok(Err(reason)) => {
            tracing::info!(%peer, "closed connection: {reason}");
            return None;
        }
        Ok(Ok(x)) => x,
    };
    let link = spawn_link_with(
        tls,
        shared.cfg.heartbeat,
        MAX_FRAME_BYTES,
        shared.cfg.limits.write_timeout,
    );
    Some((link, role))
}

/// The next frame of a connection that must authenticate (operator login
/// or resume, agent join or rejoin) by `deadline`; `None`: no deadline
/// (already authenticated). `None` when the link closed, or the deadline
/// passed (the peer was told why and the connection is being closed).
/// `what` names what was expected, for the error.
pub async fn next_before(
    link: &mut Link,
    deadline: Option<Instant>,
    peer: SocketAddr,
    what: &str,
) -> Option<Frame> {
    let Some(deadline) = deadline else {
        return link.rx.recv().await;
    };
    match tokio::time::timeout_at(deadline, link.rx.recv()).await {
        Ok(frame) => frame,
        Err(_) => {
            let message = format!(
                "connection closed: no {what} within the broker's authentication deadline (broker.limits.auth_deadline_secs)"
            );
            tracing::info!(%peer, "{message}");
            let error = Message::Error {
                code: ErrorCode::NotLoggedIn,
                message,
            };
            let _ = link.tx.try_send(Frame::Control(error));
            None
        }
    }
}

/// The first frame of a new agent connection: it must come (a join or a
/// rejoin) within the authentication deadline; `None` when it did not or
/// the link closed.
pub async fn first_frame(shared: &Shared, link: &mut Link, peer: SocketAddr) -> Option<Frame> {
    let deadline = Instant::now() + shared.cfg.limits.auth_deadline;
    next_before(link, Some(deadline), peer, "join or rejoin").await
}

/// Reads and checks the `Hello`; answers `Welcome` or a precise error.
/// Public for the fuzz target `handshake` (fuzz/) only.
#[doc(hidden)]
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
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
        Frame::SessionData { payload, .. } => format!("{} session data bytes", payload.len()),
        Frame::Control(m) => {
            let v = serde_json::to_value(m).unwrap_or_default();
            format!(
                "{} message",
                v.get("type").and_then(|t| t.as_str()).unwrap_or("?")
            )
        }
    }
}
