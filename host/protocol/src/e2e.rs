//! End-to-end encrypted session content, on both ends: which session
//! messages are content (sealed between an operator endpoint and the agent,
//! never readable by the broker), and the two state machines that wrap
//! `lifeline_e2e`'s handshake and channel in session messages.
//!
//! - An operator endpoint (one operator client connection, or one web
//!   console tab, per attached session) runs an [`OperatorEnd`]: it sends
//!   [`SessionMessage::E2eHello`], reads the agent's
//!   [`SessionMessage::E2eReply`], sends the confirm, and from then on seals
//!   every message it sends and opens every [`SessionMessage::Sealed`] for
//!   its endpoint number.
//! - The agent runs one [`AgentEnds`] per session: a channel per operator
//!   endpoint, up to [`MAX_ENDPOINTS`]. It seals what it sends once per
//!   ready endpoint.
//!
//! Both ends refuse content that arrives in the clear: what the broker may
//! say itself (session state, the end, the script library's batches,
//! stream announcements, the customer's access) is listed in
//! [`SessionMessage::is_content`].

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lifeline_e2e::{Channel, E2eError, Initiator, Responder};

use crate::message::SessionMessage;
use crate::stream::TAG_SEALED;

/// Most end-to-end channels an agent keeps per session: one per operator
/// endpoint that said hello. Beyond it the oldest is closed, so a broker or
/// operator client that keeps saying hello cannot grow the agent's memory.
pub const MAX_ENDPOINTS: usize = 16;

/// Bytes before the sealed bytes in a data frame: the tag and the endpoint.
pub const DATA_HEADER_BYTES: usize = 9;

/// Largest session message (its JSON) that can be sealed: base64 makes
/// it 4/3 larger, and the envelope must still fit in one frame
/// ([`crate::MAX_FRAME_BYTES`]) with room for the session ID and field
/// names. A larger one is refused with [`SealError::TooLarge`]; the
/// sender splits or cuts it (plugin output lines are far smaller).
pub const MAX_SEALED_JSON_BYTES: usize = (crate::MAX_FRAME_BYTES - 4096) / 4 * 3 - 64;

impl SessionMessage {
    /// Whether this message is session content: sealed end to end, refused
    /// when it arrives in the clear. The rest is what the broker itself
    /// originates or needs to see (lifecycle, the script library's
    /// batches, stream announcements for its flow control and report,
    /// the customer's access during a run-as login) and the end-to-end
    /// envelope itself.
    pub fn is_content(&self) -> bool {
        use SessionMessage as M;
        match self {
            M::Chat { .. }
            | M::ConsentRequest { .. }
            | M::ConsentAnswer { .. }
            | M::ListPlugins { .. }
            | M::Plugins { .. }
            | M::RunPlugin { .. }
            | M::PluginOutput { .. }
            | M::PluginDone { .. }
            | M::ConsentDecided { .. }
            | M::PluginNotice { .. }
            | M::ScriptOutput { .. }
            | M::ScriptDone { .. }
            | M::BatchDone { .. }
            | M::CredentialRequest { .. }
            | M::CredentialReply { .. } => true,
            M::End { .. }
            | M::State { .. }
            | M::StreamOpened { .. }
            | M::StreamClosed { .. }
            | M::ScriptBatch { .. }
            | M::ScriptFiles { .. }
            | M::Access { .. }
            | M::E2eHello { .. }
            | M::E2eReply { .. }
            | M::Sealed { .. }
            | M::E2eClosed { .. }
            | M::Record { .. } => false,
        }
    }
}

/// Why a message could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the end-to-end channel is not established yet")]
    NotReady,
    #[error(transparent)]
    E2e(#[from] E2eError),
    #[error("a sealed message is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("a sealed message does not hold a session message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a sealed message holds {0}, which is never sealed")]
    NotContent(&'static str),
    #[error(
        "a {kind} message of {len} bytes is too large to seal (at most {MAX_SEALED_JSON_BYTES})"
    )]
    TooLarge { kind: &'static str, len: usize },
}

