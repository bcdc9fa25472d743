//! Entering a session over the wire: a join with what the customer typed,
//! or the rejoin after a reboot with the saved ticket.
//!
//! Both go through the configured session proxy. A rejoin keeps its ticket
//! until the broker refuses it definitively (used, expired or unknown
//! ticket, session over: `InvalidInvitation`); anything else (broker
//! unreachable, rate limited, busy, connection lost) is retried with backoff
//! until the ticket expires, so a reboot is not lost to a transient problem.

use std::time::Duration;

use lifeline_core::client::{self, Welcome};
use lifeline_core::link::Link;
use lifeline_core::proxy::ManualProxy;
use lifeline_protocol::{
    ClientRole, ErrorCode, Frame, JoinCredential, Message, OperatorProfile, Secret, SessionInfo,
};

use crate::reboot::{self, SavedTicket};
use crate::{AgentError, CustomerUi, REJOIN_RETRY_MAX, START_AGAIN, hostname};

/// First pause after a failed rejoin attempt; it doubles up to
/// [`REJOIN_RETRY_MAX`].
pub const REJOIN_RETRY_FIRST: Duration = Duration::from_millis(500);

/// A session entered: the link, the broker's welcome, the session, its
/// operator, for a rejoin whether the operator is attached now, and the
/// highest number of the agent's messages the broker has recorded (0 for a
/// join).
pub(crate) type Entered = (
    Link,
    Welcome,
    SessionInfo,
    OperatorProfile,
    Option<bool>,
    u64,
);

/// Joins with a connection ID or link.
pub(crate) async fn join(
    cfg: &crate::config::AgentConfig,
    credential: &JoinCredential,
    proxy: Option<&ManualProxy>,
) -> Result<Entered, AgentError> {
    let join = Frame::Control(Message::Join {
        credential: credential.clone(),
        host: hostname(),
    });
    // The join goes right behind the handshake's hello.
    let (mut link, welcome) =
        client::connect_then(&cfg.endpoint, ClientRole::Agent, proxy, &join).await?;
    loop {
        match link.rx.recv().await {
            Some(Frame::Control(Message::Joined { session, operator })) => {
                return Ok((link, welcome, session, operator, None, 0));
            }
            Some(Frame::Control(Message::Error { message, .. })) => {
                return Err(AgentError::JoinRefused(message));
            }
            Some(_) => continue,
            None => return Err(AgentError::ConnectionLost(link.close_reason.get())),
        }
    }
}

/// How one rejoin attempt ended.
enum Attempt {
    Rejoined(Box<Entered>),
    /// The ticket is no good (used, expired, unknown, session over).
    Refused(String),
    /// Worth another try while the ticket lives.
    Transient(String),
}

/// One rejoin or resume: connect with `hello` right behind the handshake,
/// read the answer.
async fn attempt(
    cfg: &crate::config::AgentConfig,
    hello: Message,
    proxy: Option<&ManualProxy>,
) -> Attempt {
    let hello = Frame::Control(hello);
    let (mut link, welcome) =
        match client::connect_then(&cfg.endpoint, ClientRole::Agent, proxy, &hello).await {
            Ok(x) => x,
            Err(e) => return Attempt::Transient(format!("cannot reach the broker: {e}")),
        };
    loop {
        match link.rx.recv().await {
            Some(Frame::Control(Message::Rejoined {
                session,
                operator,
                operator_present,
                received,
            })) => {
                return Attempt::Rejoined(Box::new((
                    link,
                    welcome,
                    session,
                    operator,
                    Some(operator_present),
                    received,
                )));
            }
            Some(Frame::Control(Message::Error {
                code: ErrorCode::InvalidInvitation,
                message,
            })) => return Attempt::Refused(message),
            Some(Frame::Control(Message::Error { message, .. })) => {
                return Attempt::Transient(message);
            }
            Some(_) => continue,
            None => {
                return Attempt::Transient(format!(
                    "the connection was lost: {}",
                    link.close_reason.get()
                ));
            }
        }
    }
}

