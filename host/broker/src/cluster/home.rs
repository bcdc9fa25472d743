//! The home node's side: the subjects of the sessions whose agent is
//! connected here, and the requests other nodes make of them.

use std::sync::Arc;

use lifeline_core::link::FrameSender;
use lifeline_core::session::SessionEvent;
use lifeline_protocol::Party;
use serde::{Deserialize, Serialize};

use super::{
    Cluster, ClusterError, REMOTE_QUEUE_FRAMES, decode, encode, subject_agent, subject_conn,
    subject_home, subject_moved,
};
use crate::Shared;
use crate::registry::{ConnId, Registry};

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
}

impl Cluster {
    /// Session `id` is homed here from now on (its agent entered on this
    /// node): this node answers its requests and forwards frames to its
    /// agent. A home held before (a rejoin on the same node) is replaced.
    pub async fn home(self: &Arc<Self>, id: &str) -> Result<(), ClusterError> {
        let ctl = self.subscribe(subject_home(id)).await?;
        let to_agent = self.subscribe(subject_agent(id)).await?;
        // The subscriptions are on the server before the agent is told it is
        // in (async-nats only queues a subscribe).
        if let Err(e) = self.nats.flush().await {
            tracing::warn!(session = %id, "cluster: NATS flush: {e}");
        }
        let (me, sid) = (Arc::clone(self), id.to_string());
        let serve = tokio::spawn(async move { me.serve_ctl(&sid, ctl).await });
        let (me, sid) = (Arc::clone(self), id.to_string());
        let forward = tokio::spawn(async move { me.forward_to_agent(&sid, to_agent).await });
        let old = self
            .homes
            .lock()
            .expect("cluster lock is never poisoned")
            .insert(id.to_string(), vec![serve, forward]);
        for task in old.into_iter().flatten() {
            task.abort();
        }
        Ok(())
    }

    /// Session `id` went to another node: this node stops being its home,
    /// and its own operator connections in it (`conns` may name other
    /// nodes' too) attach again at the new home once it announces itself.
    fn handed_over(&self, id: &str, conns: &[ConnId]) {
        if let Some(tasks) = self
            .homes
            .lock()
            .expect("cluster lock is never poisoned")
            .remove(id)
        {
            for t in tasks {
                t.abort();
            }
        }
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

    /// Stops being the home of sessions that left this node's registry.
    pub fn sweep_homes(&self, registry: &Registry) {
        let mut homes = self.homes.lock().expect("cluster lock is never poisoned");
        homes.retain(|id, tasks| {
            let keep = registry.state(id).is_some();
            if !keep {
                for t in tasks.iter() {
                    t.abort();
                }
            }
            keep
        });
    }

    async fn serve_ctl(self: &Arc<Self>, id: &str, mut sub: async_nats::Subscriber) {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            // Boxed: answering (decoding, the registry, the reply's publish)
            // needs kilobytes of state, only while a request is in hand; an
            // idle session's task waits with a small one.
            Box::pin(self.answer(id, msg)).await;
        }
    }

    /// Answers one request made of session `id`'s home.
    async fn answer(self: &Arc<Self>, id: &str, msg: async_nats::Message) {
        let Some(reply_to) = msg.reply.clone() else {
            return;
        };
        let reply = match (self.shared(), serde_json::from_slice::<Ctl>(&msg.payload)) {
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
            Ctl::Ping => match shared.registry.state(id) {
                Some(_) => CtlReply::Done { last: false },
                None => CtlReply::Refused {
                    message: "not live here".into(),
                },
            },
        }
    }

    /// Frames operators on other nodes send the agent of session `id`.
    async fn forward_to_agent(&self, id: &str, mut sub: async_nats::Subscriber) {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            // Boxed, as in `serve_ctl`: the relay's state only while a
            // frame is in hand.
            Box::pin(self.forward_one(id, msg)).await;
        }
    }

    /// Relays one frame from an operator on another node to the agent.
    async fn forward_one(&self, id: &str, msg: async_nats::Message) {
        let (Some(shared), Some(frame)) = (self.shared(), decode(&msg.payload)) else {
            return;
        };
        if let Some(tx) = shared.registry.agent_tx(id) {
            crate::relay::to(&shared, &tx, frame).await;
        }
    }

    /// The queue standing for operator connection `conn` of node `node` in
    /// a session's operator list: its frames are published to that node.
    pub fn remote_sender(self: &Arc<Self>, node: &str, conn: ConnId) -> FrameSender {
        let (tx, mut rx) = FrameSender::pair(REMOTE_QUEUE_FRAMES);
        let subject = subject_conn(node, conn);
        let nats = self.nats.clone();
        tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if let Err(e) = nats.publish(subject.clone(), encode(&frame)).await {
                    tracing::warn!("cluster: cannot forward to {subject}: {e}");
                }
            }
        });
        tx
    }
}