/// What an operator endpoint does with one message from the broker.
#[derive(Debug)]
pub enum OperatorIncoming {
    /// Hand this on: opened from the channel, or said by the broker in
    /// the clear and allowed to be.
    Deliver(SessionMessage),
    /// The channel is ready: send `confirm` first, then show `sas`.
    Ready {
        confirm: SessionMessage,
        sas: String,
    },
    /// For another endpoint of the same session.
    Ignore,
    /// Refused (content in the clear, or a sealed message that did not
    /// open: the channel is closed then and [`OperatorEnd::is_closed`]).
    Refused(String),
}

enum OpState {
    Waiting(Box<Initiator>),
    Ready(Channel),
    Closed,
}

/// An operator endpoint's end of one session's channel.
pub struct OperatorEnd {
    endpoint: u64,
    state: OpState,
}

impl OperatorEnd {
    /// Starts a channel for `session_id` as endpoint `endpoint` (random,
    /// from the caller); `seed`: 32 bytes from a secure random source.
    /// Returns the hello to send.
    pub fn start(
        session_id: &str,
        endpoint: u64,
        seed: [u8; 32],
    ) -> Result<(OperatorEnd, SessionMessage), SealError> {
        let (init, hello) = Initiator::start(session_id, endpoint, seed)?;
        let msg = SessionMessage::E2eHello {
            endpoint,
            operator: String::new(),
            noise: B64.encode(hello),
        };
        let end = OperatorEnd {
            endpoint,
            state: OpState::Waiting(Box::new(init)),
        };
        Ok((end, msg))
    }

    pub fn endpoint(&self) -> u64 {
        self.endpoint
    }

    /// The code to compare with the customer's, once ready.
    pub fn sas(&self) -> Option<&str> {
        match &self.state {
            OpState::Ready(c) => Some(c.sas()),
            _ => None,
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.state, OpState::Ready(_))
    }

    /// Closed by a failure here or the agent's `E2eClosed`: start anew.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, OpState::Closed)
    }

    /// Handles one session message from the broker.
    pub fn incoming(&mut self, msg: SessionMessage) -> OperatorIncoming {
        use SessionMessage as M;
        match msg {
            M::E2eReply { endpoint, noise } if endpoint == self.endpoint => self.finish(&noise),
            M::Sealed { endpoint, data } if endpoint == self.endpoint => self.open(&data),
            M::E2eClosed { endpoint, reason } if endpoint == self.endpoint => {
                self.state = OpState::Closed;
                OperatorIncoming::Refused(format!(
                    "the agent closed the end-to-end channel: {reason}"
                ))
            }
            M::E2eReply { .. } | M::Sealed { .. } | M::E2eClosed { .. } => OperatorIncoming::Ignore,
            msg if msg.is_content() => OperatorIncoming::Refused(format!(
                "refused {} that arrived unencrypted: session content comes only through the end-to-end channel",
                msg.kind_name()
            )),
            msg => OperatorIncoming::Deliver(msg),
        }
    }

    fn finish(&mut self, noise: &str) -> OperatorIncoming {
        let OpState::Waiting(init) = std::mem::replace(&mut self.state, OpState::Closed) else {
            return OperatorIncoming::Refused("an end-to-end answer came twice".into());
        };
        let done = B64
            .decode(noise)
            .map_err(SealError::from)
            .and_then(|reply| init.finish(&reply).map_err(SealError::from));
        match done {
            Ok((channel, confirm)) => {
                let sas = channel.sas().to_string();
                self.state = OpState::Ready(channel);
                let confirm = sealed_msg(self.endpoint, &confirm);
                OperatorIncoming::Ready { confirm, sas }
            }
            Err(e) => OperatorIncoming::Refused(e.to_string()),
        }
    }

    fn open(&mut self, data: &str) -> OperatorIncoming {
        let OpState::Ready(channel) = &mut self.state else {
            return OperatorIncoming::Refused(
                "a sealed message before the channel was ready".into(),
            );
        };
        match open_message(channel, data) {
            Ok(msg) => OperatorIncoming::Deliver(msg),
            Err(e) => {
                self.state = OpState::Closed;
                OperatorIncoming::Refused(e.to_string())
            }
        }
    }

    /// Seals a content message for the agent.
    pub fn seal(&mut self, msg: &SessionMessage) -> Result<SessionMessage, SealError> {
        let OpState::Ready(channel) = &mut self.state else {
            return Err(SealError::NotReady);
        };
        seal_message(channel, self.endpoint, msg)
    }

    /// Seals a data frame's payload (a stream frame) for the agent.
    pub fn seal_data(&mut self, payload: &[u8]) -> Result<Vec<u8>, SealError> {
        let OpState::Ready(channel) = &mut self.state else {
            return Err(SealError::NotReady);
        };
        Ok(data_frame(self.endpoint, &channel.seal_data(payload)?))
    }

    /// Opens a data frame's payload from the agent: `Ok(None)` when it is
    /// another endpoint's.
    pub fn open_data(&mut self, payload: &[u8]) -> Result<Option<Vec<u8>>, SealError> {
        let Some((endpoint, sealed)) = split_data(payload) else {
            return Err(SealError::NotContent("an unencrypted data frame"));
        };
        if endpoint != self.endpoint {
            return Ok(None);
        }
        let OpState::Ready(channel) = &mut self.state else {
            return Err(SealError::NotReady);
        };
        Ok(Some(channel.open_data(sealed)?))
    }
}

