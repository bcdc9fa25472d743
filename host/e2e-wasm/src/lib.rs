//! The web console's end of the end-to-end encryption: one
//! [`OperatorEnd`] per attached session, behind a small C ABI ([`abi`]) so
//! that the browser runs the very code the operator client runs
//! (`lifeline_protocol::e2e`), compiled to `wasm32-unknown-unknown`.
//!
//! The broker serves this module to the page but never holds its keys: the
//! handshake's randomness comes from the browser (`crypto.getRandomValues`,
//! 32 bytes per channel), and the keys live in the module's memory only.
//! What the page itself trusts is in docs/security.md ("Web console").
//!
//! Everything crosses the boundary as JSON text (session messages exactly
//! as on the console's WebSocket) or bytes (data frames' payloads);
//! [`Channels`] is the safe, natively tested core, and [`abi`] only moves
//! bytes in and out of the module's memory.

pub mod abi;

use std::collections::BTreeMap;

use lifeline_protocol::SessionMessage;
use lifeline_protocol::e2e::{OperatorEnd, OperatorIncoming, SealError};
use serde::Serialize;

/// Most channels one page keeps at once: one per session it is attached
/// to. Threat: a page script bug starting channels in a loop would grow
/// the module's memory without end.
pub const MAX_CHANNELS: usize = 64;

/// Largest JSON text or data payload the module takes in one call: a
/// frame's payload (`lifeline_protocol::MAX_FRAME_BYTES`, 4 MiB) and some
/// room for base64 and JSON around it.
pub const MAX_INPUT_BYTES: usize = 6 << 20;

/// Why a call into the module failed; the page shows it and, for a
/// channel's failure, starts a new channel.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("no end-to-end channel {0} in this page (closed, or never started)")]
    NoChannel(u32),
    #[error("this page already holds {MAX_CHANNELS} end-to-end channels")]
    TooManyChannels,
    #[error("{what} of {len} bytes exceeds {MAX_INPUT_BYTES}")]
    TooLarge { what: &'static str, len: usize },
    #[error("not a session message: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("the seed is {0} bytes where 32 belong")]
    Seed(usize),
}

/// What the page does with one session message from the broker, as JSON
/// (`result` tags it).
#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Incoming {
    /// Hand `msg` to the page: opened from the channel, or the broker's
    /// own (lifecycle, streams, …) in the clear.
    Deliver { msg: SessionMessage },
    /// The channel is ready: send `confirm` before anything else, show
    /// `sas`.
    Ready {
        confirm: SessionMessage,
        sas: String,
    },
    /// Another endpoint's.
    Ignore,
    /// Refused: content in the clear, or a sealed message that did not
    /// open. `closed`: the channel is gone, start a new one.
    Refused { reason: String, closed: bool },
}

/// The page's channels, by handle (1, 2, …; never 0, which the ABI uses
/// for "no channel").
#[derive(Default)]
pub struct Channels {
    ends: BTreeMap<u32, OperatorEnd>,
    last: u32,
}

impl Channels {
    /// Starts a channel for `session_id` as endpoint `endpoint`; returns
    /// its handle and the hello (an `e2e_hello` session message, JSON) to
    /// send.
    pub fn start(
        &mut self,
        session_id: &str,
        endpoint: u64,
        seed: &[u8],
    ) -> Result<(u32, String), WasmError> {
        if self.ends.len() >= MAX_CHANNELS {
            return Err(WasmError::TooManyChannels);
        }
        let seed: [u8; 32] = seed.try_into().map_err(|_| WasmError::Seed(seed.len()))?;
        let (end, hello) = OperatorEnd::start(session_id, endpoint, seed)?;
        let hello = serde_json::to_string(&hello)?;
        let handle = self.next_handle();
        self.ends.insert(handle, end);
        Ok((handle, hello))
    }

    fn next_handle(&mut self) -> u32 {
        loop {
            self.last = self.last.checked_add(1).unwrap_or(1);
            if !self.ends.contains_key(&self.last) {
                return self.last;
            }
        }
    }

