//! What the customer sends the agent from a window (or over the service's
//! socket): one JSON object per message.

use lifeline_protocol::ConsentDecision;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// Longest command (or event line on the service's socket) in bytes.
/// Threat: a local client making the agent buffer without bound; a chat
/// line of the protocol's size fits many times over.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A command of the customer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomerCommand {
    /// A chat line to the operator (never read as a command).
    Chat { text: String },
    /// The answer to consent request `id`.
    Consent { id: u64, answer: ConsentDecision },
    /// Stop every screen share (the consent for it is withdrawn).
    StopSharing,
    /// End the session.
    End,
}

/// Why a command line was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the command is {len} bytes long; at most {MAX_LINE_BYTES} are accepted")]
    TooLong { len: usize },
    #[error(
        "not a command: {source} (expected JSON such as {{\"type\":\"chat\",\"text\":\"…\"}}, {{\"type\":\"consent\",\"id\":1,\"answer\":\"allow_once|allow_session|deny\"}}, {{\"type\":\"stop_sharing\"}} or {{\"type\":\"end\"}})"
    )]
    Malformed {
        #[source]
        source: serde_json::Error,
    },
}

/// Parses one command.
pub fn parse(line: &str) -> Result<CustomerCommand, CommandError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(CommandError::TooLong { len: line.len() });
    }
    serde_json::from_str(line).map_err(|source| CommandError::Malformed { source })
}

/// A command on its way to the session, with where its outcome goes.
pub struct CommandRequest {
    pub command: CustomerCommand,
    pub reply: oneshot::Sender<Result<(), String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_malformed_ones_say_why() {
        assert_eq!(
            parse(r#"{"type":"consent","id":7,"answer":"allow_session"}"#).unwrap(),
            CustomerCommand::Consent {
                id: 7,
                answer: ConsentDecision::AllowSession
            }
        );
        assert_eq!(parse(r#"{"type":"end"}"#).unwrap(), CustomerCommand::End);
        for bad in [
            "",
            "chat hello",
            r#"{"type":"consent","id":7,"answer":"maybe"}"#,
            r#"{"type":"reboot"}"#,
            r#"{"type":"chat","text":"x","extra":1}"#,
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("not a command: "), "{bad:?}: {e}");
            assert!(e.contains("\"type\":\"end\""), "{e}");
        }
        let long = format!(
            r#"{{"type":"chat","text":"{}"}}"#,
            "a".repeat(MAX_LINE_BYTES)
        );
        assert!(matches!(parse(&long), Err(CommandError::TooLong { .. })));
    }
}
