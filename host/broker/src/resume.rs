//! Sessions that survive a broker restart.
//!
//! Every agent that enters a session (join, rejoin or resume) gets a resume
//! credential right after the broker let it in; the broker keeps only its
//! SHA-256, bound to the session, single use, expiring after
//! [`RESUME_CREDENTIAL_TTL`]. When the broker starts, the sessions the
//! store still holds as live are restored instead of ended:
//!
//! - waiting, connected or suspended ones become `Reconnecting` and wait up
//!   to `[broker.limits] resume_window_secs` (default
//!   [`lifeline_core::limits::DEFAULT_RESUME_WINDOW_SECS`]) for the customer's agent, which notices its lost
//!   connection and presents its credential (`Message::Resume`);
//! - rebooting ones wait for their rejoin ticket as before (the tickets are
//!   in the store), until the newest ticket expires.
//!
//! Operators come back on their own: their login tokens are in the store,
//! so an operator client reconnects, resumes its login and attaches again
//! (attaching is allowed while the session is `Reconnecting`).
//!
//! A resume rotates the credential: the used one is burnt and a new one
//! follows the `Rejoined` reply. Refusals (unknown, used or expired
//! credential, session not waiting for a resume) are definitive
//! (`InvalidInvitation`); wrong credentials pay into the per-source rejoin
//! limiter, as wrong rejoin tickets do (256-bit secrets need no global
//! budget).

use std::sync::Arc;
use std::time::Duration;

use lifeline_core::link::FrameSender;
use lifeline_core::session::SessionEvent;
use lifeline_protocol::{ErrorCode, Party, Secret, SessionInfo, SessionState};
use tokio::sync::Notify;

use crate::Shared;
use crate::registry::{LiveSession, Registry};
use crate::store::{Store, StoreError};

/// How long a resume credential is valid after it was issued. Threat: a
/// credential copied from a stopped agent's memory must not resume a
/// session days later; each resume issues a fresh one.
pub const RESUME_CREDENTIAL_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The end of a session whose agent did not resume in time.
pub const NOT_RESUMED: &str =
    "the broker restarted and the customer's agent did not come back within the resume window";

fn internal(e: StoreError) -> (ErrorCode, String) {
    tracing::error!("resume: {e}");
    (
        ErrorCode::Internal,
        "the broker could not look up the resume credential".to_string(),
    )
}

/// Restores the sessions a stopped broker left live (see the module
/// documentation); those that cannot continue are ended with the reason.
pub(crate) fn restore_after_restart(
    store: &Store,
    registry: &Registry,
    window: Duration,
) -> Result<(), StoreError> {
    let now = lifeline_core::time::now_millis();
    for id in store.live_sessions()? {
        match restore_one(store, &id, (now, window), "the broker restarted") {
            Ok(Some(live)) => registry.restore(&id, live),
            Ok(None) => {}
            Err(e) => tracing::error!(session = %id, "cannot restore the session: {e}"),
        }
    }
    Ok(())
}

/// One session left live: restored (waiting for its agent), or ended.
fn restore_one(
    store: &Store,
    id: &str,
    (now, window): (i64, Duration),
    cause: &str,
) -> Result<Option<LiveSession>, StoreError> {
    let Some(row) = store.session(id)? else {
        return Ok(None);
    };
    let operator = store.operator_by_id(row.operator_id)?;
    let (state, deadline, text) = match row.state {
        SessionState::Rebooting => match store.rejoin_deadline(id)? {
            Some(d) if d > now => (
                SessionState::Rebooting,
                d,
                format!(
                    "{cause} while the customer's computer was restarting; the session waits for the rejoin"
                ),
            ),
            _ => {
                let why = format!("{cause} and the rejoin ticket had expired");
                return end_restored(store, id, &why);
            }
        },
        _ => (
            SessionState::Reconnecting,
            now + window.as_millis() as i64,
            format!(
                "{cause}; the session waits up to {} s for the customer's agent to resume",
                window.as_secs()
            ),
        ),
    };
    let Some(operator) = operator else {
        let why = format!("{cause} and the session's operator no longer exists");
        return end_restored(store, id, &why);
    };
    store.set_state(id, state)?;
    record(store, id, "restart", &text);
    Ok(Some(LiveSession {
        state,
        operator_id: row.operator_id,
        operator_name: operator.profile.name,
        agent: FrameSender::disconnected(cause),
        ended: Arc::new(Notify::new()),
        operators: Vec::new(),
        rejoin_deadline: Some(deadline),
        report: Default::default(),
        rejoin_tickets: 0,
        open_streams: Default::default(),
        endpoints: Vec::new(),
    }))
}

fn end_restored(store: &Store, id: &str, why: &str) -> Result<Option<LiveSession>, StoreError> {
    store.set_state(id, SessionState::Ended)?;
    record(store, id, "end", why);
    Ok(None)
}

fn record(store: &Store, id: &str, kind: &str, text: &str) {
    if let Err(e) = store.record(id, kind, Party::Broker, text) {
        tracing::warn!(session = %id, "cannot record after a restart: {e}");
    }
}

