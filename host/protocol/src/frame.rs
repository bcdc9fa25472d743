//! Length-prefixed framing.
//!
//! Every frame on the wire is:
//!
//! ```text
//! +----------------+------+------------------+
//! | length: u32 BE | kind | payload ...      |
//! +----------------+------+------------------+
//!   counts kind+payload
//! ```
//!
//! `kind` is [`KIND_CONTROL`] (a JSON [`Message`]), [`KIND_DATA`] (opaque
//! bytes the broker relays between operator and agent without parsing them)
//! or [`KIND_SESSION_DATA`] (the same, between the broker and an operator
//! connection, which may be attached to several sessions: the payload is
//! prefixed with the session ID, `u8` length then the ID's bytes).
//! A frame longer than the reader's limit is refused before its payload is
//! read, so an attacker cannot make a peer allocate more than the limit.

#[cfg(not(target_arch = "wasm32"))]
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::message::Message;

/// Largest frame (kind byte + payload) any peer accepts once the handshake is
/// done: 4 MiB (a script of 1 MiB with its 1 MiB input file, base64, fits).
/// Bulk transfers are split into frames of at most this size.
pub const MAX_FRAME_BYTES: usize = 4 << 20;

/// Largest frame accepted before the handshake has completed: 16 KiB. A
/// `Hello` is a few hundred bytes; anything bigger is not a Lifeline client.
pub const MAX_HANDSHAKE_FRAME_BYTES: usize = 16 * 1024;

/// Frame kind byte of a JSON control message.
pub const KIND_CONTROL: u8 = 1;
/// Frame kind byte of an opaque relayed data chunk.
pub const KIND_DATA: u8 = 2;
/// Frame kind byte of a data chunk naming its session (operator side).
pub const KIND_SESSION_DATA: u8 = 3;
/// Longest session ID a session data frame may name.
pub const MAX_SESSION_ID_BYTES: usize = 64;
/// Largest payload of relayed data (either kind): what still fits in a
/// frame once the broker adds the session prefix on the operator side.
pub const MAX_DATA_PAYLOAD_BYTES: usize = MAX_FRAME_BYTES - 2 - MAX_SESSION_ID_BYTES;

/// One unit on the wire.
// Frames are moved boxed through the link queues (`lifeline_core::link`), so
// the size of the largest message does not multiply by queue slots.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A control message, JSON-encoded.
    Control(Message),
    /// Opaque bytes for the session peer (relayed untouched by the broker).
    Data(Vec<u8>),
    /// Opaque bytes of one session, between the broker and an operator
    /// connection (which may be attached to several sessions).
    SessionData { session: String, payload: Vec<u8> },
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed by peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame (no kind byte)")]
    Empty,
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    #[error("malformed control message: {0}")]
    Malformed(String),
}

impl Frame {
    /// Encodes the frame (header included) into one buffer.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Frame::Control(msg) => {
                let json = serde_json::to_vec(msg).expect("messages always serialise to JSON");
                with_header(KIND_CONTROL, &json)
            }
            Frame::Data(bytes) => with_header(KIND_DATA, bytes),
            Frame::SessionData { session, payload } => {
                let mut out = header(
                    KIND_SESSION_DATA,
                    session_prefix_len(session) + payload.len(),
                )
                .to_vec();
                out.extend_from_slice(&session_prefix(session));
                out.extend_from_slice(payload);
                out
            }
        }
    }

    /// Bytes of relayed data this frame carries (0 for a control message).
    pub fn data_len(&self) -> Option<usize> {
        match self {
            Frame::Control(_) => None,
            Frame::Data(d) => Some(d.len()),
            Frame::SessionData { payload, .. } => Some(payload.len()),
        }
    }
}

fn session_prefix_len(session: &str) -> usize {
    1 + session.len().min(MAX_SESSION_ID_BYTES)
}

/// The prefix of a session data payload: the ID's length, then the ID
/// (cut at [`MAX_SESSION_ID_BYTES`]; real IDs are 12 characters).
pub fn session_prefix(session: &str) -> Vec<u8> {
    let id = &session.as_bytes()[..session.len().min(MAX_SESSION_ID_BYTES)];
    let mut out = Vec::with_capacity(1 + id.len());
    out.push(u8::try_from(id.len()).expect("at most 64"));
    out.extend_from_slice(id);
    out
}

/// The 5 header bytes of a frame whose payload has `payload_len` bytes, so
/// a large payload can be written without copying it behind its header.
pub fn header(kind: u8, payload_len: usize) -> [u8; 5] {
    let len = u32::try_from(payload_len + 1).expect("frame length fits in u32");
    let b = len.to_be_bytes();
    [b[0], b[1], b[2], b[3], kind]
}

fn with_header(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 1).expect("frame length fits in u32");
    let mut buf = Vec::with_capacity(payload.len() + 5);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(kind);
    buf.extend_from_slice(payload);
    buf
}

/// Reads one frame, refusing any frame longer than `max` bytes.
#[cfg(not(target_arch = "wasm32"))]
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Frame, FrameError> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let mut kind = [0u8; 1];
    r.read_exact(&mut kind).await?;
    if kind[0] == KIND_SESSION_DATA {
        return read_session_data(r, len - 1).await;
    }
    let mut payload = vec![0u8; len - 1];
    r.read_exact(&mut payload).await?;
    decode_body(kind[0], payload)
}

