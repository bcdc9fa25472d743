//! A credit window per cross-node flow: a node publishing a peer's frames
//! to another node waits once [`CREDIT_WINDOW_BYTES`] are on their way and
//! not yet handed to the peer there. NATS does not wait for the receiving
//! node, so without the window a fast operator sending to an agent on
//! another node (or an agent's stream to an operator on another node)
//! filled the receiving node's queue up to `FORWARD_QUEUE_BYTES`, and the
//! peer was disconnected as stalled (issue 17, finding 1: the relay
//! benchmark's 64 KiB run ended so).
//!
//! Each flow has a window here, named by a key; its frames go out with the
//! reply subject `lifeline.credit.{node}.{key}`. The receiving node's
//! forwarder publishes the bytes it handed on (or dropped) to that subject
//! in batches of [`CREDIT_BATCH_BYTES`]; less than a batch stays owed
//! (chat-sized traffic costs no credit message per frame), so the window
//! is larger than a batch plus the largest frame: a sender never waits for
//! credit that sits in a batch. What stays owed is dropped with the
//! receiving task; a flow quiet for [`QUIET_RESET`] starts from empty.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Bytes of one flow on their way to another node before its sender waits.
/// Twice the receiving link's own queue (`MAX_QUEUED_DATA_BYTES`, 4 MiB):
/// enough to keep NATS and the peer busy, a quarter of
/// `FORWARD_QUEUE_BYTES`, so the receiving node's queue for a peer stays
/// below its bound even with three flows (nodes) sending to one peer.
pub const CREDIT_WINDOW_BYTES: usize = 8 << 20;

/// Bytes handed on before the receiving node returns credit (one NATS
/// message per this many bytes of a flow).
pub const CREDIT_BATCH_BYTES: usize = 1 << 20;

// A sender never waits for credit the receiver keeps back (less than a
// batch) when the largest frame fits beside it.
const _: () =
    assert!(CREDIT_BATCH_BYTES + lifeline_protocol::MAX_FRAME_BYTES <= CREDIT_WINDOW_BYTES);

/// A flow quiet this long starts again from an empty window. The receiving
/// node keeps back less than a batch of credit and drops it when its task
/// for the peer ends (after `FORWARD_IDLE` without frames: no credit
/// message per idle session). After this quiet time the flow's frames have
/// been handed on or dropped there, or (a peer stalled longer) at most one
/// window is still queued, within `FORWARD_QUEUE_BYTES`.
pub const QUIET_RESET: Duration = super::FORWARD_IDLE;

/// One flow's window.
pub struct Window {
    state: Mutex<State>,
    room: Notify,
    /// [`QUIET_RESET`] (shorter in tests).
    quiet: Duration,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            state: Mutex::default(),
            room: Notify::new(),
            quiet: QUIET_RESET,
        }
    }
}

#[derive(Default)]
struct State {
    in_flight: usize,
    last_sent: Option<Instant>,
}

impl Window {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("window lock is never poisoned")
    }

    /// Counts `size` more bytes on their way, first waiting until they fit
    /// (always when nothing is on its way). After `wait` without room the
    /// window starts again from empty and the frame goes (credit lost with
    /// a node that stopped must not stop the flow for good); false then.
    pub async fn reserve(&self, size: usize, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                let now = Instant::now();
                if st.last_sent.is_some_and(|t| now - t >= self.quiet) {
                    st.in_flight = 0;
                }
                if st.in_flight == 0 || st.in_flight + size <= CREDIT_WINDOW_BYTES {
                    st.in_flight += size;
                    st.last_sent = Some(now);
                    return true;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let mut st = self.lock();
                st.in_flight = size;
                st.last_sent = Some(Instant::now());
                return false;
            }
        }
    }

    /// The receiving node handed `bytes` on.
    pub fn credit(&self, bytes: usize) {
        {
            let mut st = self.lock();
            st.in_flight = st.in_flight.saturating_sub(bytes);
        }
        self.room.notify_waiters();
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }
}

