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
//! `Waiting` is what the operator sees as "ready". `Suspended` (run-as
//! login) and `Rebooting` (waiting for the agent to rejoin) are reserved for
//! the features that need them; no event leads there yet. `Ended` is final.

use lifeline_protocol::SessionState;

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
    /// The invitation expired before anyone joined.
    Expired,
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
        (S::Waiting | S::Connected | S::Suspended | S::Rebooting, E::Ended | E::CustomerLost) => {
            S::Ended
        }
        (S::Invited | S::Waiting | S::Connected | S::Suspended | S::Rebooting | S::Ended, _) => {
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
    }
}
