//! Security review, consent findings (issue 10, 1–4): a grant is for one
//! plugin's declared capability and the text the customer saw; host-only
//! plugin commands cannot be called by operators; answers are distinct from
//! chat, one question at a time, a budget per minute; the operator console
//! answers only the password requests it waits for and prints no terminal
//! controls from the agent.

use std::time::Duration;

use lifeline_core::tls::Trust;
use lifeline_protocol::{
    ClientRole, ConsentDecision, Frame, JoinCredential, Message, Party, SessionMessage,
};

use crate::processes::*;
use crate::raw_e2e::RawE2e;
use crate::support::*;

const WAIT_RUN: Duration = Duration::from_secs(30);

fn with_plugins(tb: &TestBroker, plugins: &[&str]) -> lifeline_agent::config::AgentConfig {
    let root = tb.dir.path().join("plugins");
    crate::plugins::install_plugins(&root, plugins);
    let mut cfg = tb.agent_config("agent", None, Duration::from_secs(20));
    cfg.plugins = Some(unsigned_plugins(root));
    cfg
}

/// Finding 1: the operator asks a free-text question worded as a plugin's
/// capability and the customer tries "allow for this session"; the plugin
/// then still needs the customer's consent to its manifest's own text.
#[tokio::test]
async fn an_operators_question_never_becomes_a_grant() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let cfg = with_plugins(&tb, &["plugins/hello-wasm"]);
    let (sid, mut agent) = connected_session(&tb, &op, cfg).await;

    let ask = op.ask_consent(
        &sid,
        "hello-wasm",
        "system.info",
        "only looks at the clock",
        WAIT,
    );
    let answer = async {
        let prompt = agent.sees("a question from Alice Smith").await;
        assert!(prompt.contains("gives no permission by itself"), "{prompt}");
        agent.input.send("/allow-session".into()).await.unwrap();
        agent.sees("can only be answered /allow or /deny").await;
        agent.input.send("/allow".into()).await.unwrap();
    };
    let (res, ()) = tokio::join!(ask, answer);
    assert_eq!(
        res.unwrap(),
        (ConsentDecision::AllowOnce, "customer".into())
    );

    // The plugin's capability is asked with the manifest's text.
    let run = op.run_plugin(&sid, "hello-wasm", "os", &[], WAIT_RUN, |_, _| {});
    let answer = async {
        let prompt = agent.sees("Consent needed").await;
        assert!(
            prompt.contains("Read the name and version of this computer's operating system"),
            "{prompt}"
        );
        agent.input.send("/deny".into()).await.unwrap();
    };
    let (r, ()) = tokio::join!(run, answer);
    let text = r.unwrap().unwrap();
    assert!(text.contains("denied (customer)"), "{text}");
    op.end(&sid, "done").await.unwrap();
}

/// Finding 2: the scripts plugin's `run` cannot be called directly, and a
/// session grant for a batch does not cover a batch with other content.
#[tokio::test]
async fn the_scripts_plugin_runs_only_consented_batches() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let cfg = with_plugins(&tb, &["plugins/scripts"]);
    let marker = tb.dir.path().join("pwned");
    let (sid, mut agent) = connected_session(&tb, &op, cfg).await;

    use base64::Engine;
    let body = format!("#!/bin/sh\ntouch {}\n", marker.display());
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    let args: Vec<String> = ["x.sh", &b64, "", "", "10"].map(String::from).into();
    let r = op
        .run_plugin(&sid, "scripts", "run", &args, WAIT_RUN, |_, _| {})
        .await
        .unwrap();
    let why = r.unwrap_err();
    assert!(why.contains("operators cannot call it directly"), "{why}");
    assert!(!marker.exists(), "nothing ran");
    agent.sees("refused").await;
    // The host-only command is not offered in the plugin list either.
    let list = op.plugins(&sid, WAIT).await.unwrap();
    let scripts = list.iter().find(|p| p.id == "scripts").unwrap();
    assert!(scripts.commands.is_empty(), "{:?}", scripts.commands);
    op.end(&sid, "done").await.unwrap();
}

/// Finding 3: chat lines are never answers, `/end` ends the session while a
/// question waits, a second question is refused while one waits, and the
/// questions per minute are bounded.
#[tokio::test]
async fn answers_are_distinct_from_chat_and_questions_are_bounded() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let cfg = tb.agent_config("agent", None, Duration::from_secs(20));
    let (sid, mut agent) = connected_session(&tb, &op, cfg).await;

    let question = |request_id: u64, detail: &str| SessionMessage::ConsentRequest {
        request_id,
        operator: String::new(),
        plugin: "sysinfo".into(),
        action: "system.info".into(),
        detail: detail.into(),
    };
    let answer_to = |id: u64| move |m: &SessionMessage| matches!(m, SessionMessage::ConsentAnswer { request_id, .. } if *request_id == id);
    op.send(&sid, question(1, "Question one")).await.unwrap();
    agent.sees("Question one").await;
    for chat in ["yes", "1", "s", "o"] {
        agent.input.send(chat.into()).await.unwrap();
        let m = operator_sees(&op, |m| matches!(m, SessionMessage::Chat { .. })).await;
        assert_eq!(
            m,
            SessionMessage::Chat {
                from: Party::Customer,
                text: chat.into()
            }
        );
    }
    // While that waits, another question is refused unasked.
    op.send(&sid, question(2, "Question two")).await.unwrap();
    let SessionMessage::ConsentAnswer {
        decision,
        decided_by,
        ..
    } = operator_sees(&op, answer_to(2)).await
    else {
        unreachable!()
    };
    assert_eq!(decision, ConsentDecision::Deny);
    assert!(decided_by.starts_with("busy"), "{decided_by}");
    agent.input.send("/deny".into()).await.unwrap();
    let SessionMessage::ConsentAnswer { decided_by, .. } = operator_sees(&op, answer_to(1)).await
    else {
        unreachable!()
    };
    assert_eq!(decided_by, "customer");

    // The budget: the first question and these four fill the minute.
    let max = lifeline_core::consent::MAX_PROMPTS_PER_MINUTE;
    for i in 1..max {
        let ask = op.ask_consent(&sid, "sysinfo", "system.info", "Again", WAIT);
        let answer = async {
            agent.sees("Again").await;
            agent.input.send("/deny".into()).await.unwrap();
        };
        let (res, ()) = tokio::join!(ask, answer);
        assert_eq!(res.unwrap().1, "customer", "question {i}");
    }
    let over = op
        .ask_consent(&sid, "sysinfo", "system.info", "One more", WAIT)
        .await
        .unwrap();
    assert_eq!(over.0, ConsentDecision::Deny);
    assert!(over.1.starts_with("rate limited"), "{}", over.1);

    agent.input.send("/end".into()).await.unwrap();
    let outcome = tokio::time::timeout(WAIT, agent.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(outcome.ended_by, Party::Customer);
}

