//! The screen stream (sdk/screen-format): the operator side decodes what
//! the plugin sends (layout, tiles in PNG, JPEG or the zlib stream, cursor,
//! status, clipboard) and paints it (host/operator/src/screen/), and the
//! plugin decodes the operator's input frames. The input is a sequence of
//! frames, each `u16 length (BE)` then its bytes, as the stream delivers
//! them in order. Decoded messages must encode back to themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeline_operator::screen::Framebuffer;
use lifeline_screen_format::{decode_inputs, decode_message, encode_input, encode_message};

/// Most frames replayed from one input.
const MAX_FRAMES_PER_INPUT: usize = 64;

fuzz_target!(|data: &[u8]| {
    let mut fb = Framebuffer::new();
    let mut rest = data;
    for _ in 0..MAX_FRAMES_PER_INPUT {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        if let Ok(msg) = decode_message(frame) {
            let mut bytes = Vec::new();
            encode_message(&msg, &mut bytes);
            assert_eq!(
                decode_message(&bytes).expect("an encoded message decodes"),
                msg,
                "a screen message survives encode and decode"
            );
            let _ = fb.apply(&msg);
        }
        if let Ok(inputs) = decode_inputs(frame) {
            let mut bytes = Vec::new();
            for i in &inputs {
                encode_input(i, &mut bytes);
            }
            assert_eq!(
                decode_inputs(&bytes).expect("encoded inputs decode"),
                inputs,
                "inputs survive encode and decode"
            );
        }
    }
    let _ = fb.composed(true);
});
