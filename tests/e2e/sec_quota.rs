//! Security findings 10 and 13: per-session report quotas, paged replies, a
//! broker whose disk is full, and the connection-ID guessing budget. Raw
//! agents speak the protocol over real TLS to a broker on 127.0.0.1 port 0.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use lifeline_broker::quota::{
    MAX_CHAT_CHARS, MAX_RECORDED_TEXT_CHARS, MAX_REJOIN_TICKETS, MAX_REPORT_BYTES,
    MAX_REPORT_EVENTS, QUOTA_NOTE,
};
use lifeline_core::tls::{self, Trust};
use lifeline_protocol::{
    ClientRole, ErrorCode, Frame, JoinCredential, MAX_FRAME_BYTES, Message, PROTOCOL_NAME,
    PROTOCOL_VERSION, Party, SessionMessage, read_frame, write_frame,
};
use rustls::pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};

use crate::raw_e2e::{RawE2e, answer_hello};
use crate::support::*;

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A protocol-level agent connected from a chosen loopback address.
struct RawAgent {
    s: Tls,
    session: String,
    e2e: RawE2e,
}

async fn tls_from(tb: &TestBroker, source: IpAddr) -> Tls {
    let cfg = tls::client_config(&Trust::Pinned(tb.broker.fingerprint)).unwrap();
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(source, 0)).unwrap();
    let tcp = sock.connect(tb.broker.addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let hello = Message::Hello {
        protocol: PROTOCOL_NAME.into(),
        version: PROTOCOL_VERSION,
        role: ClientRole::Agent,
        software: "sec_quota test".into(),
    };
    write_frame(&mut s, &Frame::Control(hello)).await.unwrap();
    assert!(matches!(
        next_control(&mut s).await,
        Message::Welcome { .. }
    ));
    s
}

async fn next_control(s: &mut Tls) -> Message {
    loop {
        match tokio::time::timeout(WAIT, read_frame(s, MAX_FRAME_BYTES))
            .await
            .expect("the broker answers")
            .expect("a frame")
        {
            Frame::Control(m) => return m,
            Frame::Data(_) | Frame::SessionData { .. } => {}
        }
    }
}

/// Joins from `source`; `Err` carries the broker's refusal.
async fn join_from(
    tb: &TestBroker,
    source: &str,
    credential: JoinCredential,
) -> Result<RawAgent, (ErrorCode, String)> {
    let mut s = tls_from(tb, source.parse().unwrap()).await;
    let join = Message::Join {
        credential,
        host: "pc".into(),
    };
    write_frame(&mut s, &Frame::Control(join)).await.unwrap();
    match next_control(&mut s).await {
        Message::Joined { session, .. } => Ok(RawAgent {
            s,
            e2e: RawE2e::new(&session.session_id),
            session: session.session_id,
        }),
        Message::Error { code, message } => Err((code, message)),
        other => panic!("unexpected answer to a join: {other:?}"),
    }
}

impl RawAgent {
    async fn send(&mut self, msg: Message) {
        write_frame(&mut self.s, &Frame::Control(msg))
            .await
            .unwrap();
    }

    async fn chat(&mut self, text: String) {
        self.content(SessionMessage::Chat {
            from: Party::Customer,
            text,
        })
        .await;
    }

    /// The customer's content as a real agent sends it: recorded, and
    /// sealed for every operator endpoint.
    async fn content(&mut self, msg: SessionMessage) {
        for f in self.e2e.content(&msg) {
            write_frame(&mut self.s, &f).await.unwrap();
        }
    }

    /// The operator `op` attaches; this agent answers the handshake.
    async fn attach(&mut self, op: &lifeline_operator::Client) {
        let (rd, wr) = tokio::io::split(&mut self.s);
        let (mut rd, mut wr) = (rd, wr);
        let (attached, ()) = tokio::join!(
            op.attach(&self.session),
            answer_hello(&self.e2e, &mut rd, &mut wr)
        );
        attached.unwrap();
    }

    /// Waits for the next error from the broker (skipping state notices).
    async fn error(&mut self) -> (ErrorCode, String) {
        loop {
            if let Message::Error { code, message } = next_control(&mut self.s).await {
                return (code, message);
            }
        }
    }

    /// Sends an over-long chat line and waits for its refusal: every
    /// message sent before it has been handled by then.
    async fn sync(&mut self) -> (ErrorCode, String) {
        self.chat("z".repeat(MAX_CHAT_CHARS + 1)).await;
        self.error().await
    }
}

