use std::sync::Arc;

use lifeline_core::link::{FrameReceiver, FrameSender};
use lifeline_protocol::{Frame, SessionState};
use tokio::sync::Notify;

use super::{LiveSession, Registry};

fn live(operators: Vec<(u64, FrameSender)>) -> LiveSession {
    LiveSession {
        state: SessionState::Connected,
        operator_id: 1,
        operator_name: "Alice".into(),
        agent: FrameSender::disconnected("test"),
        ended: Arc::new(Notify::new()),
        operators,
        rejoin_deadline: None,
        report: Default::default(),
        rejoin_tickets: 0,
        open_streams: Default::default(),
        endpoints: Vec::new(),
    }
}

/// How many frames `rx` got before its queue ended (every sender gone).
async fn received(rx: &mut FrameReceiver) -> usize {
    let mut n = 0;
    while rx.recv().await.is_some() {
        n += 1;
    }
    n
}

#[tokio::test]
async fn what_the_agent_seals_for_an_endpoint_goes_to_its_connection_only() {
    let (tx1, mut rx1) = FrameSender::pair(8);
    let (tx2, mut rx2) = FrameSender::pair(8);
    let registry = Registry::new();
    registry.customer_joined("s1", live(vec![(1, tx1), (2, tx2)]), "joined");
    registry.claim_endpoint("s1", 2, 77);
    let frame = || Frame::Data(vec![1, 2, 3]);
    // Endpoint 77 is connection 2's: only it gets the frame.
    for tx in registry.operator_txs_for("s1", Some(77)) {
        tx.try_send(frame()).expect("room");
    }
    // An endpoint this node does not know (a connection on another node)
    // and a frame for no endpoint go to every attached connection.
    for endpoint in [Some(5), None] {
        let txs = registry.operator_txs_for("s1", endpoint);
        assert_eq!(txs.len(), 2);
        for tx in txs {
            tx.try_send(frame()).expect("room");
        }
    }
    assert!(registry.operator_txs_for("other", Some(77)).is_empty());
    assert!(registry.endpoint_claimed("s1", 77));
    assert!(!registry.endpoint_claimed("s1", 5), "never said hello");
    assert!(!registry.endpoint_claimed("other", 77));
    drop(registry);
    assert_eq!(received(&mut rx1).await, 2);
    assert_eq!(received(&mut rx2).await, 3);
}

#[test]
fn endpoint_claims_are_bounded_and_the_newest_claim_wins() {
    let (tx, _rx) = FrameSender::pair(8);
    let registry = Registry::new();
    registry.customer_joined("s1", live(vec![(1, tx)]), "joined");
    let max = lifeline_protocol::e2e::MAX_ENDPOINTS as u64;
    for endpoint in 0..max + 4 {
        registry.claim_endpoint("s1", 1, endpoint);
    }
    registry.claim_endpoint("s1", 1, max + 3);
    let live = registry.live();
    let s = live.get("s1").expect("live");
    assert_eq!(s.endpoints.len(), lifeline_protocol::e2e::MAX_ENDPOINTS);
    assert!(!s.endpoints.iter().any(|(e, _)| *e < 4), "the oldest went");
}
