//! The page's end against the agent's real end (`AgentEnds`), natively:
//! the same code runs in the browser.

use lifeline_protocol::SessionMessage;
use lifeline_protocol::e2e::{AgentEnds, AgentIncoming};
use serde_json::{Value, json};

use super::*;

const SID: &str = "S1";

fn incoming(ch: &mut Channels, handle: Option<u32>, msg: &SessionMessage) -> Value {
    let json = serde_json::to_string(msg).expect("json");
    serde_json::to_value(ch.incoming(handle, &json)).expect("result json")
}

/// A page's channel and the agent, handshake done: (handle, code).
fn established(ch: &mut Channels, agent: &mut AgentEnds, endpoint: u64) -> (u32, String) {
    let (handle, hello) = ch.start(SID, endpoint, &[7; 32]).expect("start");
    let hello: SessionMessage = serde_json::from_str(&hello).expect("hello json");
    assert!(matches!(hello, SessionMessage::E2eHello { endpoint: e, .. } if e == endpoint));
    let AgentIncoming::Reply(reply) = agent.incoming(hello, [8; 32]) else {
        panic!("the agent did not answer the hello")
    };
    assert_eq!(
        ch.sas(handle).expect("channel"),
        None,
        "no code before the answer"
    );
    let ready = incoming(ch, Some(handle), &reply);
    assert_eq!(ready["result"], "ready", "{ready}");
    let confirm: SessionMessage =
        serde_json::from_value(ready["confirm"].clone()).expect("confirm");
    let AgentIncoming::Ready { sas, .. } = agent.incoming(confirm, [0; 32]) else {
        panic!("the agent did not take the confirm")
    };
    assert_eq!(ready["sas"], sas.as_str(), "both ends show the same code");
    assert_eq!(
        ch.sas(handle).expect("channel").as_deref(),
        Some(sas.as_str())
    );
    (handle, sas)
}

#[test]
fn chat_goes_sealed_both_ways_and_clear_content_is_refused() {
    let mut ch = Channels::default();
    let mut agent = AgentEnds::new(SID);
    let (h, _) = established(&mut ch, &mut agent, 9_007_199_254_740_000);
    let chat = json!({"kind": "chat", "from": "operator", "text": "the password is hunter2"});
    let sealed = ch.seal(h, &chat.to_string()).expect("seal");
    assert!(!sealed.contains("hunter2"), "{sealed}");
    let sealed: SessionMessage = serde_json::from_str(&sealed).expect("sealed json");
    match agent.incoming(sealed, [0; 32]) {
        AgentIncoming::Deliver { msg, .. } => {
            assert!(
                matches!(msg, SessionMessage::Chat { ref text, .. } if text == "the password is hunter2")
            )
        }
        other => panic!("{other:?}"),
    }
    let back = agent
        .seal_all(&SessionMessage::Chat {
            from: lifeline_protocol::Party::Customer,
            text: "ciao".into(),
        })
        .expect("seal");
    let opened = incoming(&mut ch, Some(h), &back[0]);
    assert_eq!(opened["result"], "deliver");
    assert_eq!(opened["msg"]["text"], "ciao");
    // Chat in the clear: refused, with or without a channel.
    let clear = SessionMessage::Chat {
        from: lifeline_protocol::Party::Customer,
        text: "injected".into(),
    };
    for handle in [Some(h), None] {
        let r = incoming(&mut ch, handle, &clear);
        assert_eq!(r["result"], "refused", "{r}");
        assert!(
            r["reason"]
                .as_str()
                .expect("reason")
                .contains("unencrypted")
        );
    }
    // The broker's own messages pass.
    let state = json!({"kind": "state", "state": "connected", "detail": ""});
    for handle in [Some(h), None] {
        let r = serde_json::to_value(ch.incoming(handle, &state.to_string())).expect("json");
        assert_eq!(r["result"], "deliver", "{r}");
    }
    // Sealing what is not content is refused (the broker says it itself).
    assert!(ch.seal(h, &state.to_string()).is_err());
}

#[test]
fn data_frames_and_other_endpoints() {
    let mut ch = Channels::default();
    let mut agent = AgentEnds::new(SID);
    let (mine, _) = established(&mut ch, &mut agent, 1);
    let (other, _) = established(&mut ch, &mut agent, 2);
    let frames = agent.seal_data_all(b"pixels").expect("seal");
    assert_eq!(frames.len(), 2);
    let mut opened = 0;
    for f in &frames {
        if let Some(p) = ch.open_data(mine, f).expect("open") {
            assert_eq!(p, b"pixels");
            opened += 1;
        }
    }
    assert_eq!(opened, 1, "exactly one frame is this endpoint's");
    let input = ch.seal_data(other, b"click").expect("seal");
    assert_eq!(
        agent.open_data(&input).expect("open"),
        (2, b"click".to_vec())
    );
    assert!(
        ch.open_data(mine, b"\x01\0\0\0\x01clear").is_err(),
        "an unsealed frame is refused"
    );
    // A message for endpoint 2 is ignored by channel `mine`.
    let sealed = agent
        .seal_all(&SessionMessage::PluginNotice { text: "x".into() })
        .expect("seal");
    let results: Vec<_> = sealed
        .iter()
        .map(|m| incoming(&mut ch, Some(mine), m)["result"].clone())
        .collect();
    assert!(
        results.contains(&json!("ignore")) && results.contains(&json!("deliver")),
        "{results:?}"
    );
}

