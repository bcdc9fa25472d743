//! Several broker nodes serving one organisation: any node accepts any
//! agent or operator, and sessions are routed between nodes over NATS.
//!
//! The model is the *home node*: a session lives in the registry of the
//! node its customer's agent is connected to, exactly as on a single
//! broker. Operators connected to other nodes take part through NATS:
//!
//! | subject | who subscribes | carries |
//! |---|---|---|
//! | `lifeline.home.{node}.{session}` | node `{node}` (`lifeline.home.{node}.*`) | requests (`Ctl`) for a session homed there: attach or detach an operator connection of another node, end the session, its state |
//! | `lifeline.agent.{node}.{session}` | node `{node}` (`lifeline.agent.{node}.*`) | frames operators on other nodes send to the agent of a session homed there |
//! | `lifeline.conn.{node}.{conn}` | node `{node}` (`lifeline.conn.{node}.*`) | frames for one of its operator connections: the home node's registry holds, for each remote operator, a queue whose frames go there |
//! | `lifeline.online.{operator}` | every node | "session ready" notices for an operator's connections wherever they are |
//! | `lifeline.moved.{session}` | every node | a session's new home (adopted or handed over): connections attached through the old one attach again |
//! | `lifeline.node.{node}` | node `{node}` | "are you there?" (`orphans`): no responders means the node stopped |
//! | `lifeline.limit.{limiter}` | every node | spends and refunds of the guessing and login limiters (`limits`): one budget for the cluster |
//!
//! Each node subscribes once to each of its own subjects, whatever the
//! number of sessions: an idle session costs no subscription. A node sending
//! to a session homed elsewhere finds the home in the store (`home_node`,
//! written when the agent enters) and keeps it while its connections are
//! attached there; a `lifeline.moved` notice updates it. The frames of one
//! node-wide subscription are handed to their peers by `forward`, so that
//! one slow peer does not hold up the others.
//!
//! So the registry, the relay and the recording stay what they are on one
//! broker: a remote operator is one more queue in the session's operator
//! list, and a node that does not hold a session asks its home. Durable
//! state (sessions, reports, tickets, credentials) is in the shared store
//! (`[store] kind = "postgres"`); NATS carries only what is in flight, and
//! its "no responders" answer is how a node learns that no node is the
//! session's home. No membership or consensus of our own: NATS and
//! PostgreSQL provide both.

mod batch;
mod forward;
mod home;
mod limits;
mod orphans;
mod remote;
mod window;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lifeline_core::config::cluster::ClusterConfig;
use lifeline_core::link::FrameSender;
use lifeline_protocol::{Frame, MAX_FRAME_BYTES};

use crate::Shared;
use crate::registry::ConnId;

pub use batch::NATS_BATCH_BYTES;
pub(crate) use batch::take_waiting_by;
pub use forward::{FORWARD_IDLE, FORWARD_QUEUE_BYTES};
pub use home::{Ctl, CtlReply};
pub use window::{CREDIT_BATCH_BYTES, CREDIT_WINDOW_BYTES};

use batch::{decode, decode_all, encode, encode_all, take_waiting};
use forward::{Credit, Forwarders};
use window::{Window, Windows};

/// Frames queued towards one remote operator connection before the home
/// node's relay waits (then drops it as stalled, as for a local one).
pub const REMOTE_QUEUE_FRAMES: usize = 64;

/// How long a node waits for a session's home to answer a request. A home
/// that takes longer is treated as gone.
pub const CTL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The NATS payload a node needs: the largest frame plus its header and
/// the subject's overhead. A NATS server with a smaller `max_payload`
/// would drop big frames (script files), so the broker refuses to start.
pub const MIN_NATS_PAYLOAD: usize = MAX_FRAME_BYTES + 1024;

/// Why the cluster could not start or a node could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error(
        "the NATS server at {url} accepts messages of at most {max} bytes; Lifeline needs {MIN_NATS_PAYLOAD}: set max_payload: 8MB in nats-server's configuration"
    )]
    Payload { url: String, max: usize },
    #[error("cannot subscribe to {subject}: {source}")]
    Subscribe {
        subject: String,
        #[source]
        source: async_nats::SubscribeError,
    },
}

/// This node's part of the cluster.
pub struct Cluster {
    pub node: String,
    nats: async_nats::Client,
    /// This node's operator connections, for frames other nodes send them.
    conns: Mutex<HashMap<ConnId, FrameSender>>,
    /// Local operator connections attached to sessions homed elsewhere.
    remote: Mutex<HashSet<(String, ConnId)>>,
    /// The home node of each session in `remote` (where its agent's
    /// frames go), as last heard: from the store, then `lifeline.moved`.
    routes: Mutex<HashMap<String, String>>,
    /// Frames from other nodes for the agents of sessions homed here.
    to_agents: Forwarders<String>,
    /// Frames from other nodes for this node's operator connections.
    to_conns: Forwarders<ConnId>,
    /// The credit windows of the flows this node publishes to other nodes
    /// (`window`): by session for frames to agents, by remote operator
    /// connection for frames to operators.
    windows: Windows,
    /// Numbers the windows of remote operator connections.
    flows: std::sync::atomic::AtomicU64,
    /// Sessions whose node stopped, since when this node has seen them so
    /// (`orphans`).
    orphans: Mutex<HashMap<String, std::time::Instant>>,
    shared: Mutex<Weak<Shared>>,
}

