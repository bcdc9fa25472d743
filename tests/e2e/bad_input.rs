//! Bad input from the network: each gets a clear error, closes at most its
//! own connection, and loses nothing.

use std::sync::Arc;
use std::time::Duration;

use lifeline_core::client::{ConnectError, Endpoint};
use lifeline_core::tls::{self, Fingerprint, Trust};
use lifeline_operator::OperatorError;
use lifeline_protocol::{
    ClientRole, ErrorCode, Frame, JoinCredential, MAX_FRAME_BYTES, Message, PROTOCOL_NAME,
    read_frame, write_frame,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn raw_tls(tb: &TestBroker) -> Tls {
    let cfg = tls::client_config(&Trust::Pinned(tb.broker.fingerprint)).unwrap();
    let tcp = TcpStream::connect(tb.broker.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

async fn hello(s: &mut Tls, version: u16, role: ClientRole) -> Message {
    let m = Message::Hello {
        protocol: PROTOCOL_NAME.into(),
        version,
        role,
        software: "test".into(),
    };
    write_frame(s, &Frame::Control(m)).await.unwrap();
    match tokio::time::timeout(WAIT, read_frame(s, MAX_FRAME_BYTES))
        .await
        .unwrap()
        .unwrap()
    {
        Frame::Control(m) => m,
        Frame::Data(_) | Frame::SessionData { .. } => panic!("data frame in handshake"),
    }
}

/// The broker still serves a full operator login after the abuse.
async fn broker_still_serves(tb: &TestBroker) {
    let c = tb.operator("alice").await;
    c.sessions(false).await.unwrap();
}

/// Reads until the broker closes the connection (bounded).
async fn closed_by_broker(s: &mut Tls) -> Vec<Message> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, read_frame(s, MAX_FRAME_BYTES)).await {
            Err(_) => panic!("broker did not close the connection"),
            Ok(Err(_)) => return seen,
            Ok(Ok(Frame::Control(m))) => seen.push(m),
            Ok(Ok(Frame::Data(_) | Frame::SessionData { .. })) => {}
        }
    }
}

async fn agent_join(tb: &TestBroker, cred: JoinCredential) -> Message {
    let mut s = raw_tls(tb).await;
    assert!(matches!(
        hello(
            &mut s,
            lifeline_protocol::PROTOCOL_VERSION,
            ClientRole::Agent
        )
        .await,
        Message::Welcome { .. }
    ));
    write_frame(
        &mut s,
        &Frame::Control(Message::Join {
            credential: cred,
            host: "pc".into(),
        }),
    )
    .await
    .unwrap();
    match read_frame(&mut s, MAX_FRAME_BYTES).await.unwrap() {
        Frame::Control(m) => m,
        Frame::Data(_) | Frame::SessionData { .. } => panic!("data"),
    }
}

fn error_of(m: Message) -> (ErrorCode, String) {
    match m {
        Message::Error { code, message } => (code, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let tb = TestBroker::start().await;
    let mut s = raw_tls(&tb).await;
    hello(
        &mut s,
        lifeline_protocol::PROTOCOL_VERSION,
        ClientRole::Operator,
    )
    .await;
    let mut header = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec();
    header.push(2);
    s.write_all(&header).await.unwrap();
    s.flush().await.unwrap();
    closed_by_broker(&mut s).await;
    broker_still_serves(&tb).await;
}

#[tokio::test]
async fn garbage_instead_of_handshake() {
    let tb = TestBroker::start().await;
    // Not even TLS.
    let mut tcp = TcpStream::connect(tb.broker.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\x01garbage")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf))
        .await
        .expect("broker closes");
    // TLS, but garbage where the Hello belongs.
    let mut s = raw_tls(&tb).await;
    s.write_all(&[
        0, 0, 0, 9, 1, b'{', b'x', b'y', b'z', b'!', b'!', b'!', b'!',
    ])
    .await
    .unwrap();
    s.flush().await.unwrap();
    let msgs = closed_by_broker(&mut s).await;
    let (code, message) = error_of(msgs.into_iter().next().expect("an error before closing"));
    assert_eq!(code, ErrorCode::BadHandshake);
    assert!(message.contains("malformed"), "{message}");
    // A huge length as the first frame is refused before reading it.
    let mut s = raw_tls(&tb).await;
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1]).await.unwrap();
    s.flush().await.unwrap();
    let msgs = closed_by_broker(&mut s).await;
    assert!(
        error_of(msgs.into_iter().next().unwrap())
            .1
            .contains("exceeds the maximum")
    );
    broker_still_serves(&tb).await;
}

#[tokio::test]
async fn client_of_another_protocol_version_is_told_both_versions() {
    let tb = TestBroker::start().await;
    let mut s = raw_tls(&tb).await;
    let (code, message) = error_of(hello(&mut s, 99, ClientRole::Agent).await);
    assert_eq!(code, ErrorCode::VersionMismatch);
    assert!(
        message.contains("version 1") && message.contains("version 99"),
        "{message}"
    );
    closed_by_broker(&mut s).await;
    broker_still_serves(&tb).await;
}

#[tokio::test]
async fn pinned_fingerprint_mismatch_shows_both_fingerprints() {
    let tb = TestBroker::start().await;
    let wrong = Fingerprint([7u8; 32]);
    let ep = Endpoint {
        trust: Trust::Pinned(wrong),
        ..tb.endpoint()
    };
    let err = lifeline_core::client::connect(&ep, ClientRole::Operator)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConnectError::Tls { .. }), "{text}");
    assert!(
        text.contains(&wrong.to_string()) && text.contains(&tb.broker.fingerprint.to_string()),
        "{text}"
    );
    broker_still_serves(&tb).await;
}

