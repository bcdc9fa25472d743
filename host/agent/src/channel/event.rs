//! What the agent shows the customer, as structured events: a window
//! renders them as it likes; a terminal prints [`CustomerEvent::text`].

use lifeline_protocol::{ConsentDecision, Party, SessionState};
use serde::{Deserialize, Serialize};

use crate::END_COMMAND;
use crate::prompt::{ALLOW_ONCE, ALLOW_SESSION, DENY};

/// Who helps the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Helper {
    pub name: String,
    pub title: String,
    /// The organisation behind the broker (the broker's name).
    pub organisation: String,
}

/// What a consent request asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKind {
    /// A plugin's capability: can be allowed for the rest of the session.
    Capability,
    /// The operator's own question: answered, never a grant.
    Question,
}

/// How a consent request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Answered,
    /// Nobody answered in time: denied.
    Expired,
}

/// A consent request put to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentAsk {
    /// Unique within the agent process; the answer names it.
    pub id: u64,
    pub operator: String,
    pub plugin: String,
    pub action: String,
    /// The manifest's consent text (or the operator's question).
    pub detail: String,
    /// The security code of the operator's end-to-end channel, shown
    /// beside their name (see [`CustomerEvent::Secured`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub kind: ConsentKind,
    /// The answers the customer may give.
    pub answers: Vec<ConsentDecision>,
    /// Unix milliseconds after which the agent denies.
    pub deadline_ms: i64,
    pub timeout_secs: u64,
}

/// One thing the customer should see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CustomerEvent {
    /// Free text without a structure of its own (warnings, script output).
    Line { text: String },
    /// The agent is in the session (`rejoined`: after a restart).
    Welcome {
        helper: Helper,
        ticket: String,
        rejoined: bool,
        /// Whether the operator is attached now.
        operator_present: bool,
    },
    /// The session's state as the broker tells it.
    State { state: SessionState, detail: String },
    /// An end-to-end channel with an endpoint of `operator` is ready:
    /// `code` is its security code, which the operator reads out; if the
    /// two differ, someone sits between them.
    Secured { operator: String, code: String },
    /// A chat line, either way.
    Chat {
        from: Party,
        name: String,
        text: String,
    },
    /// A consent request waiting for the customer's answer.
    Consent(ConsentAsk),
    /// A consent request was answered or expired.
    ConsentResolved {
        id: u64,
        resolution: Resolution,
        decision: ConsentDecision,
    },
    /// Screen sharing started or stopped (`by_customer`: their Stop).
    Sharing {
        active: bool,
        operator: String,
        plugin: String,
        by_customer: bool,
    },
    /// A run-as login suspends the customer's access (or it is back).
    Suspension {
        active: bool,
        operator: String,
        user: String,
        detail: String,
    },
    /// A plugin's announcement for the customer (a license offer).
    Notice { plugin: String, text: String },
    /// The session is over.
    Ended { by: Party, reason: String },
    /// A command of the customer's could not be carried out.
    Refused { message: String },
}

impl CustomerEvent {
    /// The event as terminal lines (`None`: nothing to print, e.g. the
    /// customer's own chat line).
    pub fn text(&self) -> Option<String> {
        use CustomerEvent as E;
        Some(match self {
            E::Line { text } => text.clone(),
            E::Welcome { .. } => welcome_text(self)?,
            E::State { detail, .. } => format!("* {detail}"),
            E::Secured { operator, code } => secured_text(operator, code),
            E::Chat {
                from: Party::Customer,
                ..
            } => return None,
            E::Chat { name, text, .. } => format!("[{name}] {text}"),
            E::Consent(ask) => question_text(ask),
            E::ConsentResolved {
                resolution: Resolution::Expired,
                ..
            } => "No answer in time: denied.".to_string(),
            E::ConsentResolved { .. } => return None,
            E::Sharing {
                active: true,
                operator,
                plugin,
                ..
            } => format!(
                "* {operator} now sees your screen (plugin {plugin}). To stop it, click \"Stop sharing\" at the top of your screen."
            ),
            E::Sharing {
                by_customer: true, ..
            } => "* You stopped screen sharing: the operator no longer sees your screen.".into(),
            E::Sharing { plugin, .. } => format!(
                "* Screen sharing ended (plugin {plugin}): the operator no longer sees your screen."
            ),
            E::Suspension {
                active: true,
                operator,
                user,
                ..
            } => format!(
                "* {operator} is now working on this computer as user {user}. Your access is suspended until they log out or the session ends; your messages are held. Type {END_COMMAND} to end the session."
            ),
            E::Suspension { user, detail, .. } => {
                format!("* The login as {user} ended ({detail}). Your access is restored.")
            }
            E::Notice { plugin, text } => format!("* [{plugin}] {text}"),
            E::Ended {
                by: Party::Customer,
                ..
            } => "* You ended the session.".into(),
            E::Ended { by, reason } => format!("* The session was ended by the {by}: {reason}"),
            E::Refused { message } => message.clone(),
        })
    }
}

fn welcome_text(ev: &CustomerEvent) -> Option<String> {
    let CustomerEvent::Welcome {
        helper,
        ticket,
        rejoined,
        operator_present,
    } = ev
    else {
        return None;
    };
    let who = if helper.title.is_empty() {
        helper.name.clone()
    } else {
        format!("{} ({})", helper.name, helper.title)
    };
    let how = format!(
        "Type a message and press Enter to chat. Type {END_COMMAND} to end the session at any time."
    );
    Some(if *rejoined {
        let mut s = format!(
            "You are back in the session with {who} (ticket {ticket}). Lifeline reconnected by itself after the restart.\n{how}"
        );
        if !operator_present {
            s.push_str("\nWaiting for the operator to reconnect…");
        }
        s
    } else {
        format!(
            "Connected to {}. {who} will help you with ticket {ticket}.\n{how}\nWaiting for the operator to connect…",
            helper.organisation
        )
    })
}

/// A ready channel's code, as the customer reads it at a terminal.
fn secured_text(operator: &str, code: &str) -> String {
    format!(
        "* Security code with {operator}: {code} — {operator} reads you the same code; if it differs, end the session ({END_COMMAND})."
    )
}

/// The question as the customer reads it at a terminal.
fn question_text(a: &ConsentAsk) -> String {
    let secs = a.timeout_secs;
    let who = match &a.code {
        Some(code) => format!("{} (security code {code})", a.operator),
        None => a.operator.clone(),
    };
    match a.kind {
        ConsentKind::Capability => format!(
            "\n*** Consent needed ***\n{who} wants plugin \"{}\" to use \"{}\":\n  {}\nType {ALLOW_ONCE} (this once), {ALLOW_SESSION} (this, as described, for the rest of the session) or {DENY}. Other lines are chat. No answer within {secs} s = deny.",
            a.plugin, a.action, a.detail
        ),
        ConsentKind::Question => format!(
            "\n*** Consent needed: a question from {who} ***\n  {}\n(about \"{}\" of plugin \"{}\"; your answer is recorded and gives no permission by itself)\nType {ALLOW_ONCE} or {DENY}. Other lines are chat. No answer within {secs} s = deny.",
            a.detail, a.action, a.plugin
        ),
    }
}
