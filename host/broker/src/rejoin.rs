//! Rejoin tickets: how a customer's agent comes back to its session after a
//! consented reboot without anyone typing a code.
//!
//! Before rebooting, the agent asks for a ticket bound to its session; the
//! broker keeps only the ticket's SHA-256, with an expiry
//! ([`lifeline_core::config::DEFAULT_REJOIN_TTL_SECS`] by default). The
//! session then waits in `Rebooting`: the agent's connection dropping does
//! not end it. At start the agent presents the ticket once; a used, expired
//! or unknown ticket is refused with a message telling the customer how to
//! start a new session. A session whose customer does not come back before
//! the ticket expires is ended by the sweeper.
//!
//! Tickets are 256-bit secrets, so guessing them needs no global budget: a
//! rejoin pays only into its own per-source limiter ([`rejoin_limiter`]),
//! never into the join-guessing budget that wrong connection IDs drain, and
//! a burst of wrong codes cannot lock rebooting customers out. The agent
//! retries a rate-limited rejoin until its ticket expires.
//!
//! An agent may come back before the broker noticed that its old socket
//! died. The rejoin replaces the session's agent connection and wakes the
//! old handler, which then stops without touching the session; an old
//! handler that sees its link close only changes the session while it is
//! still the session's agent ([`crate::registry::Registry::agent_lost`]).

use std::sync::Arc;

use lifeline_core::link::FrameSender;
use lifeline_core::session::SessionEvent;
use lifeline_protocol::{ErrorCode, OperatorProfile, Party, Secret, SessionInfo, SessionState};
use tokio::sync::Notify;

use crate::Shared;
use crate::ratelimit::{BucketSpec, GuessLimiter};
use crate::registry::AgentLost;
use crate::store::StoreError;

/// Failed rejoin attempts (unknown, used or expired tickets) one source
/// address may make at once. Guards the ticket lookup against floods from
/// one address; the tickets' 256 bits guard against guessing.
pub const REJOIN_PER_SOURCE_BURST: f64 = 10.0;
/// Time for a source address to earn one more failed rejoin attempt.
pub const REJOIN_PER_SOURCE_REFILL: std::time::Duration = std::time::Duration::from_secs(6);

/// The rejoin limiter: per source only. Its global bucket never runs dry
/// (infinite capacity), so no one address, nor many, can block other
/// customers' rejoins.
pub fn rejoin_limiter() -> GuessLimiter {
    GuessLimiter::new(
        BucketSpec {
            capacity: REJOIN_PER_SOURCE_BURST,
            refill_every: REJOIN_PER_SOURCE_REFILL,
        },
        BucketSpec {
            capacity: f64::INFINITY,
            refill_every: std::time::Duration::from_secs(1),
        },
    )
}

pub use lifeline_core::session::START_AGAIN;

/// An agent back in its session: the session, its operator, and whether
/// the operator is attached right now.
pub type Back = (SessionInfo, OperatorProfile, bool);

fn internal(e: StoreError) -> (ErrorCode, String) {
    tracing::error!("rejoin: {e}");
    (
        ErrorCode::Internal,
        "the broker could not look up the rejoin ticket".to_string(),
    )
}

impl Shared {
    /// Issues a rejoin ticket for a live session (the agent asks right
    /// before a consented reboot). Returns the ticket and its expiry.
    pub fn issue_rejoin_ticket(&self, session_id: &str) -> Result<(Secret, i64), String> {
        let now = lifeline_core::time::now_millis();
        let expires_at = now + self.cfg.rejoin_ttl.as_millis() as i64;
        let ticket = format!("rj_{}", crate::accounts::new_token());
        let hash = crate::accounts::token_hash(&ticket);
        self.store
            .insert_rejoin_ticket(&hash, session_id, now, expires_at)
            .map_err(|e| {
                tracing::error!(session = session_id, "cannot store a rejoin ticket: {e}");
                "the broker could not store a rejoin ticket".to_string()
            })?;
        self.registry.set_rejoin_deadline(session_id, expires_at);
        self.record(
            session_id,
            "reboot",
            Party::Customer,
            &format!(
                "reboot requested: rejoin ticket issued, valid until {}",
                lifeline_core::time::millis_to_rfc3339(expires_at)
            ),
        );
        Ok((Secret::new(ticket), expires_at))
    }

    /// Takes one attempt from `source`'s rejoin budget (rejoin tickets and
    /// resume credentials share it); refused with the wait when spent.
    pub(crate) fn rejoin_budget(
        &self,
        source: std::net::IpAddr,
        what: &str,
    ) -> Result<(), (ErrorCode, String)> {
        self.rejoin_limiter.acquire(source).map_err(|l| {
            (
                ErrorCode::RateLimited,
                format!(
                    "too many invalid {what} from this address; try again in {} s",
                    l.retry_after.as_secs().max(1)
                ),
            )
        })
    }

