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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Frames queued towards a peer before senders wait (backpressure).
pub const SEND_QUEUE_FRAMES: usize = 32;
/// Frames read from a peer and not yet handled before the reader waits.
pub const RECV_QUEUE_FRAMES: usize = 32;
/// Data-frame bytes one queue (each direction of a link) may hold: bounds
/// what a fast sender can make the broker keep for a slow receiver.
pub const MAX_QUEUED_DATA_BYTES: usize = 4 << 20;
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
pub struct FrameSender {
    queue: mpsc::Sender<Queued>,
    budget: Arc<Semaphore>,
}

/// A queued frame and, for data, the share of the byte budget it holds
/// until it has been written (or received).
type Queued = Box<(Frame, Option<OwnedSemaphorePermit>)>;

/// Permits a data frame of `len` bytes needs (a frame larger than the whole
/// budget takes all of it).
fn permits(len: usize) -> u32 {
    u32::try_from(len.clamp(1, MAX_QUEUED_DATA_BYTES)).expect("budget fits in u32")
}

async fn queued(budget: &Arc<Semaphore>, frame: Frame) -> Result<Queued, Closed> {
    let permit = match &frame {
        Frame::Data(d) => Some(
            Arc::clone(budget)
                .acquire_many_owned(permits(d.len()))
                .await
                .map_err(|_| Closed)?,
        ),
        Frame::Control(_) => None,
    };
    Ok(Box::new((frame, permit)))
}

/// The queue is closed: the link is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct Closed;

impl FrameSender {
    /// Queues a frame, waiting while the queue is full.
    pub async fn send(&self, frame: Frame) -> Result<(), Closed> {
        let q = queued(&self.budget, frame).await?;
        self.queue.send(q).await.map_err(|_| Closed)
    }

    /// Queues a frame if there is room now.
    pub fn try_send(&self, frame: Frame) -> Result<(), Closed> {
        let permit = match &frame {
            Frame::Data(d) => Some(
                Arc::clone(&self.budget)
                    .try_acquire_many_owned(permits(d.len()))
                    .map_err(|_| Closed)?,
            ),
            Frame::Control(_) => None,
        };
        self.queue
            .try_send(Box::new((frame, permit)))
            .map_err(|_| Closed)
    }
}

/// Frames read from a peer.
#[derive(Debug)]
pub struct FrameReceiver(mpsc::Receiver<Queued>);

impl FrameReceiver {
    pub async fn recv(&mut self) -> Option<Frame> {
        self.0.recv().await.map(|b| b.0)
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
    let (out_tx, out_rx) = mpsc::channel::<Queued>(SEND_QUEUE_FRAMES);
    let (in_tx, in_rx) = mpsc::channel::<Queued>(RECV_QUEUE_FRAMES);
    let out_budget = Arc::new(Semaphore::new(MAX_QUEUED_DATA_BYTES));
    let in_budget = Arc::new(Semaphore::new(MAX_QUEUED_DATA_BYTES));
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
                            .send(Box::new((Frame::Control(Message::Pong { nonce }), None)))
                            .await;
                    }
                }
                Frame::Control(Message::Pong { .. }) => {}
                other => {
                    let sent = match queued(&in_budget, other).await {
                        Ok(q) => in_tx.send(q).await.is_ok(),
                        Err(Closed) => false,
                    };
                    if !sent {
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
        tx: FrameSender {
            queue: out_tx,
            budget: out_budget,
        },
        rx: FrameReceiver(in_rx),
        close_reason: reason,
    }
}

async fn writer<W: AsyncWrite>(
    wr: W,
    mut out_rx: mpsc::Receiver<Queued>,
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
                Box::new((Frame::Control(Message::Ping { nonce }), None))
            }
        };
        let res = async {
            match &frame.0 {
                Frame::Data(payload) => {
                    wr.write_all(&lifeline_protocol::frame::header(
                        lifeline_protocol::frame::KIND_DATA,
                        payload.len(),
                    ))
                    .await?;
                    wr.write_all(payload).await?;
                }
                Frame::Control(_) => wr.write_all(&frame.0.encode()).await?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queued_data_is_bounded_in_bytes() {
        // The peer never reads: frames pile up in the queue.
        let (ours, _theirs) = tokio::io::duplex(64 * 1024);
        let link = spawn_link(
            ours,
            Duration::from_secs(60),
            lifeline_protocol::MAX_FRAME_BYTES,
        );
        let mib = vec![0u8; 1 << 20];
        let accepted = (0..SEND_QUEUE_FRAMES)
            .filter(|_| link.tx.try_send(Frame::Data(mib.clone())).is_ok())
            .count();
        assert!(
            (1..=MAX_QUEUED_DATA_BYTES >> 20).contains(&accepted),
            "{accepted} MiB queued"
        );
        // Control frames are not held back by the data budget.
        assert!(
            link.tx
                .try_send(Frame::Control(Message::Ping { nonce: 1 }))
                .is_ok()
        );
    }
}
