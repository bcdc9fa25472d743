//! A lost broker connection in the middle of a session: when the broker
//! gave this agent a resume credential, the session is not over yet. The
//! agent reconnects and presents the credential (the broker may have
//! restarted: it restored the session and waits for it), and the session
//! goes on over the new link: the plugins, the consent grants, a run-as
//! login and the customer's window are the same as before. Open plugin
//! streams close (the operator's credit went with the old link; a screen
//! share is started again by the operator).
//!
//! Without a credential, or when the broker refuses it (the session ended
//! meanwhile, or the broker did not restart and ended the session when the
//! connection dropped), the session ends as before with the connection
//! lost.

use lifeline_protocol::SessionState;
use lifeline_runtime::wit::SessionEvent;

use super::{Flow, Session};
use crate::channel::CustomerEvent;
use crate::{AgentError, reconnect};

/// Why open plugin streams closed when the link dropped.
const STREAMS_CLOSED: &str = "the connection to the broker was lost";

impl Session<'_> {
    /// The link to the broker is gone (`why`): resume, or end the session.
    pub(super) async fn on_link_lost(&mut self, why: String) -> Flow {
        let Some(credential) = self.resume.take() else {
            return Flow::Break(Err(AgentError::ConnectionLost(why)));
        };
        self.streams.close_open(STREAMS_CLOSED);
        self.ui.event(&CustomerEvent::State {
            state: SessionState::Reconnecting,
            detail: format!("The connection to the support server was lost ({why}); reconnecting…"),
        });
        let proxy = self
            .cfg
            .remote_service
            .as_ref()
            .and_then(|r| r.session_proxy());
        let (link, _welcome, _session, _operator, present) =
            match reconnect::resume(self.cfg, &credential, proxy).await {
                Ok(entered) => entered,
                Err(e) => return Flow::Break(Err(e)),
            };
        *self
            .sink_link
            .write()
            .expect("sink link lock is never poisoned") = link.tx.clone();
        self.link = link;
        self.resumed(present.unwrap_or(false), &why).await
    }

    /// Back in the session: the customer, the audit log and the long-lived
    /// plugins hear it.
    async fn resumed(&mut self, operator_present: bool, why: &str) -> Flow {
        let state = if operator_present {
            SessionState::Connected
        } else {
            SessionState::Waiting
        };
        self.ui.event(&CustomerEvent::State {
            state,
            detail: "Back in the session: the connection to the support server is restored."
                .to_string(),
        });
        let entry = serde_json::json!({
            "event": "resume", "session": self.sid, "after": why,
        });
        if let Err(e) = self.engine.lock().await.audit().append(&entry) {
            return Flow::Break(Err(e.into()));
        }
        self.services.event(&SessionEvent::Rejoined);
        if operator_present {
            let name = self.operator.name.clone();
            self.services.event(&SessionEvent::OperatorAttached(name));
        }
        Flow::Continue(())
    }
}