    /// The agent stops for the reboot now: the session waits for it.
    pub fn rebooting(&self, session_id: &str, detail: &str) {
        let notice = format!("the customer's computer is restarting: {detail}");
        if self
            .registry
            .apply_event(
                &self.store,
                session_id,
                SessionEvent::RebootStarted,
                &notice,
            )
            .is_ok()
        {
            self.record(session_id, "reboot", Party::Customer, &notice);
        }
    }

    /// Checks a rejoin ticket, uses it up, and puts the agent back into its
    /// session. Returns the session, its operator, and whether the operator
    /// is attached right now.
    pub fn rejoin(
        &self,
        ticket: &Secret,
        source: std::net::IpAddr,
        host: &str,
        agent: FrameSender,
        ended: Arc<Notify>,
    ) -> Result<Back, (ErrorCode, String)> {
        self.rejoin_budget(source, "rejoin tickets")?;
        let refuse = |why: &str| {
            (
                ErrorCode::InvalidInvitation,
                format!("{why}; {START_AGAIN}"),
            )
        };
        let hash = crate::accounts::token_hash(ticket.expose());
        let Some(row) = self.store.rejoin_ticket(&hash).map_err(internal)? else {
            return Err(refuse(
                "this rejoin ticket is not valid (unknown to this broker)",
            ));
        };
        let now = lifeline_core::time::now_millis();
        if row.used_at.is_some() {
            return Err(refuse("this rejoin ticket was already used"));
        }
        if row.expires_at < now {
            return Err(refuse(&format!(
                "this rejoin ticket expired at {}",
                lifeline_core::time::millis_to_rfc3339(row.expires_at)
            )));
        }
        if self.registry.state(&row.session_id) != Some(SessionState::Rebooting) {
            return Err(refuse("the session of this rejoin ticket has ended"));
        }
        if !self.store.use_rejoin_ticket(&hash, now).map_err(internal)? {
            return Err(refuse("this rejoin ticket was already used"));
        }
        self.rejoin_limiter.refund(source);
        let session = self
            .store
            .session(&row.session_id)
            .map_err(internal)?
            .ok_or_else(|| refuse("the session of this rejoin ticket no longer exists"))?;
        let operator = self
            .store
            .operator_by_id(session.operator_id)
            .map_err(internal)?
            .ok_or_else(|| refuse("the operator of this session no longer exists"))?;
        let notice = format!(
            "{} is back after the restart (host {host})",
            session.end_user
        );
        let present = self
            .registry
            .customer_back(
                &self.store,
                &row.session_id,
                SessionEvent::CustomerRejoined,
                agent,
                ended,
                &notice,
            )
            .map_err(|e| refuse(&e))?;
        self.record(
            &row.session_id,
            "rejoin",
            Party::Customer,
            &format!(
                "{} rejoined after the reboot from host {host} ({source}) with the rejoin ticket",
                session.end_user
            ),
        );
        Ok((
            SessionInfo {
                session_id: session.id,
                ticket: session.ticket,
                end_user: session.end_user,
            },
            operator.profile,
            present,
        ))
    }

    /// An agent connection's link closed: a rebooting session waits for
    /// the rejoin, any other ends, unless a newer connection of the agent
    /// has already taken the session over (then nothing changes).
    pub fn agent_link_closed(&self, id: &str, ended: &Arc<Notify>, reason: &str) {
        let lost = format!("the customer's connection was lost: {reason}");
        match self.registry.agent_lost(
            &self.store,
            id,
            ended,
            "the customer's agent stopped for the restart; it will rejoin by itself",
            &lost,
        ) {
            AgentLost::Rebooting => self.record(
                id,
                "reboot",
                Party::Customer,
                &format!("agent stopped for the reboot (connection closed: {reason})"),
            ),
            AgentLost::Ended => {
                self.record(
                    id,
                    "error",
                    Party::Broker,
                    &format!("customer connection lost: {reason}"),
                );
                tracing::info!(session = %id, "customer connection lost: {reason}");
            }
            AgentLost::Superseded => {
                tracing::info!(session = %id, "an earlier agent connection closed after the rejoin: {reason}");
            }
            AgentLost::NotLive => {}
        }
    }

    /// Ends rebooting (or reconnecting) sessions whose customer did not
    /// come back in time.
    pub fn sweep_rebooting(&self) {
        let now = lifeline_core::time::now_millis();
        for (id, state) in self.registry.overdue_returns(now) {
            let reason = if state == SessionState::Reconnecting {
                crate::resume::NOT_RESUMED
            } else {
                "the customer's computer did not come back before the rejoin ticket expired"
            };
            if self.registry.end(
                &self.store,
                &id,
                SessionEvent::Expired,
                Party::Broker,
                reason,
            ) {
                self.record(&id, "expired", Party::Broker, reason);
            }
        }
    }
}
