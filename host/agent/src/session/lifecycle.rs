//! The session's state as the broker tells it, and its end.

use lifeline_protocol::{Party, SessionState};
use lifeline_runtime::wit::SessionEvent;

use super::{Flow, Session};
use crate::channel::CustomerEvent;

impl Session<'_> {
    /// `State`: shown to the customer; the long-lived plugins hear when the
    /// operator comes and goes; `Ended` ends the session.
    pub(super) fn on_state(&mut self, state: SessionState, detail: String) -> Flow {
        self.ui.event(&CustomerEvent::State {
            state,
            detail: detail.clone(),
        });
        let name = self.operator.name.clone();
        match state {
            SessionState::Ended => return Flow::Break(Ok(self.outcome(Party::Broker, detail))),
            SessionState::Connected => self.services.event(&SessionEvent::OperatorAttached(name)),
            SessionState::Waiting => self.services.event(&SessionEvent::OperatorLeft(name)),
            SessionState::Invited
            | SessionState::Suspended
            | SessionState::Rebooting
            | SessionState::Reconnecting => {}
        }
        Flow::Continue(())
    }

    /// `End`: the operator or the broker ended the session.
    pub(super) fn on_end(&mut self, by: Party, reason: String) -> Flow {
        self.ui.event(&CustomerEvent::Ended {
            by,
            reason: reason.clone(),
        });
        Flow::Break(Ok(self.outcome(by, reason)))
    }
}
