use std::sync::Arc;

use lifeline_core::link::FrameSender;
use lifeline_protocol::e2e::{OperatorEnd, OperatorIncoming};
use lifeline_protocol::types::Party;

use super::*;

/// An operator endpoint with a ready channel to `ends`, as the broker
/// relays it (stamping `operator` on the hello); the code both show.
fn established(ends: &SessionEnds, endpoint: u64, operator: &str) -> (OperatorEnd, String) {
    let (mut op, hello) =
        OperatorEnd::start("s1", endpoint, [endpoint as u8 + 1; 32]).expect("hello");
    let SessionMessage::E2eHello { noise, .. } = hello else {
        panic!("not a hello: {hello:?}")
    };
    let stamped = SessionMessage::E2eHello {
        endpoint,
        operator: operator.into(),
        noise,
    };
    let AgentIncoming::Reply(reply) = ends.incoming(stamped) else {
        panic!("the agent did not answer the hello")
    };
    let OperatorIncoming::Ready { confirm, sas } = op.incoming(reply) else {
        panic!("the operator endpoint is not ready")
    };
    match ends.incoming(confirm) {
        AgentIncoming::Ready {
            endpoint: e,
            operator: name,
            sas: code,
        } => {
            assert_eq!(
                (e, name.as_str(), code.as_str()),
                (endpoint, operator, sas.as_str())
            );
        }
        other => panic!("{other:?}"),
    }
    (op, sas)
}

fn frame_body(stream: u32, n: u32) -> Vec<u8> {
    StreamData::Frame {
        stream,
        body: n.to_be_bytes().to_vec(),
    }
    .encode()
}