#[tokio::test]
async fn ca_issued_certificate_is_verified_against_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["broker.test".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let (cert, key, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, leaf.pem()).unwrap();
    lifeline_core::secrets::write_private(&key, leaf_key.serialize_pem().as_bytes()).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let mut cfg = broker_config(dir.path(), Duration::from_secs(15));
    cfg.tls_files = Some((cert, key));
    let broker = lifeline_broker::Broker::start(cfg).await.unwrap();
    let ep = Endpoint {
        address: broker.addr.to_string(),
        server_name: "broker.test".into(),
        trust: Trust::CaFile(ca_file),
        heartbeat: Duration::from_secs(15),
    };
    lifeline_core::client::connect(&ep, ClientRole::Operator)
        .await
        .unwrap();
    // The public roots do not know this CA; a wrong name fails too.
    let err = lifeline_core::client::connect(
        &Endpoint {
            trust: Trust::WebPki,
            ..ep.clone()
        },
        ClientRole::Operator,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("UnknownIssuer") || err.to_string().contains("issuer"),
        "{err}"
    );
    let err = lifeline_core::client::connect(
        &Endpoint {
            server_name: "other.test".into(),
            ..ep
        },
        ClientRole::Operator,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TLS handshake"), "{err}");
}

#[tokio::test]
async fn wrong_expired_reused_and_forged_invitations() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let inv = op.invite("T-1", "Mario", None).await.unwrap();
    let wrong = if inv.connection_id == "000000" {
        "000001"
    } else {
        "000000"
    };
    let (code, msg) = error_of(agent_join(&tb, JoinCredential::ConnectionId(wrong.into())).await);
    assert_eq!(code, ErrorCode::InvalidInvitation);
    assert!(msg.contains("not valid"), "{msg}");
    let (code, msg) = error_of(agent_join(&tb, JoinCredential::ConnectionId("12ab".into())).await);
    assert_eq!(code, ErrorCode::Invalid);
    assert!(msg.contains("6 digits"), "{msg}");
    // Forged token of the right shape.
    let (_, msg) = error_of(agent_join(&tb, JoinCredential::LinkToken("A".repeat(43))).await);
    assert!(msg.contains("link is not valid"), "{msg}");
    // Used once, then reused.
    assert!(matches!(
        agent_join(&tb, JoinCredential::ConnectionId(inv.connection_id.clone())).await,
        Message::Joined { .. }
    ));
    let (code, msg) =
        error_of(agent_join(&tb, JoinCredential::ConnectionId(inv.connection_id.clone())).await);
    assert_eq!(code, ErrorCode::InvalidInvitation);
    assert!(msg.contains("already used"), "{msg}");
    // Expired.
    let short = op.invite("T-2", "Mario", Some(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, msg) = error_of(
        agent_join(
            &tb,
            JoinCredential::ConnectionId(short.connection_id.clone()),
        )
        .await,
    );
    assert!(msg.contains("expired"), "{msg}");
    // A truncated link never leaves the customer's machine.
    let cut = &inv.link[..inv.link.len() - 5];
    let err = lifeline_agent::parse_credential(cut).unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    // TTL beyond the broker's limit.
    let err = op.invite("T-3", "M", Some(10_000)).await.unwrap_err();
    assert!(err.to_string().contains("between 1 and 600"), "{err}");
    // The failed attempts leave the real session's report untouched (the
    // raw test agent that joined has hung up since: that is reported).
    assert_eq!(
        report_kinds(&op, &inv.session_id).await,
        ["invitation", "join", "error"]
    );
}

#[tokio::test]
async fn wrong_connection_ids_are_rate_limited_per_source() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let inv = op.invite("T-1", "Mario", None).await.unwrap();
    let wrong = if inv.connection_id == "999999" {
        "999998"
    } else {
        "999999"
    };
    let mut limited = None;
    for _ in 0..(lifeline_broker::invitations::PER_SOURCE_RISK_BURST as usize + 1) {
        let (code, msg) =
            error_of(agent_join(&tb, JoinCredential::ConnectionId(wrong.into())).await);
        if code == ErrorCode::RateLimited {
            limited = Some(msg);
            break;
        }
    }
    let msg = limited.expect("the sixth wrong guess is refused");
    assert!(
        msg.contains("try again in") && msg.contains("link"),
        "{msg}"
    );
    // While limited, even the right code is not checked; the link still works.
    let (code, _) =
        error_of(agent_join(&tb, JoinCredential::ConnectionId(inv.connection_id.clone())).await);
    assert_eq!(code, ErrorCode::RateLimited);
}