fn subject_home(node: &str, session: &str) -> String {
    format!("lifeline.home.{node}.{session}")
}
fn subject_agent(node: &str, session: &str) -> String {
    format!("lifeline.agent.{node}.{session}")
}
fn subject_conn(node: &str, conn: ConnId) -> String {
    format!("lifeline.conn.{node}.{conn}")
}
fn subject_online(operator_id: i64) -> String {
    format!("lifeline.online.{operator_id}")
}
fn subject_moved(session: &str) -> String {
    format!("lifeline.moved.{session}")
}

/// The last token of a subject: the session, connection, operator or
/// limiter it is about (`lifeline.conn.{node}.{conn}` → `{conn}`).
fn last_token(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or_default()
}

impl Cluster {
    /// Connects to NATS and checks that it carries Lifeline's largest frame.
    pub async fn connect(cfg: &ClusterConfig) -> Result<Arc<Cluster>, ClusterError> {
        let nats = async_nats::ConnectOptions::new()
            .name(format!("lifeline-broker {}", cfg.node))
            .connect(cfg.nats_url.as_str())
            .await
            .map_err(|source| ClusterError::Connect {
                url: cfg.nats_url.clone(),
                source,
            })?;
        let max = nats.server_info().max_payload;
        if max < MIN_NATS_PAYLOAD {
            return Err(ClusterError::Payload {
                url: cfg.nats_url.clone(),
                max,
            });
        }
        let credit: Credit = {
            let nats = nats.clone();
            Arc::new(move |reply: String, bytes: usize| {
                let nats = nats.clone();
                tokio::spawn(async move {
                    let _ = nats.publish(reply, bytes.to_string().into()).await;
                });
            })
        };
        Ok(Arc::new_cyclic(|me: &Weak<Cluster>| {
            let (to_agent, to_conn) = (me.clone(), me.clone());
            Cluster {
                node: cfg.node.clone(),
                nats,
                conns: Mutex::default(),
                remote: Mutex::default(),
                routes: Mutex::default(),
                to_agents: Forwarders::new(
                    Arc::new(move |id: &String| {
                        let shared = to_agent.upgrade()?.shared()?;
                        let tx = shared.registry.agent_tx(id)?;
                        Some((tx, shared.cfg.limits.relay_wait))
                    }),
                    Arc::clone(&credit),
                ),
                to_conns: Forwarders::new(
                    Arc::new(move |conn: &ConnId| {
                        let me = to_conn.upgrade()?;
                        let tx = me.conn_tx(*conn)?;
                        Some((tx, me.shared()?.cfg.limits.relay_wait))
                    }),
                    credit,
                ),
                windows: Windows::default(),
                flows: 0.into(),
                orphans: Mutex::default(),
                shared: Mutex::default(),
            }
        }))
    }

    fn conn_tx(&self, conn: ConnId) -> Option<FrameSender> {
        self.conns
            .lock()
            .expect("cluster lock is never poisoned")
            .get(&conn)
            .cloned()
    }

    /// Starts serving this node's subjects for the broker `shared`.
    pub async fn start(self: &Arc<Self>, shared: &Arc<Shared>) -> Result<(), ClusterError> {
        *self.shared.lock().expect("cluster lock is never poisoned") = Arc::downgrade(shared);
        let conns = self
            .subscribe(format!("lifeline.conn.{}.*", self.node))
            .await?;
        let online = self.subscribe("lifeline.online.*".to_string()).await?;
        let credit = self
            .subscribe(window::subject_credit(&self.node, "*"))
            .await?;
        let me = Arc::clone(self);
        tokio::spawn(async move { me.take_credit(credit).await });
        let me = Arc::clone(self);
        tokio::spawn(async move { me.deliver_to_conns(conns).await });
        let me = Arc::clone(self);
        tokio::spawn(async move { me.deliver_online(online).await });
        self.serve_homes().await?;
        let moved = self.subscribe("lifeline.moved.*".to_string()).await?;
        let me = Arc::clone(self);
        tokio::spawn(async move { me.follow_moves(moved).await });
        self.share_limits(shared).await?;
        self.answer_node_pings().await?;
        // Subscriptions are in place on the server before the node serves.
        if let Err(e) = self.nats.flush().await {
            tracing::warn!("cluster: NATS flush: {e}");
        }
        Ok(())
    }

