//! A framed, heartbeating connection: one reader task and one writer task
//! around any byte stream (a TLS stream in practice), used by every role.
//!
//! The writer sends a `Ping` every heartbeat interval; the reader answers
//! pings itself and gives up when nothing at all arrived for
//! [`MISSED_HEARTBEATS`] intervals. Anything else read is handed to the
//! owner through [`Link::rx`]; when the link dies the channel closes and
//! [`Link::close_reason`] says why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_protocol::{Frame, FrameError, Message, read_frame};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

/// Frames queued towards a peer before senders wait (backpressure).
pub const SEND_QUEUE_FRAMES: usize = 32;
/// Frames read from a peer and not yet handled before the reader waits.
pub const RECV_QUEUE_FRAMES: usize = 32;
/// Data-frame bytes one queue (each direction of a link) may hold: bounds
/// what a fast sender can make the broker keep for a slow receiver.
pub const MAX_QUEUED_DATA_BYTES: usize = 4 << 20;
/// A peer silent for this many heartbeat intervals is considered gone.
pub const MISSED_HEARTBEATS: u32 = 3;

/// Time a peer has to take one frame (at most [`MAX_FRAME_BYTES`]) before
/// the link is closed as stalled: a peer that stops reading cannot keep a
/// writer, its queue and everyone relaying to it waiting for ever. The
/// broker configures its own (`broker.limits.write_timeout_secs`).
///
/// [`MAX_FRAME_BYTES`]: lifeline_protocol::MAX_FRAME_BYTES
pub const DEFAULT_WRITE_TIMEOUT: Duration =
    Duration::from_secs(crate::limits::DEFAULT_WRITE_TIMEOUT_SECS);

/// Why a link closed; shared between its tasks and its owner.
#[derive(Clone, Default, Debug)]
pub struct CloseReason(Arc<Mutex<Option<(String, bool)>>>);

impl CloseReason {
    fn set(&self, why: String, stalled: bool) {
        let mut slot = self.0.lock().expect("close-reason lock is never poisoned");
        if slot.is_none() {
            *slot = Some((why, stalled));
        }
    }
    /// The first recorded reason, or "closed".
    pub fn get(&self) -> String {
        self.0
            .lock()
            .expect("close-reason lock is never poisoned")
            .as_ref()
            .map_or_else(|| "closed".to_string(), |(why, _)| why.clone())
    }
    /// True when the link was closed because the peer stopped reading.
    pub fn stalled(&self) -> bool {
        self.0
            .lock()
            .expect("close-reason lock is never poisoned")
            .as_ref()
            .is_some_and(|(_, stalled)| *stalled)
    }
}

/// Closes a link from anywhere: both of its tasks stop at once, whatever
/// they are waiting for, and the reason is recorded.
#[derive(Clone, Debug)]
struct Closer {
    flag: Arc<CloseFlag>,
    reason: CloseReason,
}

/// Set once when the link closes; its waiters are woken then. A flag and a
/// `Notify` (about 50 bytes), where a `watch` channel holds nine `Notify`s
/// (about 400 bytes) for every connection.
#[derive(Debug, Default)]
struct CloseFlag {
    closed: AtomicBool,
    notify: Notify,
}

impl Closer {
    fn new(reason: CloseReason) -> Self {
        Closer {
            flag: Arc::new(CloseFlag::default()),
            reason,
        }
    }
    fn close(&self, why: String, stalled: bool) {
        self.reason.set(why, stalled);
        self.flag.closed.store(true, Ordering::Release);
        self.flag.notify.notify_waiters();
    }
    async fn closed(&self) {
        let notified = self.flag.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read: a close in between still
        // wakes this waiter (`notify_waiters` wakes registered ones only).
        notified.as_mut().enable();
        if self.flag.closed.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }
}

/// Queue of frames towards a peer. Frames travel boxed: a queue slot is
/// then one pointer, not the size of the largest message, which keeps an
/// idle connection's queues small (tokio allocates slots in blocks of 32).
#[derive(Debug, Clone)]
pub struct FrameSender {
    queue: mpsc::Sender<Queued>,
    budget: Arc<Semaphore>,
    closer: Closer,
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
    let permit = match frame.data_len() {
        Some(len) => Some(
            Arc::clone(budget)
                .acquire_many_owned(permits(len))
                .await
                .map_err(|_| Closed)?,
        ),
        None => None,
    };
    Ok(Box::new((frame, permit)))
}