fn sealed_msg(endpoint: u64, bytes: &[u8]) -> SessionMessage {
    SessionMessage::Sealed {
        endpoint,
        data: B64.encode(bytes),
    }
}

fn seal_message(
    channel: &mut Channel,
    endpoint: u64,
    msg: &SessionMessage,
) -> Result<SessionMessage, SealError> {
    if !msg.is_content() {
        return Err(SealError::NotContent(msg.kind_name()));
    }
    let json = zeroize::Zeroizing::new(serde_json::to_vec(msg)?);
    if json.len() > MAX_SEALED_JSON_BYTES {
        return Err(SealError::TooLarge {
            kind: msg.kind_name(),
            len: json.len(),
        });
    }
    Ok(sealed_msg(endpoint, &channel.seal_control(&json)?))
}

fn open_message(channel: &mut Channel, data: &str) -> Result<SessionMessage, SealError> {
    let sealed = B64.decode(data)?;
    let json = zeroize::Zeroizing::new(channel.open_control(&sealed)?);
    let msg: SessionMessage = serde_json::from_slice(&json)?;
    if !msg.is_content() {
        return Err(SealError::NotContent(msg.kind_name()));
    }
    Ok(msg)
}

/// A sealed data frame's payload: [`TAG_SEALED`], the endpoint (u64 BE),
/// the sealed bytes.
fn data_frame(endpoint: u64, sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_HEADER_BYTES + sealed.len());
    out.push(TAG_SEALED);
    out.extend_from_slice(&endpoint.to_be_bytes());
    out.extend_from_slice(sealed);
    out
}

/// The endpoint and sealed bytes of a sealed data frame's payload.
pub fn split_data(payload: &[u8]) -> Option<(u64, &[u8])> {
    if payload.len() < DATA_HEADER_BYTES || payload[0] != TAG_SEALED {
        return None;
    }
    let endpoint = u64::from_be_bytes(payload[1..9].try_into().ok()?);
    Some((endpoint, &payload[9..]))
}

/// What the agent does with one message from the broker.
#[derive(Debug)]
pub enum AgentIncoming {
    /// Hand this on. `operator`: the name the broker gave the endpoint it
    /// came through (opened content), or `None` (the broker's own, in the
    /// clear).
    Deliver {
        msg: SessionMessage,
        operator: Option<String>,
    },
    /// Send this (the handshake's answer, or `E2eClosed`).
    Reply(SessionMessage),
    /// A channel is ready: show the customer `sas` beside `operator`.
    Ready {
        endpoint: u64,
        operator: String,
        sas: String,
    },
    /// The broker says the operator endpoint left (its connection
    /// detached or closed): its channel is gone, and nothing more is
    /// sealed for it.
    Gone { endpoint: u64, reason: String },
    /// Refused, and why (for the agent's log). `reply`, when present,
    /// tells the endpoint its channel is closed.
    Refused {
        why: String,
        reply: Option<SessionMessage>,
    },
}

