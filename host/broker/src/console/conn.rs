//! In-memory operator connections: the console speaks the operator protocol
//! to the broker's own operator handler, exactly as the CLI does over TLS.
//!
//! [`open`] makes a pipe (`tokio::io::duplex`) and runs a framed,
//! heartbeating [`Link`] on each end (`lifeline_core::link::spawn_link_with`,
//! the same as over TLS): one end goes to [`crate::operator_side::run`] with
//! the browser's real address (the login limiter and the log see it), the
//! other is the console's. Nothing is special-cased for the console: the
//! connection skips only the `Hello`/`Welcome` handshake, which is about
//! wire versions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::link::{CloseReason, FrameSender, Link, spawn_link_with};
use lifeline_protocol::{ErrorCode, Frame, MAX_FRAME_BYTES, Message, ReplyBody, Request};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Shared;

/// Bytes in flight in each direction of the in-memory pipe. Frames larger
/// than this pass in pieces; it only bounds what the pipe itself holds
/// (the links' queues are bounded by `lifeline_core::link`).
pub const CONSOLE_PIPE_BYTES: usize = 256 * 1024;

/// Time a console request waits for its reply (as the CLI's client).
pub const CONSOLE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens an operator connection to this broker in memory, as if from
/// `peer`; the console's end of it.
pub fn open(shared: &Arc<Shared>, peer: SocketAddr) -> Link {
    let (ours, theirs) = tokio::io::duplex(CONSOLE_PIPE_BYTES);
    let heartbeat = shared.cfg.heartbeat;
    let write_timeout = shared.cfg.limits.write_timeout;
    let broker_end = spawn_link_with(theirs, heartbeat, MAX_FRAME_BYTES, write_timeout);
    tokio::spawn(crate::operator_side::run(
        Arc::clone(shared),
        broker_end,
        peer,
    ));
    spawn_link_with(ours, heartbeat, MAX_FRAME_BYTES, write_timeout)
}

/// Why a request on an in-memory connection got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The broker answered with an error.
    #[error("{message}")]
    Broker { code: ErrorCode, message: String },
    #[error("the connection ended: {0}")]
    Lost(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<ReplyBody>>>>;

/// A request/reply connection (the cookie session's): replies matched to
/// requests by id; everything else the broker pushes (a customer joined, …)
/// is read and dropped, so that it never fills the connection's queues.
pub struct Requester {
    tx: FrameSender,
    pending: Pending,
    next_id: AtomicU64,
    closed: CloseReason,
    reader: JoinHandle<()>,
}

impl Requester {
    /// Opens a new connection as if from `peer`.
    pub fn open(shared: &Arc<Shared>, peer: SocketAddr) -> Requester {
        let mut link = open(shared, peer);
        let pending: Pending = Arc::default();
        let p = Arc::clone(&pending);
        let reader = tokio::spawn(async move {
            while let Some(frame) = link.rx.recv().await {
                if let Frame::Control(Message::Reply { id, body }) = frame {
                    let waiter = p
                        .lock()
                        .expect("pending lock is never poisoned")
                        .remove(&id);
                    if let Some(w) = waiter {
                        let _ = w.send(body);
                    }
                }
            }
            // Dropping the waiters fails pending requests as lost.
            p.lock().expect("pending lock is never poisoned").clear();
        });
        Requester {
            tx: link.tx,
            pending,
            next_id: AtomicU64::new(1),
            closed: link.close_reason,
            reader,
        }
    }

    /// True when the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.reader.is_finished()
    }

    /// Sends a request and waits for its reply; an error reply is `Err`.
    pub async fn request(&self, body: Request) -> Result<ReplyBody, ConnError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock is never poisoned")
            .insert(id, tx);
        let sent = self
            .tx
            .send(Frame::Control(Message::Request { id, body }))
            .await;
        let answer = match sent {
            Err(_) => Err(ConnError::Lost(self.closed.get())),
            Ok(()) => match tokio::time::timeout(CONSOLE_REQUEST_TIMEOUT, rx).await {
                Err(_) => Err(ConnError::Timeout(CONSOLE_REQUEST_TIMEOUT)),
                Ok(Err(_)) => Err(ConnError::Lost(self.closed.get())),
                Ok(Ok(ReplyBody::Error { code, message })) => {
                    Err(ConnError::Broker { code, message })
                }
                Ok(Ok(body)) => Ok(body),
            },
        };
        self.pending
            .lock()
            .expect("pending lock is never poisoned")
            .remove(&id);
        answer
    }
}

impl Drop for Requester {
    fn drop(&mut self) {
        self.tx.close("the console session ended");
        self.reader.abort();
    }
}