/// The queue is closed: the link is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct Closed;

/// Why [`FrameSender::send_within`] did not queue a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the connection is closed")]
    Closed,
    /// The queue stayed full for the whole wait; the link is now closed.
    #[error("the peer stopped reading: {0}")]
    Stalled(String),
}

impl FrameSender {
    /// A sender with no peer behind it: every send fails with [`Closed`].
    /// Stands for a side that is not connected (yet), such as the agent of
    /// a session the broker restored after a restart.
    pub fn disconnected(why: &str) -> FrameSender {
        let (queue, _) = mpsc::channel(1);
        let closer = Closer::new(CloseReason::default());
        closer.close(why.to_string(), false);
        FrameSender {
            queue,
            budget: Arc::new(Semaphore::new(1)),
            closer,
        }
    }

    /// A queue with no socket behind it: what is sent comes out of the
    /// returned receiver (the broker forwards it to another broker node).
    /// Data frames hold their share of [`MAX_QUEUED_DATA_BYTES`] until
    /// received, as on a link.
    pub fn pair(capacity: usize) -> (FrameSender, FrameReceiver) {
        let (queue, rx) = mpsc::channel(capacity);
        let sender = FrameSender {
            queue,
            budget: Arc::new(Semaphore::new(MAX_QUEUED_DATA_BYTES)),
            closer: Closer::new(CloseReason::default()),
        };
        (sender, FrameReceiver(rx))
    }

    /// Queues a frame, waiting while the queue is full.
    pub async fn send(&self, frame: Frame) -> Result<(), Closed> {
        let q = queued(&self.budget, frame).await?;
        self.queue.send(q).await.map_err(|_| Closed)
    }

    /// Queues a frame if there is room now.
    pub fn try_send(&self, frame: Frame) -> Result<(), Closed> {
        let permit = match frame.data_len() {
            Some(len) => Some(
                Arc::clone(&self.budget)
                    .try_acquire_many_owned(permits(len))
                    .map_err(|_| Closed)?,
            ),
            None => None,
        };
        self.queue
            .try_send(Box::new((frame, permit)))
            .map_err(|_| Closed)
    }

    /// Queues a frame, waiting at most `wait` for room. A peer whose queue
    /// stays full that long has stopped reading: its link is closed (the
    /// reason says so) and nobody waits for it again.
    pub async fn send_within(&self, frame: Frame, wait: Duration) -> Result<(), SendError> {
        match tokio::time::timeout(wait, self.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Closed)) => Err(SendError::Closed),
            Err(_) => {
                let why = format!(
                    "stopped reading: its queue stayed full for {} s",
                    wait.as_secs_f32()
                );
                self.closer.close(why.clone(), true);
                Err(SendError::Stalled(why))
            }
        }
    }

    /// Closes the link now, recording `why` (the owner's receiver ends).
    pub fn close(&self, why: impl Into<String>) {
        self.closer.close(why.into(), false);
    }
}

/// Frames read from a peer.
#[derive(Debug)]
pub struct FrameReceiver(mpsc::Receiver<Queued>);

impl FrameReceiver {
    pub async fn recv(&mut self) -> Option<Frame> {
        self.0.recv().await.map(|b| b.0)
    }

    /// A frame already read and waiting, without waiting for one.
    pub fn try_recv(&mut self) -> Option<Frame> {
        self.0.try_recv().ok().map(|b| b.0)
    }
}

/// The owner's end of a link.
#[derive(Debug)]
pub struct Link {
    pub tx: FrameSender,
    pub rx: FrameReceiver,
    pub close_reason: CloseReason,
}

/// Starts the reader and writer tasks for `stream`, with the default write
/// timeout.
pub fn spawn_link<S>(stream: S, heartbeat: Duration, max_frame: usize) -> Link
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    spawn_link_with(stream, heartbeat, max_frame, DEFAULT_WRITE_TIMEOUT)
}