async fn joined_raw_agent(tb: &TestBroker, op: &lifeline_operator::Client) -> RawAgent {
    let inv = op.invite("T-10", "Mario", None).await.unwrap();
    let agent = join_from(
        tb,
        "127.0.0.1",
        JoinCredential::ConnectionId(inv.connection_id),
    )
    .await
    .unwrap();
    op.wait_ready(&agent.session, WAIT).await.unwrap();
    agent
}

/// Finding 10: long lines fill the byte quota; the report notes it once,
/// later output is relayed but not recorded, the end is still recorded, and
/// the report (larger than one frame) comes back whole, page by page.
#[tokio::test]
async fn long_output_reaches_the_byte_quota_and_the_big_report_is_paged() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let mut agent = joined_raw_agent(&tb, &op).await;
    let line = "a".repeat(MAX_CHAT_CHARS);
    let lines = MAX_REPORT_BYTES as usize / MAX_CHAT_CHARS + 50;
    for _ in 0..lines {
        agent.chat(line.clone()).await;
    }
    let (code, msg) = agent.sync().await;
    assert_eq!(code, ErrorCode::Invalid);
    assert!(msg.contains("longer than"), "{msg}");
    agent.attach(&op).await;
    agent.chat("after the quota".into()).await;
    operator_sees(
        &op,
        |m| matches!(m, SessionMessage::Chat { text, .. } if text == "after the quota"),
    )
    .await;
    agent.sync().await;
    op.end(&agent.session, "done").await.unwrap();

    let (_, events) = op.report(&agent.session).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    let notes: Vec<_> = events.iter().filter(|e| e.kind == "quota").collect();
    assert_eq!(notes.len(), 1, "one quota note");
    assert_eq!(notes[0].text, QUOTA_NOTE);
    let chats = events.iter().filter(|e| e.kind == "chat").count();
    assert!(chats < lines, "{chats} of {lines} lines recorded");
    let bytes: usize = events.iter().map(|e| e.kind.len() + e.text.len()).sum();
    assert!(bytes as u64 <= MAX_REPORT_BYTES + 64 * 1024, "{bytes}");
    assert!(
        bytes > MAX_FRAME_BYTES,
        "the report is larger than one frame"
    );
    assert!(!events.iter().any(|e| e.text.contains("after the quota")));
    let end = events.iter().position(|e| e.kind == "end").expect("end");
    assert!(end > events.iter().position(|e| e.kind == "quota").unwrap());
}

/// Finding 10: many short lines reach the event quota.
#[tokio::test]
async fn short_lines_reach_the_event_quota() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let mut agent = joined_raw_agent(&tb, &op).await;
    let lines = MAX_REPORT_EVENTS as usize + 100;
    for i in 0..lines {
        agent.chat(format!("{i}")).await;
    }
    agent.sync().await;
    let (_, events) = op.report(&agent.session).await.unwrap();
    let chats = events.iter().filter(|e| e.kind == "chat").count() as u64;
    assert!(chats <= MAX_REPORT_EVENTS, "{chats}");
    assert!(chats > MAX_REPORT_EVENTS - 10, "{chats}");
    assert_eq!(events.iter().filter(|e| e.kind == "quota").count(), 1);
    assert!(!events.iter().any(|e| e.text == format!("{}", lines - 1)));
}

/// Finding 10: over-long chat lines are refused (not relayed, not
/// recorded); over-long output is recorded cut.
#[tokio::test]
async fn long_chat_is_refused_and_long_output_is_recorded_cut() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let mut agent = joined_raw_agent(&tb, &op).await;
    agent.attach(&op).await;
    let (code, msg) = agent.sync().await;
    assert_eq!(code, ErrorCode::Invalid);
    assert!(msg.contains(&MAX_CHAT_CHARS.to_string()), "{msg}");
    agent
        .content(SessionMessage::PluginOutput {
            call_id: 1,
            plugin: "p".into(),
            stream: "output".into(),
            text: "o".repeat(MAX_RECORDED_TEXT_CHARS * 3),
        })
        .await;
    agent.chat("short".into()).await;
    operator_sees(
        &op,
        |m| matches!(m, SessionMessage::Chat { text, .. } if text == "short"),
    )
    .await;
    let (_, events) = op.report(&agent.session).await.unwrap();
    assert!(!events.iter().any(|e| e.text.starts_with("zzz")));
    let out = events
        .iter()
        .find(|e| e.kind == "plugin_output")
        .expect("output recorded");
    assert!(out.text.len() < MAX_RECORDED_TEXT_CHARS + 200, "cut");
    assert!(
        out.text.contains("more characters not recorded"),
        "{}",
        out.text
    );
}

