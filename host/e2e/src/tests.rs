use super::*;

fn seed(n: u8) -> [u8; 32] {
    [n; 32]
}

/// A full handshake; the operator's and the agent's channels.
fn pair(session: &str, endpoint: u64, a: u8, b: u8) -> (Channel, Channel) {
    let (init, hello) = Initiator::start(session, endpoint, seed(a)).expect("hello");
    let (resp, reply) = Responder::accept(session, endpoint, &hello, seed(b)).expect("reply");
    let (op, confirm) = init.finish(&reply).expect("finish");
    let agent = resp.confirm(&confirm).expect("confirm");
    (op, agent)
}

#[test]
fn both_ends_agree_and_messages_go_both_ways() {
    let (mut op, mut agent) = pair("s1", 7, 1, 2);
    assert_eq!(op.sas(), agent.sas());
    assert_eq!(op.sas().len(), 7, "{}", op.sas());
    let sealed = op.seal_control(b"hello customer").expect("seal");
    assert!(
        !sealed.windows(5).any(|w| w == b"hello"),
        "no plaintext in the sealed bytes"
    );
    assert_eq!(
        agent.open_control(&sealed).expect("open"),
        b"hello customer"
    );
    let back = agent.seal_control(b"hi").expect("seal");
    assert_eq!(op.open_control(&back).expect("open"), b"hi");
    let frame = agent.seal_data(&[9u8; 2 << 20]).expect("a 2 MiB frame");
    assert_eq!(op.open_data(&frame).expect("open").len(), 2 << 20);
}

#[test]
fn control_messages_cannot_be_dropped_repeated_or_reordered() {
    let (mut op, mut agent) = pair("s1", 1, 3, 4);
    let m1 = op.seal_control(b"one").expect("seal");
    let m2 = op.seal_control(b"two").expect("seal");
    let err = agent.open_control(&m2).expect_err("skipped one");
    assert!(
        matches!(
            err,
            E2eError::OutOfOrder {
                got: 2,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );
    agent.open_control(&m1).expect("in order");
    assert!(
        matches!(agent.open_control(&m1), Err(E2eError::OutOfOrder { .. })),
        "replay"
    );
    agent.open_control(&m2).expect("in order");
}

#[test]
fn data_frames_may_skip_but_not_go_back() {
    let (mut op, mut agent) = pair("s1", 1, 5, 6);
    let f0 = agent.seal_data(b"f0").expect("seal");
    let f1 = agent.seal_data(b"f1").expect("seal");
    let f2 = agent.seal_data(b"f2").expect("seal");
    op.open_data(&f0).expect("first");
    op.open_data(&f2)
        .expect("f1 dropped by a latest-wins stream");
    assert!(op.open_data(&f1).is_err(), "older than the last one");
    assert!(op.open_data(&f2).is_err(), "repeated");
}

#[test]
fn altered_bytes_and_other_endpoints_messages_are_refused() {
    let (mut op, mut agent) = pair("s1", 1, 7, 8);
    let (mut op2, _agent2) = pair("s1", 2, 7, 8);
    let original = op.seal_control(b"text").expect("seal");
    let mut m = original.clone();
    let last = m.len() - 1;
    m[last] ^= 1;
    assert!(matches!(agent.open_control(&m), Err(E2eError::Forged)));
    let other = op2.seal_control(b"text").expect("seal");
    assert!(matches!(agent.open_control(&other), Err(E2eError::Forged)));
    // Forged messages did not move the window: the real one still opens.
    assert_eq!(
        agent.open_control(&original).expect("the real one"),
        b"text"
    );
    assert!(matches!(
        agent.open_control(b"short"),
        Err(E2eError::Short(5))
    ));
}

/// A relay that runs its own handshake with each side (key substitution)
/// reads everything, but the two sides' codes differ.
#[test]
fn a_relay_substituting_keys_shows_different_codes() {
    let mut mismatches = 0;
    for n in 0..20u8 {
        let (init, hello) = Initiator::start("s", 1, seed(n)).expect("hello");
        // The relay answers the operator itself ...
        let (relay_resp, reply) =
            Responder::accept("s", 1, &hello, seed(100 + n)).expect("relay reply");
        let (op, confirm) = init
            .finish(&reply)
            .expect("operator finishes with the relay");
        let relay_op_side = relay_resp.confirm(&confirm).expect("relay confirms");
        // ... and greets the agent with its own hello.
        let (relay_init, hello2) = Initiator::start("s", 1, seed(200 - n)).expect("relay hello");
        let (agent_resp, reply2) =
            Responder::accept("s", 1, &hello2, seed(50 + n)).expect("agent reply");
        let (relay_agent_side, confirm2) = relay_init.finish(&reply2).expect("relay finishes");
        let agent = agent_resp.confirm(&confirm2).expect("agent confirms");
        assert_eq!(op.sas(), relay_op_side.sas());
        assert_eq!(agent.sas(), relay_agent_side.sas());
        if op.sas() != agent.sas() {
            mismatches += 1;
        }
    }
    assert_eq!(mismatches, 20, "the codes differ every time");
}

/// The relay may not replace the confirm: the agent checks the commitment.
#[test]
fn a_confirm_from_another_handshake_is_refused() {
    let (init, hello) = Initiator::start("s", 1, seed(1)).expect("hello");
    let (resp, reply) = Responder::accept("s", 1, &hello, seed(2)).expect("reply");
    let (_op, _confirm) = init.finish(&reply).expect("finish");
    let (other, _) = Initiator::start("s", 1, seed(3)).expect("hello");
    let (_, reply3) = Responder::accept(
        "s",
        1,
        &Initiator::start("s", 1, seed(3)).expect("h").1,
        seed(2),
    )
    .expect("reply");
    let (_, confirm3) = other.finish(&reply3).expect("finish");
    assert!(resp.confirm(&confirm3).is_err());
}

#[test]
fn a_handshake_for_another_session_fails() {
    let (init, hello) = Initiator::start("s1", 1, seed(1)).expect("hello");
    let (resp, reply) = Responder::accept("s2", 1, &hello, seed(2)).expect("reply");
    assert!(init.finish(&reply).is_err(), "the prologues differ");
    let _ = resp;
    assert!(Responder::accept("s1", 1, b"garbage", seed(2)).is_err());
    assert!(Responder::accept("s1", 1, &vec![0u8; 70_000], seed(2)).is_err());
}
