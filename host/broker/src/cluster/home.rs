//! The home node's side: the subjects of the sessions whose agent is
//! connected here, and the requests other nodes make of them.

use std::sync::Arc;

use lifeline_core::link::FrameSender;
use lifeline_core::session::SessionEvent;
use lifeline_protocol::Party;
use serde::{Deserialize, Serialize};

use super::{
    Cluster, ClusterError, REMOTE_QUEUE_FRAMES, decode_all, last_token, subject_conn, subject_moved,
};
use crate::Shared;
use crate::registry::ConnId;

/// What another node asks of a session's home.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Ctl {
    /// Operator connection `conn` of node `node` attaches.
    Attach {
        node: String,
        conn: ConnId,
        notice: String,
    },
    /// Operator connection `conn` leaves the session (it stays open).
    Detach { conn: ConnId, notice: String },
    /// The operator ends the session.
    End { reason: String },
    /// Is the session homed and live? (A node about to adopt it asks.)
    Ping,
    /// The agent of this rebooting session came back on another node:
    /// hand the session over (it leaves this node's registry, not ended).
    Release,
}

/// The home's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum CtlReply {
    /// Done; for a detach, whether it was the last operator connection.
    Done { last: bool },
    /// Not done, and why (for the operator).
    Refused { message: String },
    /// The session is not live on this node (it ended, or moved on): the
    /// asking node looks up its home again.
    NotHere,
}

impl Cluster {
    /// Serves this node's home subjects, once for all the sessions homed
    /// here: requests on `lifeline.home.{node}.*` and frames for their
    /// agents on `lifeline.agent.{node}.*`.
    pub(super) async fn serve_homes(self: &Arc<Self>) -> Result<(), ClusterError> {
        let ctl = self
            .subscribe(format!("lifeline.home.{}.*", self.node))
            .await?;
        let to_agents = self
            .subscribe(format!("lifeline.agent.{}.*", self.node))
            .await?;
        let me = Arc::clone(self);
        tokio::spawn(async move { me.serve_ctl(ctl).await });
        let me = Arc::clone(self);
        tokio::spawn(async move { me.forward_to_agents(to_agents).await });
        Ok(())
    }

    /// Session `id` went to another node: its own operator connections in
    /// it (`conns` may name other nodes' too) attach again at the new home
    /// once it announces itself.
    fn handed_over(&self, id: &str, conns: &[ConnId]) {
        let local = self.conns.lock().expect("cluster lock is never poisoned");
        let mut remote = self.remote.lock().expect("cluster lock is never poisoned");
        for conn in conns.iter().filter(|c| local.contains_key(c)) {
            remote.insert((id.to_string(), *conn));
        }
    }

    /// Tells every node that session `id` is homed here now: operator
    /// connections attached to it through its former home attach again.
    pub async fn announce_home(&self, id: &str) {
        if let Err(e) = self
            .nats
            .publish(subject_moved(id), self.node.clone().into())
            .await
        {
            tracing::warn!(session = %id, "cluster: cannot announce the session's new home: {e}");
        }
    }

    /// Requests for the sessions homed here, answered in the order they
    /// came (an attach before the same connection's detach).
    async fn serve_ctl(self: &Arc<Self>, mut sub: async_nats::Subscriber) {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            let id = last_token(&msg.subject).to_string();
            // Boxed: answering (decoding, the registry, the reply's publish)
            // needs kilobytes of state, only while a request is in hand.
            Box::pin(self.answer(&id, msg)).await;
        }
    }

    /// Answers one request made of session `id`'s home.
    async fn answer(self: &Arc<Self>, id: &str, msg: async_nats::Message) {
        let Some(reply_to) = msg.reply.clone() else {
            return;
        };
        let reply = match (self.shared(), serde_json::from_slice::<Ctl>(&msg.payload)) {
            (Some(shared), Ok(_)) if shared.registry.state(id).is_none() => CtlReply::NotHere,
            (Some(shared), Ok(ctl)) => self.apply(&shared, id, ctl),
            (None, _) => return,
            (_, Err(e)) => CtlReply::Refused {
                message: format!("bad cluster request: {e}"),
            },
        };
        let body = serde_json::to_vec(&reply).expect("replies always serialise");
        if let Err(e) = self.nats.publish(reply_to, body.into()).await {
            tracing::warn!(session = %id, "cluster: cannot answer a request: {e}");
        }
    }

    /// Carries out one request on the session in this node's registry.
    fn apply(self: &Arc<Self>, shared: &Shared, id: &str, ctl: Ctl) -> CtlReply {
        match ctl {
            Ctl::Attach { node, conn, notice } => {
                let tx = self.remote_sender(&node, conn);
                match shared.registry.attach(&shared.store, id, conn, tx, &notice) {
                    Ok(()) => CtlReply::Done { last: false },
                    Err(message) => CtlReply::Refused { message },
                }
            }
            Ctl::Detach { conn, notice } => CtlReply::Done {
                last: shared.registry.detach(&shared.store, id, conn, &notice),
            },
            Ctl::End { reason } => {
                shared.registry.end(
                    &shared.store,
                    id,
                    SessionEvent::Ended,
                    Party::Operator,
                    &reason,
                );
                CtlReply::Done { last: true }
            }
            Ctl::Release => match shared.registry.release(id) {
                Some(conns) => {
                    self.handed_over(id, &conns);
                    CtlReply::Done { last: false }
                }
                None => CtlReply::Refused {
                    message: "not live here".into(),
                },
            },
            // Live here: `answer` said `NotHere` otherwise.
            Ctl::Ping => CtlReply::Done { last: false },
        }
    }

    /// Frames operators on other nodes send the agents of sessions homed
    /// here, each agent's in order, none waiting on another's.
    async fn forward_to_agents(&self, mut sub: async_nats::Subscriber) {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            let id = last_token(&msg.subject).to_string();
            let reply = msg.reply.map(|r| r.to_string());
            for (frame, size) in decode_all(&msg.payload) {
                self.to_agents.push(id.clone(), frame, size, reply.clone());
            }
        }
    }

    /// The queue standing for operator connection `conn` of node `node` in
    /// a session's operator list: its frames are published to that node.
    pub fn remote_sender(self: &Arc<Self>, node: &str, conn: ConnId) -> FrameSender {
        let (tx, mut rx) = FrameSender::pair(REMOTE_QUEUE_FRAMES);
        let subject = subject_conn(node, conn);
        // A window of its own: each remote connection reads at its pace.
        let n = self
            .flows
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = format!("o{n}");
        let window = self.windows.get(&key);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut held = None;
            loop {
                let first = match held.take() {
                    Some(f) => f,
                    None => match rx.recv().await {
                        Some(f) => f,
                        None => break,
                    },
                };
                let (frames, over) = super::take_waiting(&mut rx, first);
                held = over;
                me.publish_windowed(subject.clone(), &key, &window, &frames)
                    .await;
            }
            me.windows.forget(&key);
        });
        tx
    }
}
