//! End-to-end encryption between the operator client and the agent,
//! proven against a hostile relay (issue 16 part 1; docs/security.md,
//! "End-to-end encryption").
//!
//! The broker is the real `lifeline broker run` process; the operator
//! client and the agent run in-process (their security codes are read
//! from `Client::sas` and the customer's screen). Between the agent and
//! the broker sits [`relay::Relay`], a test-only man in the middle that
//! holds the broker's own certificate and key, as a broker that wanted to
//! read sessions would:
//!
//! - substituting keys, it reads every chat line, but the operator's code
//!   and the customer's code differ, so the two people comparing them
//!   detect it (a relay's two codes match by chance once in 10^6);
//! - without it both codes are equal;
//! - a relay that flips one ciphertext byte or repeats a sealed message is
//!   refused, the side that refused says so, and nothing altered or
//!   repeated is shown.
//!
//! And the broker's own view: its trace log of relayed bytes holds no chat,
//! plugin or password text.

mod relay;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeline_agent::config::AgentConfig;
use lifeline_core::client::Endpoint;
use lifeline_core::tls::{Fingerprint, Trust};
use lifeline_operator::{Client, Event};
use lifeline_protocol::{Secret, SessionMessage};

use crate::processes::{Proc, start_broker_filtered};
use crate::raw_e2e::{pump_until, raw_agent_attached};
use crate::support::{PASSWORD, TestAgent, WAIT, spawn_agent, unsigned_plugins};
use relay::{Relay, Tamper, Towards};

/// A `lifeline broker run` process in a temporary folder, with the
/// operator Alice Smith.
struct ProcBroker {
    dir: tempfile::TempDir,
    _broker: Proc,
    addr: String,
    fingerprint: Fingerprint,
}

impl ProcBroker {
    /// Starts the broker with log filter `filter` (`RUST_LOG`); its log
    /// is `broker.log` in its folder.
    fn start(filter: &str) -> ProcBroker {
        let dir = tempfile::tempdir().unwrap();
        let (broker, addr, _, fp) = start_broker_filtered(dir.path(), filter);
        ProcBroker {
            dir,
            _broker: broker,
            addr,
            fingerprint: Fingerprint::parse(&fp).unwrap(),
        }
    }

    /// The broker's `data_dir`: its certificate and key are there.
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("broker-data")
    }

    fn trust(&self) -> Trust {
        Trust::Pinned(self.fingerprint)
    }

    /// The broker's certificate at `address` (the broker's, or a relay's
    /// that presents the same certificate).
    fn endpoint(&self, address: &str) -> Endpoint {
        Endpoint {
            address: address.to_string(),
            server_name: "localhost".into(),
            trust: self.trust(),
            heartbeat: Duration::from_secs(15),
        }
    }

    async fn operator(&self) -> Client {
        let mut c = Client::connect(&self.endpoint(&self.addr)).await.unwrap();
        c.login("alice", PASSWORD).await.unwrap();
        c
    }

    /// An agent that connects to `address`, with the plugins under
    /// `plugins` if given.
    fn agent_config(&self, address: &str, plugins: Option<&Path>) -> AgentConfig {
        AgentConfig {
            endpoint: self.endpoint(address),
            data_dir: self.dir.path().join("agent"),
            consent_timeout: Duration::from_secs(20),
            policy: None,
            plugins: plugins.map(|p| unsigned_plugins(p.to_path_buf())),
            run_as: Default::default(),
            screen: Default::default(),
            power: Default::default(),
            service: Default::default(),
            remote_service: None,
            allow_remote_assistance: true,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap()
    }
}

/// Invites, starts the agent with `cfg`, waits until it joined, attaches
/// (the operator's channel is ready when `attach` returns) and waits for
/// the customer's code. Returns the session, the agent, and the codes the
/// operator and the customer see.
async fn session(op: &Client, cfg: AgentConfig) -> (String, TestAgent, String, String) {
    let inv = op.invite("T-16", "Mario Rossi", None).await.unwrap();
    let mut agent = spawn_agent(cfg, &inv.connection_id);
    op.wait_ready(&inv.session_id, WAIT).await.unwrap();
    op.attach(&inv.session_id).await.unwrap();
    // `attach` returned with the channel ready, without a Secured event
    // for it: every later Secured event is a new channel.
    let operator_code = op
        .sas(&inv.session_id)
        .expect("attach returns with the channel ready");
    let customer_code = customer_code(&mut agent).await;
    (inv.session_id, agent, operator_code, customer_code)
}