/// The body of a session data frame of `body_len` bytes, read prefix first
/// so that the payload lands in its own buffer (no move of megabytes).
#[cfg(not(target_arch = "wasm32"))]
async fn read_session_data<R: AsyncRead + Unpin>(
    r: &mut R,
    body_len: usize,
) -> Result<Frame, FrameError> {
    let mut n = [0u8; 1];
    if body_len == 0 {
        return Err(FrameError::Empty);
    }
    r.read_exact(&mut n).await?;
    let n = usize::from(n[0]);
    if n > MAX_SESSION_ID_BYTES || body_len < 1 + n {
        return Err(FrameError::Malformed(format!(
            "session data frame with a bad session ID length {n}"
        )));
    }
    let mut id = vec![0u8; n];
    r.read_exact(&mut id).await?;
    let session = String::from_utf8(id)
        .map_err(|_| FrameError::Malformed("session ID is not UTF-8".into()))?;
    let mut payload = vec![0u8; body_len - 1 - n];
    r.read_exact(&mut payload).await?;
    Ok(Frame::SessionData { session, payload })
}

/// Decodes a frame body given its kind byte.
pub fn decode_body(kind: u8, payload: Vec<u8>) -> Result<Frame, FrameError> {
    match kind {
        KIND_CONTROL => serde_json::from_slice(&payload)
            .map(Frame::Control)
            .map_err(|e| FrameError::Malformed(e.to_string())),
        KIND_DATA => Ok(Frame::Data(payload)),
        KIND_SESSION_DATA => {
            let (session, skip) = session_prefix_of(&payload)?;
            let mut payload = payload;
            payload.drain(..skip);
            Ok(Frame::SessionData { session, payload })
        }
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// [`decode_body`] from a borrowed body: copies only what the frame keeps
/// (a session data frame's payload once, without its session ID), for
/// bodies that arrive in a buffer of their own (a NATS message).
pub fn decode_body_from(kind: u8, body: &[u8]) -> Result<Frame, FrameError> {
    if kind != KIND_SESSION_DATA {
        return decode_body(kind, body.to_vec());
    }
    let (session, skip) = session_prefix_of(body)?;
    Ok(Frame::SessionData {
        session,
        payload: body[skip..].to_vec(),
    })
}

/// A session data body's session ID, and the bytes it takes.
fn session_prefix_of(body: &[u8]) -> Result<(String, usize), FrameError> {
    let n = usize::from(*body.first().ok_or(FrameError::Empty)?);
    if n > MAX_SESSION_ID_BYTES || body.len() < 1 + n {
        return Err(FrameError::Malformed(format!(
            "session data frame with a bad session ID length {n}"
        )));
    }
    let session = std::str::from_utf8(&body[1..1 + n])
        .map_err(|_| FrameError::Malformed("session ID is not UTF-8".into()))?
        .to_string();
    Ok((session, 1 + n))
}

/// Writes one frame and flushes it.
#[cfg(not(target_arch = "wasm32"))]
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> std::io::Result<()> {
    w.write_all(&frame.encode()).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    #[test]
    fn a_borrowed_body_decodes_as_an_owned_one() {
        let frames = [
            Frame::Control(Message::Ping { nonce: 7 }),
            Frame::Data(vec![1, 2, 3]),
            Frame::SessionData {
                session: "abc123".into(),
                payload: vec![4, 5],
            },
        ];
        for f in frames {
            let bytes = f.encode();
            let (kind, body) = (bytes[4], &bytes[5..]);
            assert_eq!(decode_body_from(kind, body).unwrap(), f);
            assert_eq!(decode_body(kind, body.to_vec()).unwrap(), f);
        }
        // A session ID longer than the body is refused either way.
        let bad = [9u8, b'a'];
        assert!(decode_body_from(KIND_SESSION_DATA, &bad).is_err());
        assert!(decode_body_from(KIND_SESSION_DATA, &[]).is_err());
    }

    #[tokio::test]
    async fn round_trip_control_and_data() {
        let frames = vec![
            Frame::Control(Message::Ping { nonce: 7 }),
            Frame::Data(vec![1, 2, 3]),
            Frame::SessionData {
                session: "abc123".into(),
                payload: vec![4, 5],
            },
        ];
        let mut buf = Vec::new();
        for f in &frames {
            buf.extend(f.encode());
        }
        let mut r = buf.as_slice();
        for f in &frames {
            assert_eq!(&read_frame(&mut r, MAX_FRAME_BYTES).await.unwrap(), f);
        }
        assert!(matches!(
            read_frame(&mut r, MAX_FRAME_BYTES).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_payload() {
        let mut buf = ((MAX_FRAME_BYTES + 2) as u32).to_be_bytes().to_vec();
        buf.push(KIND_DATA);
        let err = read_frame(&mut buf.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("exceeds the maximum"));
    }

    #[tokio::test]
    async fn garbage_is_malformed_or_unknown() {
        let mut buf = 5u32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"\x01abcd");
        let err = read_frame(&mut buf.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
        let mut buf = 2u32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"\x09x");
        let err = read_frame(&mut buf.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::UnknownKind(9)));
    }
}