/// Finding 10: rejoin tickets are limited per session.
#[tokio::test]
async fn rejoin_ticket_requests_are_limited_per_session() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let mut agent = joined_raw_agent(&tb, &op).await;
    let mut issued = 0;
    let mut refusal = None;
    for _ in 0..MAX_REJOIN_TICKETS + 5 {
        agent
            .send(Message::RejoinTicketRequest {
                detail: "spam".into(),
            })
            .await;
        loop {
            match next_control(&mut agent.s).await {
                Message::RejoinTicket { .. } => {
                    issued += 1;
                    break;
                }
                Message::Error { code, message } => {
                    refusal = Some((code, message));
                    break;
                }
                _ => {}
            }
        }
        if refusal.is_some() {
            break;
        }
    }
    assert_eq!(issued, MAX_REJOIN_TICKETS);
    let (code, message) = refusal.expect("refused after the limit");
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(message.contains("restarts"), "{message}");
}

/// Finding 10: a session list larger than one frame arrives whole.
#[tokio::test]
async fn session_list_larger_than_a_frame_is_paged() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let alice = tb
        .broker
        .shared
        .store
        .operator_by_name("alice")
        .unwrap()
        .unwrap()
        .id;
    // Control characters take 6 bytes each in JSON: ~1.2 KiB per session.
    let name = "\u{1}".repeat(128);
    let ticket = "\u{1}".repeat(64);
    let n = MAX_FRAME_BYTES / 1000;
    for i in 0..n {
        let id = format!("{i:012x}");
        tb.broker
            .shared
            .store
            .insert_session(&lifeline_broker::store::NewSession {
                id: &id,
                operator_id: alice,
                ticket: &ticket,
                end_user: &name,
                connection_id: "000000",
                link_token: &format!("tok{i}"),
                short_code: &format!("sc{i}"),
                expires_at: 0,
            })
            .unwrap();
    }
    let sessions = op.sessions(false).await.unwrap();
    assert_eq!(sessions.len(), n);
    let mut ids: Vec<_> = sessions.iter().map(|s| s.session_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no session repeated");
    // The connection is still usable.
    op.invite("T-1", "Mario", None).await.unwrap();
}

/// Finding 13: a right code costs nothing and joins while an attacker's
/// source has spent its budget; once many sources spend the global budget,
/// links and short links still join, and connection IDs wait.
#[tokio::test]
async fn wrong_ids_never_block_links_and_right_codes_are_free() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let by_link = op.invite("T-1", "Link user", None).await.unwrap();
    let by_short = op.invite("T-2", "Short user", None).await.unwrap();
    let by_id = op.invite("T-3", "Id user", None).await.unwrap();
    let live = [&by_link, &by_short, &by_id].map(|i| i.connection_id.clone());
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !live.contains(c))
        .unwrap();
    // Right codes cost nothing: more joins from one source than its budget.
    for i in 0..8 {
        let inv = op.invite(&format!("T-R{i}"), "Right", None).await.unwrap();
        join_from(
            &tb,
            "127.0.0.3",
            JoinCredential::ConnectionId(inv.connection_id),
        )
        .await
        .expect("a right code joins");
    }
    // One attacker source spends its own budget ...
    let mut limited = None;
    for _ in 0..20 {
        match join_from(
            &tb,
            "127.0.0.2",
            JoinCredential::ConnectionId(wrong.clone()),
        )
        .await
        {
            Err((ErrorCode::RateLimited, m)) => {
                limited = Some(m);
                break;
            }
            Err((ErrorCode::InvalidInvitation, _)) => {}
            other => panic!("{:?}", other.map(|a| a.session)),
        }
    }
    assert!(limited.expect("source limited").contains("link"));
    // ... while a customer elsewhere joins with the right code.
    let inv = op.invite("T-4", "Customer", None).await.unwrap();
    join_from(
        &tb,
        "127.0.0.4",
        JoinCredential::ConnectionId(inv.connection_id),
    )
    .await
    .expect("the right code joins while the attacker is limited");
    // With 40 more live codes a wrong guess is riskier and costs more:
    // a few sources empty the global budget.
    for i in 0..40 {
        op.invite(&format!("T-L{i}"), "Live", None).await.unwrap();
    }
    let mut global = false;
    for src in 10..60 {
        let source = format!("127.0.0.{src}");
        if let Err((ErrorCode::RateLimited, _)) =
            join_from(&tb, &source, JoinCredential::ConnectionId(wrong.clone())).await
        {
            global = true;
            break;
        }
    }
    assert!(global, "the global budget ran out");
    // Links and short links still join, from fresh sources too.
    let token = by_link.link.rsplit('/').next().unwrap().to_string();
    join_from(&tb, "127.0.0.200", JoinCredential::LinkToken(token))
        .await
        .expect("a link joins while the budget is spent");
    let code = by_short.short_link.rsplit('/').next().unwrap().to_string();
    join_from(&tb, "127.0.0.201", JoinCredential::ShortCode(code))
        .await
        .expect("a short link joins while the budget is spent");
    // The documented trade-off: a right ID waits, and is told about the link.
    let (code, message) = join_from(
        &tb,
        "127.0.0.202",
        JoinCredential::ConnectionId(by_id.connection_id.clone()),
    )
    .await
    .err()
    .expect("IDs wait while the global budget is spent");
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(message.contains("invitation link"), "{message}");
}

