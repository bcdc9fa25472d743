//! Sessions whose node stopped and whose customer never came back. The
//! store says which node holds each live session (`home_node`); a node
//! that stopped answers no more on `lifeline.node.{node}`. Every node's
//! sweeper looks at the sessions held by other nodes: one whose node is
//! gone and that no node has adopted for the resume window is ended, and
//! the store lets exactly one node do it (`end_if_held_by`), so the report
//! says it once.

use std::sync::Arc;
use std::time::Instant;

use lifeline_protocol::Party;

use super::{CTL_TIMEOUT, Cluster, ClusterError};
use crate::Shared;

/// Why such a session ended, for the report.
pub const NODE_LOST: &str = "the broker node holding the session stopped and the customer's agent did not come back within the resume window";

fn subject_node(node: &str) -> String {
    format!("lifeline.node.{node}")
}

impl Cluster {
    /// Answers other nodes asking whether this one is there.
    pub(super) async fn answer_node_pings(self: &Arc<Self>) -> Result<(), ClusterError> {
        let mut sub = self.subscribe(subject_node(&self.node)).await?;
        let nats = self.nats.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(msg) = sub.next().await {
                if let Some(reply) = msg.reply {
                    let _ = nats.publish(reply, "here".into()).await;
                }
            }
        });
        Ok(())
    }

    /// False only when nobody answers for `node` (it stopped); a slow or
    /// unreachable answer counts as alive, so no session is ended on doubt.
    async fn node_alive(&self, node: &str) -> bool {
        let ask = self.nats.request(subject_node(node), "?".into());
        match tokio::time::timeout(CTL_TIMEOUT, ask).await {
            Ok(Err(e)) => e.kind() != async_nats::RequestErrorKind::NoResponders,
            Ok(Ok(_)) | Err(_) => true,
        }
    }

    /// Ends the sessions whose node stopped more than the resume window
    /// ago and that no node took over (called by the sweeper).
    /// The store is asked which nodes hold sessions (one row per node),
    /// and for the sessions only of nodes found gone: at rest the sweep
    /// costs one small query and one NATS request per other node.
    pub async fn sweep_orphans(&self, shared: &Shared) {
        let nodes = match shared.store.nodes_holding_sessions(&self.node) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("cluster: cannot list the nodes holding sessions: {e}");
                return;
            }
        };
        let mut held = Vec::new();
        for node in nodes {
            if self.node_alive(&node).await {
                continue;
            }
            match shared.store.sessions_held_by(&node) {
                Ok(ids) => held.extend(ids.into_iter().map(|id| (id, node.clone()))),
                Err(e) => tracing::warn!("cluster: cannot list the sessions of node {node}: {e}"),
            }
        }
        for (id, node) in self.due_orphans(shared, held) {
            match shared.store.end_if_held_by(&id, &node) {
                Ok(true) => shared.record(&id, "end", Party::Broker, NODE_LOST),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(session = %id, "cluster: cannot end an orphaned session: {e}")
                }
            }
        }
    }

    /// Of `held` (sessions of nodes that are gone), those orphaned for the
    /// whole resume window.
    fn due_orphans(&self, shared: &Shared, held: Vec<(String, String)>) -> Vec<(String, String)> {
        let now = Instant::now();
        let window = shared.cfg.limits.resume_window;
        let mut seen = self.orphans.lock().expect("cluster lock is never poisoned");
        seen.retain(|id, _| held.iter().any(|(h, _)| h == id));
        let mut due = Vec::new();
        for (id, node) in held {
            if shared.registry.state(&id).is_some() {
                seen.remove(&id);
                continue;
            }
            let since = *seen.entry(id.clone()).or_insert(now);
            if now.duration_since(since) >= window {
                seen.remove(&id);
                due.push((id, node));
            }
        }
        due
    }
}
