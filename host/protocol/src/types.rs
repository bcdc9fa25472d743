//! Plain data shared by the wire messages and the roles.

use serde::{Deserialize, Serialize};

/// Machine-readable error codes; each comes with a human message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The client speaks another protocol version.
    VersionMismatch,
    /// The first message was not a valid `Hello`.
    BadHandshake,
    /// A message was malformed or not allowed in this state.
    BadMessage,
    /// Login failed (unknown user or wrong password; never says which).
    BadCredentials,
    /// The request needs a logged-in operator.
    NotLoggedIn,
    /// Connection ID or link token unknown, expired or already used.
    InvalidInvitation,
    /// Too many wrong guesses, connections from one source, or logins being
    /// checked at once (busy); try again later.
    RateLimited,
    /// The session does not exist or is not this operator's.
    NoSuchSession,
    /// The session exists but is not in a state that allows this.
    WrongState,
    /// A field failed validation.
    Invalid,
    /// Something broke on the broker; details are in its log.
    Internal,
}

/// A side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Operator,
    Customer,
    Broker,
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Party::Operator => "operator",
            Party::Customer => "customer",
            Party::Broker => "broker",
        })
    }
}

/// How an agent proves which invitation it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum JoinCredential {
    /// The 6-digit connection ID.
    ConnectionId(String),
    /// The token of a personalised link.
    LinkToken(String),
    /// The code of a short link.
    ShortCode(String),
}

/// Session lifecycle states (see `lifeline_core::session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Invitation issued, customer not yet joined.
    Invited,
    /// Customer joined; waiting for the operator ("ready").
    Waiting,
    /// Operator and customer both present.
    Connected,
    /// Reserved: the customer's access is suspended (run-as login).
    Suspended,
    /// Reserved: the customer's machine is rebooting and will rejoin.
    Rebooting,
    /// The broker restarted mid-session: the session waits for the
    /// customer's agent to resume it with its resume credential.
    Reconnecting,
    /// Over; no further traffic.
    Ended,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Invited => "invited",
            SessionState::Waiting => "waiting",
            SessionState::Connected => "connected",
            SessionState::Suspended => "suspended",
            SessionState::Rebooting => "rebooting",
            SessionState::Reconnecting => "reconnecting",
            SessionState::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SessionState::Invited,
            SessionState::Waiting,
            SessionState::Connected,
            SessionState::Suspended,
            SessionState::Rebooting,
            SessionState::Reconnecting,
            SessionState::Ended,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorProfile {
    pub username: String,
    pub name: String,
    pub email: String,
    pub title: String,
}

/// What the agent learns about the session it joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub ticket: String,
    pub end_user: String,
}

/// One line of the session list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: String,
    pub operator: String,
    pub ticket: String,
    pub end_user: String,
    pub state: SessionState,
    pub customer_host: Option<String>,
    /// RFC 3339 timestamps.
    pub created_at: String,
    pub ended_at: Option<String>,
}

/// A freshly created invitation, in every form the customer can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationInfo {
    pub session_id: String,
    pub ticket: String,
    pub end_user: String,
    pub connection_id: String,
    pub link: String,
    pub short_link: String,
    pub expires_at: String,
}

/// The customer's (or policy's) answer to a consent request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentDecision {
    AllowOnce,
    AllowSession,
    Deny,
}

impl ConsentDecision {
    pub fn is_allowed(self) -> bool {
        !matches!(self, ConsentDecision::Deny)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentDecision::AllowOnce => "allow once",
            ConsentDecision::AllowSession => "allow for this session",
            ConsentDecision::Deny => "deny",
        }
    }
}

/// One entry of a session report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportEvent {
    /// Position in the session, from 1, without gaps.
    pub seq: u64,
    /// RFC 3339 timestamp with milliseconds (UTC).
    pub at: String,
    /// Short machine-readable kind: invitation, join, connect, chat, consent, end, error, ...
    pub kind: String,
    /// Who caused it.
    pub actor: Party,
    /// Human-readable text.
    pub text: String,
}

/// A plugin command as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginCommandInfo {
    pub name: String,
    pub description: String,
    /// Argument names; a trailing `?` marks an optional one.
    pub args: Vec<String>,
}

/// A plugin an agent has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSummary {
    pub id: String,
    pub version: String,
    pub runtime: String,
    pub description: String,
    pub commands: Vec<PluginCommandInfo>,
    pub capabilities: Vec<String>,
}

/// A file of a script, as uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUpload {
    /// File name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// Content, base64.
    pub data_b64: String,
}

/// A script of the library, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptInfo {
    pub name: String,
    pub category: String,
    pub description: String,
    pub owner: String,
    pub published: bool,
    pub exec_name: String,
    pub exec_bytes: u64,
    pub input_name: Option<String>,
    /// SHA-256 of the execution file, hex.
    pub sha256: String,
    pub created_at: String,
    pub updated_at: String,
}

/// What the customer is shown of each script of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptMeta {
    pub name: String,
    pub description: String,
    /// SHA-256 of the execution file, hex.
    pub sha256: String,
    pub exec_name: String,
    pub input_name: Option<String>,
    /// SHA-256 of the input file, hex, when the script has one: the
    /// customer consents to both files, and the agent refuses a batch whose
    /// input file does not match.
    #[serde(default)]
    pub input_sha256: Option<String>,
}

/// How a script ended, in words: "exit code 0", "timed out", "failed: …".
pub fn script_outcome(exit_code: Option<i32>, timed_out: bool, error: Option<&str>) -> String {
    match (error, exit_code, timed_out) {
        (Some(e), _, _) => format!("failed: {e}"),
        (None, _, true) => "timed out".into(),
        (None, Some(c), false) => format!("exit code {c}"),
        (None, None, false) => "ended by a signal".into(),
    }
}

/// A secret on the wire (a password the operator types for a run-as login):
/// serialised as a plain string inside the encrypted session, but never
/// shown by `Debug` or `Display`, so it cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Overwrite the bytes before the allocation is freed.
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// `text` with everything that could steer a terminal removed: control
/// characters (C0 but tab and line feed, DEL, C1 — so no escape sequence
/// can start) and the Unicode bidirectional overrides and isolates that
/// reorder what is shown. Printed text from the other side (chat, host
/// names, plugin and script output) goes through this first.
///
/// Threat: a hostile customer's agent sending escape sequences that rewrite
/// the operator's screen, set the window title, or fake a prompt.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    fn steers(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
    }
    if text.chars().any(steers) {
        std::borrow::Cow::Owned(text.chars().filter(|c| !steers(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod terminal_tests {
    use super::terminal_safe;

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        let hostile = "ok\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hfake prompt\r\u{9b}31m\u{202E}txt.exe";
        let safe = terminal_safe(hostile);
        assert!(!safe.chars().any(|c| c.is_control()), "{safe:?}");
        assert!(!safe.contains('\u{202E}'));
        assert_eq!(terminal_safe("line 1\n\tline 2"), "line 1\n\tline 2");
    }
}
