//! Frames that reach this node on one of its node-wide NATS subscriptions
//! (`lifeline.agent.{node}.*`, `lifeline.conn.{node}.*`), handed to many
//! peers: the agents of the sessions homed here, this node's operator
//! connections. One subscription per node, not one per session, so that an
//! idle session costs no NATS subscription, no queue and no task (issue 17:
//! two per-session subscriptions were 11 KiB of every idle agent).
//!
//! A slow peer must not hold up the others sharing the subscription: each
//! peer (key) with frames in flight gets its own queue and task, started on
//! its first frame and ended after [`FORWARD_IDLE`] without one. The
//! subscription's reader never waits on a peer; it only queues.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::link::{FrameSender, SendError};
use lifeline_protocol::Frame;
use tokio::sync::mpsc;

/// Bytes of frames queued towards one peer before the peer counts as
/// stalled: its connection is closed and its frames are dropped, as the
/// relay does with a peer whose queue stays full (`relay::to`). Guards the
/// node's memory against a sender on another node that outpaces a slow
/// reader here (NATS itself does not wait for the reader); 32 MiB is half
/// of nats-server's own per-connection limit for a slow consumer (64 MiB),
/// so the node drops one stalled peer before the server drops the node.
pub const FORWARD_QUEUE_BYTES: usize = 32 << 20;

/// How long a peer's task waits for its next frame before it ends (the next
/// frame starts a new one).
pub const FORWARD_IDLE: Duration = Duration::from_secs(30);

/// Finds the peer behind a key now, with how long a frame may wait for
/// room in its queue (`broker.limits.relay_wait_secs`, as in `relay::to`):
/// `None` when it is not (or no longer) here; its frames are then dropped.
pub type Resolve<K> = Arc<dyn Fn(&K) -> Option<(FrameSender, Duration)> + Send + Sync>;

/// The queues of the peers that have frames in flight.
pub struct Forwarders<K> {
    queues: Arc<Mutex<HashMap<K, Queue>>>,
    resolve: Resolve<K>,
    /// Tells apart a queue from the one that replaced it under the same key.
    next: std::sync::atomic::AtomicU64,
    /// [`FORWARD_IDLE`] (shorter in tests).
    idle: Duration,
}

struct Queue {
    tx: mpsc::UnboundedSender<(Frame, usize)>,
    /// Bytes queued and not yet handed to the peer.
    bytes: usize,
    generation: u64,
}

impl<K> Forwarders<K>
where
    K: Hash + Eq + Clone + Send + Sync + std::fmt::Display + 'static,
{
    pub fn new(resolve: Resolve<K>) -> Forwarders<K> {
        Forwarders {
            queues: Arc::default(),
            resolve,
            next: 0.into(),
            idle: FORWARD_IDLE,
        }
    }

    /// Queues `frame` (`size` bytes on the wire) for the peer behind `key`;
    /// never waits.
    pub fn push(&self, key: K, frame: Frame, size: usize) {
        let mut queues = self
            .queues
            .lock()
            .expect("forwarders lock is never poisoned");
        let (frame, size) = match queues.get_mut(&key) {
            None => (frame, size),
            Some(q) if q.bytes + size > FORWARD_QUEUE_BYTES => {
                drop(queues);
                return self.overflow(&key);
            }
            Some(q) => match q.tx.send((frame, size)) {
                Ok(()) => {
                    q.bytes += size;
                    return;
                }
                // Its task ended (not for idleness: that check holds this
                // lock): start another.
                Err(mpsc::error::SendError(back)) => back,
            },
        };
        self.start(queues, key, frame, size);
    }

    /// Peers with a task running now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.queues
            .lock()
            .expect("forwarders lock is never poisoned")
            .len()
    }

    fn start(
        &self,
        mut queues: std::sync::MutexGuard<'_, HashMap<K, Queue>>,
        key: K,
        frame: Frame,
        size: usize,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let generation = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tx.send((frame, size))
            .expect("the receiver is held just below");
        queues.insert(
            key.clone(),
            Queue {
                tx,
                bytes: size,
                generation,
            },
        );
        let (queues, resolve) = (Arc::clone(&self.queues), Arc::clone(&self.resolve));
        tokio::spawn(run(queues, resolve, key, rx, generation, self.idle));
    }

    /// The peer behind `key` fell [`FORWARD_QUEUE_BYTES`] behind.
    fn overflow(&self, key: &K) {
        if let Some((tx, _)) = (self.resolve)(key) {
            tx.close(format!(
                "stopped reading: {} MiB queued for it on this broker node",
                FORWARD_QUEUE_BYTES >> 20
            ));
        }
        tracing::info!(peer = %key, "cluster: dropped a frame for a peer that stopped reading");
    }
}

/// One peer's task: hands its frames on in order, then ends when idle.
async fn run<K>(
    queues: Arc<Mutex<HashMap<K, Queue>>>,
    resolve: Resolve<K>,
    key: K,
    mut rx: mpsc::UnboundedReceiver<(Frame, usize)>,
    generation: u64,
    idle: Duration,
) where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    loop {
        let next = match tokio::time::timeout(idle, rx.recv()).await {
            Ok(next) => next,
            Err(_) => {
                // Idle: end unless a frame came meanwhile (pushes hold the
                // lock, so none can come between this check and the removal).
                let mut q = queues.lock().expect("forwarders lock is never poisoned");
                if !rx.is_empty() {
                    continue;
                }
                if q.get(&key).is_some_and(|q| q.generation == generation) {
                    q.remove(&key);
                }
                return;
            }
        };
        let Some((frame, size)) = next else { return };
        if let Some(q) = queues
            .lock()
            .expect("forwarders lock is never poisoned")
            .get_mut(&key)
            .filter(|q| q.generation == generation)
        {
            q.bytes = q.bytes.saturating_sub(size);
        }
        if let Some((tx, wait)) = resolve(&key)
            && let Err(SendError::Stalled(why)) = Box::pin(tx.send_within(frame, wait)).await
        {
            tracing::info!("dropped a session peer: {why}");
        }
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