/// This node's windows by key (the last token of their credit subject).
#[derive(Default)]
pub struct Windows {
    map: Mutex<HashMap<String, Arc<Window>>>,
}

impl Windows {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Window>>> {
        self.map.lock().expect("windows lock is never poisoned")
    }

    /// The window of `key`, made on first use.
    pub fn get(&self, key: &str) -> Arc<Window> {
        let mut map = self.lock();
        if let Some(w) = map.get(key) {
            return Arc::clone(w);
        }
        Arc::clone(map.entry(key.to_string()).or_default())
    }

    /// Credit arrived for `key` (ignored once the window is gone).
    pub fn credit(&self, key: &str, bytes: usize) {
        let w = self.lock().get(key).cloned();
        if let Some(w) = w {
            w.credit(bytes);
        }
    }

    /// The flow of `key` is over (session detached here, sender gone).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The subject credit for `key` of node `node` goes to.
pub fn subject_credit(node: &str, key: &str) -> String {
    format!("lifeline.credit.{node}.{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sender_waits_for_credit_once_the_window_is_full() {
        let w = Arc::new(Window::default());
        let wait = Duration::from_secs(10);
        assert!(w.reserve(CREDIT_WINDOW_BYTES - 10, wait).await);
        // Room for 10 more, not 11.
        let w2 = Arc::clone(&w);
        let blocked = tokio::spawn(async move { w2.reserve(11, wait).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!blocked.is_finished(), "waits for credit");
        w.credit(CREDIT_BATCH_BYTES);
        assert!(
            tokio::time::timeout(wait, blocked).await.unwrap().unwrap(),
            "credit let it go"
        );
        assert_eq!(
            w.in_flight(),
            CREDIT_WINDOW_BYTES - 10 - CREDIT_BATCH_BYTES + 11
        );
    }

    #[tokio::test]
    async fn one_frame_larger_than_the_window_goes_when_nothing_is_in_flight() {
        let w = Window::default();
        assert!(
            w.reserve(CREDIT_WINDOW_BYTES * 2, Duration::from_secs(1))
                .await
        );
        w.credit(CREDIT_WINDOW_BYTES * 2);
        assert_eq!(w.in_flight(), 0);
    }

    #[tokio::test]
    async fn credit_that_never_comes_restarts_the_window_after_the_wait() {
        let w = Window::default();
        assert!(w.reserve(CREDIT_WINDOW_BYTES, Duration::from_secs(1)).await);
        let t = std::time::Instant::now();
        assert!(!w.reserve(100, Duration::from_millis(100)).await);
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert_eq!(w.in_flight(), 100, "the frame that went counts");
    }

    #[tokio::test]
    async fn a_quiet_flow_starts_from_an_empty_window() {
        // Less than a batch is never credited back: after the quiet time
        // it no longer counts.
        let w = Window {
            quiet: Duration::from_millis(50),
            ..Window::default()
        };
        let full = CREDIT_WINDOW_BYTES - 5;
        assert!(w.reserve(full, Duration::from_secs(1)).await);
        // Within the quiet time there is no room (the wait runs out; the
        // frame then goes and the window restarts from it).
        assert!(!w.reserve(100, Duration::from_millis(1)).await);
        assert!(w.reserve(full - 100, Duration::from_secs(1)).await);
        assert_eq!(w.in_flight(), full);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(w.reserve(100, Duration::from_millis(1)).await);
        assert_eq!(w.in_flight(), 100);
    }

    #[test]
    fn credit_for_a_forgotten_window_is_ignored() {
        let ws = Windows::default();
        let w = ws.get("s1");
        ws.forget("s1");
        ws.credit("s1", 5);
        assert_eq!(w.in_flight(), 0);
        assert_eq!(ws.len(), 0);
    }
}