/// Starts the reader and writer tasks for `stream`; a frame not written
/// within `write_timeout` closes the link as stalled.
pub fn spawn_link_with<S>(
    stream: S,
    heartbeat: Duration,
    max_frame: usize,
    write_timeout: Duration,
) -> Link
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (out_tx, out_rx) = mpsc::channel::<Queued>(SEND_QUEUE_FRAMES);
    let (in_tx, in_rx) = mpsc::channel::<Queued>(RECV_QUEUE_FRAMES);
    let reason = CloseReason::default();
    let closer = Closer::new(reason.clone());

    let reader = Reader {
        pong_tx: out_tx.downgrade(),
        in_tx,
        in_budget: Arc::new(Semaphore::new(MAX_QUEUED_DATA_BYTES)),
        limit: heartbeat * MISSED_HEARTBEATS,
        max_frame,
        reason: reason.clone(),
    };
    let r_closer = closer.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = r_closer.closed() => {}
            _ = reader.run(rd) => {}
        }
        // Dropping in_tx closes the owner's rx.
    });
    let w_closer = closer.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = w_closer.closed() => {}
            _ = writer(wr, out_rx, heartbeat, write_timeout, &w_closer) => {}
        }
    });

    Link {
        tx: FrameSender {
            queue: out_tx,
            budget: Arc::new(Semaphore::new(MAX_QUEUED_DATA_BYTES)),
            closer,
        },
        rx: FrameReceiver(in_rx),
        close_reason: reason,
    }
}

/// The reading half of a link.
struct Reader {
    pong_tx: mpsc::WeakSender<Queued>,
    in_tx: mpsc::Sender<Queued>,
    in_budget: Arc<Semaphore>,
    limit: Duration,
    max_frame: usize,
    reason: CloseReason,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(self, mut rd: R) {
        loop {
            let read = tokio::time::timeout(self.limit, read_frame(&mut rd, self.max_frame));
            // An owner that dropped its receiver is gone: stop reading even
            // if the peer only ever sends pings.
            let frame = match tokio::select! {
                r = read => r,
                _ = self.in_tx.closed() => {
                    self.reason.set("closed locally".into(), false);
                    return;
                }
            } {
                Err(_) => {
                    let secs = self.limit.as_secs_f32();
                    self.reason
                        .set(format!("no heartbeat from peer for {secs} s"), false);
                    return;
                }
                Ok(Err(FrameError::Closed)) => {
                    self.reason.set("connection closed by peer".into(), false);
                    return;
                }
                Ok(Err(e)) => {
                    self.reason.set(e.to_string(), false);
                    return;
                }
                Ok(Ok(f)) => f,
            };
            if matches!(frame, Frame::Control(Message::Pong { .. })) {
                continue;
            }
            // Boxed: the state of handing a frame on exists only while a
            // frame is in hand, not in every idle connection's task.
            if !Box::pin(self.hand_on(frame)).await {
                self.reason.set("closed locally".into(), false);
                return;
            }
        }
    }

    /// Answers a ping, or queues any other frame for the owner; false when
    /// the owner is gone.
    async fn hand_on(&self, frame: Frame) -> bool {
        if let Frame::Control(Message::Ping { nonce }) = frame {
            if let Some(tx) = self.pong_tx.upgrade() {
                let pong = Frame::Control(Message::Pong { nonce });
                let _ = tx.send(Box::new((pong, None))).await;
            }
            return true;
        }
        match queued(&self.in_budget, frame).await {
            Ok(q) => self.in_tx.send(q).await.is_ok(),
            Err(Closed) => false,
        }
    }
}

/// Writes queued frames and heartbeats until every sender is gone; a frame
/// not written within `write_timeout` closes the whole link as stalled.
async fn writer<W: AsyncWrite>(
    wr: W,
    mut out_rx: mpsc::Receiver<Queued>,
    heartbeat: Duration,
    write_timeout: Duration,
    closer: &Closer,
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
        let flush = out_rx.is_empty();
        // Boxed, like the reader's: an idle writer waits with a small state.
        let res = Box::pin(tokio::time::timeout(
            write_timeout,
            write_one(&mut wr, &frame.0, flush),
        ))
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                closer.close(format!("write failed: {e}"), false);
                return;
            }
            Err(_) => {
                let why = format!(
                    "stopped reading: a frame could not be written within {} s",
                    write_timeout.as_secs_f32()
                );
                closer.close(why, true);
                return;
            }
        }
    }
    let _ = tokio::time::timeout(write_timeout, wr.shutdown()).await;
}

