//! The customer's side: join a session by connection ID or link (or rejoin
//! it after a restart), show who is helping, chat, answer consent requests,
//! and keep the audit log. One session is served by the `session` module: a
//! struct with its state, a short setup, a short loop and one small handler
//! per message kind.

pub mod admin;
pub mod admin_command;
pub mod assistance;
pub mod background;
pub mod channel;
pub mod config;
pub mod credential;
pub mod e2e;
pub mod joinfile;
pub mod native;
pub mod plugins;
pub mod prompt;
pub mod reboot;
pub mod reconnect;
pub mod runas;
pub mod screen;
pub mod scripts;
mod session;
pub mod window;
pub mod x11;

use std::sync::Arc;

use crate::config::AgentConfig;
use lifeline_core::audit::{AuditError, AuditLog};
use lifeline_core::client::ConnectError;
use lifeline_protocol::{JoinCredential, OperatorProfile, Party, SessionInfo};
use tokio::sync::mpsc;

pub use credential::{CredentialError, parse_credential};
pub use prompt::InputPrompter;
use session::setup::{lock_data_dir, record_teardown};
pub use session::{serve, serve_channel};

/// File name of the agent's audit log inside its data folder.
pub const AUDIT_FILE: &str = "audit.log";
/// Lock file that keeps two agents off one data folder.
pub const LOCK_FILE: &str = "agent.lock";
/// What the customer types to end the session.
pub const END_COMMAND: &str = "/end";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the broker refused to join: {0}")]
    JoinRefused(String),
    #[error("the connection to the broker was lost: {0}")]
    ConnectionLost(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("another agent is running with the data folder {0}")]
    Busy(std::path::PathBuf),
    #[error("cannot start the plugins: {0}")]
    Plugins(String),
    #[error(transparent)]
    Ticket(#[from] reboot::TicketError),
    #[error("could not rejoin the session: {0}")]
    RejoinRefused(String),
    #[error("{0}")]
    AssistanceOff(String),
    #[error(transparent)]
    Assistance(#[from] assistance::AssistanceError),
    #[error(transparent)]
    JoinFile(#[from] lifeline_core::join_file::JoinFileError),
    #[error("cannot create the agent data folder {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Where the agent shows things to the customer: a terminal, the demo, or
/// the customer channel ([`channel::Hub`]) a window listens to. Structured
/// events arrive through [`CustomerUi::event`]; a text-only UI prints them
/// as [`channel::CustomerEvent::text`] renders them.
pub trait CustomerUi: Send + Sync {
    /// A line of free text.
    fn show(&self, line: &str);
    /// A structured event (by default: its text, if any).
    fn event(&self, ev: &channel::CustomerEvent) {
        if let Some(text) = ev.text() {
            self.show(&text);
        }
    }
    /// Whether a person can see this and answer now (a terminal, or a
    /// connected window); a service's log is not one.
    fn attended(&self) -> bool {
        true
    }
}

/// Prints to standard output.
pub struct TerminalUi;

impl CustomerUi for TerminalUi {
    fn show(&self, line: &str) {
        // Operator text (chat, names) cannot steer the customer's terminal.
        println!("{}", lifeline_protocol::terminal_safe(line));
    }
}

/// The agent service's log (standard output, which the service manager
/// keeps): it prints like [`TerminalUi`], but nobody reads it live, so a
/// consent request the policy leaves to the customer is refused at once
/// unless a customer window is connected ([`lifeline_core::consent::DecidedBy::Absent`]).
pub struct ServiceLogUi;

impl CustomerUi for ServiceLogUi {
    fn show(&self, line: &str) {
        println!("{}", lifeline_protocol::terminal_safe(line));
    }

    fn attended(&self) -> bool {
        false
    }
}

/// How a session ended for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub session: SessionInfo,
    pub operator: OperatorProfile,
    pub ended_by: Party,
    pub reason: String,
}

/// How the agent enters its session.
pub enum Entry {
    /// A connection ID or link the customer typed.
    Join(JoinCredential),
    /// A rejoin ticket saved before a reboot.
    Rejoin(reboot::SavedTicket),
}

/// Longest pause between rejoin attempts (the network may come up after
/// the agent at boot; the broker may be rate limiting or busy).
pub const REJOIN_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the customer is: what they see, the lines they type, and the
/// commands of their window (see [`channel`]).
pub struct Customer {
    pub ui: Arc<dyn CustomerUi>,
    pub input: mpsc::Receiver<String>,
    pub commands: mpsc::Receiver<channel::CommandRequest>,
}

impl Customer {
    /// A customer at a terminal only (no window commands).
    pub fn terminal(ui: Arc<dyn CustomerUi>, input: mpsc::Receiver<String>) -> Customer {
        Customer {
            ui,
            input,
            commands: mpsc::channel(1).1,
        }
    }
}

/// Joins with `code_or_link` and runs the session until it ends. Lines the
/// customer types arrive on `input`; `/end` ends the session.
pub async fn run(
    cfg: &AgentConfig,
    code_or_link: &str,
    ui: Arc<dyn CustomerUi>,
    input: mpsc::Receiver<String>,
) -> Result<Outcome, AgentError> {
    join_with(cfg, code_or_link, Customer::terminal(ui, input)).await
}

/// [`run`] for a customer with a window as well.
pub async fn join_with(
    cfg: &AgentConfig,
    code_or_link: &str,
    customer: Customer,
) -> Result<Outcome, AgentError> {
    let credential = parse_credential(code_or_link)?;
    ensure_allowed(cfg)?;
    serve_channel(cfg, Entry::Join(credential), customer).await
}

/// Joins with a join file (checked against the broker first, see
/// [`joinfile::check`]) and runs the session until it ends.
pub async fn join_file_with(
    cfg: &AgentConfig,
    file: &lifeline_core::join_file::SignedJoinFile,
    customer: Customer,
) -> Result<Outcome, AgentError> {
    ensure_allowed(cfg)?;
    joinfile::check(cfg, file).await?;
    let credential = JoinCredential::LinkToken(file.fields.invitation.clone());
    serve_channel(cfg, Entry::Join(credential), customer).await
}

/// Refuses when "Allow remote assistance" is off (by the admin or the
/// customer), before anything connects.
pub fn ensure_allowed(cfg: &AgentConfig) -> Result<(), AgentError> {
    let switch = assistance::state(cfg.allow_remote_assistance, &cfg.data_dir)?;
    match switch.refusal() {
        Some(why) => Err(AgentError::AssistanceOff(why)),
        None => Ok(()),
    }
}

/// After a restart (the service's start): rejoins the session a saved
/// rejoin ticket is bound to and runs it until it ends. `Ok(None)` when no
/// ticket is waiting.
pub async fn rejoin(
    cfg: &AgentConfig,
    ui: Arc<dyn CustomerUi>,
    input: mpsc::Receiver<String>,
) -> Result<Option<Outcome>, AgentError> {
    rejoin_with(cfg, Customer::terminal(ui, input)).await
}

/// [`rejoin`] for a customer with a window as well.
pub async fn rejoin_with(
    cfg: &AgentConfig,
    customer: Customer,
) -> Result<Option<Outcome>, AgentError> {
    let ui = Arc::clone(&customer.ui);
    let Some(ticket) = reboot::load(&cfg.data_dir)? else {
        // Nothing to rejoin; still record a run-as login the last run left.
        let _lock = lock_data_dir(cfg)?;
        let mut audit = AuditLog::open(&cfg.data_dir.join(AUDIT_FILE))?;
        record_teardown(cfg, &mut audit, ui.as_ref())?;
        return Ok(None);
    };
    ensure_allowed(cfg)?;
    // The broker's clock set the expiry and the broker decides; this
    // computer's clock may be off (or have jumped) by an hour or two, so
    // only a ticket expired beyond that is refused without asking.
    let skew = i64::try_from(CLOCK_SKEW_ALLOWANCE.as_millis()).unwrap_or(i64::MAX);
    if ticket.expires_at.saturating_add(skew) < lifeline_core::time::now_millis() {
        reboot::remove(&cfg.data_dir);
        let why = format!(
            "the rejoin ticket expired at {}; {}",
            lifeline_core::time::millis_to_rfc3339(ticket.expires_at),
            START_AGAIN
        );
        ui.show(&format!("! {why}"));
        return Err(AgentError::RejoinRefused(why));
    }
    serve_channel(cfg, Entry::Rejoin(ticket), customer)
        .await
        .map(Some)
}

pub use lifeline_core::session::START_AGAIN;

/// How far this computer's clock may be ahead of the broker's before a
/// saved rejoin ticket is refused as expired without asking the broker
/// (which checks the expiry against its own clock anyway).
pub const CLOCK_SKEW_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// This computer's host name, as shown to the operator.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}
