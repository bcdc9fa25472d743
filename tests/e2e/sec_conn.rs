//! Connection resources (issue 10, findings 8 and 9): connection caps per
//! source and in all, the authentication deadline, the HTTPS side's
//! timeouts, the bounded password-hashing pool, and peers that stop
//! reading. Real brokers on 127.0.0.1 port 0 with small configured limits;
//! other sources are other loopback addresses (127.0.0.2, …).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lifeline_broker::Broker;
use lifeline_core::client::{self, ConnectError};
use lifeline_core::limits::BrokerLimits;
use lifeline_core::tls::{self, Trust};
use lifeline_operator::{Client, Event, OperatorError};
use lifeline_protocol::{
    ClientRole, ErrorCode, Frame, JoinCredential, MAX_FRAME_BYTES, Message, PROTOCOL_NAME,
    PROTOCOL_VERSION, ReplyBody, Request, SessionMessage, read_frame, write_frame,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use crate::raw_e2e::{RawE2e, answer_hello};
use crate::support::*;

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A broker with `limits` and the operator alice.
async fn start_limited(limits: BrokerLimits) -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = broker_config(dir.path(), Duration::from_secs(15));
    cfg.limits = limits;
    lifeline_broker::add_operator(&cfg, &profile("alice", "Alice Smith"), PASSWORD).unwrap();
    let broker = Broker::start(cfg).await.unwrap();
    TestBroker { dir, broker }
}

/// TLS to `to` from the loopback address `from`; `rcvbuf`: a small socket
/// receive buffer, so that a client that stops reading stalls the sender
/// soon.
async fn tls_from(tb: &TestBroker, to: SocketAddr, from: &str, rcvbuf: Option<u32>) -> Tls {
    let sock = TcpSocket::new_v4().unwrap();
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n).unwrap();
    }
    let ip: IpAddr = from.parse().unwrap();
    sock.bind(SocketAddr::new(ip, 0)).unwrap();
    let tcp = sock.connect(to).await.unwrap();
    let cfg = tls::client_config(&Trust::Pinned(tb.broker.fingerprint)).unwrap();
    tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Sends the `Hello` and returns the broker's answer.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, role: ClientRole) -> Message {
    let m = Message::Hello {
        protocol: PROTOCOL_NAME.into(),
        version: PROTOCOL_VERSION,
        role,
        software: "test".into(),
    };
    write_frame(s, &Frame::Control(m)).await.unwrap();
    next_message(s).await
}

async fn next_message<S: AsyncRead + Unpin>(s: &mut S) -> Message {
    loop {
        match tokio::time::timeout(WAIT, read_frame(s, MAX_FRAME_BYTES))
            .await
            .expect("no message from the broker")
            .expect("the connection closed")
        {
            Frame::Control(Message::Ping { .. } | Message::Pong { .. })
            | Frame::Data(_)
            | Frame::SessionData { .. } => {}
            Frame::Control(m) => return m,
        }
    }
}

/// A raw operator connection from `from` (welcomed).
async fn raw_operator(tb: &TestBroker, from: &str, rcvbuf: Option<u32>) -> Tls {
    let mut s = tls_from(tb, tb.broker.addr, from, rcvbuf).await;
    let m = hello(&mut s, ClientRole::Operator).await;
    assert!(matches!(m, Message::Welcome { .. }), "{m:?}");
    s
}

/// Sends a request on a raw connection and returns its reply.
async fn request(s: &mut Tls, id: u64, body: Request) -> ReplyBody {
    write_frame(s, &Frame::Control(Message::Request { id, body }))
        .await
        .unwrap();
    loop {
        if let Message::Reply { id: got, body } = next_message(s).await
            && got == id
        {
            return body;
        }
    }
}

fn login() -> Request {
    Request::Login {
        username: "alice".into(),
        password: PASSWORD.into(),
    }
}