/// The next security code the customer's screen shows ("123 456").
async fn customer_code(agent: &mut TestAgent) -> String {
    let line = agent.sees("Security code with").await;
    code_in(&line).unwrap_or_else(|| panic!("no code in {line:?}"))
}

/// The first "ddd ddd" in `line` (not part of a longer number).
fn code_in(line: &str) -> Option<String> {
    let b = line.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    (0..b.len())
        .find(|&i| {
            (i == 0 || !digit(i - 1))
                && (i..i + 3).all(digit)
                && b.get(i + 3) == Some(&b' ')
                && (i + 4..i + 7).all(digit)
                && !digit(i + 7)
        })
        .map(|i| line[i..i + 7].to_string())
}

/// The operator's events up to and including the first `pred` accepts
/// (bounded by `WAIT`).
async fn operator_events(op: &Client, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, op.next_event()).await {
            Ok(Some(ev)) => {
                let done = pred(&ev);
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            Ok(None) => panic!("operator connection closed; events: {seen:?}"),
            Err(_) => panic!("operator never saw the expected event; events: {seen:?}"),
        }
    }
}

fn is_chat(ev: &Event, text: &str) -> bool {
    matches!(ev, Event::Session { msg: SessionMessage::Chat { text: t, .. }, .. } if t == text)
}

/// The customer's screen lines up to and including the first with `needle`.
async fn customer_lines(agent: &mut TestAgent, needle: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, agent.screen.recv()).await {
            Ok(Some(l)) => {
                let done = l.contains(needle);
                seen.push(l);
                if done {
                    return seen;
                }
            }
            Ok(None) => panic!("agent stopped; screen: {seen:?}"),
            Err(_) => panic!("customer never saw {needle:?}; screen: {seen:?}"),
        }
    }
}

#[test]
fn codes_are_found_in_lines() {
    assert_eq!(
        code_in("Your security code with Alice Smith: 123 456").as_deref(),
        Some("123 456")
    );
    assert_eq!(code_in("123 456").as_deref(), Some("123 456"));
    assert_eq!(code_in("session 1234 5678"), None);
    assert_eq!(code_in("no code"), None);
}

#[tokio::test]
async fn without_a_relay_both_ends_show_the_same_code() {
    let b = ProcBroker::start("info");
    let op = b.operator().await;
    let (sid, mut agent, operator_code, customer_code) =
        session(&op, b.agent_config(&b.addr, None)).await;
    assert_eq!(operator_code, customer_code);
    op.chat(&sid, "hello through the broker").await.unwrap();
    agent.sees("hello through the broker").await;
}

/// The key-substitution test: the relay reads the session, and only the
/// codes give it away.
#[tokio::test]
async fn a_relay_that_swaps_keys_reads_the_chat_but_the_codes_differ() {
    const TO_CUSTOMER: &str = "Kestrel says: please open the settings";
    const TO_OPERATOR: &str = "Heron answers: the settings are open";
    let b = ProcBroker::start("info");
    let relay = Relay::start(&b.addr, &b.data_dir(), b.trust(), Tamper::SwapKeys).await;
    let op = b.operator().await;
    let cfg = b.agent_config(&relay.addr.to_string(), None);
    let (sid, mut agent, operator_code, customer_code) = session(&op, cfg).await;

    // A real substitution: both sides work, and the relay reads it all.
    op.chat(&sid, TO_CUSTOMER).await.unwrap();
    agent.sees(TO_CUSTOMER).await;
    agent.input.send(TO_OPERATOR.into()).await.unwrap();
    operator_events(&op, |ev| is_chat(ev, TO_OPERATOR)).await;
    let seen = relay.seen();
    for text in [TO_CUSTOMER, TO_OPERATOR] {
        assert!(
            seen.opened.iter().any(|m| m.contains(text)),
            "the relay read {text:?}: {seen:?}"
        );
    }
    // Each side shows the code of its channel with the relay...
    assert_eq!(
        seen.codes_with_operator,
        std::slice::from_ref(&operator_code),
        "{seen:?}"
    );
    assert_eq!(
        seen.codes_with_agent,
        std::slice::from_ref(&customer_code),
        "{seen:?}"
    );
    // ...and the two differ: the customer reads theirs out, the operator
    // sees it is not the one on their screen. (Equal by chance once in a
    // million runs: the relay cannot choose them.)
    assert_ne!(
        operator_code, customer_code,
        "the operator's code and the customer's code differ under a key substitution"
    );
}