enum AgentState {
    Pending(Box<Responder>),
    Ready(Channel),
}

struct AgentEnd {
    operator: String,
    state: AgentState,
    /// Order of arrival, to close the oldest beyond [`MAX_ENDPOINTS`].
    since: u64,
}

/// The agent's channels for one session.
pub struct AgentEnds {
    session_id: String,
    ends: BTreeMap<u64, AgentEnd>,
    hellos: u64,
}

impl AgentEnds {
    pub fn new(session_id: &str) -> AgentEnds {
        AgentEnds {
            session_id: session_id.to_string(),
            ends: BTreeMap::new(),
            hellos: 0,
        }
    }

    /// Forgets every channel (the agent restarted, or the session ended).
    pub fn clear(&mut self) {
        self.ends.clear();
    }

    /// The ready channels: endpoint, operator, code.
    pub fn ready(&self) -> Vec<(u64, String, String)> {
        self.ends
            .iter()
            .filter_map(|(e, end)| match &end.state {
                AgentState::Ready(c) => Some((*e, end.operator.clone(), c.sas().to_string())),
                AgentState::Pending(_) => None,
            })
            .collect()
    }

    /// Handles one session message from the broker; `seed`: 32 fresh
    /// bytes from a secure random source (used for a hello).
    pub fn incoming(&mut self, msg: SessionMessage, seed: [u8; 32]) -> AgentIncoming {
        use SessionMessage as M;
        match msg {
            M::E2eHello {
                endpoint,
                operator,
                noise,
            } => self.hello(endpoint, operator, &noise, seed),
            M::Sealed { endpoint, data } => self.open(endpoint, &data),
            M::E2eClosed { endpoint, reason } => {
                self.ends.remove(&endpoint);
                AgentIncoming::Gone { endpoint, reason }
            }
            msg @ (M::E2eReply { .. } | M::Record { .. }) => AgentIncoming::Refused {
                why: format!("{} is never sent to an agent", msg.kind_name()),
                reply: None,
            },
            msg if msg.is_content() => AgentIncoming::Refused {
                why: format!(
                    "refused {} that arrived unencrypted: session content comes only through the end-to-end channel",
                    msg.kind_name()
                ),
                reply: None,
            },
            msg => AgentIncoming::Deliver {
                msg,
                operator: None,
            },
        }
    }

    fn hello(
        &mut self,
        endpoint: u64,
        operator: String,
        noise: &str,
        seed: [u8; 32],
    ) -> AgentIncoming {
        let accepted = B64
            .decode(noise)
            .map_err(SealError::from)
            .and_then(|hello| {
                Responder::accept(&self.session_id, endpoint, &hello, seed).map_err(SealError::from)
            });
        let (responder, reply) = match accepted {
            Ok(r) => r,
            Err(e) => return self.refuse(endpoint, e.to_string()),
        };
        self.hellos += 1;
        self.ends.insert(
            endpoint,
            AgentEnd {
                operator,
                state: AgentState::Pending(Box::new(responder)),
                since: self.hellos,
            },
        );
        if self.ends.len() > MAX_ENDPOINTS {
            let oldest = self
                .ends
                .iter()
                .min_by_key(|(_, end)| end.since)
                .map(|(e, _)| *e);
            if let Some(oldest) = oldest {
                self.ends.remove(&oldest);
            }
        }
        AgentIncoming::Reply(SessionMessage::E2eReply {
            endpoint,
            noise: B64.encode(reply),
        })
    }