#[test]
fn a_closed_channel_says_so_and_the_page_starts_anew() {
    let mut ch = Channels::default();
    let mut agent = AgentEnds::new(SID);
    let (h, first) = established(&mut ch, &mut agent, 5);
    let closed = SessionMessage::E2eClosed {
        endpoint: 5,
        reason: "the agent restarted".into(),
    };
    let r = incoming(&mut ch, Some(h), &closed);
    assert_eq!(r["result"], "refused");
    assert_eq!(r["closed"], true);
    assert!(
        ch.seal(h, r#"{"kind":"chat","from":"operator","text":"x"}"#)
            .is_err()
    );
    ch.close(h);
    assert!(matches!(ch.sas(h), Err(WasmError::NoChannel(_))));
    agent.clear();
    let (h2, second) = established(&mut ch, &mut agent, 6);
    assert_ne!(h, h2);
    assert_ne!(first, second, "a new channel, a new code");
}

#[test]
fn limits_and_bad_input() {
    let mut ch = Channels::default();
    assert!(matches!(
        ch.start(SID, 1, &[0; 31]),
        Err(WasmError::Seed(31))
    ));
    for i in 0..MAX_CHANNELS {
        ch.start(SID, i as u64, &[1; 32]).expect("start");
    }
    assert!(matches!(
        ch.start(SID, 99, &[1; 32]),
        Err(WasmError::TooManyChannels)
    ));
    let r = serde_json::to_value(ch.incoming(Some(1), "{not json")).expect("json");
    assert_eq!(r["result"], "refused");
    assert_eq!(r["closed"], false);
    let r = serde_json::to_value(ch.incoming(
        Some(999),
        r#"{"kind":"state","state":"connected","detail":""}"#,
    ))
    .expect("json");
    assert_eq!(r["result"], "refused");
}

/// The exported functions, called natively as the page calls them.
mod through_the_abi {
    use super::*;
    use crate::abi::*;

    fn put(bytes: &[u8]) -> (*mut u8, usize) {
        let p = e2e_alloc(bytes.len());
        // SAFETY: a fresh buffer of bytes.len() bytes.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len())
        };
        (p, bytes.len())
    }

    fn output() -> Vec<u8> {
        // SAFETY: the module's own output buffer, read before the next call.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(e2e_output_ptr(), e2e_output_len()).to_vec()
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn a_handshake_and_a_chat_line() {
        let mut agent = AgentEnds::new(SID);
        let (sid, sid_len) = put(SID.as_bytes());
        let (seed, _) = put(&[3; 32]);
        // SAFETY: buffers from e2e_alloc, freed once below.
        let handle = unsafe { e2e_start(sid, sid_len, 42, seed) };
        assert!(handle > 0, "{}", String::from_utf8_lossy(&output()));
        let handle = handle as u32;
        unsafe {
            e2e_free(sid, sid_len);
            e2e_free(seed, 32);
        }
        let hello: SessionMessage = serde_json::from_slice(&output()).expect("hello");
        let AgentIncoming::Reply(reply) = agent.incoming(hello, [4; 32]) else {
            panic!("no reply")
        };
        let (p, n) = put(serde_json::to_string(&reply).expect("json").as_bytes());
        assert_eq!(unsafe { e2e_incoming(handle, p, n) }, OK);
        unsafe { e2e_free(p, n) };
        let ready: Value = serde_json::from_slice(&output()).expect("ready");
        assert_eq!(ready["result"], "ready");
        let confirm = serde_json::from_value(ready["confirm"].clone()).expect("confirm");
        assert!(matches!(
            agent.incoming(confirm, [0; 32]),
            AgentIncoming::Ready { .. }
        ));
        assert_eq!(e2e_sas(handle), OK);
        assert_eq!(
            String::from_utf8(output()).expect("utf8"),
            ready["sas"].as_str().expect("sas")
        );

        let (p, n) = put(br#"{"kind":"chat","from":"operator","text":"hello"}"#);
        assert_eq!(unsafe { e2e_seal(handle, p, n) }, OK);
        unsafe { e2e_free(p, n) };
        let sealed: SessionMessage = serde_json::from_slice(&output()).expect("sealed");
        assert!(matches!(
            agent.incoming(sealed, [0; 32]),
            AgentIncoming::Deliver { .. }
        ));

        let frame = agent.seal_data_all(b"frame").expect("seal").remove(0);
        let (p, n) = put(&frame);
        assert_eq!(unsafe { e2e_open_data(handle, p, n) }, OK);
        unsafe { e2e_free(p, n) };
        assert_eq!(output(), b"frame");

        // Errors come back as words.
        let (p, n) = put(b"\xff");
        assert_eq!(unsafe { e2e_seal(handle, p, n) }, ERROR);
        unsafe { e2e_free(p, n) };
        assert!(String::from_utf8(output()).expect("utf8").contains("UTF-8"));
        e2e_close(handle);
        assert_eq!(e2e_sas(handle), ERROR);
    }
}