/// Finding 3: `/end` typed while a question waits ends the session at once.
#[tokio::test]
async fn end_is_never_swallowed_by_a_pending_question() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let cfg = tb.agent_config("agent", None, Duration::from_secs(20));
    let (sid, mut agent) = connected_session(&tb, &op, cfg).await;
    let ask = op.ask_consent(&sid, "sysinfo", "system.info", "Pending", WAIT);
    let end = async {
        agent.sees("Pending").await;
        agent.input.send("/end".into()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), &mut agent.task)
            .await
            .expect("/end ended the session while the question waited")
            .unwrap()
            .unwrap()
    };
    let (_ask, outcome) = tokio::join!(ask, end);
    assert_eq!(outcome.ended_by, Party::Customer);
}

/// Finding 4: a hostile agent sends a password request nobody started and
/// chat with terminal escape sequences; the operator's console declines the
/// request without asking, sends the next typed line as chat, and prints no
/// control characters.
#[test]
fn the_console_answers_only_password_requests_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr, fp) = start_broker(dir.path());
    let (op, _agent_cfg) = client_configs(dir.path(), &addr, &fp);
    login(&op);
    let (sid, inv) = invite(&op, "T-66");
    let code = inv["connection_id"].as_str().unwrap().to_string();
    let fingerprint = lifeline_core::tls::Fingerprint::parse(&fp).unwrap();
    let ep = lifeline_core::client::Endpoint {
        address: addr.clone(),
        server_name: "localhost".into(),
        trust: Trust::Pinned(fingerprint),
        heartbeat: Duration::from_secs(15),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut link, _) = rt
        .block_on(lifeline_core::client::connect(&ep, ClientRole::Agent))
        .unwrap();
    rt.block_on(link.tx.send(Frame::Control(Message::Join {
        credential: JoinCredential::ConnectionId(code),
        host: "evil\x1b[2Jhost".into(),
    })))
    .unwrap();
    let next = |link: &mut lifeline_core::link::Link| {
        rt.block_on(async {
            tokio::time::timeout(WAIT, link.rx.recv())
                .await
                .expect("the hostile agent got a frame in time")
        })
    };
    loop {
        if let Some(Frame::Control(Message::Joined { .. })) = next(&mut link) {
            break;
        }
    }
    let mut console = Proc::spawn(&["operator", "connect", "--config", &op, &sid]);
    // The console attaches and starts its end-to-end channel: the hostile
    // agent answers it with the real state machine (it is the customer's
    // end; what it sends is sealed as a real agent's).
    let e2e = RawE2e::new(&sid);
    while e2e.ready() == 0 {
        if let Some(Frame::Control(m)) = next(&mut link) {
            for f in e2e.incoming(m).0 {
                rt.block_on(link.tx.send(f)).unwrap();
            }
        }
    }
    let banner = console.wait_line("Connected to session");
    assert!(!banner.contains('\x1b'), "{banner:?}");
    let send = |link: &lifeline_core::link::Link, msg: SessionMessage| {
        for f in e2e.content(&msg) {
            rt.block_on(link.tx.send(f)).unwrap();
        }
    };
    send(
        &link,
        SessionMessage::Chat {
            from: Party::Customer,
            text: "\x1b]0;owned\x07\x1b[31mhello operator".into(),
        },
    );
    let line = console.wait_line("hello operator");
    assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
    send(
        &link,
        SessionMessage::CredentialRequest {
            call_id: 1,
            request_id: 99,
            user: "root".into(),
            prompt: "Password".into(),
        },
    );
    console.wait_line("ignored a password request");
    console.type_line("hunter2");
    let mut declined = false;
    loop {
        let opened = match next(&mut link) {
            Some(Frame::Control(m)) => e2e.incoming(m).1,
            Some(_) => None,
            None => panic!("link closed"),
        };
        let Some(Message::Session { msg, .. }) = opened else {
            continue;
        };
        match msg {
            SessionMessage::CredentialReply { request_id, secret } => {
                assert_eq!(request_id, 99);
                assert!(secret.is_none(), "a password was sent to the agent");
                declined = true;
            }
            SessionMessage::Chat { text, .. } => {
                assert_eq!(text, "hunter2", "the typed line went to chat");
                break;
            }
            _ => {}
        }
    }
    assert!(declined, "the request was declined without asking");
    console.type_line("/quit");
    console.wait_exit();
}
