use super::*;
use crate::types::Party;

fn chat(text: &str) -> SessionMessage {
    SessionMessage::Chat {
        from: Party::Operator,
        text: text.into(),
    }
}

/// An operator endpoint and the agent, channel established; the codes.
fn established(agent: &mut AgentEnds, endpoint: u64, seed: u8) -> (OperatorEnd, String) {
    let (mut op, hello) = OperatorEnd::start("s1", endpoint, [seed; 32]).expect("start");
    let hello = match hello {
        SessionMessage::E2eHello {
            endpoint, noise, ..
        } => SessionMessage::E2eHello {
            endpoint,
            operator: "Alice".into(),
            noise,
        },
        other => panic!("{other:?}"),
    };
    let AgentIncoming::Reply(reply) = agent.incoming(hello, [seed + 1; 32]) else {
        panic!("no reply")
    };
    let OperatorIncoming::Ready { confirm, sas } = op.incoming(reply) else {
        panic!("not ready")
    };
    let AgentIncoming::Ready {
        operator,
        sas: agent_sas,
        ..
    } = agent.incoming(confirm, [0; 32])
    else {
        panic!("agent not ready")
    };
    assert_eq!(operator, "Alice");
    assert_eq!(sas, agent_sas);
    (op, sas)
}

#[test]
fn content_goes_sealed_both_ways_and_nothing_else_is_accepted() {
    let mut agent = AgentEnds::new("s1");
    let (mut op, _) = established(&mut agent, 11, 1);
    let sealed = op.seal(&chat("my password is hunter2")).expect("seal");
    let wire = serde_json::to_string(&sealed).expect("json");
    assert!(!wire.contains("hunter2"), "{wire}");
    match agent.incoming(sealed, [0; 32]) {
        AgentIncoming::Deliver { msg, operator } => {
            assert_eq!(msg, chat("my password is hunter2"));
            assert_eq!(operator.as_deref(), Some("Alice"));
        }
        other => panic!("{other:?}"),
    }
    // Content in the clear is refused on both ends.
    assert!(matches!(
        agent.incoming(chat("injected"), [0; 32]),
        AgentIncoming::Refused { .. }
    ));
    assert!(matches!(
        op.incoming(chat("injected")),
        OperatorIncoming::Refused(_)
    ));
    // The broker's own messages pass.
    let state = SessionMessage::End {
        by: Party::Customer,
        reason: "bye".into(),
    };
    assert!(matches!(
        op.incoming(state.clone()),
        OperatorIncoming::Deliver(_)
    ));
    assert!(matches!(
        agent.incoming(state, [0; 32]),
        AgentIncoming::Deliver { operator: None, .. }
    ));
    // Agent → operator, and a data frame each way.
    let out = agent
        .seal_all(&SessionMessage::PluginNotice {
            text: "reloaded".into(),
        })
        .expect("seal");
    assert_eq!(out.len(), 1);
    for m in out {
        assert!(matches!(
            op.incoming(m),
            OperatorIncoming::Deliver(SessionMessage::PluginNotice { .. })
        ));
    }
    let frames = agent.seal_data_all(b"pixels").expect("seal");
    assert_eq!(
        op.open_data(&frames[0]).expect("open"),
        Some(b"pixels".to_vec())
    );
    let input = op.seal_data(b"click").expect("seal");
    assert_eq!(
        agent.open_data(&input).expect("open"),
        (11, b"click".to_vec())
    );
    assert!(
        agent.open_data(b"\x03\0\0\0\x01click").is_err(),
        "unsealed input refused"
    );
}

#[test]
fn two_endpoints_get_their_own_channels() {
    let mut agent = AgentEnds::new("s1");
    let (mut a, _) = established(&mut agent, 1, 10);
    let (mut b, _) = established(&mut agent, 2, 20);
    let out = agent.seal_all(&chat("to both")).expect("seal");
    assert_eq!(out.len(), 2);
    let mut delivered = 0;
    for m in out {
        for end in [&mut a, &mut b] {
            match end.incoming(m.clone()) {
                OperatorIncoming::Deliver(_) => delivered += 1,
                OperatorIncoming::Ignore => {}
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(delivered, 2);
    assert_eq!(agent.ready().len(), 2);
}

#[test]
fn a_failed_message_closes_the_channel_and_says_so() {
    let mut agent = AgentEnds::new("s1");
    let (mut op, _) = established(&mut agent, 5, 30);
    let SessionMessage::Sealed { endpoint, data } = op.seal(&chat("x")).expect("seal") else {
        panic!()
    };
    let mut bytes = B64.decode(data).expect("b64");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    let forged = SessionMessage::Sealed {
        endpoint,
        data: B64.encode(bytes),
    };
    let AgentIncoming::Refused {
        reply: Some(closed),
        ..
    } = agent.incoming(forged, [0; 32])
    else {
        panic!("forged accepted")
    };
    assert!(agent.ready().is_empty());
    assert!(matches!(op.incoming(closed), OperatorIncoming::Refused(_)));
    assert!(op.is_closed());
}

#[test]
fn the_agent_keeps_at_most_max_endpoints() {
    let mut agent = AgentEnds::new("s1");
    for e in 0..(MAX_ENDPOINTS as u64 + 5) {
        let (_op, hello) = OperatorEnd::start("s1", e, [e as u8; 32]).expect("start");
        assert!(matches!(
            agent.incoming(hello, [1; 32]),
            AgentIncoming::Reply(_)
        ));
    }
    assert_eq!(agent.ends.len(), MAX_ENDPOINTS);
    assert!(!agent.ends.contains_key(&0), "the oldest went first");
}

#[test]
fn an_endpoint_the_broker_says_left_gets_nothing_more() {
    let mut agent = AgentEnds::new("s1");
    let (_a, _) = established(&mut agent, 1, 40);
    let (_b, _) = established(&mut agent, 2, 50);
    let gone = SessionMessage::E2eClosed {
        endpoint: 1,
        reason: "Alice left".into(),
    };
    assert!(matches!(
        agent.incoming(gone, [0; 32]),
        AgentIncoming::Gone { endpoint: 1, .. }
    ));
    assert_eq!(agent.seal_all(&chat("only b")).expect("seal").len(), 1);
}
