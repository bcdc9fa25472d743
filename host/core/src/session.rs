//! The session lifecycle, as an explicit state machine.
//!
//! ```text
//!             CustomerJoined            OperatorAttached
//!   Invited ─────────────────▶ Waiting ──────────────────▶ Connected
//!      │                        │  ▲                          │
//!      │ Expired                │  └──── OperatorLeft ────────┤
//!      ▼                        │                             │
//!    Ended ◀──── Ended / CustomerLost ────────────────────────┘
//! ```
//!
//! `Waiting` is what the operator sees as "ready". `Ended` is final.
//!
//! Two detours come from features:
//! - run-as login: `Connected ─AccessSuspended▶ Suspended ─AccessRestored▶
//!   Connected` (the registry then moves it to `Waiting` when no operator
//!   is attached). Operators attaching and leaving do not end the login.
//! - reboot: `Waiting | Connected | Suspended ─RebootStarted▶ Rebooting`. The
//!   agent's connection dropping does not end a rebooting session;
//!   `CustomerRejoined` (a valid rejoin ticket) brings it back to `Waiting`
//!   (the registry re-attaches operators that are still there), and
//!   `Expired` (the ticket ran out) ends it.
//!
//! And one from the broker itself:
//! - broker restart: `Waiting | Connected | Suspended ─BrokerRestarted▶
//!   Reconnecting`. Operators may attach and leave meanwhile;
//!   `CustomerResumed` (the agent's resume credential) brings it back to
//!   `Waiting`, and `Expired` (the resume window ran out) ends it.

use lifeline_protocol::SessionState;

/// What a customer whose rejoin ticket is refused (used, expired, unknown)
/// is told to do instead; the broker and the agent both say it.
pub const START_AGAIN: &str = "to get help again, ask your operator for a new connection ID or link and run `lifeline agent join CODE`";

/// Something that happens to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The customer's agent presented a valid invitation.
    CustomerJoined,
    /// An operator connection attached (more may attach; still Connected).
    OperatorAttached,
    /// The last attached operator connection left without ending.
    OperatorLeft,
    /// Either side (or an admin) ended the session.
    Ended,
    /// The agent's connection dropped or stopped answering heartbeats.
    CustomerLost,
    /// The invitation expired before anyone joined, or a rebooting
    /// customer did not rejoin before the ticket expired.
    Expired,
    /// A run-as login began: the customer's own access is suspended.
    AccessSuspended,
    /// The run-as login ended: the customer's access is back.
    AccessRestored,
    /// The customer consented to a reboot; the agent is about to stop.
    RebootStarted,
    /// The agent came back with a valid rejoin ticket.
    CustomerRejoined,
    /// The broker started again while the session was live: it waits for
    /// the customer's agent to resume.
    BrokerRestarted,
    /// The agent resumed with a valid resume credential.
    CustomerResumed,
}

/// A transition that the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a session that is {from} cannot take the event {event:?}")]
pub struct TransitionError {
    pub from: SessionState,
    pub event: SessionEvent,
}

