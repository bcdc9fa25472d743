use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::link::{FrameReceiver, FrameSender, Link, spawn_link};
use lifeline_protocol::Frame;

use super::{FORWARD_QUEUE_BYTES, Forwarders};

const WAIT: Duration = Duration::from_secs(10);

/// Peers by name, as the node's registry or connection map would hold them.
type Peers = Arc<Mutex<HashMap<String, FrameSender>>>;

/// Credit returned, by reply subject, in the order it was returned.
type Credits = Arc<Mutex<Vec<(String, usize)>>>;

fn forwarders(peers: &Peers, idle: Duration) -> Forwarders<String> {
    forwarders_crediting(peers, idle, &Credits::default())
}

fn forwarders_crediting(peers: &Peers, idle: Duration, credits: &Credits) -> Forwarders<String> {
    let peers = Arc::clone(peers);
    let credits = Arc::clone(credits);
    let mut f = Forwarders::new(
        Arc::new(move |k: &String| {
            let tx = peers.lock().unwrap().get(k).cloned()?;
            Some((tx, WAIT))
        }),
        Arc::new(move |reply: String, bytes: usize| credits.lock().unwrap().push((reply, bytes))),
    );
    f.idle = idle;
    f
}

fn peer(peers: &Peers, name: &str, capacity: usize) -> FrameReceiver {
    let (tx, rx) = FrameSender::pair(capacity);
    peers.lock().unwrap().insert(name.to_string(), tx);
    rx
}

fn data(n: u8) -> Frame {
    Frame::Data(vec![n; 8])
}

async fn next(rx: &mut FrameReceiver) -> Frame {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a frame within the wait")
        .expect("the queue is open")
}

/// Waits (bounded) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn each_peer_gets_its_frames_in_order_and_a_stalled_one_holds_up_no_other() {
    let peers = Peers::default();
    let f = forwarders(&peers, Duration::from_secs(30));
    // "slow" has room for one frame and nobody reads it.
    let _slow = peer(&peers, "slow", 1);
    let mut fast = peer(&peers, "fast", 64);
    for n in 0..5 {
        f.push("slow".into(), data(n), 8, None);
    }
    for n in 0..20 {
        f.push("fast".into(), data(n), 8, None);
    }
    for n in 0..20 {
        assert_eq!(next(&mut fast).await, data(n), "frame {n} in order");
    }
    assert_eq!(f.running(), 2);
}

#[tokio::test]
async fn an_idle_peer_s_task_ends_and_the_next_frame_starts_another() {
    let peers = Peers::default();
    let f = forwarders(&peers, Duration::from_millis(50));
    let mut rx = peer(&peers, "p", 8);
    f.push("p".into(), data(1), 8, None);
    assert_eq!(next(&mut rx).await, data(1));
    until("the idle task ends", || f.running() == 0).await;
    f.push("p".into(), data(2), 8, None);
    assert_eq!(next(&mut rx).await, data(2));
    // A key with no peer behind it: its frames are dropped, nothing waits.
    f.push("gone".into(), data(3), 8, None);
    until("the task of a peer that is not here ends", || {
        f.running() == 0
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_falls_too_far_behind_is_disconnected() {
    let peers = Peers::default();
    let f = forwarders(&peers, Duration::from_secs(30));
    // A real link whose other end never reads: its writer stalls, its
    // queue fills, and the forwarder's task waits on it.
    let (ours, _theirs) = tokio::io::duplex(1024);
    let Link {
        tx,
        mut rx,
        close_reason,
    } = spawn_link(ours, Duration::from_secs(60), 1 << 20);
    peers.lock().unwrap().insert("p".into(), tx);
    let big = FORWARD_QUEUE_BYTES / 4;
    for n in 0..64 {
        f.push("p".into(), data(n), big, None);
    }
    let closed = tokio::time::timeout(WAIT, rx.recv()).await;
    assert!(matches!(closed, Ok(None)), "the link closed");
    assert!(
        close_reason.get().contains("MiB queued"),
        "{}",
        close_reason.get()
    );
}

#[tokio::test]
async fn credit_goes_back_in_batches_also_for_dropped_frames() {
    let peers = Peers::default();
    let credits = Credits::default();
    let f = forwarders_crediting(&peers, Duration::from_secs(30), &credits);
    let mut rx = peer(&peers, "p", 64);
    let size = super::CREDIT_BATCH_BYTES / 4;
    let sum = |suffix: &str| -> (usize, usize) {
        let c = credits.lock().unwrap();
        let mine = c.iter().filter(|(r, _)| r.ends_with(suffix));
        (mine.clone().map(|(_, b)| b).sum(), mine.count())
    };
    for n in 0..6 {
        f.push(
            "p".into(),
            data(n),
            size,
            Some("lifeline.credit.a.s1".into()),
        );
    }
    // A frame of another flow, and one without a window.
    f.push("p".into(), data(6), 10, Some("lifeline.credit.b.s1".into()));
    f.push("p".into(), data(7), 10, None);
    for n in 0..8 {
        assert_eq!(next(&mut rx).await, data(n));
    }
    // One batch back (one message, not one per frame); less than a batch
    // stays owed.
    until("a batch of credit", || sum("a.s1") == (4 * size, 1)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sum("a.s1"), (4 * size, 1));
    assert_eq!(sum("b.s1"), (0, 0));
    // Frames for a peer that is not here are credited too.
    for n in 0..4 {
        f.push(
            "gone".into(),
            data(n),
            size,
            Some("lifeline.credit.c.s2".into()),
        );
    }
    until("credit for dropped frames", || sum("c.s2") == (4 * size, 1)).await;
}