    /// Forgets a channel (detached, session over, or replaced).
    pub fn close(&mut self, handle: u32) {
        self.ends.remove(&handle);
    }

    /// Handles one session message (JSON) from the broker for the channel
    /// `handle`, or, with `None`, for a session this page holds no channel
    /// with: its content is refused, the broker's own messages pass.
    pub fn incoming(&mut self, handle: Option<u32>, json: &str) -> Incoming {
        if json.len() > MAX_INPUT_BYTES {
            return refused(WasmError::TooLarge {
                what: "a session message",
                len: json.len(),
            });
        }
        let msg: SessionMessage = match serde_json::from_str(json) {
            Ok(m) => m,
            Err(e) => return refused(WasmError::Json(e)),
        };
        let Some(handle) = handle else {
            return without_channel(msg);
        };
        let Some(end) = self.ends.get_mut(&handle) else {
            return refused(WasmError::NoChannel(handle));
        };
        match end.incoming(msg) {
            OperatorIncoming::Deliver(msg) => Incoming::Deliver { msg },
            OperatorIncoming::Ready { confirm, sas } => Incoming::Ready { confirm, sas },
            OperatorIncoming::Ignore => Incoming::Ignore,
            OperatorIncoming::Refused(reason) => Incoming::Refused {
                reason,
                closed: end.is_closed(),
            },
        }
    }

    /// Seals a content message (JSON) for the agent: the `sealed` session
    /// message (JSON) to send instead.
    pub fn seal(&mut self, handle: u32, json: &str) -> Result<String, WasmError> {
        if json.len() > MAX_INPUT_BYTES {
            return Err(WasmError::TooLarge {
                what: "a session message",
                len: json.len(),
            });
        }
        let msg: SessionMessage = serde_json::from_str(json)?;
        let sealed = self.end(handle)?.seal(&msg)?;
        Ok(serde_json::to_string(&sealed)?)
    }

    /// Seals a data frame's payload (a stream frame) for the agent.
    pub fn seal_data(&mut self, handle: u32, payload: &[u8]) -> Result<Vec<u8>, WasmError> {
        check_len("a data frame", payload)?;
        Ok(self.end(handle)?.seal_data(payload)?)
    }

    /// Opens a data frame's payload from the agent: `None` when it is
    /// another endpoint's.
    pub fn open_data(&mut self, handle: u32, payload: &[u8]) -> Result<Option<Vec<u8>>, WasmError> {
        check_len("a data frame", payload)?;
        Ok(self.end(handle)?.open_data(payload)?)
    }

    /// The channel's security code ("123 456") once ready.
    pub fn sas(&self, handle: u32) -> Result<Option<String>, WasmError> {
        let end = self.ends.get(&handle).ok_or(WasmError::NoChannel(handle))?;
        Ok(end.sas().map(str::to_string))
    }

    fn end(&mut self, handle: u32) -> Result<&mut OperatorEnd, WasmError> {
        self.ends
            .get_mut(&handle)
            .ok_or(WasmError::NoChannel(handle))
    }
}

fn check_len(what: &'static str, bytes: &[u8]) -> Result<(), WasmError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(WasmError::TooLarge {
            what,
            len: bytes.len(),
        });
    }
    Ok(())
}

fn refused(e: WasmError) -> Incoming {
    Incoming::Refused {
        reason: e.to_string(),
        closed: false,
    }
}

/// A message for a session without a channel here: the broker's own
/// pass, content is refused, the end-to-end envelope is someone else's.
fn without_channel(msg: SessionMessage) -> Incoming {
    use SessionMessage as M;
    match msg {
        M::E2eHello { .. } | M::E2eReply { .. } | M::Sealed { .. } | M::E2eClosed { .. } => {
            Incoming::Ignore
        }
        msg if msg.is_content() => Incoming::Refused {
            reason: format!(
                "refused {} that arrived unencrypted: session content comes only through the end-to-end channel",
                msg.kind_name()
            ),
            closed: false,
        },
        msg => Incoming::Deliver { msg },
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transcript;
