//! Issue 17, "Survival" on one broker: a broker killed mid-session and
//! started again keeps the session; the customer's agent resumes it with
//! its resume credential and the operator's console reconnects with its
//! saved login. And the credential's rules on the wire: unknown, used, or
//! presented while the session is not waiting for a resume, it is refused.

use std::path::Path;

use lifeline_core::client;
use lifeline_core::link::Link;
use lifeline_protocol::{ClientRole, ErrorCode, Frame, JoinCredential, Message, Secret};

use crate::processes::*;
use crate::raw_e2e::attach_beside_raw_agent;
use crate::support::*;

/// Writes the broker's config on a fixed session port and adds Alice.
fn broker_config_on(dir: &Path, port: u16) -> String {
    let cfg = dir.join("broker.toml");
    write(
        &cfg,
        &format!(
            "[broker]\nname = \"Restarting broker\"\nlisten = \"127.0.0.1:{port}\"\n\
             https_listen = \"127.0.0.1:0\"\ndata_dir = \"broker-data\"\n"
        ),
    );
    add_alice(p(&cfg));
    p(&cfg).to_string()
}

/// Runs the broker of `cfg`; returns it with its certificate fingerprint.
fn run(dir: &Path, cfg: &str, log: &str) -> (Proc, String) {
    let (broker, _, _, fp) = run_broker(dir, cfg, log);
    (broker, fp)
}

#[test]
fn broker_killed_mid_session_and_restarted_both_sides_resume() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = broker_config_on(dir.path(), port);
    let (mut broker, fp) = run(dir.path(), &cfg, "broker-1.log");
    let (op, agent_cfg) = client_configs(dir.path(), &format!("127.0.0.1:{port}"), &fp);
    login(&op);
    let (sid, mut agent, mut console) = console_session(&op, &agent_cfg, "T-17");
    chat_both_ways(
        &mut console,
        &mut agent,
        "before the restart",
        "seen before",
    );

    broker.kill();
    agent.wait_line("reconnecting");
    console.wait_line("reconnecting");
    let (_broker, fp_again) = run(dir.path(), &cfg, "broker-2.log");
    assert_eq!(fp, fp_again, "the restarted broker keeps its certificate");

    // Either side may be back first: the console attaches again while the
    // session waits for the agent, or after the agent resumed it.
    console.wait_line("back in session");
    agent.wait_line("Back in the session");
    chat_both_ways(&mut console, &mut agent, "after the restart", "seen after");
    end_from_console(console, agent);

    let events = report_events(&op, &sid);
    for (kind, text) in [
        ("chat", "before the restart"),
        ("chat", "seen before"),
        ("restart", "the broker restarted"),
        ("resume", "resumed the session"),
        ("chat", "after the restart"),
        ("chat", "seen after"),
        ("join", "joined by"),
    ] {
        assert_eq!(
            count_events(&events, kind, text),
            1,
            "one {kind} event with {text:?}: {events:#?}"
        );
    }
    assert_eq!(count_events(&events, "end", "all done"), 1, "{events:#?}");
    let log = std::fs::read_to_string(dir.path().join("broker-2.log")).unwrap();
    assert!(
        !log.contains("rs_"),
        "no resume credential in the broker's log"
    );
}

/// A raw agent connection over real TLS.
async fn raw_agent(tb: &TestBroker) -> Link {
    client::connect(&tb.endpoint(), ClientRole::Agent)
        .await
        .unwrap()
        .0
}

/// The next control message on a raw link that is not a session message.
async fn next_control(link: &mut Link) -> Message {
    loop {
        let f = tokio::time::timeout(WAIT, link.rx.recv())
            .await
            .expect("the broker answers")
            .expect("the link stays open until the answer");
        match f {
            Frame::Control(Message::Session { .. }) => {}
            Frame::Control(m) => return m,
            _ => {}
        }
    }
}

/// Presents `credential` on a new agent connection; the broker's refusal.
async fn resume_refused(tb: &TestBroker, credential: &str) -> String {
    let mut link = raw_agent(tb).await;
    let hello = Message::Resume {
        credential: Secret::new(credential.to_string()),
        host: "pc".into(),
    };
    link.tx.send(Frame::Control(hello)).await.unwrap();
    match next_control(&mut link).await {
        Message::Error {
            code: ErrorCode::InvalidInvitation,
            message,
        } => message,
        other => panic!("the resume was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn resume_credentials_are_refused_unless_the_broker_restarted() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let inv = op.invite("T-18", "Mario Rossi", None).await.unwrap();
    let mut agent = raw_agent(&tb).await;
    let join = Message::Join {
        credential: JoinCredential::ConnectionId(inv.connection_id.clone()),
        host: "pc".into(),
    };
    agent.tx.send(Frame::Control(join)).await.unwrap();
    assert!(matches!(
        next_control(&mut agent).await,
        Message::Joined { .. }
    ));
    let Message::ResumeCredential { credential } = next_control(&mut agent).await else {
        panic!("no resume credential after the join");
    };
    let credential = credential.expose().to_string();
    assert!(credential.starts_with("rs_"), "{credential}");

    let why = resume_refused(&tb, &credential).await;
    assert!(why.contains("not waiting for a resume"), "{why}");
    let why = resume_refused(&tb, "rs_not-a-credential").await;
    assert!(why.contains("unknown to this broker"), "{why}");
    // The session is untouched by the refused attempts.
    op.wait_ready(&inv.session_id, WAIT).await.unwrap();
    attach_beside_raw_agent(&op, &inv.session_id, &mut agent).await;
}

#[test]
fn what_the_agent_sent_while_the_broker_died_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = broker_config_on(dir.path(), port);
    let (mut broker, fp) = run(dir.path(), &cfg, "broker-1.log");
    let (op, agent_cfg) = client_configs(dir.path(), &format!("127.0.0.1:{port}"), &fp);
    login(&op);
    let (sid, inv) = invite(&op, "T-19");
    let mut agent = join_ready(&op, &agent_cfg, inv["link"].as_str().unwrap(), &sid);
    agent.type_line("recorded before");
    let recorded = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        ok(&["operator", "report", "--config", &op, &sid], None).contains("recorded before")
    });
    assert!(recorded, "the broker recorded the first line");
    // The broker stops reading (SIGSTOP): what the agent sends now stays in
    // the socket's buffers, and dies with the broker (SIGKILL).
    let pid = broker.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    agent.type_line("in flight 1");
    agent.type_line("in flight 2");
    std::thread::sleep(std::time::Duration::from_millis(300));
    broker.kill();
    agent.wait_line("reconnecting");
    let (_broker, _) = run(dir.path(), &cfg, "broker-2.log");
    agent.wait_line("Back in the session");
    ok(
        &["operator", "chat", "--config", &op, &sid, "all received?"],
        None,
    );
    agent.wait_line("[Alice Smith] all received?");
    ok(&["operator", "end", "--config", &op, &sid], None);

    let events = report_events(&op, &sid);
    for text in ["recorded before", "in flight 1", "in flight 2"] {
        let n = events
            .iter()
            .filter(|e| e["kind"] == "chat" && e["text"] == text)
            .count();
        assert_eq!(n, 1, "{text:?} recorded once: {events:#?}");
    }
    let order: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "chat")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(
        order,
        [
            "recorded before",
            "in flight 1",
            "in flight 2",
            "all received?"
        ],
        "in the order they were sent"
    );
}
