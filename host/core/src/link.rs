//! A framed, heartbeating connection: one reader task and one writer task
//! around any byte stream (a TLS stream in practice), used by every role.
//!
//! The writer sends a `Ping` every heartbeat interval; the reader answers
//! pings itself and gives up when nothing at all arrived for
//! [`MISSED_HEARTBEATS`] intervals. Anything else read is handed to the
//! owner through [`Link::rx`]; when the link dies the channel closes and
//! [`Link::close_reason`] says why.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_protocol::{Frame, FrameError, Message, read_frame};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Frames queued towards a peer before senders wait (backpressure).
pub const SEND_QUEUE_FRAMES: usize = 32;
/// Frames read from a peer and not yet handled before the reader waits.
pub const RECV_QUEUE_FRAMES: usize = 32;
/// A peer silent for this many heartbeat intervals is considered gone.
pub const MISSED_HEARTBEATS: u32 = 3;

/// Why a link closed; shared between its tasks and its owner.
#[derive(Clone, Default, Debug)]
pub struct CloseReason(Arc<Mutex<Option<String>>>);

impl CloseReason {
    fn set(&self, why: String) {
        let mut slot = self.0.lock().expect("close-reason lock is never poisoned");
        if slot.is_none() {
            *slot = Some(why);
        }
    }
    /// The first recorded reason, or "closed".
    pub fn get(&self) -> String {
        self.0
            .lock()
            .expect("close-reason lock is never poisoned")
            .clone()
            .unwrap_or_else(|| "closed".to_string())
    }
}

/// Queue of frames towards a peer. Frames travel boxed: a queue slot is
/// then one pointer, not the size of the largest message, which keeps an
/// idle connection's queues small (tokio allocates slots in blocks of 32).
#[derive(Debug, Clone)]
pub struct FrameSender(mpsc::Sender<Box<Frame>>);

/// The queue is closed: the link is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct Closed;

impl FrameSender {
    /// Queues a frame, waiting while the queue is full.
    pub async fn send(&self, frame: Frame) -> Result<(), Closed> {
        self.0.send(Box::new(frame)).await.map_err(|_| Closed)
    }

    /// Queues a frame if there is room now.
    pub fn try_send(&self, frame: Frame) -> Result<(), Closed> {
        self.0.try_send(Box::new(frame)).map_err(|_| Closed)
    }
}

/// Frames read from a peer.
#[derive(Debug)]
pub struct FrameReceiver(mpsc::Receiver<Box<Frame>>);

impl FrameReceiver {
    pub async fn recv(&mut self) -> Option<Frame> {
        self.0.recv().await.map(|b| *b)
    }
}

/// The owner's end of a link.
#[derive(Debug)]
pub struct Link {
    pub tx: FrameSender,
    pub rx: FrameReceiver,
    pub close_reason: CloseReason,
}

/// Starts the reader and writer tasks for `stream`.
pub fn spawn_link<S>(stream: S, heartbeat: Duration, max_frame: usize) -> Link
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(stream);
    let (out_tx, out_rx) = mpsc::channel::<Box<Frame>>(SEND_QUEUE_FRAMES);
    let (in_tx, in_rx) = mpsc::channel::<Box<Frame>>(RECV_QUEUE_FRAMES);
    let reason = CloseReason::default();

    let r_reason = reason.clone();
    let pong_tx = out_tx.downgrade();
    tokio::spawn(async move {
        let limit = heartbeat * MISSED_HEARTBEATS;
        loop {
            let frame = match tokio::time::timeout(limit, read_frame(&mut rd, max_frame)).await {
                Err(_) => {
                    r_reason.set(format!(
                        "no heartbeat from peer for {} s",
                        limit.as_secs_f32()
                    ));
                    break;
                }
                Ok(Err(FrameError::Closed)) => {
                    r_reason.set("connection closed by peer".into());
                    break;
                }
                Ok(Err(e)) => {
                    r_reason.set(e.to_string());
                    break;
                }
                Ok(Ok(f)) => f,
            };
            match frame {
                Frame::Control(Message::Ping { nonce }) => {
                    if let Some(tx) = pong_tx.upgrade() {
                        let _ = tx
                            .send(Box::new(Frame::Control(Message::Pong { nonce })))
                            .await;
                    }
                }
                Frame::Control(Message::Pong { .. }) => {}
                other => {
                    if in_tx.send(Box::new(other)).await.is_err() {
                        r_reason.set("closed locally".into());
                        break;
                    }
                }
            }
        }
        // Dropping in_tx closes the owner's rx.
    });

    let w_reason = reason.clone();
    tokio::spawn(writer(wr, out_rx, heartbeat, w_reason));

    Link {
        tx: FrameSender(out_tx),
        rx: FrameReceiver(in_rx),
        close_reason: reason,
    }
}

async fn writer<W: AsyncWrite>(
    wr: W,
    mut out_rx: mpsc::Receiver<Box<Frame>>,
    heartbeat: Duration,
    reason: CloseReason,
) {
    tokio::pin!(wr);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut nonce = 0u64;
    loop {
        let frame = tokio::select! {
            f = out_rx.recv() => match f {
                Some(f) => f,
                None => break,
            },
            _ = tick.tick() => {
                nonce += 1;
                Box::new(Frame::Control(Message::Ping { nonce }))
            }
        };
        let res = async {
            match &*frame {
                Frame::Data(payload) => {
                    wr.write_all(&lifeline_protocol::frame::header(
                        lifeline_protocol::frame::KIND_DATA,
                        payload.len(),
                    ))
                    .await?;
                    wr.write_all(payload).await?;
                }
                Frame::Control(_) => wr.write_all(&frame.encode()).await?,
            }
            if out_rx.is_empty() {
                wr.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        if let Err(e) = res {
            reason.set(format!("write failed: {e}"));
            return;
        }
    }
    let _ = wr.shutdown().await;
}
