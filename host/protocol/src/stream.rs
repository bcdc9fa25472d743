//! Plugin streams on the wire: binary frames inside [`crate::Frame::Data`],
//! relayed by the broker without parsing, beside (not inside) the control
//! messages. A stream is announced by [`crate::SessionMessage::StreamOpened`]
//! and ended by [`crate::SessionMessage::StreamClosed`]; in between:
//!
//! ```text
//! +-----+----------------+-------------------+
//! | tag | stream: u32 BE | body ...          |
//! +-----+----------------+-------------------+
//! ```
//!
//! - [`TAG_FRAME`] (agent → operator): one frame of the plugin's stream.
//! - [`TAG_CREDIT`] (operator → agent): body is a u64 BE count of bytes the
//!   operator client can take more. Nothing flows before the first credit,
//!   so a stream nobody reads costs nothing; the agent never sends more than
//!   was granted, so a slow reader holds back the plugin, not memory.
//! - [`TAG_INPUT`] (operator → agent): a frame for the plugin (input events).

/// Tag of a data frame sealed end to end ([`crate::e2e`]): the endpoint
/// (u64 BE), then the sealed bytes of a whole stream frame as above.
/// Every stream frame travels sealed; the broker sees only this tag, the
/// endpoint and the size.
pub const TAG_SEALED: u8 = 0xE5;
/// Tag of a plugin's frame towards the operator side.
pub const TAG_FRAME: u8 = 1;
/// Tag of a credit grant towards the agent.
pub const TAG_CREDIT: u8 = 2;
/// Tag of an operator's frame towards the plugin.
pub const TAG_INPUT: u8 = 3;
/// Bytes before a stream frame's body.
pub const HEADER_BYTES: usize = 5;
/// Largest body of one stream frame: 1 MiB (a data frame is at most
/// [`crate::MAX_FRAME_BYTES`]; a bigger image is split by the plugin).
pub const MAX_STREAM_FRAME_BYTES: usize = 1 << 20;
/// Credit an operator client grants when it subscribes, unless told
/// otherwise: 1 MiB in flight per stream keeps a LAN link busy while
/// bounding what waits in queues for a slow reader.
pub const DEFAULT_WINDOW_BYTES: u64 = 1 << 20;
/// Most credit an agent holds for one stream; a larger grant is capped, so
/// a misbehaving operator client cannot make queued frames pile up.
pub const MAX_WINDOW_BYTES: u64 = 8 << 20;

/// One decoded stream frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamData {
    /// A frame of the plugin's stream.
    Frame { stream: u32, body: Vec<u8> },
    /// The operator side can take `bytes` more.
    Credit { stream: u32, bytes: u64 },
    /// A frame the operator sent to the plugin.
    Input { stream: u32, body: Vec<u8> },
}

/// Why a data frame is not a stream frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamDataError {
    #[error("stream frame of {0} bytes is shorter than its {HEADER_BYTES}-byte header")]
    Short(usize),
    #[error("unknown stream frame tag {0:#04x}")]
    UnknownTag(u8),
    #[error("a credit frame carries 8 bytes, not {0}")]
    BadCredit(usize),
    #[error("stream frame body of {len} bytes exceeds {MAX_STREAM_FRAME_BYTES}")]
    TooLarge { len: usize },
}

fn encode(tag: u8, stream: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.push(tag);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(body);
    out
}

impl StreamData {
    /// The payload of a [`crate::Frame::Data`].
    pub fn encode(&self) -> Vec<u8> {
        match self {
            StreamData::Frame { stream, body } => encode(TAG_FRAME, *stream, body),
            StreamData::Credit { stream, bytes } => {
                encode(TAG_CREDIT, *stream, &bytes.to_be_bytes())
            }
            StreamData::Input { stream, body } => encode(TAG_INPUT, *stream, body),
        }
    }

    /// Decodes the payload of a [`crate::Frame::Data`].
    pub fn decode(mut payload: Vec<u8>) -> Result<StreamData, StreamDataError> {
        if payload.len() < HEADER_BYTES {
            return Err(StreamDataError::Short(payload.len()));
        }
        let tag = payload[0];
        let stream = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
        let body = payload.split_off(HEADER_BYTES);
        if body.len() > MAX_STREAM_FRAME_BYTES {
            return Err(StreamDataError::TooLarge { len: body.len() });
        }
        match tag {
            TAG_FRAME => Ok(StreamData::Frame { stream, body }),
            TAG_INPUT => Ok(StreamData::Input { stream, body }),
            TAG_CREDIT => {
                let b: [u8; 8] = body
                    .as_slice()
                    .try_into()
                    .map_err(|_| StreamDataError::BadCredit(body.len()))?;
                Ok(StreamData::Credit {
                    stream,
                    bytes: u64::from_be_bytes(b),
                })
            }
            other => Err(StreamDataError::UnknownTag(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        for d in [
            StreamData::Frame {
                stream: 7,
                body: vec![1, 2, 3],
            },
            StreamData::Credit {
                stream: 1,
                bytes: 1 << 40,
            },
            StreamData::Input {
                stream: u32::MAX,
                body: vec![],
            },
        ] {
            assert_eq!(StreamData::decode(d.encode()).unwrap(), d);
        }
        assert_eq!(
            StreamData::decode(vec![1, 0, 0]),
            Err(StreamDataError::Short(3))
        );
        assert_eq!(
            StreamData::decode(vec![9, 0, 0, 0, 0]),
            Err(StreamDataError::UnknownTag(9))
        );
        assert_eq!(
            StreamData::decode(vec![TAG_CREDIT, 0, 0, 0, 0, 1]),
            Err(StreamDataError::BadCredit(1))
        );
    }
}
