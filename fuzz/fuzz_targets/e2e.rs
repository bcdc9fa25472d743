//! The end-to-end layer (host/e2e, host/protocol/src/e2e.rs): what a
//! broker or a hostile peer can put in front of the Noise handshake and the
//! channel. The first byte picks the layer (modulo 3), the rest is a
//! sequence of chunks, each `u16 length (BE)` then its bytes:
//!
//! - 0, handshake: the agent's `Responder::accept` on chunk 0 and
//!   `confirm` on chunk 1; a real operator endpoint's `Initiator::finish`
//!   on chunk 0, then its channel opens the other chunks.
//! - 1, channel: a real channel pair (fixed seeds, `e2e_fixture`); each
//!   chunk's first byte says which end acts and how (open the bytes, seal
//!   them, open a replayed or altered sealed message, open the peer's last).
//! - 2, protocol: a real `OperatorEnd` and `AgentEnds` after their
//!   handshake in session messages; chunks are session messages (JSON),
//!   sealed messages, data frames, or real content sealed by one end.
//!
//! Invariants: nothing opens that the peer did not seal with that number;
//! control messages open in order with none missing, data never goes back;
//! an end delivers content only from its channel, never from the clear.
#![no_main]

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use libfuzzer_sys::fuzz_target;
use lifeline_e2e::{Channel, Initiator, Responder, SAS_DIGITS};
use lifeline_fuzz::e2e_fixture::{
    AGENT_SEED, ENDPOINT, OPERATOR_SEED, SESSION, chunks, ends, handshake, json,
};
use lifeline_protocol::e2e::{AgentIncoming, OperatorIncoming};
use lifeline_protocol::{Party, SessionMessage};

fuzz_target!(|data: &[u8]| {
    let Some((&layer, rest)) = data.split_first() else {
        return;
    };
    let input = chunks(rest);
    match layer % 3 {
        0 => handshakes(&input),
        1 => channel(&input),
        _ => protocol(&input),
    }
});

fn check_sas(sas: &str) {
    let digits: String = sas.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(
        digits.len(),
        SAS_DIGITS as usize,
        "a code of {SAS_DIGITS} digits: {sas:?}"
    );
}

fn handshakes(input: &[&[u8]]) {
    let Some(first) = input.first() else {
        return;
    };
    if let Ok((responder, _reply)) = Responder::accept(SESSION, ENDPOINT, first, AGENT_SEED)
        && let Some(confirm) = input.get(1)
        && let Ok(channel) = responder.confirm(confirm)
    {
        check_sas(channel.sas());
    }
    let (initiator, _hello) =
        Initiator::start(SESSION, ENDPOINT, OPERATOR_SEED).expect("the fixed hello");
    if let Ok((mut channel, _confirm)) = initiator.finish(first) {
        check_sas(channel.sas());
        for bytes in &input[1..] {
            let _ = channel.open_control(bytes);
            let _ = channel.open_data(bytes);
        }
    }
}

/// One end of the channel pair with what its peer sealed.
struct End {
    channel: Channel,
    /// Plaintexts this end sealed, per kind (control, data), by number.
    sealed: [Vec<Option<Vec<u8>>>; 2],
    /// The number of the last message opened, per kind.
    opened: [Option<u64>; 2],
}

fn channel(input: &[&[u8]]) {
    let hs = handshake();
    let mut ends = [
        End {
            channel: hs.operator,
            // The confirm (control 0) carries the committed value.
            sealed: [vec![None], vec![]],
            opened: [None, None],
        },
        End {
            channel: hs.agent,
            sealed: [vec![], vec![]],
            // The agent opened the confirm.
            opened: [Some(0), None],
        },
    ];
    // Every sealed message so far, for replays: (sender, bytes).
    let mut wire: Vec<(usize, Vec<u8>)> = vec![(0, hs.confirm)];
    for chunk in input {
        let Some((&op, body)) = chunk.split_first() else {
            continue;
        };
        let me = usize::from(op & 1);
        let kind = usize::from((op >> 1) & 1);
        match (op >> 2) & 3 {
            0 => open(&mut ends, me, kind, body),
            1 => {
                let end = &mut ends[me];
                let sealed = if kind == 0 {
                    end.channel.seal_control(body)
                } else {
                    end.channel.seal_data(body)
                };
                if let Ok(bytes) = sealed {
                    end.sealed[kind].push(Some(body.to_vec()));
                    wire.push((me, bytes));
                }
            }
            2 => {
                // A replayed message, perhaps with one byte changed.
                let Some((&pick, edit)) = body.split_first() else {
                    continue;
                };
                let mut bytes = wire[usize::from(pick) % wire.len()].1.clone();
                if let [at, xor, ..] = edit {
                    let at = usize::from(*at) % bytes.len();
                    bytes[at] ^= *xor;
                }
                open(&mut ends, me, kind, &bytes);
            }
            _ => {
                // The peer's latest message: the fuzzer's easy valid path.
                if let Some((_, bytes)) = wire.iter().rev().find(|(from, _)| *from != me) {
                    let bytes = bytes.clone();
                    open(&mut ends, me, kind, &bytes);
                }
            }
        }
    }
}

