//! Frames over NATS: one frame per message, or, when a fast sender's
//! frames are already waiting, several of one flow in one message (their
//! wire encodings one after the other; the receiver reads them off by their
//! length headers). Every node of a cluster runs the same version
//! (docs/deployment.md): a node before this batching would read only the
//! first frame of a batch.

use std::ops::ControlFlow;

use lifeline_core::link::FrameReceiver;
use lifeline_protocol::Frame;
use lifeline_protocol::frame::{KIND_DATA, decode_body_from, header};

/// Bytes of frames one NATS message carries when several of one flow are
/// waiting to be relayed (a fast sender's data frames): one message per
/// this many bytes instead of one per frame. nats-server's work per message
/// was about half of its share of a 64 KiB relay, and it had a third of
/// the CPU (issue 17). A single larger frame (up to `MAX_FRAME_BYTES`)
/// still goes alone; nothing waits for a batch to fill.
pub const NATS_BATCH_BYTES: usize = 512 << 10;

// A batch fits in every NATS server the broker accepts.
const _: () = assert!(NATS_BATCH_BYTES <= super::MIN_NATS_PAYLOAD);

/// A frame as it travels over NATS: the wire encoding, header included.
pub(super) fn encode(frame: &Frame) -> bytes::Bytes {
    bytes::Bytes::from(frame.encode())
}

/// Frames as one NATS message: their wire encodings one after the other.
pub(super) fn encode_all(frames: &[Frame]) -> bytes::Bytes {
    match frames {
        [one] => encode(one),
        _ => {
            let mut out = Vec::with_capacity(frames.iter().map(wire_len).sum());
            for frame in frames {
                match frame {
                    Frame::Data(d) => {
                        out.extend_from_slice(&header(KIND_DATA, d.len()));
                        out.extend_from_slice(d);
                    }
                    other => out.extend_from_slice(&other.encode()),
                }
            }
            bytes::Bytes::from(out)
        }
    }
}

/// The first frame of a NATS message.
pub(super) fn decode(payload: &[u8]) -> Option<Frame> {
    decode_all(payload).next().map(|(frame, _)| frame)
}

/// Every frame of a NATS message, each with its bytes on the wire; stops at
/// the first that does not parse (logged: only another node sends these).
pub(super) fn decode_all(payload: &[u8]) -> impl Iterator<Item = (Frame, usize)> + '_ {
    let mut rest = payload;
    std::iter::from_fn(move || {
        let (len, kind) = match rest {
            [a, b, c, d, kind, ..] => (u32::from_be_bytes([*a, *b, *c, *d]) as usize, *kind),
            [] => return None,
            _ => return malformed(&mut rest, "a cut header"),
        };
        let Some(body) = len.checked_sub(1).and_then(|n| rest.get(5..5 + n)) else {
            return malformed(&mut rest, "a length past its end");
        };
        let frame = match decode_body_from(kind, body) {
            Ok(f) => f,
            Err(e) => return malformed(&mut rest, &e.to_string()),
        };
        rest = &rest[4 + len..];
        Some((frame, 4 + len))
    })
}

fn malformed(rest: &mut &[u8], why: &str) -> Option<(Frame, usize)> {
    tracing::warn!(
        "cluster: a NATS message from another node has {why}; its other frames are dropped"
    );
    *rest = &[];
    None
}

/// Frames already waiting on `rx` behind `first`, up to
/// [`NATS_BATCH_BYTES`] in all (`first` always); a frame that would pass
/// that comes back to go first next time.
pub(super) fn take_waiting(rx: &mut FrameReceiver, first: Frame) -> (Vec<Frame>, Option<Frame>) {
    take_waiting_by(first, || rx.try_recv(), ControlFlow::Continue)
}

/// [`take_waiting`] over frames from `next` (those already waiting), each
/// turned by `join` into the frame relayed (`Break`: not part of this
/// batch).
/// The frame that ends the batch (too large for it, or refused by `join`)
/// comes back as it was read, to be handled next.
pub(crate) fn take_waiting_by(
    first: Frame,
    mut next: impl FnMut() -> Option<Frame>,
    mut join: impl FnMut(Frame) -> ControlFlow<Frame, Frame>,
) -> (Vec<Frame>, Option<Frame>) {
    let mut bytes = wire_len(&first);
    let mut frames = vec![first];
    while let Some(read) = next() {
        bytes += wire_len(&read);
        if bytes > NATS_BATCH_BYTES {
            return (frames, Some(read));
        }
        match join(read) {
            ControlFlow::Continue(frame) => frames.push(frame),
            ControlFlow::Break(other) => return (frames, Some(other)),
        }
    }
    (frames, None)
}