/// A small ext4 file system on a loop device, unmounted on drop.
struct SmallDisk {
    dir: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Result<SmallDisk, String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let img = tmp.path().join("disk.img");
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(bytes))
            .map_err(|e| e.to_string())?;
        run("mkfs.ext4", &["-q", img.to_str().unwrap()])?;
        run(
            "mount",
            &["-o", "loop", img.to_str().unwrap(), dir.to_str().unwrap()],
        )?;
        Ok(SmallDisk { dir, _tmp: tmp })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: the broker's files may still be open in this process.
        let _ = run("umount", &["-l", self.dir.to_str().unwrap()]);
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Writes `path` until the file system has no block left.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    for size in [64 * 1024, 4096, 512, 1] {
        let chunk = vec![7u8; size];
        while f.write_all(&chunk).is_ok() {}
    }
    let _ = f.sync_all();
}

/// Finding 10: on a full disk the broker keeps serving logins, invitations
/// and joins; report events are dropped (relayed, counted, noted when space
/// is back); nothing ends the session or the broker.
#[tokio::test]
async fn full_disk_keeps_logins_and_joins_working() {
    let disk = match SmallDisk::mount(8 << 20) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: cannot mount a loop file system: {why}");
            return;
        }
    };
    let agents = tempfile::tempdir().unwrap();
    let cfg = broker_config(&disk.dir, std::time::Duration::from_secs(15));
    lifeline_broker::add_operator(&cfg, &profile("alice", "Alice Smith"), PASSWORD).unwrap();
    lifeline_broker::add_operator(&cfg, &profile("bob", "Bob Jones"), PASSWORD).unwrap();
    let broker = lifeline_broker::Broker::start(cfg).await.unwrap();
    let tb = TestBroker {
        dir: agents,
        broker,
    };
    let op = tb.operator("alice").await;
    let early = op.invite("T-0", "Early", None).await.unwrap();

    fill(&disk.dir.join("filler"));
    // A join right after the disk filled up.
    let mut agent = joined_raw_agent(&tb, &op).await;
    agent.attach(&op).await;
    for i in 0..300 {
        agent.chat(format!("{i:04} {}", "d".repeat(4000))).await;
    }
    operator_sees(
        &op,
        |m| matches!(m, SessionMessage::Chat { text, .. } if text.starts_with("0299 ")),
    )
    .await;
    assert!(tb.broker.shared.store.reserve.is_full(), "disk-full mode");
    // Logins, invitations and joins go on.
    let bob = tb.operator("bob").await;
    bob.sessions(false).await.unwrap();
    let inv = op.invite("T-1", "Mario", None).await.unwrap();
    let mut real = spawn_agent(tb.agent_config("agent-full", None, WAIT), &inv.link);
    op.wait_ready(&inv.session_id, WAIT).await.unwrap();
    op.attach(&inv.session_id).await.unwrap();
    real.sees("is connected").await;
    join_from(
        &tb,
        "127.0.0.1",
        JoinCredential::ConnectionId(early.connection_id),
    )
    .await
    .expect("a connection ID joins on a full disk");
    op.chat(&inv.session_id, "still here").await.unwrap();
    real.sees("still here").await;
    // Reports stay readable.
    let (_, events) = op.report(&agent.session).await.unwrap();
    assert!(events.iter().filter(|e| e.kind == "chat").count() < 300);

    // Space comes back: recording resumes with a note of what was lost.
    std::fs::remove_file(disk.dir.join("filler")).unwrap();
    let shared = std::sync::Arc::clone(&tb.broker.shared);
    tokio::task::spawn_blocking(move || shared.check_disk())
        .await
        .unwrap();
    assert!(!tb.broker.shared.store.reserve.is_full());
    op.end(&agent.session, "done").await.unwrap();
    let (_, events) = op.report(&agent.session).await.unwrap();
    let note = events
        .iter()
        .find(|e| e.kind == "disk_full")
        .expect("a note of the dropped events");
    assert!(
        note.text.contains("relayed but not recorded"),
        "{}",
        note.text
    );
    assert!(events.iter().any(|e| e.kind == "end"));
    drop(tb);
}
