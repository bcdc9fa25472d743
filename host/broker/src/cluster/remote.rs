//! An operator node's side: requests to a session's home, and frames for
//! the agent of a session homed on another node.

use lifeline_protocol::Frame;

use super::{CTL_TIMEOUT, Cluster, Ctl, CtlReply, encode, subject_agent, subject_home};
use crate::registry::ConnId;

/// What an operator is told when no node holds the session.
pub const NOT_LIVE_ANYWHERE: &str =
    "the customer is not in this session (not joined yet, or it ended)";

impl Cluster {
    /// Asks the home of session `id`; `Err` names why it could not.
    async fn ask(&self, id: &str, ctl: &Ctl) -> Result<CtlReply, String> {
        let body = serde_json::to_vec(ctl).expect("requests always serialise");
        let request = self.nats.request(subject_home(id), body.into());
        let msg = match tokio::time::timeout(CTL_TIMEOUT, request).await {
            Err(_) => return Err("the broker node holding this session did not answer".into()),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(NOT_LIVE_ANYWHERE.into());
            }
            Ok(Err(e)) => return Err(format!("cannot reach the session's broker node: {e}")),
            Ok(Ok(msg)) => msg,
        };
        serde_json::from_slice(&msg.payload)
            .map_err(|e| format!("bad answer from a broker node: {e}"))
    }

    /// Attaches this node's operator connection `conn` to session `id`
    /// homed on another node.
    pub async fn attach(&self, id: &str, conn: ConnId, notice: &str) -> Result<(), String> {
        let ctl = Ctl::Attach {
            node: self.node.clone(),
            conn,
            notice: notice.to_string(),
        };
        match self.ask(id, &ctl).await? {
            CtlReply::Done { .. } => {
                self.remote
                    .lock()
                    .expect("cluster lock is never poisoned")
                    .insert((id.to_string(), conn));
                Ok(())
            }
            CtlReply::Refused { message } => Err(message),
        }
    }

    /// Detaches `conn` from session `id` homed elsewhere; true when it was
    /// the session's last operator connection.
    pub async fn detach(&self, id: &str, conn: ConnId, notice: &str) -> bool {
        self.remote
            .lock()
            .expect("cluster lock is never poisoned")
            .remove(&(id.to_string(), conn));
        let ctl = Ctl::Detach {
            conn,
            notice: notice.to_string(),
        };
        matches!(self.ask(id, &ctl).await, Ok(CtlReply::Done { last: true }))
    }

    /// Ends session `id` homed on another node.
    pub async fn end(&self, id: &str, reason: &str) -> Result<(), String> {
        let ctl = Ctl::End {
            reason: reason.to_string(),
        };
        match self.ask(id, &ctl).await? {
            CtlReply::Done { .. } => Ok(()),
            CtlReply::Refused { message } => Err(message),
        }
    }

    /// Asks the home of rebooting session `id` to hand it over to this
    /// node: true when it did, or when no node holds it (then this node
    /// adopts it); false when its home refused or did not answer.
    pub async fn release(&self, id: &str) -> bool {
        match self.ask(id, &Ctl::Release).await {
            Ok(CtlReply::Done { .. }) => true,
            Ok(CtlReply::Refused { .. }) => false,
            Err(why) => why == NOT_LIVE_ANYWHERE,
        }
    }

    /// True unless no node holds session `id` (nobody answers for it, or
    /// its node no longer has it). A home that does not answer in time is
    /// taken as alive: adopting a session twice would be worse than an
    /// agent retrying.
    pub async fn home_alive(&self, id: &str) -> bool {
        match self.ask(id, &Ctl::Ping).await {
            Ok(CtlReply::Done { .. }) => true,
            Ok(CtlReply::Refused { .. }) => false,
            Err(why) => why != NOT_LIVE_ANYWHERE,
        }
    }

    /// True when this node's connection `conn` is attached to session `id`
    /// homed on another node.
    pub fn is_remote_attached(&self, id: &str, conn: ConnId) -> bool {
        self.remote
            .lock()
            .expect("cluster lock is never poisoned")
            .contains(&(id.to_string(), conn))
    }

    /// Sends a frame to the agent of session `id`, wherever it is homed.
    pub async fn to_agent(&self, id: &str, frame: &Frame) {
        if let Err(e) = self.nats.publish(subject_agent(id), encode(frame)).await {
            tracing::warn!(session = %id, "cluster: cannot forward to the agent: {e}");
        }
    }
}