impl Shared {
    /// A fresh resume credential for the agent of a live session (the
    /// previous one stops being valid).
    pub fn issue_resume_credential(&self, session_id: &str) -> Result<Secret, String> {
        let now = lifeline_core::time::now_millis();
        let expires_at = now + RESUME_CREDENTIAL_TTL.as_millis() as i64;
        let credential = format!("rs_{}", crate::accounts::new_token());
        let hash = crate::accounts::token_hash(&credential);
        self.store
            .insert_resume_credential(&hash, session_id, now, expires_at)
            .map_err(|e| {
                tracing::error!(
                    session = session_id,
                    "cannot store a resume credential: {e}"
                );
                "the broker could not store a resume credential".to_string()
            })?;
        Ok(Secret::new(credential))
    }

    /// Checks a resume credential, uses it up, and puts the agent back into
    /// its session. Returns the session, its operator, and whether the
    /// operator is attached right now.
    pub fn resume(
        &self,
        credential: &Secret,
        source: std::net::IpAddr,
        host: &str,
        agent: FrameSender,
        ended: Arc<Notify>,
    ) -> Result<crate::rejoin::Back, (ErrorCode, String)> {
        self.rejoin_budget(source, "resume credentials")?;
        let session_id = self.check_resume_credential(credential)?;
        self.rejoin_limiter.refund(source);
        let refuse = |why: String| (ErrorCode::InvalidInvitation, why);
        let session = self
            .store
            .session(&session_id)
            .map_err(internal)?
            .ok_or_else(|| refuse("the session no longer exists".into()))?;
        let operator = self
            .store
            .operator_by_id(session.operator_id)
            .map_err(internal)?
            .ok_or_else(|| refuse("the operator of this session no longer exists".into()))?;
        let notice = format!("{} is back after the broker restarted", session.end_user);
        let present = self
            .registry
            .customer_back(
                &self.store,
                &session_id,
                SessionEvent::CustomerResumed,
                agent,
                ended,
                &notice,
            )
            .map_err(refuse)?;
        self.record(
            &session_id,
            "resume",
            Party::Customer,
            &format!(
                "{} resumed the session from host {host} ({source}) with the resume credential",
                session.end_user
            ),
        );
        let info = SessionInfo {
            session_id: session.id,
            ticket: session.ticket,
            end_user: session.end_user,
        };
        Ok((info, operator.profile, present))
    }

    /// In a cluster, the session of `credential` may have been homed on a
    /// node that was lost: when no node answers for it, this node restores
    /// it (as a restarted broker would) so that the resume proceeds here.
    pub async fn adopt_orphan(&self, credential: &Secret) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let hash = crate::accounts::token_hash(credential.expose());
        let Ok(Some(row)) = self.store.resume_credential(&hash) else {
            return;
        };
        let id = row.session_id;
        if row.used_at.is_some() || self.registry.state(&id).is_some() {
            return;
        }
        if !cluster.home_alive(&id).await
            && self.restore_here(&id, "the broker node holding the session stopped")
        {
            tracing::info!(session = %id, "cluster: adopted a session whose node stopped");
        }
    }

    /// In a cluster, a rebooted agent may come back to another node than
    /// the one holding its rebooting session: this node takes the session
    /// over from its home (which hands it over), or adopts it when no node
    /// holds it any more. The rejoin then proceeds here as usual.
    pub async fn take_over_rebooting(&self, ticket: &Secret) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let hash = crate::accounts::token_hash(ticket.expose());
        let Ok(Some(row)) = self.store.rejoin_ticket(&hash) else {
            return;
        };
        let id = row.session_id;
        if row.used_at.is_some() || self.registry.state(&id).is_some() {
            return;
        }
        if cluster.release(&id).await {
            let cause = format!("the session moved to broker node {}", cluster.node);
            self.restore_here(&id, &cause);
        }
    }

    /// Puts session `id` from the store into this node's registry, waiting
    /// for its agent (`cause`: why, for the report); false when it could
    /// not continue (ended with the reason) or the store failed.
    fn restore_here(&self, id: &str, cause: &str) -> bool {
        let now = lifeline_core::time::now_millis();
        match restore_one(&self.store, id, (now, self.cfg.limits.resume_window), cause) {
            Ok(Some(live)) => {
                self.registry.restore(id, live);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(session = %id, "cannot restore the session here: {e}");
                false
            }
        }
    }

    /// The session a valid, unused credential is bound to; the credential
    /// is used up.
    fn check_resume_credential(&self, credential: &Secret) -> Result<String, (ErrorCode, String)> {
        let refuse = |why: &str| {
            (
                ErrorCode::InvalidInvitation,
                format!("{why}; {}", crate::rejoin::START_AGAIN),
            )
        };
        let hash = crate::accounts::token_hash(credential.expose());
        let Some(row) = self.store.resume_credential(&hash).map_err(internal)? else {
            return Err(refuse(
                "this resume credential is not valid (unknown to this broker)",
            ));
        };
        let now = lifeline_core::time::now_millis();
        if row.used_at.is_some() {
            return Err(refuse("this resume credential was already used"));
        }
        if row.expires_at < now {
            return Err(refuse("this resume credential has expired"));
        }
        if self.registry.state(&row.session_id) != Some(SessionState::Reconnecting) {
            return Err(refuse(
                "the session of this resume credential is not waiting for a resume (it ended, or the connection was lost without a broker restart)",
            ));
        }
        if !self
            .store
            .use_resume_credential(&hash, now)
            .map_err(internal)?
        {
            return Err(refuse("this resume credential was already used"));
        }
        Ok(row.session_id)
    }
}
