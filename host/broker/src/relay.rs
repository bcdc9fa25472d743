//! Relaying session traffic to the other side without letting a slow peer
//! hold up the sender's handler: each frame waits at most
//! `broker.limits.relay_wait_secs` for room in the peer's queue; a peer
//! whose queue stays full that long is disconnected, and its link records
//! why (the peer's own handler then logs it and, for a customer, ends the
//! session with that reason in the report).

use lifeline_core::link::{FrameSender, SendError};
use lifeline_protocol::Frame;

use crate::Shared;

/// Sends `frame` to one peer; false when that peer is gone (closed, or
/// dropped just now for being too slow).
pub async fn to(shared: &Shared, tx: &FrameSender, frame: Frame) -> bool {
    match tx.send_within(frame, shared.cfg.limits.relay_wait).await {
        Ok(()) => true,
        Err(SendError::Closed) => false,
        Err(SendError::Stalled(why)) => {
            tracing::info!("dropped a session peer: {why}");
            false
        }
    }
}

/// Sends `frame` to every peer in `txs`, each bounded as in [`to`]; the
/// last peer gets the frame itself (no copy of its payload for the usual
/// single operator connection).
pub async fn to_all(shared: &Shared, mut txs: Vec<FrameSender>, frame: Frame) {
    let Some(last) = txs.pop() else {
        return;
    };
    for tx in txs {
        to(shared, &tx, frame.clone()).await;
    }
    to(shared, &last, frame).await;
}