#[tokio::test]
async fn wrong_password_is_refused_and_rate_limited() {
    let tb = TestBroker::start().await;
    let mut c = lifeline_operator::Client::connect(&tb.endpoint())
        .await
        .unwrap();
    let err = c.login("alice", "not the password").await.unwrap_err();
    assert!(
        matches!(
            err,
            OperatorError::Broker {
                code: ErrorCode::BadCredentials,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "wrong username or password");
    let err = c.login("nobody", "not the password").await.unwrap_err();
    assert_eq!(err.to_string(), "wrong username or password");
    let mut limited = false;
    for _ in 0..12 {
        if let Err(OperatorError::Broker {
            code: ErrorCode::RateLimited,
            ..
        }) = c.login("alice", "still wrong!!").await
        {
            limited = true;
            break;
        }
    }
    assert!(limited, "failed logins are rate-limited");
    // Requests before login are refused clearly.
    let fresh = lifeline_operator::Client::connect(&tb.endpoint())
        .await
        .unwrap();
    let err = fresh.sessions(false).await.unwrap_err();
    assert!(err.to_string().contains("log in first"), "{err}");
}

#[tokio::test]
async fn silent_agent_is_dropped_by_heartbeat() {
    let tb = TestBroker::start_with(Duration::from_secs(1)).await;
    let op = tb.operator("alice").await;
    let inv = op.invite("T-1", "Mario", None).await.unwrap();
    let mut s = raw_tls(&tb).await;
    hello(
        &mut s,
        lifeline_protocol::PROTOCOL_VERSION,
        ClientRole::Agent,
    )
    .await;
    write_frame(
        &mut s,
        &Frame::Control(Message::Join {
            credential: JoinCredential::ConnectionId(inv.connection_id),
            host: "pc".into(),
        }),
    )
    .await
    .unwrap();
    op.wait_ready(&inv.session_id, WAIT).await.unwrap();
    // The raw client never answers pings (nor the end-to-end handshake
    // `attach` waits for): the broker gives up after 3 intervals and ends
    // the session, which fails the channel `attach` waited for.
    let err = op.attach(&inv.session_id).await.unwrap_err();
    assert!(err.to_string().contains("no heartbeat"), "{err}");
    drop(s);
}

#[tokio::test]
async fn malformed_session_messages_get_errors_not_disconnects() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let (sid, _agent) = connected_session(&tb, &op, tb.agent_config("a", None, WAIT)).await;
    op.send(
        &sid,
        lifeline_protocol::SessionMessage::ConsentRequest {
            request_id: 1,
            operator: String::new(),
            plugin: "p".into(),
            action: "Not A Capability".into(),
            detail: "d".into(),
        },
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, op.next_event())
            .await
            .unwrap()
        {
            // The agent checks what the broker can no longer read, and
            // denies the request, saying why.
            Some(lifeline_operator::Event::Session {
                msg: lifeline_protocol::SessionMessage::ConsentAnswer { decided_by, .. },
                ..
            }) => {
                assert!(
                    decided_by.contains("refused by the agent")
                        && decided_by.contains("is not a capability name; known: "),
                    "{decided_by}"
                );
                break;
            }
            Some(_) => {}
            None => panic!("connection closed"),
        }
    }
    op.chat(&sid, "still here").await.unwrap();
    op.chat(&sid, "").await.unwrap();
    let events = report_once(&op, &sid, |e| e.text == "still here").await;
    assert!(!events.iter().any(|e| e.kind == "consent_request"));
}