/// Writes one frame, flushing when nothing else is queued.
async fn write_one<W: AsyncWrite + Unpin>(
    wr: &mut W,
    frame: &Frame,
    flush: bool,
) -> std::io::Result<()> {
    match frame {
        Frame::Data(payload) => {
            wr.write_all(&lifeline_protocol::frame::header(
                lifeline_protocol::frame::KIND_DATA,
                payload.len(),
            ))
            .await?;
            wr.write_all(payload).await?;
        }
        Frame::SessionData { session, payload } => {
            let prefix = lifeline_protocol::frame::session_prefix(session);
            wr.write_all(&lifeline_protocol::frame::header(
                lifeline_protocol::frame::KIND_SESSION_DATA,
                prefix.len() + payload.len(),
            ))
            .await?;
            wr.write_all(&prefix).await?;
            wr.write_all(payload).await?;
        }
        Frame::Control(_) => wr.write_all(&frame.encode()).await?,
    }
    if flush {
        wr.flush().await?;
    }
    Ok(())
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

    /// Bound on waits in these tests (never a timing assertion).
    const WAIT: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn closing_an_idle_link_stops_both_tasks_at_once() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut link = spawn_link(
            ours,
            Duration::from_secs(3600),
            lifeline_protocol::MAX_FRAME_BYTES,
        );
        link.tx.close("closed by its owner");
        // The reader ends: the owner's receiver closes.
        let end = tokio::time::timeout(WAIT, link.rx.recv()).await;
        assert!(matches!(end, Ok(None)), "the link stayed open");
        assert_eq!(link.close_reason.get(), "closed by its owner");
        // The writer ends too: the peer's end sees the stream close.
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut theirs, &mut buf));
        assert!(
            matches!(read.await, Ok(Ok(0))),
            "the writer kept the stream open"
        );
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_is_dropped_after_the_write_timeout() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut link = spawn_link_with(
            ours,
            Duration::from_secs(60),
            lifeline_protocol::MAX_FRAME_BYTES,
            Duration::from_millis(200),
        );
        link.tx
            .send(Frame::Data(vec![0u8; 64 * 1024]))
            .await
            .unwrap();
        let end = tokio::time::timeout(WAIT, link.rx.recv()).await;
        assert!(matches!(end, Ok(None)), "the link stayed open");
        assert!(link.close_reason.stalled());
        let why = link.close_reason.get();
        assert!(why.contains("stopped reading"), "{why}");
        // Senders learn at once that the link is gone.
        let sent = tokio::time::timeout(WAIT, link.tx.send(Frame::Data(vec![1; 8]))).await;
        assert_eq!(sent, Ok(Err(Closed)));
    }

    #[tokio::test]
    async fn send_within_drops_a_peer_whose_queue_stays_full() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut link = spawn_link_with(
            ours,
            Duration::from_secs(60),
            lifeline_protocol::MAX_FRAME_BYTES,
            Duration::from_secs(3600),
        );
        // The writer blocks on a frame larger than the pipe, then the queue
        // fills up behind it.
        link.tx
            .send(Frame::Data(vec![0u8; 64 * 1024]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let chat = || Frame::Control(Message::Ping { nonce: 7 });
        let queued = (0..10 * SEND_QUEUE_FRAMES)
            .take_while(|_| link.tx.try_send(chat()).is_ok())
            .count();
        assert!(queued < 10 * SEND_QUEUE_FRAMES, "the queue never filled");
        let r = link
            .tx
            .send_within(chat(), Duration::from_millis(100))
            .await;
        assert!(matches!(r, Err(SendError::Stalled(_))), "{r:?}");
        let end = tokio::time::timeout(WAIT, link.rx.recv()).await;
        assert!(matches!(end, Ok(None)), "the link stayed open");
        assert!(link.close_reason.stalled());
    }
}