    async fn subscribe(&self, subject: String) -> Result<async_nats::Subscriber, ClusterError> {
        self.nats
            .subscribe(subject.clone())
            .await
            .map_err(|source| ClusterError::Subscribe { subject, source })
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared
            .lock()
            .expect("cluster lock is never poisoned")
            .upgrade()
    }

    /// An operator connection of this node came (other nodes may send it
    /// frames) or went.
    pub fn conn_open(&self, conn: ConnId, tx: FrameSender) {
        self.conns
            .lock()
            .expect("cluster lock is never poisoned")
            .insert(conn, tx);
    }

    pub fn conn_closed(&self, conn: ConnId) {
        self.conns
            .lock()
            .expect("cluster lock is never poisoned")
            .remove(&conn);
        let left: Vec<String> = {
            let mut remote = self.remote.lock().expect("cluster lock is never poisoned");
            let left = remote
                .iter()
                .filter(|(_, c)| *c == conn)
                .map(|(s, _)| s.clone())
                .collect();
            remote.retain(|(_, c)| *c != conn);
            left
        };
        for id in left {
            self.forget_route(&id);
        }
    }

    /// Frames other nodes send this node's operator connections.
    async fn deliver_to_conns(&self, mut sub: async_nats::Subscriber) {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            let Some(conn) = last_token(&msg.subject).parse::<ConnId>().ok() else {
                continue;
            };
            let reply = msg.reply.map(|r| r.to_string());
            for (frame, size) in decode_all(&msg.payload) {
                self.to_conns.push(conn, frame, size, reply.clone());
            }
        }
    }

    /// Credit other nodes return for the frames this node published.
    async fn take_credit(&self, mut sub: async_nats::Subscriber) {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            let bytes = std::str::from_utf8(&msg.payload)
                .ok()
                .and_then(|b| b.parse::<usize>().ok());
            if let Some(bytes) = bytes {
                self.windows.credit(last_token(&msg.subject), bytes);
            }
        }
    }

    /// How long a flow waits for credit before its window starts again:
    /// the receiving node gives up on a stalled peer after its relay wait,
    /// and credits the frames it drops then.
    fn credit_wait(&self) -> Duration {
        let relay_wait = self
            .shared()
            .map(|s| s.cfg.limits.relay_wait)
            .unwrap_or(CTL_TIMEOUT);
        relay_wait * 2 + CTL_TIMEOUT
    }

    /// Publishes `frame` to `subject` within the credit window `window`
    /// (named `key`; waiting for room at most [`Cluster::credit_wait`]).
    async fn publish_windowed(
        &self,
        subject: String,
        key: &str,
        window: &Window,
        frames: &[Frame],
    ) {
        let payload = encode_all(frames);
        let wait = self.credit_wait();
        if !window.reserve(payload.len(), wait).await {
            tracing::warn!(
                flow = key,
                "cluster: no credit back within {wait:?}; the window starts again"
            );
        }
        let reply = window::subject_credit(&self.node, key);
        if let Err(e) = self
            .nats
            .publish_with_reply(subject.clone(), reply, payload)
            .await
        {
            tracing::warn!("cluster: cannot forward to {subject}: {e}");
        }
    }

    /// "Session ready" notices for operators online on this node.
    async fn deliver_online(&self, mut sub: async_nats::Subscriber) {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            let Some(operator_id) = last_token(&msg.subject).parse::<i64>().ok() else {
                continue;
            };
            if let (Some(shared), Some(frame)) = (self.shared(), decode(&msg.payload)) {
                shared.registry.notify_online(operator_id, frame);
            }
        }
    }

    /// A session got a new home: this node's connections attached to it
    /// through the former home attach again there.
    async fn follow_moves(&self, mut sub: async_nats::Subscriber) {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            let from = String::from_utf8_lossy(&msg.payload).into_owned();
            let id = last_token(&msg.subject).to_string();
            if from == self.node {
                continue;
            }
            self.route_moved(&id, from);
            let conns: Vec<ConnId> = self
                .remote
                .lock()
                .expect("cluster lock is never poisoned")
                .iter()
                .filter(|(s, _)| *s == id)
                .map(|(_, c)| *c)
                .collect();
            for conn in conns {
                let notice = "an operator is connected again after the session moved";
                if let Err(e) = self.attach(&id, conn, notice).await {
                    tracing::warn!(session = %id, "cluster: cannot attach again after a move: {e}");
                }
            }
        }
    }

    /// Tells the operator's connections on every node (this one included)
    /// that a session is ready.
    pub async fn session_ready(&self, operator_id: i64, frame: &Frame) {
        if let Err(e) = self
            .nats
            .publish(subject_online(operator_id), encode(frame))
            .await
        {
            tracing::warn!("cluster: cannot publish a session-ready notice: {e}");
        }
    }
}