/// A relay that changes one byte of a sealed chat line towards the agent:
/// the agent refuses it and closes the channel, the operator is told,
/// a new channel starts, and the altered line is never shown.
#[tokio::test]
async fn a_flipped_byte_towards_the_agent_is_refused_and_nothing_is_shown() {
    const ALTERED: &str = "Plover: this line is altered on the way";
    const AFTER: &str = "Plover: this line arrives on the new channel";
    let b = ProcBroker::start("info");
    let relay = Relay::start(
        &b.addr,
        &b.data_dir(),
        b.trust(),
        Tamper::FlipByte(Towards::Agent),
    )
    .await;
    let op = b.operator().await;
    let cfg = b.agent_config(&relay.addr.to_string(), None);
    let (sid, mut agent, operator_code, customer_code) = session(&op, cfg).await;
    // Forwarding unchanged, the relay is invisible.
    assert_eq!(operator_code, customer_code);

    relay.arm();
    op.chat(&sid, ALTERED).await.unwrap();
    let events = operator_events(&op, |ev| matches!(ev, Event::Secured { .. })).await;
    let refused = events
        .iter()
        .find_map(|ev| match ev {
            Event::Error(why) => Some(why.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the operator is told the channel closed: {events:?}"));
    assert!(
        refused.contains("closed the end-to-end channel") && refused.contains("authentication"),
        "{refused}"
    );
    assert_eq!(relay.seen().tampered, 1);
    let mut lines = customer_code_again(&mut agent, &op, &sid).await;
    op.chat(&sid, AFTER).await.unwrap();
    lines.extend(customer_lines(&mut agent, AFTER).await);
    assert!(
        !lines.iter().any(|l| l.contains(ALTERED)),
        "the altered line is not shown: {lines:?}"
    );
}

/// The same towards the operator: the operator client refuses the altered
/// line, says so, starts a new channel and never shows it.
#[tokio::test]
async fn a_flipped_byte_towards_the_operator_is_refused_and_nothing_is_shown() {
    const ALTERED: &str = "Avocet: this line is altered on the way";
    const AFTER: &str = "Avocet: this line arrives on the new channel";
    let b = ProcBroker::start("info");
    let relay = Relay::start(
        &b.addr,
        &b.data_dir(),
        b.trust(),
        Tamper::FlipByte(Towards::Operator),
    )
    .await;
    let op = b.operator().await;
    let cfg = b.agent_config(&relay.addr.to_string(), None);
    let (sid, mut agent, operator_code, customer_code) = session(&op, cfg).await;
    assert_eq!(operator_code, customer_code);

    relay.arm();
    agent.input.send(ALTERED.into()).await.unwrap();
    let events = operator_events(&op, |ev| matches!(ev, Event::Secured { .. })).await;
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, Event::Error(why) if why.contains("failed authentication"))),
        "the operator is told a sealed message failed: {events:?}"
    );
    assert_eq!(relay.seen().tampered, 1);
    customer_code_again(&mut agent, &op, &sid).await;
    agent.input.send(AFTER.into()).await.unwrap();
    let mut events = events;
    events.extend(operator_events(&op, |ev| is_chat(ev, AFTER)).await);
    assert!(
        !events.iter().any(|ev| is_chat(ev, ALTERED)),
        "the altered line is not shown: {events:?}"
    );
}

