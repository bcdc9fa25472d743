//! The agent's end of the end-to-end channels (`lifeline_protocol::e2e`):
//! one [`SessionEnds`] per session, shared by the session loop (control
//! messages: hellos, sealed content both ways) and the plugin streams
//! (data frames, sealed once per ready operator endpoint).
//!
//! The broker relays sealed content without reading it, so it no longer
//! checks what an operator sends: [`check_from_operator`] does here what
//! the broker's operator side did (lengths, names, the consent action).

use std::sync::{Mutex, MutexGuard, TryLockError};

use lifeline_core::capability::Capability;
use lifeline_core::link::FrameSender;
use lifeline_protocol::e2e::{AgentEnds, AgentIncoming, MAX_SEALED_JSON_BYTES, SealError};
use lifeline_protocol::types::ConsentDecision;
use lifeline_protocol::{Frame, SessionMessage, StreamData};
use rand::RngCore;
use zeroize::Zeroize;

/// Longest chat message, consent detail or plugin arguments (joined by
/// spaces) an operator may send, in characters: what the broker allowed
/// when it still read them.
pub const MAX_TEXT_CHARS: usize = 8 * 1024;

/// Longest plugin or command name an operator may send, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// The session's end-to-end channels.
pub struct SessionEnds {
    ends: Mutex<AgentEnds>,
    /// Held while a data frame is sealed and queued: a channel numbers
    /// its data frames and the operator endpoint accepts only rising
    /// numbers, so frames are queued in the order they were sealed even
    /// when several plugin streams send at once.
    data_order: Mutex<()>,
}

impl SessionEnds {
    pub fn new(session_id: &str) -> SessionEnds {
        SessionEnds {
            ends: Mutex::new(AgentEnds::new(session_id)),
            data_order: Mutex::new(()),
        }
    }

    fn ends(&self) -> MutexGuard<'_, AgentEnds> {
        self.ends.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one session message from the broker (see
    /// [`AgentEnds::incoming`]), with a fresh seed from the OS.
    pub fn incoming(&self, msg: SessionMessage) -> AgentIncoming {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let done = self.ends().incoming(msg, seed);
        seed.zeroize();
        done
    }

    /// Seals a content message once per ready channel.
    pub fn seal_all(&self, msg: &SessionMessage) -> Result<Vec<SessionMessage>, SealError> {
        self.ends().seal_all(msg)
    }

    /// The ready channels: endpoint, operator, code.
    pub fn ready(&self) -> Vec<(u64, String, String)> {
        self.ends().ready()
    }

    /// Opens a data frame from an operator endpoint: its endpoint and the
    /// stream frame inside. Unsealed frames are refused.
    pub fn open_data(&self, payload: &[u8]) -> Result<(u64, StreamData), String> {
        let (endpoint, plain) = self.ends().open_data(payload).map_err(|e| e.to_string())?;
        let data = StreamData::decode(plain)
            .map_err(|e| format!("a sealed data frame of endpoint {endpoint}: {e}"))?;
        Ok((endpoint, data))
    }

    /// Seals a stream frame for every ready channel and queues the copies
    /// on `link`, waiting while its queue is full (called from plugin
    /// threads, never from the runtime's own). False when the link is gone.
    pub fn send_data(
        &self,
        link: &FrameSender,
        rt: &tokio::runtime::Handle,
        payload: &[u8],
    ) -> bool {
        let _order = self.data_order.lock().unwrap_or_else(|p| p.into_inner());
        let Some(frames) = self.seal_data(payload) else {
            return false;
        };
        frames
            .into_iter()
            .all(|f| rt.block_on(link.send(Frame::Data(f))).is_ok())
    }

    /// As [`Self::send_data`], only if it can be done now: true when the
    /// frame went to at least one endpoint (or there is none to go to).
    pub fn try_send_data(&self, link: &FrameSender, payload: &[u8]) -> bool {
        let _order = match self.data_order.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let Some(frames) = self.seal_data(payload) else {
            return false;
        };
        let none = frames.is_empty();
        let sent = frames
            .into_iter()
            .map(|f| link.try_send(Frame::Data(f)).is_ok())
            .filter(|ok| *ok)
            .count();
        none || sent > 0
    }

    fn seal_data(&self, payload: &[u8]) -> Option<Vec<Vec<u8>>> {
        match self.ends().seal_data_all(payload) {
            Ok(frames) => Some(frames),
            Err(e) => {
                tracing::warn!("a stream frame of {} bytes not sent: {e}", payload.len());
                None
            }
        }
    }
}

/// Why an operator's content message is refused, and the sealed reply
/// that tells the operator, where the message has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub why: String,
    pub reply: Option<SessionMessage>,
}

