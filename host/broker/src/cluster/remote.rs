//! An operator node's side: requests to a session's home, and frames for
//! the agent of a session homed on another node.

use lifeline_protocol::Frame;

use super::{CTL_TIMEOUT, Cluster, Ctl, CtlReply, subject_agent, subject_home};
use crate::registry::ConnId;

/// What an operator is told when no node holds the session.
pub const NOT_LIVE_ANYWHERE: &str =
    "the customer is not in this session (not joined yet, or it ended)";

impl Cluster {
    /// Asks the home of session `id`; `Err` names why it could not. The
    /// home is the node the store names; one that no longer holds the
    /// session makes this look it up again, once.
    async fn ask(&self, id: &str, ctl: &Ctl) -> Result<CtlReply, String> {
        self.ask_home(id, ctl).await.map(|(reply, _)| reply)
    }

    /// [`Self::ask`], also naming the node that answered.
    async fn ask_home(&self, id: &str, ctl: &Ctl) -> Result<(CtlReply, String), String> {
        let mut asked: Option<String> = None;
        loop {
            let node = self.home_in_store(id)?.ok_or(NOT_LIVE_ANYWHERE)?;
            if asked.as_ref() == Some(&node) {
                return Err(NOT_LIVE_ANYWHERE.into());
            }
            match self.ask_node(&node, id, ctl).await? {
                CtlReply::NotHere => asked = Some(node),
                reply => return Ok((reply, node)),
            }
        }
    }

    /// The node the store says holds live session `id`.
    fn home_in_store(&self, id: &str) -> Result<Option<String>, String> {
        let shared = self.shared().ok_or("the broker is stopping")?;
        shared
            .store
            .home_node(id)
            .map_err(|e| format!("cannot find the session's broker node: {e}"))
    }

    /// Asks node `node` about session `id`.
    async fn ask_node(&self, node: &str, id: &str, ctl: &Ctl) -> Result<CtlReply, String> {
        let body = serde_json::to_vec(ctl).expect("requests always serialise");
        let request = self.nats.request(subject_home(node, id), body.into());
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

    /// Session `id` is homed on `node` now (a `lifeline.moved` notice).
    pub(super) fn route_moved(&self, id: &str, node: String) {
        if let Some(route) = self
            .routes
            .lock()
            .expect("cluster lock is never poisoned")
            .get_mut(id)
        {
            *route = node;
        }
    }

    /// Forgets where session `id` is homed once none of this node's
    /// connections is attached to it there.
    pub(super) fn forget_route(&self, id: &str) {
        let attached = self
            .remote
            .lock()
            .expect("cluster lock is never poisoned")
            .iter()
            .any(|(s, _)| s == id);
        if !attached {
            self.routes
                .lock()
                .expect("cluster lock is never poisoned")
                .remove(id);
            self.windows.forget(&agent_flow(id));
        }
    }

    /// Attaches this node's operator connection `conn` to session `id`
    /// homed on another node.
    pub async fn attach(&self, id: &str, conn: ConnId, notice: &str) -> Result<(), String> {
        let ctl = Ctl::Attach {
            node: self.node.clone(),
            conn,
            notice: notice.to_string(),
        };
        match self.ask_home(id, &ctl).await? {
            (CtlReply::Done { .. }, node) => {
                self.remote
                    .lock()
                    .expect("cluster lock is never poisoned")
                    .insert((id.to_string(), conn));
                self.routes
                    .lock()
                    .expect("cluster lock is never poisoned")
                    .insert(id.to_string(), node);
                Ok(())
            }
            (CtlReply::Refused { message }, _) => Err(message),
            (CtlReply::NotHere, _) => Err(NOT_LIVE_ANYWHERE.into()),
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
        let last = matches!(self.ask(id, &ctl).await, Ok(CtlReply::Done { last: true }));
        self.forget_route(id);
        last
    }

    /// Ends session `id` homed on another node.
    pub async fn end(&self, id: &str, reason: &str) -> Result<(), String> {
        let ctl = Ctl::End {
            reason: reason.to_string(),
        };
        match self.ask(id, &ctl).await? {
            CtlReply::Done { .. } => Ok(()),
            CtlReply::Refused { message } => Err(message),
            CtlReply::NotHere => Err(NOT_LIVE_ANYWHERE.into()),
        }
    }

    /// Asks the home of rebooting session `id` to hand it over to this
    /// node: true when it did, or when no node holds it (then this node
    /// adopts it); false when its home refused or did not answer.
    pub async fn release(&self, id: &str) -> bool {
        match self.ask(id, &Ctl::Release).await {
            Ok(CtlReply::Done { .. }) => true,
            Ok(CtlReply::Refused { .. }) => false,
            Ok(CtlReply::NotHere) => true,
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
            Ok(CtlReply::Refused { .. } | CtlReply::NotHere) => false,
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

    /// Sends frames to the agent of session `id`, wherever it is homed (in
    /// one NATS message).
    pub async fn to_agent(&self, id: &str, frames: &[Frame]) {
        let known = self
            .routes
            .lock()
            .expect("cluster lock is never poisoned")
            .get(id)
            .cloned();
        let node = match known {
            Some(node) => node,
            None => match self.home_in_store(id) {
                Ok(Some(node)) => node,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(session = %id, "cluster: cannot forward to the agent: {e}");
                    return;
                }
            },
        };
        let key = agent_flow(id);
        let window = self.windows.get(&key);
        self.publish_windowed(subject_agent(&node, id), &key, &window, frames)
            .await;
    }
}

/// The credit window key of the frames this node sends to session `id`'s
/// agent.
fn agent_flow(id: &str) -> String {
    format!("a{id}")
}
