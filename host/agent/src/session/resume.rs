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
//!
//! The end-to-end channels are forgotten on a resume: the operator
//! endpoints start new ones (and the customer sees their new codes).
//! Sealed messages are not kept for the resend (see `sealed.rs`).

use std::collections::VecDeque;

use lifeline_protocol::{Message, SessionMessage, SessionState};
use lifeline_runtime::wit::SessionEvent;

use super::{Flow, Session};
use crate::channel::CustomerEvent;
use crate::{AgentError, reconnect};

/// Why open plugin streams closed when the link dropped.
const STREAMS_CLOSED: &str = "the connection to the broker was lost";

/// Most of the agent's last session messages kept for a resend after a
/// resume. What the broker had not recorded when it stopped is what was in
/// flight (socket buffers, the broker's queues): a handful of messages.
pub const OUTBOX_MESSAGES: usize = 1024;

/// Most bytes (JSON) those messages may take together. Threat: a plugin
/// producing output fast must not grow the agent's memory; the oldest
/// messages go first.
pub const OUTBOX_BYTES: usize = 4 << 20;

/// The agent's last session messages with their numbers.
#[derive(Default)]
pub(crate) struct Outbox {
    kept: VecDeque<(u64, SessionMessage, usize)>,
    bytes: usize,
}

impl Outbox {
    /// Keeps message `seq`, dropping the oldest beyond the bounds.
    pub(crate) fn keep(&mut self, seq: u64, msg: &SessionMessage) {
        let size = serde_json::to_vec(msg).map_or(0, |v| v.len());
        self.kept.push_back((seq, msg.clone(), size));
        self.bytes += size;
        while self.kept.len() > OUTBOX_MESSAGES || self.bytes > OUTBOX_BYTES {
            match self.kept.pop_front() {
                Some((_, _, n)) => self.bytes -= n,
                None => break,
            }
        }
    }

    /// The messages after `received`, in order, and how many of those were
    /// no longer kept (sent too long before the broker stopped).
    fn after(&self, received: u64, last: u64) -> (Vec<(u64, SessionMessage)>, u64) {
        let again: Vec<(u64, SessionMessage)> = self
            .kept
            .iter()
            .filter(|(seq, _, _)| *seq > received)
            .map(|(seq, msg, _)| (*seq, msg.clone()))
            .collect();
        let missing = last
            .saturating_sub(received)
            .saturating_sub(again.len() as u64);
        (again, missing)
    }
}

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
        let (link, _welcome, _session, _operator, present, received) =
            match reconnect::resume(self.cfg, &credential, proxy).await {
                Ok(entered) => entered,
                Err(e) => return Flow::Break(Err(e)),
            };
        *self
            .sink_link
            .write()
            .expect("sink link lock is never poisoned") = link.tx.clone();
        self.link = link;
        // The end-to-end channels stay: they are the session's, not the
        // connection's. An operator whose connection survived (a cluster
        // node lost on the customer's side) goes on with its channel; one
        // that reconnected starts a new channel, and its old one is
        // dropped when the broker says that operator left or, at the
        // latest, when `MAX_ENDPOINTS` newer ones push it out. A sealed
        // message lost with the connection shows as a gap in the
        // channel's counter: the channel closes and starts anew, and the
        // operator is told.
        self.send_again(received).await;
        self.resumed(present.unwrap_or(false), &why).await
    }

    /// Sends again, with their numbers, the messages the broker had not
    /// recorded when the connection was lost.
    async fn send_again(&mut self, received: u64) {
        let (again, missing) = self.outbox.after(received, self.seq);
        if missing > 0 {
            tracing::warn!("{missing} session messages sent before the loss are no longer kept");
        }
        tracing::info!(
            "resume: sending {} messages again after {received}",
            again.len()
        );
        for (seq, msg) in again {
            let session_id = self.sid.clone();
            self.send_frame(Message::Sequenced {
                session_id,
                msg,
                seq,
            })
            .await;
        }
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