/// Checks one content message opened from operator `operator`'s endpoint,
/// as the broker did before it relayed content sealed.
pub fn check_from_operator(operator: &str, msg: &SessionMessage) -> Result<(), Box<Refusal>> {
    use SessionMessage as M;
    match msg {
        M::Chat { text, .. } => {
            check_text("chat message", text, MAX_TEXT_CHARS, true).map_err(|why| {
                let text =
                    format!("the agent did not deliver a chat message from {operator}: {why}");
                refusal(why, M::PluginNotice { text })
            })
        }
        M::ConsentRequest {
            request_id,
            plugin,
            action,
            detail,
            ..
        } => check_consent_request(plugin, action, detail).map_err(|why| {
            let answer = M::ConsentAnswer {
                request_id: *request_id,
                decision: ConsentDecision::Deny,
                decided_by: format!("refused by the agent: {why}"),
                audit_hash: String::new(),
            };
            refusal(why, answer)
        }),
        M::RunPlugin {
            call_id,
            plugin,
            command,
            args,
        } => check_run_plugin(plugin, command, args).map_err(|why| {
            let done = M::PluginDone {
                call_id: *call_id,
                plugin: plugin.chars().take(MAX_NAME_CHARS).collect(),
                ok: false,
                text: format!("refused by the agent: {why}"),
            };
            refusal(why, done)
        }),
        M::ListPlugins { .. } | M::CredentialReply { .. } => Ok(()),
        other => Err(Box::new(Refusal {
            why: format!(
                "an operator endpoint sent {}, which only the agent sends",
                other.kind_name()
            ),
            reply: None,
        })),
    }
}

fn refusal(why: String, reply: SessionMessage) -> Box<Refusal> {
    Box::new(Refusal {
        why,
        reply: Some(reply),
    })
}

fn check_consent_request(plugin: &str, action: &str, detail: &str) -> Result<(), String> {
    check_text("consent detail", detail, MAX_TEXT_CHARS, false)?;
    check_text("plugin name", plugin, MAX_NAME_CHARS, true)?;
    if Capability::parse(action).is_none() {
        let action: String = action.chars().take(MAX_NAME_CHARS).collect();
        return Err(format!(
            "{action:?} is not a capability name; known: {}",
            Capability::known_names()
        ));
    }
    Ok(())
}

fn check_run_plugin(plugin: &str, command: &str, args: &[String]) -> Result<(), String> {
    check_text("plugin name", plugin, MAX_NAME_CHARS, true)?;
    check_text("command name", command, MAX_NAME_CHARS, true)?;
    check_text("plugin arguments", &args.join(" "), MAX_TEXT_CHARS, false)
}

/// `what` is at most `max` characters, not blank when `required`, and
/// holds no control characters but newlines and tabs.
fn check_text(what: &str, s: &str, max: usize, required: bool) -> Result<(), String> {
    if required && s.trim().is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if s.chars().count() > max {
        return Err(format!("the {what} is longer than {max} characters"));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(format!("the {what} contains control characters"));
    }
    Ok(())
}

/// Whether a chat line of the customer's may go: at most
/// [`MAX_TEXT_CHARS`], as an operator's.
pub fn check_customer_chat(text: &str) -> Result<(), String> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(format!(
            "chat message not sent: it is longer than {MAX_TEXT_CHARS} characters"
        ));
    }
    Ok(())
}

/// `msg` cut to what one sealed message carries
/// ([`MAX_SEALED_JSON_BYTES`]): a plugin's or script's text beyond it is
/// cut, and says so. Other messages are never that large.
pub fn fit(mut msg: SessionMessage) -> SessionMessage {
    use SessionMessage as M;
    loop {
        let len = serde_json::to_vec(&msg).map_or(0, |v| v.len());
        if len <= MAX_SEALED_JSON_BYTES {
            return msg;
        }
        let text = match &mut msg {
            M::PluginOutput { text, .. }
            | M::PluginDone { text, .. }
            | M::PluginNotice { text } => text,
            M::ScriptOutput { line, .. } => line,
            M::Chat { text, .. } => text,
            _ => return msg,
        };
        let mut keep = (text.len() / 2).min(MAX_SEALED_JSON_BYTES / 2);
        while !text.is_char_boundary(keep) {
            keep -= 1;
        }
        let cut = text.len() - keep;
        text.truncate(keep);
        text.push_str(&format!(" … ({cut} bytes cut: too large for one message)"));
    }
}

#[cfg(test)]
#[path = "e2e_tests.rs"]
mod tests;
