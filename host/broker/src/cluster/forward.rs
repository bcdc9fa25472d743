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
//!
//! A frame published with a reply subject belongs to a credit window on its
//! sending node (`window`): the bytes handed on (or dropped) are returned
//! there in batches of `CREDIT_BATCH_BYTES` (chat-sized traffic costs no
//! credit message per frame; less than a batch is never returned, see
//! `window::QUIET_RESET`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::link::{FrameSender, SendError};
use lifeline_protocol::Frame;
use tokio::sync::mpsc;

use super::window::CREDIT_BATCH_BYTES;

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

/// Returns `bytes` of credit to the reply subject a frame came with.
pub type Credit = Arc<dyn Fn(String, usize) + Send + Sync>;

/// A frame for a peer: its bytes on the wire, and where its credit goes.
type Item = (Frame, usize, Option<String>);

/// The queues of the peers that have frames in flight.
pub struct Forwarders<K> {
    queues: Arc<Mutex<HashMap<K, Queue>>>,
    resolve: Resolve<K>,
    credit: Credit,
    /// Tells apart a queue from the one that replaced it under the same key.
    next: std::sync::atomic::AtomicU64,
    /// [`FORWARD_IDLE`] (shorter in tests).
    idle: Duration,
}

struct Queue {
    tx: mpsc::UnboundedSender<Item>,
    /// Bytes queued and not yet handed to the peer.
    bytes: usize,
    generation: u64,
}

impl<K> Forwarders<K>
where
    K: Hash + Eq + Clone + Send + Sync + std::fmt::Display + 'static,
{
    pub fn new(resolve: Resolve<K>, credit: Credit) -> Forwarders<K> {
        Forwarders {
            queues: Arc::default(),
            resolve,
            credit,
            next: 0.into(),
            idle: FORWARD_IDLE,
        }
    }

    /// Queues `frame` (`size` bytes on the wire, its credit owed to
    /// `reply`) for the peer behind `key`; never waits.
    pub fn push(&self, key: K, frame: Frame, size: usize, reply: Option<String>) {
        let mut queues = self
            .queues
            .lock()
            .expect("forwarders lock is never poisoned");
        let item = match queues.get_mut(&key) {
            None => (frame, size, reply),
            Some(q) if q.bytes + size > FORWARD_QUEUE_BYTES => {
                drop(queues);
                if let Some(reply) = reply {
                    (self.credit)(reply, size);
                }
                return self.overflow(&key);
            }
            Some(q) => match q.tx.send((frame, size, reply)) {
                Ok(()) => {
                    q.bytes += size;
                    return;
                }
                // Its task ended (not for idleness: that check holds this
                // lock): start another.
                Err(mpsc::error::SendError(back)) => back,
            },
        };
        self.start(queues, key, item);
    }

    /// Peers with a task running now.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.queues
            .lock()
            .expect("forwarders lock is never poisoned")
            .len()
    }

    fn start(&self, mut queues: std::sync::MutexGuard<'_, HashMap<K, Queue>>, key: K, item: Item) {
        let (tx, rx) = mpsc::unbounded_channel();
        let generation = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let size = item.1;
        tx.send(item).expect("the receiver is held just below");
        queues.insert(
            key.clone(),
            Queue {
                tx,
                bytes: size,
                generation,
            },
        );
        let (queues, resolve) = (Arc::clone(&self.queues), Arc::clone(&self.resolve));
        let credit = Arc::clone(&self.credit);
        let task = Task {
            queues,
            resolve,
            credit,
            key,
            generation,
            idle: self.idle,
        };
        tokio::spawn(task.run(rx));
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

/// One peer's task: hands its frames on in order, returns their credit,
/// then ends when idle.
struct Task<K> {
    queues: Arc<Mutex<HashMap<K, Queue>>>,
    resolve: Resolve<K>,
    credit: Credit,
    key: K,
    generation: u64,
    idle: Duration,
}

impl<K> Task<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Item>) {
        // Credit handed on but not yet returned, by reply subject.
        let mut owed: HashMap<String, usize> = HashMap::new();
        loop {
            let next = match tokio::time::timeout(self.idle, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    if self.end_if_idle(&rx) {
                        break;
                    }
                    continue;
                }
            };
            let Some((frame, size, reply)) = next else {
                break;
            };
            self.hand_on(frame, size).await;
            let Some(reply) = reply else { continue };
            let bytes = owed.entry(reply.clone()).or_default();
            *bytes += size;
            // Less than a batch stays owed: a sender's window has room for
            // the largest frame beside it, so nobody waits for it, and a
            // quiet flow starts again from empty (`window::QUIET_RESET`).
            if *bytes >= CREDIT_BATCH_BYTES {
                (self.credit)(reply.clone(), *bytes);
                owed.remove(&reply);
            }
        }
    }

    /// Idle: ends unless a frame came meanwhile (pushes hold the lock, so
    /// none can come between this check and the removal).
    fn end_if_idle(&self, rx: &mpsc::UnboundedReceiver<Item>) -> bool {
        let mut q = self
            .queues
            .lock()
            .expect("forwarders lock is never poisoned");
        if !rx.is_empty() {
            return false;
        }
        if q.get(&self.key)
            .is_some_and(|q| q.generation == self.generation)
        {
            q.remove(&self.key);
        }
        true
    }

    async fn hand_on(&self, frame: Frame, size: usize) {
        if let Some(q) = self
            .queues
            .lock()
            .expect("forwarders lock is never poisoned")
            .get_mut(&self.key)
            .filter(|q| q.generation == self.generation)
        {
            q.bytes = q.bytes.saturating_sub(size);
        }
        if let Some((tx, wait)) = (self.resolve)(&self.key)
            && let Err(SendError::Stalled(why)) = Box::pin(tx.send_within(frame, wait)).await
        {
            tracing::info!("dropped a session peer: {why}");
        }
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
