//! Lifeline wire protocol: frames, control messages and the data they carry.
//!
//! This crate has no I/O of its own beyond reading and writing frames on any
//! `AsyncRead`/`AsyncWrite`, so every role and the tests share one definition.

pub mod e2e;
pub mod frame;
pub mod message;
pub mod report;
pub mod report_text;
pub mod stream;
pub mod types;

pub use frame::{
    Frame, FrameError, MAX_DATA_PAYLOAD_BYTES, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES,
};
#[cfg(not(target_arch = "wasm32"))]
pub use frame::{read_frame, write_frame};
pub use message::{
    ClientRole, E2eOffer, Message, PROTOCOL_NAME, PROTOCOL_VERSION, ReplyBody, Request,
    SessionMessage,
};
pub use stream::StreamData;
pub use types::*;