/// Plugin streams on several threads send at once: every endpoint gets
/// every frame once, sealed for it, and opens them all (a frame queued
/// out of the order it was sealed in would be refused).
#[test]
fn stream_frames_go_sealed_to_every_endpoint_in_order() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ends = Arc::new(SessionEnds::new("s1"));
    let (mut alice, _) = established(&ends, 7, "Alice");
    let (mut bob, _) = established(&ends, 9, "Bob");
    let (link, mut rx) = FrameSender::pair(8);
    const THREADS: u32 = 4;
    const FRAMES: u32 = 50;
    let senders: Vec<_> = (0..THREADS)
        .map(|stream| {
            let (ends, link, rt) = (Arc::clone(&ends), link.clone(), rt.handle().clone());
            std::thread::spawn(move || {
                for n in 0..FRAMES {
                    assert!(ends.send_data(&link, &rt, &frame_body(stream, n)));
                }
            })
        })
        .collect();
    drop(link);
    let mut got = [Vec::new(), Vec::new()];
    rt.block_on(async {
        while let Some(frame) = rx.recv().await {
            let Frame::Data(payload) = frame else {
                panic!("not a data frame")
            };
            assert_ne!(
                payload[0],
                lifeline_protocol::stream::TAG_FRAME,
                "sent in the clear"
            );
            for (i, end) in [&mut alice, &mut bob].into_iter().enumerate() {
                if let Some(plain) = end.open_data(&payload).expect("opens in order") {
                    got[i].push(StreamData::decode(plain).expect("a stream frame"));
                }
            }
        }
    });
    for s in senders {
        s.join().expect("sender thread");
    }
    for frames in &got {
        assert_eq!(frames.len(), (THREADS * FRAMES) as usize);
        for stream in 0..THREADS {
            let mine: Vec<u32> = frames
                .iter()
                .filter_map(|d| match d {
                    StreamData::Frame { stream: s, body } if *s == stream => {
                        Some(u32::from_be_bytes(body[..].try_into().expect("4 bytes")))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(mine, (0..FRAMES).collect::<Vec<_>>(), "stream {stream}");
        }
    }
}

/// Credit and input come sealed by an endpoint; in the clear, or sealed
/// for a channel the agent does not have, they are refused.
#[test]
fn operator_data_is_opened_and_unsealed_data_refused() {
    let ends = SessionEnds::new("s1");
    let credit = StreamData::Credit {
        stream: 3,
        bytes: 4096,
    };
    assert!(ends.open_data(&credit.encode()).is_err(), "no channel yet");
    let (mut op, _) = established(&ends, 5, "Alice");
    let sealed = op.seal_data(&credit.encode()).expect("seal");
    assert_eq!(ends.open_data(&sealed).expect("opens"), (5, credit.clone()));
    assert!(ends.open_data(&credit.encode()).is_err(), "in the clear");
    assert!(ends.open_data(&sealed).is_err(), "replayed");
    // The broker says the endpoint's operator left: its channel is gone.
    let gone = SessionMessage::E2eClosed {
        endpoint: 5,
        reason: "Alice left".into(),
    };
    assert!(matches!(
        ends.incoming(gone),
        lifeline_protocol::e2e::AgentIncoming::Gone { endpoint: 5, .. }
    ));
    assert!(ends.ready().is_empty());
    let again = op.seal_data(&credit.encode()).expect("seal");
    assert!(ends.open_data(&again).is_err());
}

/// `try_send_data` (the session loop, releasing a latest-wins frame)
/// never waits: with no room it says so; with no endpoint the frame has
/// nowhere to go and counts as gone.
#[test]
fn try_send_data_never_waits() {
    let ends = SessionEnds::new("s1");
    let (link, _rx) = FrameSender::pair(1);
    assert!(
        ends.try_send_data(&link, &frame_body(1, 0)),
        "nobody to send to"
    );
    let _alice = established(&ends, 2, "Alice");
    assert!(ends.try_send_data(&link, &frame_body(1, 1)));
    assert!(
        !ends.try_send_data(&link, &frame_body(1, 2)),
        "the queue is full"
    );
}

/// Content an agent seals reaches each endpoint, never in the clear.
#[test]
fn content_is_sealed_once_per_ready_endpoint() {
    let ends = SessionEnds::new("s1");
    let msg = SessionMessage::Chat {
        from: Party::Customer,
        text: "my password is hunter2".into(),
    };
    assert!(
        ends.seal_all(&msg).expect("seal").is_empty(),
        "no endpoint ready"
    );
    let (mut alice, _) = established(&ends, 1, "Alice");
    let (mut bob, _) = established(&ends, 2, "Bob");
    let sealed = ends.seal_all(&msg).expect("seal");
    assert_eq!(sealed.len(), 2);
    let mut delivered = 0;
    for m in sealed {
        assert!(!serde_json::to_string(&m).expect("json").contains("hunter2"));
        for end in [&mut alice, &mut bob] {
            if let OperatorIncoming::Deliver(got) = end.incoming(m.clone()) {
                assert_eq!(got, msg);
                delivered += 1;
            }
        }
    }
    assert_eq!(delivered, 2);
}

fn refused(msg: SessionMessage) -> Refusal {
    *check_from_operator("Alice", &msg).expect_err("refused")
}

#[test]
fn operator_content_is_checked_as_the_broker_did() {
    let ok = [
        SessionMessage::Chat {
            from: Party::Operator,
            text: "Hello\n\tthere".into(),
        },
        SessionMessage::ConsentRequest {
            request_id: 1,
            operator: "forged name".into(),
            plugin: "sysinfo".into(),
            action: "system.info".into(),
            detail: String::new(),
        },
        SessionMessage::RunPlugin {
            call_id: 2,
            plugin: "hello-lua".into(),
            command: "greet".into(),
            args: vec!["Mario".into()],
        },
        SessionMessage::ListPlugins { request_id: 3 },
        SessionMessage::CredentialReply {
            request_id: 4,
            secret: None,
        },
    ];
    for msg in ok {
        assert_eq!(check_from_operator("Alice", &msg), Ok(()), "{msg:?}");
    }

    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    let r = refused(SessionMessage::Chat {
        from: Party::Operator,
        text: long.clone(),
    });
    assert!(r.why.contains("longer than 8192"), "{}", r.why);
    assert!(
        matches!(r.reply, Some(SessionMessage::PluginNotice { ref text }) if text.contains("Alice"))
    );
    let r = refused(SessionMessage::Chat {
        from: Party::Operator,
        text: "bell\u{7}".into(),
    });
    assert!(r.why.contains("control characters"), "{}", r.why);

    let r = refused(SessionMessage::ConsentRequest {
        request_id: 9,
        operator: "Alice".into(),
        plugin: "sysinfo".into(),
        action: "root.everything".into(),
        detail: "please".into(),
    });
    assert!(r.why.contains("not a capability name"), "{}", r.why);
    match r.reply {
        Some(SessionMessage::ConsentAnswer {
            request_id: 9,
            decision: ConsentDecision::Deny,
            decided_by,
            ..
        }) => assert!(decided_by.contains("not a capability"), "{decided_by}"),
        other => panic!("{other:?}"),
    }
    let r = refused(SessionMessage::ConsentRequest {
        request_id: 10,
        operator: "Alice".into(),
        plugin: "sysinfo".into(),
        action: "system.info".into(),
        detail: long.clone(),
    });
    assert!(r.why.contains("consent detail"), "{}", r.why);

    let r = refused(SessionMessage::RunPlugin {
        call_id: 11,
        plugin: "p".repeat(MAX_NAME_CHARS + 1),
        command: "greet".into(),
        args: vec![],
    });
    match r.reply {
        Some(SessionMessage::PluginDone {
            call_id: 11,
            ok: false,
            plugin,
            text,
        }) => {
            assert_eq!(plugin.chars().count(), MAX_NAME_CHARS);
            assert!(text.contains("plugin name"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let r = refused(SessionMessage::RunPlugin {
        call_id: 12,
        plugin: "hello-lua".into(),
        command: " ".into(),
        args: vec![],
    });
    assert!(r.why.contains("command name is empty"), "{}", r.why);
    let r = refused(SessionMessage::RunPlugin {
        call_id: 13,
        plugin: "hello-lua".into(),
        command: "greet".into(),
        args: vec![long],
    });
    assert!(r.why.contains("arguments"), "{}", r.why);

    // What only the agent sends is not taken from an operator.
    let r = refused(SessionMessage::PluginNotice { text: "x".into() });
    assert_eq!(r.reply, None);
}

#[test]
fn the_customers_chat_is_bounded_like_the_operators() {
    assert!(check_customer_chat(&"y".repeat(MAX_TEXT_CHARS)).is_ok());
    assert!(check_customer_chat(&"y".repeat(MAX_TEXT_CHARS + 1)).is_err());
}

/// Output too large for one sealed message is cut, and says so; the
/// message can then be sealed.
#[test]
fn oversized_output_is_cut_to_fit_one_sealed_message() {
    let huge = SessionMessage::PluginDone {
        call_id: 1,
        plugin: "dump".into(),
        ok: true,
        text: "é\u{1}".repeat(MAX_SEALED_JSON_BYTES),
    };
    let fitted = fit(huge);
    let len = serde_json::to_vec(&fitted).expect("json").len();
    assert!(len <= MAX_SEALED_JSON_BYTES, "{len}");
    let SessionMessage::PluginDone { text, .. } = &fitted else {
        panic!("{fitted:?}")
    };
    assert!(
        text.ends_with("too large for one message)"),
        "{}",
        &text[text.len() - 80..]
    );
    let ends = SessionEnds::new("s1");
    let _op = established(&ends, 1, "Alice");
    assert_eq!(ends.seal_all(&fitted).expect("fits").len(), 1);
    let small = SessionMessage::PluginNotice { text: "ok".into() };
    assert_eq!(fit(small.clone()), small);
}
