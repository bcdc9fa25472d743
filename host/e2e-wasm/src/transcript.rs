//! A recorded session between a page's channel and the agent's real end,
//! with fixed randomness, for the console's own tests: the page's side,
//! run by the browser module in node (host/broker/console/tests/
//! e2e.test.js), must send exactly these bytes and open the agent's. Every
//! step is checked against `AgentEnds` here, so the node tests exercise the
//! real agent's half without an agent.
//!
//! The file is `host/broker/console/tests/e2e-transcript.json`; after a
//! change to the construction, write it again with
//! `LIFELINE_WRITE_TRANSCRIPT=1 cargo test --workspace -- transcript`.

use lifeline_protocol::e2e::{AgentEnds, AgentIncoming};
use lifeline_protocol::stream::StreamData;
use lifeline_protocol::{Party, SessionMessage};
use serde_json::{Value, json};

use crate::Channels;

const SESSION: &str = "T3STSESS10N1";
/// Below 2^53, as the page picks them.
const ENDPOINT: u64 = 4_503_599_627_370_497;
/// Another operator endpoint in the same session (a CLI client: any u64).
const OTHER_ENDPOINT: u64 = 18_446_744_073_709_551_557;
const PAGE_SEED: [u8; 32] = [0x11; 32];
const AGENT_SEED: [u8; 32] = [0x22; 32];

fn to_json(msg: &SessionMessage) -> Value {
    serde_json::to_value(msg).expect("a session message serialises")
}

fn from_json(v: &Value) -> SessionMessage {
    serde_json::from_value(v.clone()).expect("a session message")
}

/// The transcript, every step checked against the agent's end.
fn record() -> Value {
    let mut page = Channels::default();
    let mut agent = AgentEnds::new(SESSION);
    let (h, hello) = page.start(SESSION, ENDPOINT, &PAGE_SEED).expect("start");
    let hello: Value = serde_json::from_str(&hello).expect("hello");
    let AgentIncoming::Reply(reply) = agent.incoming(from_json(&hello), AGENT_SEED) else {
        panic!("the agent did not answer")
    };
    let ready =
        serde_json::to_value(page.incoming(Some(h), &to_json(&reply).to_string())).expect("json");
    assert_eq!(ready["result"], "ready");
    let AgentIncoming::Ready { sas, .. } = agent.incoming(from_json(&ready["confirm"]), [0; 32])
    else {
        panic!("the agent refused the confirm")
    };
    assert_eq!(ready["sas"], sas.as_str());

    // The page's chat line, sealed; the agent opens it.
    let page_chat = json!({"kind": "chat", "from": "operator", "text": "Hello from the console"});
    let page_chat_sealed: Value =
        serde_json::from_str(&page.seal(h, &page_chat.to_string()).expect("seal")).expect("json");
    match agent.incoming(from_json(&page_chat_sealed), [0; 32]) {
        AgentIncoming::Deliver { msg, .. } => assert_eq!(to_json(&msg), page_chat),
        other => panic!("{other:?}"),
    }

    // Another endpoint joins; the agent's chat goes to both.
    let mut other = Channels::default();
    let (oh, ohello) = other
        .start(SESSION, OTHER_ENDPOINT, &[0x33; 32])
        .expect("start");
    let AgentIncoming::Reply(oreply) =
        agent.incoming(serde_json::from_str(&ohello).expect("hello"), [0x44; 32])
    else {
        panic!("no reply to the other endpoint")
    };
    let oready = serde_json::to_value(other.incoming(Some(oh), &to_json(&oreply).to_string()))
        .expect("json");
    assert!(matches!(
        agent.incoming(from_json(&oready["confirm"]), [0; 32]),
        AgentIncoming::Ready { .. }
    ));
    let agent_chat = SessionMessage::Chat {
        from: Party::Customer,
        text: "Ciao dal cliente".into(),
    };
    let mut agent_chat_sealed = Value::Null;
    let mut other_sealed = Value::Null;
    for m in agent.seal_all(&agent_chat).expect("seal") {
        match m {
            SessionMessage::Sealed { endpoint, .. } if endpoint == ENDPOINT => {
                agent_chat_sealed = to_json(&m)
            }
            _ => other_sealed = to_json(&m),
        }
    }
    let opened =
        serde_json::to_value(page.incoming(Some(h), &agent_chat_sealed.to_string())).expect("json");
    assert_eq!(opened["msg"], to_json(&agent_chat));

    // A screen frame from the agent (one per endpoint) and an input frame
    // from the page.
    let frame = StreamData::Frame {
        stream: 7,
        body: b"pixels".to_vec(),
    }
    .encode();
    let frames = agent.seal_data_all(&frame).expect("seal");
    let mine: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f[1..9] == ENDPOINT.to_be_bytes())
        .collect();
    assert_eq!(
        page.open_data(h, mine[0]).expect("open"),
        Some(frame.clone())
    );
    let input = StreamData::Input {
        stream: 7,
        body: vec![1, 2, 3],
    }
    .encode();
    let input_sealed = page.seal_data(h, &input).expect("seal");
    assert_eq!(
        agent.open_data(&input_sealed).expect("open"),
        (ENDPOINT, input.clone())
    );

    json!({
        "about": "written by host/e2e-wasm/src/transcript.rs; checked against the agent's end there",
        "session_id": SESSION,
        "endpoint": ENDPOINT,
        "page_seed": PAGE_SEED.to_vec(),
        "hello": hello,
        "reply": to_json(&reply),
        "sas": sas,
        "confirm": ready["confirm"],
        "page_chat": page_chat,
        "page_chat_sealed": page_chat_sealed,
        "agent_chat": to_json(&agent_chat),
        "agent_chat_sealed": agent_chat_sealed,
        "other_sealed": other_sealed,
        "agent_frame": frame,
        "agent_frame_sealed": mine[0],
        "page_input": input,
        "page_input_sealed": input_sealed,
    })
}

#[test]
fn the_console_transcript_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../broker/console/tests/e2e-transcript.json");
    let recorded = record();
    let text = serde_json::to_string_pretty(&recorded).expect("json") + "\n";
    if std::env::var_os("LIFELINE_WRITE_TRANSCRIPT").is_some() {
        std::fs::write(&path, &text).expect("write the transcript");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "{} is not what the end-to-end code sends now; write it again with \
         LIFELINE_WRITE_TRANSCRIPT=1 cargo test --workspace -- transcript",
        path.display()
    );
}