/// A relay that repeats a sealed chat line towards the agent: the agent
/// shows it once, refuses the copy (out of order) and closes the channel;
/// the operator is told.
#[tokio::test]
async fn a_replayed_sealed_message_is_refused_and_shown_once() {
    const ONCE: &str = "Curlew: this line is sent twice by the relay";
    const AFTER: &str = "Curlew: this line arrives on the new channel";
    let b = ProcBroker::start("info");
    let relay = Relay::start(&b.addr, &b.data_dir(), b.trust(), Tamper::ReplayToAgent).await;
    let op = b.operator().await;
    let cfg = b.agent_config(&relay.addr.to_string(), None);
    let (sid, mut agent, operator_code, customer_code) = session(&op, cfg).await;
    assert_eq!(operator_code, customer_code);

    relay.arm();
    op.chat(&sid, ONCE).await.unwrap();
    let events = operator_events(&op, |ev| matches!(ev, Event::Secured { .. })).await;
    assert!(
        events.iter().any(|ev| matches!(ev, Event::Error(why)
            if why.contains("closed the end-to-end channel") && why.contains("repeated"))),
        "the operator is told the agent refused the copy: {events:?}"
    );
    let mut lines = customer_code_again(&mut agent, &op, &sid).await;
    op.chat(&sid, AFTER).await.unwrap();
    lines.extend(customer_lines(&mut agent, AFTER).await);
    let shown = lines.iter().filter(|l| l.contains(ONCE)).count();
    assert_eq!(shown, 1, "shown once: {lines:?}");
}

/// After a refused message the operator client starts a new channel: the
/// customer's screen shows the new code, equal to the operator's. Returns
/// the customer's screen lines up to it.
async fn customer_code_again(agent: &mut TestAgent, op: &Client, sid: &str) -> Vec<String> {
    let lines = customer_lines(agent, "Security code with").await;
    let code = lines.last().and_then(|l| code_in(l));
    assert_eq!(op.sas(sid), code, "{lines:?}");
    lines
}