/// Writes a ping every 200 ms until writing fails (bounded): a peer that
/// is alive but never reads.
fn keep_pinging<W: AsyncWrite + Unpin + Send + 'static>(mut w: W) {
    tokio::spawn(async move {
        for nonce in 0..(4 * WAIT.as_secs() * 5) {
            let ping = Frame::Control(Message::Ping { nonce });
            if write_frame(&mut w, &ping).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

fn is_refusal(m: &Message, needle: &str) -> bool {
    matches!(m, Message::Error { code: ErrorCode::RateLimited, message } if message.contains(needle))
}

#[tokio::test]
async fn connections_past_the_caps_are_refused_while_other_sources_work() {
    let tb = start_limited(BrokerLimits {
        max_connections: 3,
        max_connections_per_source: 2,
        ..Default::default()
    })
    .await;
    let a1 = raw_operator(&tb, "127.0.0.1", None).await;
    let _a2 = raw_operator(&tb, "127.0.0.1", None).await;
    // A third from the same address is refused, with the reason.
    let mut a3 = tls_from(&tb, tb.broker.addr, "127.0.0.1", None).await;
    let m = hello(&mut a3, ClientRole::Operator).await;
    assert!(
        is_refusal(&m, "too many connections from your address"),
        "{m:?}"
    );
    match Client::connect(&tb.endpoint()).await {
        Err(OperatorError::Connect(ConnectError::Refused(why))) => {
            assert!(why.contains("max_connections_per_source"), "{why}")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a third connection from one address was accepted"),
    }
    // Another source still gets in and can log in.
    let mut b1 = raw_operator(&tb, "127.0.0.2", None).await;
    let reply = request(&mut b1, 1, login()).await;
    assert!(matches!(reply, ReplyBody::LoggedIn { .. }), "{reply:?}");
    // Now the broker is full for everyone.
    let mut c1 = tls_from(&tb, tb.broker.addr, "127.0.0.3", None).await;
    let m = hello(&mut c1, ClientRole::Agent).await;
    assert!(is_refusal(&m, "connection limit"), "{m:?}");
    // A closed connection frees its place.
    drop(a1);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut s = tls_from(&tb, tb.broker.addr, "127.0.0.1", None).await;
        if matches!(
            hello(&mut s, ClientRole::Operator).await,
            Message::Welcome { .. }
        ) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "place never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the broker's error on `link`, then for the link to close.
async fn closed_with_error(link: &mut lifeline_core::link::Link) -> String {
    let mut error = None;
    loop {
        match tokio::time::timeout(WAIT, link.rx.recv()).await {
            Err(_) => panic!("the broker kept the unauthenticated connection open"),
            Ok(None) => return error.expect("closed without saying why"),
            Ok(Some(Frame::Control(Message::Error { code, message }))) => {
                assert_eq!(code, ErrorCode::NotLoggedIn);
                error = Some(message);
            }
            Ok(Some(_)) => {}
        }
    }
}

#[tokio::test]
async fn an_agent_s_join_sent_behind_its_hello_gets_the_refusal_not_a_reset() {
    // The agent writes its join right behind the handshake's hello (one
    // write); a broker that refuses the connection never reads the join,
    // and the refusal must still reach the client, every time. (The
    // broker also reads a refused connection until the client closes,
    // `REFUSAL_DRAIN`, for a join that arrives after the hello was read.)
    let tb = start_limited(BrokerLimits {
        max_connections_per_source: 1,
        ..Default::default()
    })
    .await;
    let held = raw_operator(&tb, "127.0.0.1", None).await;
    let join = Frame::Control(Message::Join {
        credential: JoinCredential::ConnectionId("123456".into()),
        host: "pc".into(),
    });
    for _ in 0..20 {
        match client::connect_then(&tb.endpoint(), ClientRole::Agent, None, &join).await {
            Err(ConnectError::Refused(why)) => {
                assert!(why.contains("max_connections_per_source"), "{why}")
            }
            Err(e) => panic!("not the refusal: {e}"),
            Ok(_) => panic!("a second connection from one address was accepted"),
        }
    }
    // Once there is room, the join behind the hello is read and answered.
    drop(held);
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut link, _) = loop {
        match client::connect_then(&tb.endpoint(), ClientRole::Agent, None, &join).await {
            Ok(x) => break x,
            Err(ConnectError::Refused(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    match tokio::time::timeout(WAIT, link.rx.recv()).await {
        Ok(Some(Frame::Control(Message::Error { code, message }))) => {
            assert_eq!(code, ErrorCode::InvalidInvitation, "{message}");
        }
        other => panic!("expected the wrong code's refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn unauthenticated_connections_are_closed_after_the_deadline() {
    let tb = start_limited(BrokerLimits {
        auth_deadline: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    // Clients that ping often: heartbeats alone must not keep them in.
    let mut ep = tb.endpoint();
    ep.heartbeat = Duration::from_millis(200);
    let (mut op, _) = client::connect(&ep, ClientRole::Operator).await.unwrap();
    let (mut agent, _) = client::connect(&ep, ClientRole::Agent).await.unwrap();
    let why = closed_with_error(&mut op).await;
    assert!(
        why.contains("no login") && why.contains("auth_deadline_secs"),
        "{why}"
    );
    let why = closed_with_error(&mut agent).await;
    assert!(why.contains("no join or rejoin"), "{why}");

    // A logged-in operator stays past the deadline; after a logout the
    // clock starts again.
    let c = tb.operator("alice").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.sessions(false).await.unwrap();
    c.request(Request::Logout).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, c.next_event()).await {
            Err(_) => panic!("the logged-out connection stayed open"),
            Ok(None) => break,
            Ok(Some(_)) => {}
        }
    }
}

/// Reads until the server closes (bounded); what was read, or `None` when
/// the connection was still open after [`WAIT`].
async fn read_until_closed<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn https_half_headers_and_idle_keep_alive_are_cut_off() {
    let tb = start_limited(BrokerLimits {
        http_header_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    // Half a header, never finished.
    let mut s = tls_from(&tb, tb.broker.https_addr, "127.0.0.1", None).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(
        read_until_closed(&mut s).await.is_some(),
        "a half-sent header kept the connection open"
    );
    // A whole request is answered; the idle keep-alive connection is then
    // closed.
    let mut s = tls_from(&tb, tb.broker.https_addr, "127.0.0.1", None).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut s)
        .await
        .expect("an idle keep-alive connection stayed open");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test]
async fn https_connections_past_the_per_source_cap_are_refused() {
    let tb = start_limited(BrokerLimits {
        max_connections_per_source: 1,
        ..Default::default()
    })
    .await;
    let _held = tls_from(&tb, tb.broker.https_addr, "127.0.0.1", None).await;
    // The second from the same address is closed before TLS completes.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let tcp = sock.connect(tb.broker.https_addr).await.unwrap();
    let cfg = tls::client_config(&Trust::Pinned(tb.broker.fingerprint)).unwrap();
    let refused = tokio::time::timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(cfg)
            .connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("the refused connection was left hanging");
    assert!(
        refused.is_err(),
        "a second HTTPS connection from one address was served"
    );
    // Another address is served.
    let mut s = tls_from(&tb, tb.broker.https_addr, "127.0.0.2", None).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut s).await.unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test]
async fn a_login_burst_beyond_the_hashing_pool_is_told_busy() {
    let tb = start_limited(BrokerLimits {
        login_hash_threads: 1,
        login_queue: 2,
        ..Default::default()
    })
    .await;
    // Keep the only hashing thread busy, so admitted logins wait.
    let hold = tb.broker.shared.hash_pool.hold_all_threads().await;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    for _ in 0..6 {
        let mut c = Client::connect(&tb.endpoint()).await.unwrap();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let r = c.login("alice", PASSWORD).await;
            let _ = done.send(r.map(|_| ()));
        });
    }
    // One thread + two waiting are admitted; the other three are refused.
    for _ in 0..3 {
        let r = tokio::time::timeout(WAIT, done_rx.recv())
            .await
            .expect("refusals must not wait")
            .unwrap();
        match r {
            Err(OperatorError::Broker {
                code: ErrorCode::RateLimited,
                message,
            }) => assert!(message.contains("busy"), "{message}"),
            other => panic!("expected a busy refusal, got {other:?}"),
        }
    }
    drop(hold);
    for _ in 0..3 {
        let r = tokio::time::timeout(WAIT, done_rx.recv())
            .await
            .expect("the admitted logins never finished")
            .unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
}

type SharedWriter = Arc<tokio::sync::Mutex<tokio::io::WriteHalf<Tls>>>;

/// A raw agent that joined `code`: its writer (shared with its reader,
/// which answers operator endpoints' end-to-end hellos), its channels, and
/// the other control messages it reads (sealed content opened).
async fn raw_agent(
    tb: &TestBroker,
    code: &str,
) -> (SharedWriter, RawE2e, mpsc::UnboundedReceiver<Message>) {
    let mut s = tls_from(tb, tb.broker.addr, "127.0.0.1", None).await;
    assert!(matches!(
        hello(&mut s, ClientRole::Agent).await,
        Message::Welcome { .. }
    ));
    let join = Message::Join {
        credential: JoinCredential::ConnectionId(code.into()),
        host: "pc".into(),
    };
    write_frame(&mut s, &Frame::Control(join)).await.unwrap();
    let m = next_message(&mut s).await;
    let Message::Joined { session, .. } = m else {
        panic!("{m:?}")
    };
    let e2e = RawE2e::new(&session.session_id);
    let (mut rd, wr) = tokio::io::split(s);
    let wr: SharedWriter = Arc::new(tokio::sync::Mutex::new(wr));
    let (tx, rx) = mpsc::unbounded_channel();
    let (reader_e2e, reader_wr) = (e2e.clone(), Arc::clone(&wr));
    tokio::spawn(async move {
        while let Ok(f) = read_frame(&mut rd, MAX_FRAME_BYTES).await {
            let Frame::Control(m) = f else { continue };
            let (replies, handed_on) = reader_e2e.incoming(m);
            for r in replies {
                let _ = write_frame(&mut *reader_wr.lock().await, &r).await;
            }
            if let Some(m) = handed_on
                && tx.send(m).is_err()
            {
                return;
            }
        }
    });
    (wr, e2e, rx)
}

/// The frames a real agent sends for the customer's chat line.
fn chat(e2e: &RawE2e, text: String) -> Vec<Frame> {
    e2e.content(&SessionMessage::Chat {
        from: lifeline_protocol::Party::Customer,
        text,
    })
}

/// A raw operator connection's end-to-end channel for `session_id`: its
/// hello, the agent's reply read, its confirm sent.
async fn open_channel(s: &mut Tls, session_id: &str) {
    use lifeline_protocol::e2e::{OperatorEnd, OperatorIncoming};
    let endpoint: u64 = rand::random();
    let (mut end, hello) = OperatorEnd::start(session_id, endpoint, rand::random()).unwrap();
    let say = |msg| {
        Frame::Control(Message::Session {
            session_id: session_id.to_string(),
            msg,
        })
    };
    write_frame(s, &say(hello)).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, read_frame(s, MAX_FRAME_BYTES))
            .await
            .expect("the agent answers the hello")
            .unwrap();
        let Frame::Control(Message::Session { msg, .. }) = frame else {
            continue;
        };
        if let OperatorIncoming::Ready { confirm, .. } = end.incoming(msg) {
            write_frame(s, &say(confirm)).await.unwrap();
            break;
        }
    }
}

fn stall_limits() -> BrokerLimits {
    BrokerLimits {
        write_timeout: Duration::from_secs(2),
        relay_wait: Duration::from_secs(2),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_operator_that_stops_reading_is_dropped_and_the_session_goes_on() {
    let tb = start_limited(stall_limits()).await;
    let alice = tb.operator("alice").await;
    let inv = alice.invite("T-9", "Mario Rossi", None).await.unwrap();
    let sid = inv.session_id.clone();
    let (agent_wr, agent_e2e, mut agent_rx) = raw_agent(&tb, &inv.connection_id).await;
    alice.wait_ready(&sid, WAIT).await.unwrap();
    alice.attach(&sid).await.unwrap();

    // A second connection of alice attaches, then never reads again.
    let mut slow = raw_operator(&tb, "127.0.0.1", Some(4096)).await;
    assert!(matches!(
        request(&mut slow, 1, login()).await,
        ReplyBody::LoggedIn { .. }
    ));
    let attach = Request::Attach {
        session_id: sid.clone(),
        e2e_hello: None,
    };
    assert!(matches!(
        request(&mut slow, 2, attach).await,
        ReplyBody::Attached { .. }
    ));
    // It starts its end-to-end channel (the broker relays to it what the
    // agent seals for it: the flood below), then never reads again.
    open_channel(&mut slow, &sid).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while agent_e2e.ready() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent's end of the second channel is ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut slow_rd, slow_wr) = tokio::io::split(slow);
    keep_pinging(slow_wr);

    // The customer floods the session with chat lines and data (6 MB; the
    // data keeps the report small), then says one more line.
    tokio::spawn(async move {
        for i in 0..100 {
            let line = format!("line {i:03} {}", "x".repeat(100));
            let mut frames = chat(&agent_e2e, line);
            frames.extend(agent_e2e.data(&[7u8; 64 * 1024]));
            for f in frames {
                write_frame(&mut *agent_wr.lock().await, &f).await.unwrap();
            }
        }
        for f in chat(&agent_e2e, "still here".into()) {
            write_frame(&mut *agent_wr.lock().await, &f).await.unwrap();
        }
    });
    operator_sees(
        &alice,
        |m| matches!(m, SessionMessage::Chat { text, .. } if text == "still here"),
    )
    .await;
    // And the other way round.
    alice.chat(&sid, "hello from alice").await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = tokio::time::timeout_at(deadline, agent_rx.recv())
            .await
            .expect("the customer never got the operator's chat")
            .expect("the customer's connection closed");
        if let Message::Session {
            msg: SessionMessage::Chat { text, .. },
            ..
        } = m
            && text == "hello from alice"
        {
            break;
        }
    }
    // The stalled connection was closed, and the report says why.
    assert!(read_until_closed(&mut slow_rd).await.is_some());
    let (summary, events) = alice.report(&sid).await.unwrap();
    assert_eq!(summary.state, lifeline_protocol::SessionState::Connected);
    assert!(
        events
            .iter()
            .any(|e| e.kind == "disconnect" && e.text.contains("stopped reading")),
        "no disconnect event with the reason"
    );
}

#[tokio::test]
async fn an_agent_that_stops_reading_is_dropped_without_blocking_the_operator() {
    let tb = start_limited(stall_limits()).await;
    let alice = tb.operator("alice").await;
    let inv = alice.invite("T-10", "Mario Rossi", None).await.unwrap();
    let sid = inv.session_id.clone();
    let mut s = tls_from(&tb, tb.broker.addr, "127.0.0.1", Some(4096)).await;
    assert!(matches!(
        hello(&mut s, ClientRole::Agent).await,
        Message::Welcome { .. }
    ));
    let join = Message::Join {
        credential: JoinCredential::ConnectionId(inv.connection_id.clone()),
        host: "pc".into(),
    };
    write_frame(&mut s, &Frame::Control(join)).await.unwrap();
    assert!(matches!(next_message(&mut s).await, Message::Joined { .. }));
    alice.wait_ready(&sid, WAIT).await.unwrap();
    let e2e = RawE2e::new(&sid);
    let (mut agent_rd, mut agent_wr) = tokio::io::split(s);
    let (attached, ()) = tokio::join!(
        alice.attach(&sid),
        answer_hello(&e2e, &mut agent_rd, &mut agent_wr)
    );
    attached.unwrap();
    // From now on the agent never reads.
    keep_pinging(agent_wr);

    // The operator sends about 12 MB of data; its own handler must not
    // block on the customer that does not read.
    let flooded = tokio::time::timeout(WAIT, async {
        for _ in 0..200 {
            if alice.send_data(&sid, vec![0u8; 64 * 1024]).await.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(flooded.is_ok(), "the operator's sends blocked");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, alice.next_event())
            .await
            .expect("the session did not end")
            .expect("the operator's connection closed");
        if let Event::Session {
            msg: SessionMessage::End { reason, .. },
            ..
        } = ev
        {
            assert!(reason.contains("stopped reading"), "{reason}");
            break;
        }
    }
    // The operator's connection works on.
    alice.sessions(false).await.unwrap();
    let (_, events) = alice.report(&sid).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "error" && e.text.contains("stopped reading")),
        "the report does not say why the customer was dropped"
    );
}
