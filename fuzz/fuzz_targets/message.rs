//! Control and session messages (host/protocol/src/message.rs): the JSON
//! inside a control frame, as any peer (agent, operator client, broker)
//! decodes it, then the text a terminal shows of it (`terminal_safe`).
//! A decoded message must encode and decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeline_protocol::{Message, SessionMessage, terminal_safe};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<Message>(data) {
        let json = serde_json::to_vec(&m).expect("a decoded message encodes");
        let again: Message = serde_json::from_slice(&json).expect("an encoded message decodes");
        assert_eq!(again, m, "a message survives encode and decode");
    }
    if let Ok(m) = serde_json::from_slice::<SessionMessage>(data) {
        let json = serde_json::to_vec(&m).expect("a decoded session message encodes");
        let again: SessionMessage =
            serde_json::from_slice(&json).expect("an encoded session message decodes");
        assert_eq!(again, m, "a session message survives encode and decode");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let safe = terminal_safe(text);
        assert!(
            !safe
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "no control character reaches the terminal"
        );
    }
});