fn open(ends: &mut [End; 2], me: usize, kind: usize, bytes: &[u8]) {
    let opened = if kind == 0 {
        ends[me].channel.open_control(bytes)
    } else {
        ends[me].channel.open_data(bytes)
    };
    let Ok(plain) = opened else {
        return;
    };
    let number = u64::from_be_bytes(
        bytes[..8]
            .try_into()
            .expect("a sealed message has its number"),
    );
    let peer = &ends[1 - me];
    let sent = usize::try_from(number)
        .ok()
        .and_then(|n| peer.sealed[kind].get(n))
        .and_then(Option::as_ref);
    assert_eq!(
        sent,
        Some(&plain),
        "opened only what the peer sealed, with its number"
    );
    let last = ends[me].opened[kind];
    if kind == 0 {
        assert_eq!(
            number,
            last.map_or(0, |n| n + 1),
            "control in order, none missing"
        );
    } else {
        assert!(last.is_none_or(|n| number > n), "data never goes back");
    }
    ends[me].opened[kind] = Some(number);
}

fn protocol(input: &[&[u8]]) {
    let (mut op, mut agent) = ends();
    // JSON of the content each end sealed; data frames each end sealed.
    let mut from_op: HashSet<Vec<u8>> = HashSet::new();
    let mut from_agent: HashSet<Vec<u8>> = HashSet::new();
    let mut data_from_op: HashSet<Vec<u8>> = HashSet::new();
    let mut data_from_agent: HashSet<Vec<u8>> = HashSet::new();
    // Sealed messages and data frames on the wire: (to the agent?, message).
    let mut wire: Vec<(bool, SessionMessage)> = Vec::new();
    let seed = [3u8; 32];
    for chunk in input {
        let Some((&kind, body)) = chunk.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(body).into_owned();
        let (to_agent, msg) = match kind & 7 {
            0 | 1 => match serde_json::from_slice::<SessionMessage>(body) {
                Ok(msg) => (kind & 1 == 0, msg),
                Err(_) => continue,
            },
            2 | 3 => {
                let data = B64.encode(body);
                let msg = SessionMessage::Sealed {
                    endpoint: ENDPOINT,
                    data,
                };
                (kind & 1 == 0, msg)
            }
            4 => {
                if let Ok((_, plain)) = agent.open_data(body) {
                    assert!(
                        data_from_op.contains(&plain),
                        "the agent opened data nobody sealed"
                    );
                }
                if let Ok(sealed) = agent.seal_data_all(body) {
                    for frame in sealed {
                        data_from_agent.insert(body.to_vec());
                        if let Ok(Some(plain)) = op.open_data(&frame) {
                            assert_eq!(plain, body, "data opens as sealed");
                        }
                    }
                }
                continue;
            }
            5 => {
                if let Ok(Some(plain)) = op.open_data(body) {
                    assert!(
                        data_from_agent.contains(&plain),
                        "the operator opened data nobody sealed"
                    );
                }
                if let Ok(frame) = op.seal_data(body) {
                    data_from_op.insert(body.to_vec());
                    if let Ok((_, plain)) = agent.open_data(&frame) {
                        assert_eq!(plain, body, "data opens as sealed");
                    }
                }
                continue;
            }
            6 => {
                let chat = SessionMessage::Chat {
                    from: Party::Operator,
                    text,
                };
                match op.seal(&chat) {
                    Ok(sealed) => {
                        from_op.insert(json(&chat));
                        wire.push((true, sealed.clone()));
                        (true, sealed)
                    }
                    Err(_) => continue,
                }
            }
            _ => {
                if kind & 8 != 0 && !wire.is_empty() {
                    // A replay of something already on the wire.
                    let pick = usize::from(body.first().copied().unwrap_or(0)) % wire.len();
                    wire[pick].clone()
                } else {
                    let chat = SessionMessage::Chat {
                        from: Party::Customer,
                        text,
                    };
                    match agent.seal_all(&chat) {
                        Ok(mut sealed) if !sealed.is_empty() => {
                            from_agent.insert(json(&chat));
                            let sealed = sealed.remove(0);
                            wire.push((false, sealed.clone()));
                            (false, sealed)
                        }
                        _ => continue,
                    }
                }
            }
        };
        if to_agent {
            match agent.incoming(msg, seed) {
                AgentIncoming::Deliver {
                    msg,
                    operator: Some(_),
                } => {
                    assert!(msg.is_content(), "only content comes sealed");
                    assert!(
                        from_op.contains(&json(&msg)),
                        "the agent opened content nobody sealed"
                    );
                }
                AgentIncoming::Deliver {
                    msg,
                    operator: None,
                } => assert!(
                    !msg.is_content(),
                    "content in the clear delivered to the agent"
                ),
                AgentIncoming::Ready { sas, .. } => check_sas(&sas),
                AgentIncoming::Reply(_)
                | AgentIncoming::Refused { .. }
                | AgentIncoming::Gone { .. } => {}
            }
        } else {
            match op.incoming(msg) {
                OperatorIncoming::Deliver(msg) if msg.is_content() => {
                    assert!(
                        from_agent.contains(&json(&msg)),
                        "the operator opened content nobody sealed"
                    );
                }
                OperatorIncoming::Ready { sas, .. } => check_sas(&sas),
                _ => {}
            }
        }
    }
}