/// About a frame's bytes on the wire (a control message counts as small;
/// a session data frame as the data frame it is relayed as).
fn wire_len(frame: &Frame) -> usize {
    frame.data_len().unwrap_or(0) + 5
}

#[cfg(test)]
mod tests {
    use lifeline_core::link::FrameSender;
    use lifeline_protocol::{Message, Party, SessionMessage};

    use super::*;

    fn control() -> Frame {
        Frame::Control(Message::Session {
            session_id: "s1".into(),
            msg: SessionMessage::Chat {
                from: Party::Operator,
                text: "hello".into(),
            },
        })
    }

    #[test]
    fn a_batch_reads_back_as_its_frames_in_order_with_their_sizes() {
        let frames = vec![
            Frame::Data(vec![1; 70_000]),
            control(),
            Frame::Data(Vec::new()),
            Frame::Data(vec![3; 5]),
        ];
        let payload = encode_all(&frames);
        let back: Vec<(Frame, usize)> = decode_all(&payload).collect();
        assert_eq!(back.len(), frames.len());
        for ((got, size), sent) in back.iter().zip(&frames) {
            assert_eq!(got, sent);
            assert_eq!(*size, sent.encode().len());
        }
        let total: usize = back.iter().map(|(_, n)| n).sum();
        assert_eq!(
            total,
            payload.len(),
            "credit returned equals what was reserved"
        );
        assert_eq!(encode_all(&frames[..1]), encode(&frames[0]));
        assert_eq!(decode(&payload), Some(frames[0].clone()));
    }

    #[test]
    fn a_cut_or_bad_batch_gives_the_frames_before_the_damage() {
        let frames = vec![Frame::Data(vec![1; 10]), Frame::Data(vec![2; 10])];
        let payload = encode_all(&frames);
        for cut in [payload.len() - 1, 15 + 3, 15 + 4] {
            let back: Vec<_> = decode_all(&payload[..cut]).map(|(f, _)| f).collect();
            assert_eq!(back, frames[..1], "cut at {cut}");
        }
        let mut bad = payload.to_vec();
        bad[15 + 4] = 0x7f; // the second frame's kind
        let back: Vec<_> = decode_all(&bad).map(|(f, _)| f).collect();
        assert_eq!(back, frames[..1]);
        let mut zero = payload.to_vec();
        zero[15..19].copy_from_slice(&0u32.to_be_bytes()); // no kind byte
        assert_eq!(decode_all(&zero).count(), 1);
        assert_eq!(decode_all(&[]).count(), 0);
    }

    #[tokio::test]
    async fn waiting_frames_join_up_to_the_batch_size_and_the_next_is_held() {
        let (tx, mut rx) = FrameSender::pair(64);
        let chunk = 100 << 10;
        for n in 0..7u8 {
            tx.send(Frame::Data(vec![n; chunk])).await.unwrap();
        }
        let first = rx.recv().await.unwrap();
        let (batch, held) = take_waiting(&mut rx, first);
        let fit = NATS_BATCH_BYTES / (chunk + 5);
        assert_eq!(batch.len(), fit);
        let nth = |f: &Frame| match f {
            Frame::Data(d) => d.first().copied(),
            _ => None,
        };
        assert_eq!(
            batch.iter().map(nth).collect::<Vec<_>>(),
            (0..fit as u8).map(Some).collect::<Vec<_>>()
        );
        let held = held.expect("the frame past the batch comes back");
        assert_eq!(nth(&held), Some(fit as u8));
        let (rest, none) = take_waiting(&mut rx, held);
        assert_eq!(rest.len(), 7 - fit);
        assert!(none.is_none());
        // A frame larger than a batch goes alone.
        let big = Frame::Data(vec![9; NATS_BATCH_BYTES * 2]);
        tx.send(Frame::Data(vec![1; 10])).await.unwrap();
        let (alone, held) = take_waiting(&mut rx, big.clone());
        assert_eq!(alone, vec![big]);
        assert!(held.is_some());
    }
}
