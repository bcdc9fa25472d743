//! Getting back into a session after the connection to the broker was
//! lost, for instance because the broker restarted: the broker keeps the
//! session (`Reconnecting`) while the customer's agent resumes it, and the
//! operator client comes back with its saved login and attaches again.

use std::time::Duration;

use lifeline_core::config::OperatorConfig;
use lifeline_protocol::{ErrorCode, SessionSummary};

use crate::{Client, OperatorError};

/// First pause after a failed attempt; it doubles up to
/// [`RECONNECT_RETRY_MAX`].
pub const RECONNECT_RETRY_FIRST: Duration = Duration::from_millis(250);

/// Longest pause between attempts: a restarted broker is found within this
/// long of listening again.
pub const RECONNECT_RETRY_MAX: Duration = Duration::from_secs(2);

/// How long the operator client keeps trying: the broker's resume window
/// (a restored session whose agent did not come back in that time ends).
pub const RECONNECT_GIVE_UP: Duration = Duration::from_secs(120);

/// Worth another attempt: the broker is not back yet, or is busy.
fn transient(e: &OperatorError) -> bool {
    match e {
        OperatorError::Connect(_) | OperatorError::Lost(_) | OperatorError::Timeout(_) => true,
        OperatorError::Broker { code, .. } => *code == ErrorCode::RateLimited,
        _ => false,
    }
}

impl Client {
    /// Connects again, resumes the login (saved token, else the config's
    /// password) and attaches to `session_id` again, retrying while the
    /// broker is unreachable for up to [`RECONNECT_GIVE_UP`]. Errors that
    /// another attempt cannot fix (the session ended, the login was
    /// revoked) are returned at once.
    pub async fn reconnect(
        cfg: &OperatorConfig,
        session_id: &str,
    ) -> Result<(Client, SessionSummary), OperatorError> {
        let give_up = tokio::time::Instant::now() + RECONNECT_GIVE_UP;
        let mut pause = RECONNECT_RETRY_FIRST;
        loop {
            let err = match Client::connect_logged_in(cfg).await {
                Ok(c) => match c.attach(session_id).await {
                    Ok(s) => return Ok((c, s)),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if !transient(&err) || tokio::time::Instant::now() + pause > give_up {
                return Err(err);
            }
            tracing::info!("reconnect: {err}; trying again in {pause:?}");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RECONNECT_RETRY_MAX);
        }
    }
}