    fn open(&mut self, endpoint: u64, data: &str) -> AgentIncoming {
        let Some(end) = self.ends.remove(&endpoint) else {
            return self.refuse(endpoint, "no end-to-end channel with this endpoint".into());
        };
        let AgentEnd {
            operator,
            state,
            since,
        } = end;
        let result = match state {
            AgentState::Pending(responder) => B64
                .decode(data)
                .map_err(SealError::from)
                .and_then(|confirm| responder.confirm(&confirm).map_err(SealError::from))
                .map(|channel| (channel, None)),
            AgentState::Ready(mut channel) => {
                open_message(&mut channel, data).map(|msg| (channel, Some(msg)))
            }
        };
        match result {
            Err(e) => self.refuse(endpoint, e.to_string()),
            Ok((channel, opened)) => {
                let sas = channel.sas().to_string();
                self.ends.insert(
                    endpoint,
                    AgentEnd {
                        operator: operator.clone(),
                        state: AgentState::Ready(channel),
                        since,
                    },
                );
                match opened {
                    None => AgentIncoming::Ready {
                        endpoint,
                        operator,
                        sas,
                    },
                    Some(msg) => AgentIncoming::Deliver {
                        msg,
                        operator: Some(operator),
                    },
                }
            }
        }
    }

    fn refuse(&mut self, endpoint: u64, why: String) -> AgentIncoming {
        self.ends.remove(&endpoint);
        let reply = SessionMessage::E2eClosed {
            endpoint,
            reason: why.clone(),
        };
        AgentIncoming::Refused {
            why,
            reply: Some(reply),
        }
    }

    /// Seals a content message once per ready channel.
    pub fn seal_all(&mut self, msg: &SessionMessage) -> Result<Vec<SessionMessage>, SealError> {
        let mut out = Vec::new();
        for (endpoint, end) in &mut self.ends {
            if let AgentState::Ready(channel) = &mut end.state {
                out.push(seal_message(channel, *endpoint, msg)?);
            }
        }
        Ok(out)
    }

    /// Seals a data frame's payload once per ready channel.
    pub fn seal_data_all(&mut self, payload: &[u8]) -> Result<Vec<Vec<u8>>, SealError> {
        let mut out = Vec::new();
        for (endpoint, end) in &mut self.ends {
            if let AgentState::Ready(channel) = &mut end.state {
                out.push(data_frame(*endpoint, &channel.seal_data(payload)?));
            }
        }
        Ok(out)
    }

    /// Opens a data frame's payload from an operator endpoint.
    pub fn open_data(&mut self, payload: &[u8]) -> Result<(u64, Vec<u8>), SealError> {
        let Some((endpoint, sealed)) = split_data(payload) else {
            return Err(SealError::NotContent("an unencrypted data frame"));
        };
        let Some(AgentEnd {
            state: AgentState::Ready(channel),
            ..
        }) = self.ends.get_mut(&endpoint)
        else {
            return Err(SealError::NotReady);
        };
        Ok((endpoint, channel.open_data(sealed)?))
    }
}

impl SessionMessage {
    /// The message's `kind` as on the wire ("chat", "run_plugin", …), for
    /// errors and logs that must not show the content.
    pub fn kind_name(&self) -> &'static str {
        use SessionMessage as M;
        match self {
            M::Chat { .. } => "chat",
            M::ConsentRequest { .. } => "consent_request",
            M::ConsentAnswer { .. } => "consent_answer",
            M::End { .. } => "end",
            M::ListPlugins { .. } => "list_plugins",
            M::Plugins { .. } => "plugins",
            M::RunPlugin { .. } => "run_plugin",
            M::PluginOutput { .. } => "plugin_output",
            M::PluginDone { .. } => "plugin_done",
            M::ConsentDecided { .. } => "consent_decided",
            M::PluginNotice { .. } => "plugin_notice",
            M::StreamOpened { .. } => "stream_opened",
            M::StreamClosed { .. } => "stream_closed",
            M::ScriptBatch { .. } => "script_batch",
            M::ScriptFiles { .. } => "script_files",
            M::ScriptOutput { .. } => "script_output",
            M::ScriptDone { .. } => "script_done",
            M::BatchDone { .. } => "batch_done",
            M::State { .. } => "state",
            M::CredentialRequest { .. } => "credential_request",
            M::CredentialReply { .. } => "credential_reply",
            M::Access { .. } => "access",
            M::E2eHello { .. } => "e2e_hello",
            M::E2eReply { .. } => "e2e_reply",
            M::Sealed { .. } => "sealed",
            M::E2eClosed { .. } => "e2e_closed",
            M::Record { .. } => "record",
        }
    }
}

#[cfg(test)]
#[path = "e2e_tests.rs"]
mod tests;