/// The next state after `event`, or why the event is not allowed now.
pub fn transition(
    from: SessionState,
    event: SessionEvent,
) -> Result<SessionState, TransitionError> {
    use SessionEvent as E;
    use SessionState as S;
    let to = match (from, event) {
        (S::Invited, E::CustomerJoined) => S::Waiting,
        (S::Invited, E::Expired | E::Ended) => S::Ended,
        (S::Waiting | S::Connected, E::OperatorAttached) => S::Connected,
        (S::Connected | S::Waiting, E::OperatorLeft) => S::Waiting,
        (S::Connected, E::AccessSuspended) => S::Suspended,
        // The login outlives an operator client's connection (each CLI
        // command attaches and detaches); it ends by logout or session end.
        (S::Suspended, E::OperatorAttached | E::OperatorLeft) => S::Suspended,
        (S::Suspended, E::AccessRestored) => S::Connected,
        (S::Waiting | S::Connected | S::Suspended, E::RebootStarted) => S::Rebooting,
        // The agent stopping is the reboot itself, and operators may come
        // and go while the machine restarts.
        (S::Rebooting, E::CustomerLost | E::OperatorAttached | E::OperatorLeft) => S::Rebooting,
        (S::Rebooting, E::CustomerRejoined) => S::Waiting,
        (S::Rebooting, E::Expired | E::Ended) => S::Ended,
        (S::Waiting | S::Connected | S::Suspended, E::Ended | E::CustomerLost) => S::Ended,
        (S::Waiting | S::Connected | S::Suspended, E::BrokerRestarted) => S::Reconnecting,
        (S::Reconnecting, E::CustomerLost | E::OperatorAttached | E::OperatorLeft) => {
            S::Reconnecting
        }
        (S::Reconnecting, E::CustomerResumed) => S::Waiting,
        (S::Reconnecting, E::Expired | E::Ended) => S::Ended,
        (
            S::Invited
            | S::Waiting
            | S::Connected
            | S::Suspended
            | S::Rebooting
            | S::Reconnecting
            | S::Ended,
            _,
        ) => {
            return Err(TransitionError { from, event });
        }
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionEvent as E;
    use SessionState as S;

    #[test]
    fn happy_path() {
        let mut s = S::Invited;
        for (e, want) in [
            (E::CustomerJoined, S::Waiting),
            (E::OperatorAttached, S::Connected),
            (E::OperatorLeft, S::Waiting),
            (E::OperatorAttached, S::Connected),
            (E::Ended, S::Ended),
        ] {
            s = transition(s, e).unwrap();
            assert_eq!(s, want);
        }
    }

    #[test]
    fn forbidden_transitions() {
        assert!(transition(S::Invited, E::OperatorAttached).is_err());
        assert!(transition(S::Ended, E::CustomerJoined).is_err());
        assert!(transition(S::Waiting, E::CustomerJoined).is_err());
        assert!(transition(S::Waiting, E::Expired).is_err());
        assert_eq!(transition(S::Connected, E::CustomerLost).unwrap(), S::Ended);
        assert!(transition(S::Waiting, E::AccessSuspended).is_err());
        assert!(transition(S::Connected, E::CustomerRejoined).is_err());
        assert!(transition(S::Invited, E::RebootStarted).is_err());
    }

    #[test]
    fn broker_restart_detour() {
        let mut s = S::Connected;
        for (e, want) in [
            (E::BrokerRestarted, S::Reconnecting),
            (E::OperatorAttached, S::Reconnecting),
            (E::OperatorLeft, S::Reconnecting),
            (E::CustomerResumed, S::Waiting),
            (E::OperatorAttached, S::Connected),
        ] {
            s = transition(s, e).unwrap();
            assert_eq!(s, want);
        }
        assert!(transition(S::Rebooting, E::BrokerRestarted).is_err());
        assert!(transition(S::Waiting, E::CustomerResumed).is_err());
        assert_eq!(transition(S::Reconnecting, E::Expired).unwrap(), S::Ended);
    }

    #[test]
    fn run_as_and_reboot_detours() {
        let mut s = S::Connected;
        for (e, want) in [
            (E::AccessSuspended, S::Suspended),
            (E::OperatorAttached, S::Suspended),
            (E::AccessRestored, S::Connected),
            (E::RebootStarted, S::Rebooting),
            (E::CustomerLost, S::Rebooting),
            (E::OperatorLeft, S::Rebooting),
            (E::CustomerRejoined, S::Waiting),
            (E::OperatorAttached, S::Connected),
        ] {
            s = transition(s, e).unwrap();
            assert_eq!(s, want, "after {e:?}");
        }
        assert_eq!(transition(S::Rebooting, E::Expired).unwrap(), S::Ended);
        assert_eq!(
            transition(S::Suspended, E::OperatorLeft).unwrap(),
            S::Suspended
        );
    }
}
