//! Where a session's other side is: in this node's registry, or (with
//! `[cluster]`) on the session's home node, reached through the cluster.
//! The operator's handlers call these instead of the registry, so a
//! single broker and a cluster node run the same code.

use lifeline_core::link::FrameSender;
use lifeline_core::session::SessionEvent;
use lifeline_protocol::{Frame, Party};

use crate::Shared;
use crate::registry::ConnId;

impl Shared {
    /// Tells the operator's online connections (on every node) that a
    /// session is ready.
    pub fn announce_ready(&self, operator_id: i64, frame: Frame) {
        match &self.cluster {
            Some(cluster) => {
                let cluster = std::sync::Arc::clone(cluster);
                tokio::spawn(async move { cluster.session_ready(operator_id, &frame).await });
            }
            None => self.registry.notify_online(operator_id, frame),
        }
    }

    /// Attaches operator connection `conn` (queue `tx`) to session `id`,
    /// here or on its home node.
    pub async fn attach_anywhere(
        &self,
        id: &str,
        conn: ConnId,
        tx: FrameSender,
        notice: &str,
    ) -> Result<(), String> {
        match &self.cluster {
            Some(cluster) if self.registry.state(id).is_none() => {
                cluster.attach(id, conn, notice).await
            }
            _ => self.registry.attach(&self.store, id, conn, tx, notice),
        }
    }

    /// Detaches `conn` from session `id`; true when it was the last
    /// operator connection.
    pub async fn detach_anywhere(&self, id: &str, conn: ConnId, notice: &str) -> bool {
        if let Some(cluster) = &self.cluster
            && cluster.is_remote_attached(id, conn)
        {
            return cluster.detach(id, conn, notice).await;
        }
        self.registry.detach(&self.store, id, conn, notice)
    }

    /// Ends live session `id`, here or on its home node.
    pub async fn end_anywhere(&self, id: &str, reason: &str) -> Result<(), String> {
        if self.registry.state(id).is_none()
            && let Some(cluster) = &self.cluster
        {
            return cluster.end(id, reason).await;
        }
        self.registry.end(
            &self.store,
            id,
            SessionEvent::Ended,
            Party::Operator,
            reason,
        );
        Ok(())
    }

    /// True when `conn` is attached to session `id`, here or remotely.
    pub fn is_attached_anywhere(&self, id: &str, conn: ConnId) -> bool {
        self.registry.is_attached(id, conn)
            || self
                .cluster
                .as_ref()
                .is_some_and(|c| c.is_remote_attached(id, conn))
    }

    /// Sends `frame` to the agent of session `id`. `None`: it has no agent
    /// here and there is no cluster to reach its home; `Some(false)`: its
    /// connection here closed, or was dropped just now for not reading
    /// (its own handler ends the session and tells the operators why).
    pub async fn to_agent(&self, id: &str, frame: Frame) -> Option<bool> {
        self.to_agent_all(id, vec![frame]).await
    }

    /// True when session `id`'s agent is reached through the cluster (not
    /// connected to this node).
    pub fn agent_elsewhere(&self, id: &str) -> bool {
        self.cluster.is_some() && self.registry.agent_tx(id).is_none()
    }

    /// [`Shared::to_agent`] for frames in order: on another node, in one
    /// NATS message (`cluster::NATS_BATCH_BYTES`).
    pub async fn to_agent_all(&self, id: &str, frames: Vec<Frame>) -> Option<bool> {
        if let Some(tx) = self.registry.agent_tx(id) {
            for frame in frames {
                if !crate::relay::to(self, &tx, frame).await {
                    return Some(false);
                }
            }
            return Some(true);
        }
        let cluster = self.cluster.as_ref()?;
        cluster.to_agent(id, &frames).await;
        Some(true)
    }
}