/// Rejoins with the saved ticket, retrying transient failures until the
/// ticket expires. The ticket file is removed once the broker took it, once
/// it refused it for good, or once it expired.
pub(crate) async fn rejoin(
    cfg: &crate::config::AgentConfig,
    t: &SavedTicket,
    proxy: Option<&ManualProxy>,
    ui: &dyn CustomerUi,
) -> Result<Entered, AgentError> {
    let mut pause = REJOIN_RETRY_FIRST;
    loop {
        let hello = Message::Rejoin {
            ticket: t.ticket.clone(),
            host: hostname(),
        };
        let why = match attempt(cfg, hello, proxy).await {
            Attempt::Rejoined(entered) => {
                reboot::remove(&cfg.data_dir);
                return Ok(*entered);
            }
            Attempt::Refused(message) => {
                reboot::remove(&cfg.data_dir);
                ui.show(&format!("! {message}"));
                return Err(AgentError::RejoinRefused(message));
            }
            Attempt::Transient(why) => why,
        };
        let left = t.expires_at - lifeline_core::time::now_millis();
        if left <= 0 {
            reboot::remove(&cfg.data_dir);
            let message = format!(
                "the rejoin ticket expired at {} before the broker took it (last problem: {why}); {START_AGAIN}",
                lifeline_core::time::millis_to_rfc3339(t.expires_at)
            );
            ui.show(&format!("! {message}"));
            return Err(AgentError::RejoinRefused(message));
        }
        let wait = pause.min(Duration::from_millis(left.unsigned_abs()));
        ui.show(&format!(
            "* Cannot rejoin yet ({why}); trying again in {:.1} s…",
            wait.as_secs_f32()
        ));
        tokio::time::sleep(wait).await;
        pause = (pause * 2).min(REJOIN_RETRY_MAX);
    }
}

/// First pause after a failed resume attempt; it doubles up to
/// [`RESUME_RETRY_MAX`].
pub const RESUME_RETRY_FIRST: Duration = Duration::from_millis(250);

/// Longest pause between resume attempts: a restarted broker is found
/// within this long of listening again.
pub const RESUME_RETRY_MAX: Duration = Duration::from_secs(2);

/// How long the agent keeps trying to resume after its connection was
/// lost. It matches the broker's own resume window (the broker ends a
/// restored session its agent did not resume in that time), so an agent
/// does not give up on a session the broker still keeps.
pub const RESUME_GIVE_UP: Duration = Duration::from_secs(120);

/// Resumes the session with its resume credential after the connection to
/// the broker was lost, retrying transient failures for up to
/// [`RESUME_GIVE_UP`]. A refusal (the broker did not restart and ended the
/// session, or the credential is no good) is final.
pub(crate) async fn resume(
    cfg: &crate::config::AgentConfig,
    credential: &Secret,
    proxy: Option<&ManualProxy>,
) -> Result<Entered, AgentError> {
    let give_up = tokio::time::Instant::now() + RESUME_GIVE_UP;
    let mut pause = RESUME_RETRY_FIRST;
    loop {
        let hello = Message::Resume {
            credential: credential.clone(),
            host: hostname(),
        };
        let why = match attempt(cfg, hello, proxy).await {
            Attempt::Rejoined(entered) => return Ok(*entered),
            Attempt::Refused(message) => return Err(AgentError::RejoinRefused(message)),
            Attempt::Transient(why) => why,
        };
        let now = tokio::time::Instant::now();
        if now + pause > give_up {
            let message = format!(
                "could not get back to the broker within {} s (last problem: {why}); {START_AGAIN}",
                RESUME_GIVE_UP.as_secs()
            );
            return Err(AgentError::ConnectionLost(message));
        }
        tracing::info!("resume: {why}; trying again in {pause:?}");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RESUME_RETRY_MAX);
    }
}
