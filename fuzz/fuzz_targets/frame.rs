//! The frame decoder (host/protocol/src/frame.rs) on a byte stream as a
//! peer would send it, under both limits (after and before the handshake),
//! and the stream multiplexing header inside data frames
//! (host/protocol/src/stream.rs). Every frame decoded must encode back to
//! bytes that decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeline_protocol::stream::StreamData;
use lifeline_protocol::{Frame, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES, read_frame};

/// Most frames decoded from one input.
const MAX_FRAMES_PER_INPUT: usize = 64;

fuzz_target!(|data: &[u8]| {
    lifeline_fuzz::runtime().block_on(async {
        for max in [MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES] {
            let mut r = data;
            for _ in 0..MAX_FRAMES_PER_INPUT {
                let Ok(frame) = read_frame(&mut r, max).await else {
                    break;
                };
                check(frame).await;
            }
        }
    });
});

async fn check(frame: Frame) {
    let bytes = frame.encode();
    let again = read_frame(&mut bytes.as_slice(), MAX_FRAME_BYTES)
        .await
        .expect("an encoded frame decodes");
    assert_eq!(again, frame, "a frame survives encode and decode");
    let payload = match frame {
        Frame::Data(p) | Frame::SessionData { payload: p, .. } => p,
        Frame::Control(_) => return,
    };
    if let Ok(d) = StreamData::decode(payload) {
        assert_eq!(
            StreamData::decode(d.encode()).expect("encoded stream data decodes"),
            d
        );
    }
}