/// The broker's own view of a session, as its memory holds the relayed
/// bytes: with `lifeline::relay=trace` the broker logs every session
/// message and data frame it relays, exactly as it forwards them. A session
/// with a chat line each way, a plugin run (its argument comes back in its
/// output) and a password sent to the agent leaves relayed lines there —
/// sealed — and none of those texts.
///
/// Only the relay log is searched: the session's report still holds the
/// chat and the plugin's output by design (the agent records them,
/// `SessionMessage::Record`, and the broker stores the report), which the
/// end of this test shows too.
#[tokio::test]
async fn the_brokers_relay_log_holds_no_session_content() {
    const TO_CUSTOMER: &str = "Quokka-to-customer-5521";
    const TO_OPERATOR: &str = "Wombat-to-operator-8830";
    const PLUGIN_ARG: &str = "Numbat7741";
    const PASSWORD_TEXT: &str = "Bilby-password-3109";
    let b = ProcBroker::start("info,lifeline::relay=trace");
    let plugins = b.dir.path().join("plugins");
    crate::plugins::install_plugins(&plugins, &["plugins/hello-lua"]);
    let op = b.operator().await;
    let cfg = b.agent_config(&b.addr, Some(&plugins));
    let (sid, mut agent, operator_code, customer_code) = session(&op, cfg).await;
    assert_eq!(operator_code, customer_code);

    op.chat(&sid, TO_CUSTOMER).await.unwrap();
    agent.sees(TO_CUSTOMER).await;
    agent.input.send(TO_OPERATOR.into()).await.unwrap();
    operator_events(&op, |ev| is_chat(ev, TO_OPERATOR)).await;
    let mut output = Vec::new();
    let run = op
        .run_plugin(
            &sid,
            "hello-lua",
            "greet",
            &[PLUGIN_ARG.into()],
            WAIT,
            |_, text| output.push(text.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(run, Ok("greeted 1 times".into()));
    assert_eq!(output, [format!("Hello, {PLUGIN_ARG}!")]);
    // A password, as a run-as login sends it (unasked for here: the agent
    // drops it; what matters is the way there).
    let reply = SessionMessage::CredentialReply {
        request_id: 4242,
        secret: Some(Secret::new(PASSWORD_TEXT)),
    };
    op.send(&sid, reply).await.unwrap();
    // Sent after the password: once it arrived, the broker relayed both.
    op.chat(&sid, "last line").await.unwrap();
    agent.sees("last line").await;

    let log = b.log();
    let relayed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("lifeline::relay"))
        .collect();
    let sealed = relayed.iter().filter(|l| l.contains("sealed")).count();
    assert!(
        sealed >= 8,
        "the relay log shows the sealed traffic ({sealed} sealed lines): {relayed:#?}"
    );
    for text in [
        TO_CUSTOMER,
        TO_OPERATOR,
        PLUGIN_ARG,
        PASSWORD_TEXT,
        "last line",
        "greet",
    ] {
        let found: Vec<&&str> = relayed.iter().filter(|l| l.contains(text)).collect();
        assert!(found.is_empty(), "{text:?} in the relay log: {found:#?}");
    }
    // The password is nowhere in the broker's log; the report has the
    // chat (recorded by the agent) but not the password either.
    assert!(
        !log.contains(PASSWORD_TEXT),
        "the password in the broker's log"
    );
    let (_, events) = op.report(&sid).await.unwrap();
    let report: Vec<String> = events.iter().map(|e| e.text.clone()).collect();
    assert!(
        report.iter().any(|t| t.contains(TO_CUSTOMER)),
        "{report:#?}"
    );
    assert!(
        !report.iter().any(|t| t.contains(PASSWORD_TEXT)),
        "{report:#?}"
    );
}

/// An operator whose connection closes: the broker tells the customer's
/// agent (`E2eClosed` for that endpoint), which forgets the channel and
/// seals nothing more for it.
#[tokio::test]
async fn the_agent_forgets_the_channel_of_an_operator_that_left() {
    let tb = crate::support::TestBroker::start().await;
    let op = tb.operator("alice").await;
    let (mut agent, e2e, _) = raw_agent_attached(&tb, &op, "T-GONE").await;
    assert_eq!(e2e.ready(), 1);
    drop(op);
    pump_until(
        &e2e,
        &mut agent,
        "the broker says the operator's endpoint left",
        |e| e.ready() == 0,
    )
    .await;
    let chat = SessionMessage::Chat {
        from: lifeline_protocol::Party::Customer,
        text: "anyone there?".into(),
    };
    assert_eq!(
        e2e.content(&chat).len(),
        1,
        "only the report's record goes: no sealed copy for a gone endpoint"
    );
}

/// A channel the agent holds that no operator connection said hello as
/// (as one left from before a broker restart): the first thing the agent
/// seals for it makes the broker tell the agent to forget it, and only
/// the attached operator's copy is relayed.
#[tokio::test]
async fn the_broker_closes_a_channel_no_connection_holds() {
    use lifeline_protocol::e2e::{OperatorEnd, OperatorIncoming};
    use lifeline_protocol::{Frame, Message};
    let tb = crate::support::TestBroker::start().await;
    let op = tb.operator("alice").await;
    let (mut agent, e2e, sid) = raw_agent_attached(&tb, &op, "T-STALE").await;
    // A second channel made beside the broker, never relayed by it.
    let session = |msg| Message::Session {
        session_id: sid.clone(),
        msg,
    };
    let (mut stale, hello) = OperatorEnd::start(&sid, 4242, rand::random()).unwrap();
    let reply = e2e
        .incoming(session(hello))
        .0
        .into_iter()
        .find_map(|f| match f {
            Frame::Control(Message::Session { msg, .. }) => Some(msg),
            _ => None,
        })
        .expect("the agent answers the hello");
    let OperatorIncoming::Ready { confirm, .. } = stale.incoming(reply) else {
        panic!("the stale channel is ready");
    };
    e2e.incoming(session(confirm));
    assert_eq!(e2e.ready(), 2);

    let chat = SessionMessage::Chat {
        from: lifeline_protocol::Party::Customer,
        text: "is anyone there?".into(),
    };
    for frame in e2e.content(&chat) {
        agent.tx.send(frame).await.unwrap();
    }
    pump_until(
        &e2e,
        &mut agent,
        "the broker tells the agent to forget the stale channel",
        |e| e.ready() == 1,
    )
    .await;
    operator_events(&op, |ev| is_chat(ev, "is anyone there?")).await;
}
