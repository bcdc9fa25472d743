//! Session content the broker relays sealed end to end: the report events
//! the agent records for it (`SessionMessage::Record`), and the trace log
//! of what passes through the relay.
//!
//! The broker cannot read sealed content, so the customer's side keeps
//! the report: the agent records every content message it sent and every
//! one it opened, in the words the broker used when it still read them
//! (`lifeline_protocol::report_text`). docs/security.md says why the
//! customer's side and what that trusts.

use lifeline_protocol::{Party, SessionMessage};

use crate::quota::MAX_CHAT_CHARS;

/// Report events an agent may record: those `report_text` words for
/// content messages, and nothing the broker records itself (lifecycle,
/// access, streams), so an agent cannot write the broker's part.
pub const RECORD_EVENTS: &[&str] = &[
    "chat",
    "consent_request",
    "consent",
    "plugin_run",
    "plugin_output",
    "plugin_done",
    "plugin",
    "run_as",
    "script_output",
    "script_done",
    "scripts_done",
];

/// Whether an agent's record may go into the report; why not otherwise.
pub fn check(event: &str, party: Party, text: &str) -> Result<(), String> {
    if !RECORD_EVENTS.contains(&event) {
        return Err(format!(
            "record of event {event:?} refused: an agent records only {}",
            RECORD_EVENTS.join(", ")
        ));
    }
    if !matches!(party, Party::Customer | Party::Operator) {
        return Err(format!(
            "record by {party:?} refused: an agent records what the customer's side or an operator said"
        ));
    }
    if event == "chat" && text.chars().count() > MAX_CHAT_CHARS {
        return Err(format!(
            "chat message not recorded: it is longer than {MAX_CHAT_CHARS} characters"
        ));
    }
    if text.is_empty() {
        return Err(format!(
            "record of event {event:?} refused: its text is empty"
        ));
    }
    Ok(())
}

/// Logs at trace level the session message the relay forwards, exactly as
/// it goes on (target `lifeline::relay`): what an operator of the broker
/// would see by reading its memory. Sealed content shows as base64.
pub fn trace_relayed(session: &str, from: &str, msg: &SessionMessage) {
    if tracing::enabled!(target: "lifeline::relay", tracing::Level::TRACE) {
        let json = serde_json::to_string(msg).unwrap_or_default();
        tracing::trace!(target: "lifeline::relay", %session, from, relayed = %json);
    }
}

/// As [`trace_relayed`], for a data frame's payload (non-text bytes
/// escaped).
pub fn trace_relayed_data(session: &str, from: &str, payload: &[u8]) {
    if tracing::enabled!(target: "lifeline::relay", tracing::Level::TRACE) {
        let text = payload.escape_ascii().to_string();
        tracing::trace!(target: "lifeline::relay", %session, from, relayed_data = %text);
    }
}
