//! Live sessions: who is connected to which session, the lifecycle
//! transitions (persisted and reported), and the relay between the sides.
//!
//! A session enters the registry when the customer joins and leaves it when
//! it ends; invitations nobody used yet live only in the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use lifeline_core::link::FrameSender;
use lifeline_core::session::{SessionEvent, TransitionError, transition};
use lifeline_protocol::{Frame, Message, Party, SessionMessage, SessionState};
use tokio::sync::Notify;

use crate::quota::{Charge, Class, MAX_REJOIN_TICKETS, ReportUsage};
use crate::store::Store;

/// Identifies one connection of an operator client.
pub type ConnId = u64;

/// A session with its customer present.
pub struct LiveSession {
    pub state: SessionState,
    pub operator_id: i64,
    /// Display name of the inviting operator, for notices.
    pub operator_name: String,
    pub agent: FrameSender,
    /// Woken when the session ends so the agent's handler closes.
    pub ended: Arc<Notify>,
    pub operators: Vec<(ConnId, FrameSender)>,
    /// While rebooting: when the rejoin ticket expires; while reconnecting
    /// after a broker restart: when the resume window closes (Unix ms).
    pub rejoin_deadline: Option<i64>,
    /// What the session recorded so far, against its quota.
    pub report: ReportUsage,
    /// Rejoin tickets issued so far (at most `MAX_REJOIN_TICKETS`).
    pub rejoin_tickets: u32,
    /// Plugin streams the agent announced and has not closed (a screen
    /// share), by stream id: the report records them as ended with the
    /// session, since the agent's own close can no longer reach it.
    pub open_streams: std::collections::BTreeMap<u32, String>,
    /// Which of this node's operator connections said hello as which
    /// end-to-end endpoint (at most `MAX_ENDPOINTS`, as the agent keeps):
    /// what the agent seals for an endpoint goes to its connection only.
    pub endpoints: Vec<(u64, ConnId)>,
}

/// Online operator connections by operator id, for "session ready" notices.
type Online = HashMap<i64, Vec<(ConnId, FrameSender)>>;

/// Open plugin streams tracked per session for the report. Threat: an
/// agent announcing streams it never closes must not grow the broker's
/// memory without bound; an agent keeps at most 16 open (`MAX_STREAMS`).
pub const MAX_OPEN_STREAMS_TRACKED: usize = 64;

pub struct Registry {
    live: Mutex<HashMap<String, LiveSession>>,
    online: Mutex<Online>,
}

fn session_frame(session_id: &str, msg: SessionMessage) -> Frame {
    Frame::Control(Message::Session {
        session_id: session_id.to_string(),
        msg,
    })
}

/// Sends without waiting; a full or closed queue drops the notice (the
/// receiving side is then being closed for being too slow or gone).
fn notify(tx: &FrameSender, frame: Frame) {
    let _ = tx.try_send(frame);
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            live: Mutex::new(HashMap::new()),
            online: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveSession>> {
        self.live.lock().expect("registry lock is never poisoned")
    }

    /// Number of sessions with a customer present.
    pub fn live_count(&self) -> usize {
        self.live().len()
    }

    pub fn operator_online(&self, operator_id: i64, conn: ConnId, tx: FrameSender) {
        let mut on = self.online.lock().expect("registry lock is never poisoned");
        on.entry(operator_id).or_default().push((conn, tx));
    }

    pub fn operator_offline(&self, operator_id: i64, conn: ConnId) {
        let mut on = self.online.lock().expect("registry lock is never poisoned");
        if let Some(v) = on.get_mut(&operator_id) {
            v.retain(|(c, _)| *c != conn);
            if v.is_empty() {
                on.remove(&operator_id);
            }
        }
    }

    /// Adds a session whose customer just joined (state Waiting). Returns
    /// the "ready" notice for the operator's online connections, which the
    /// caller hands to [`Registry::notify_online`] (or to the cluster, which
    /// reaches them on every node).
    pub fn customer_joined(&self, session_id: &str, live: LiveSession, notice: &str) -> Frame {
        self.live().insert(session_id.to_string(), live);
        session_frame(
            session_id,
            SessionMessage::State {
                state: SessionState::Waiting,
                detail: notice.to_string(),
            },
        )
    }

    /// Tells an operator's online connections on this node `frame`.
    pub fn notify_online(&self, operator_id: i64, frame: Frame) {
        let on = self.online.lock().expect("registry lock is never poisoned");
        for (_, tx) in on.get(&operator_id).into_iter().flatten() {
            notify(tx, frame.clone());
        }
    }

    /// Applies `event` to a live session and persists the new state.
    fn apply(
        store: &Store,
        id: &str,
        s: &mut LiveSession,
        event: SessionEvent,
    ) -> Result<SessionState, TransitionError> {
        let to = transition(s.state, event)?;
        if to != s.state {
            s.state = to;
            if let Err(e) = store.set_state(id, to) {
                tracing::error!(session = id, "cannot persist session state {to}: {e}");
            }
        }
        Ok(to)
    }

    /// Attaches an operator connection. Errors name why not.
    pub fn attach(
        &self,
        store: &Store,
        id: &str,
        conn: ConnId,
        tx: FrameSender,
        notice: &str,
    ) -> Result<(), String> {
        let mut live = self.live();
        let s = live.get_mut(id).ok_or_else(|| {
            "the customer is not in this session (not joined yet, or it ended)".to_string()
        })?;
        if s.state == SessionState::Rebooting && !s.operators.iter().any(|(c, _)| *c == conn) {
            return Err(
                "the customer's computer is restarting; the agent rejoins by itself (`lifeline operator wait SESSION` waits for it)"
                    .to_string(),
            );
        }
        Self::apply(store, id, s, SessionEvent::OperatorAttached).map_err(|e| e.to_string())?;
        if !s.operators.iter().any(|(c, _)| *c == conn) {
            s.operators.push((conn, tx));
        }
        notify(
            &s.agent,
            session_frame(
                id,
                SessionMessage::State {
                    state: SessionState::Connected,
                    detail: notice.to_string(),
                },
            ),
        );
        Ok(())
    }

    /// Detaches an operator connection; true when it was the last one.
    pub fn detach(&self, store: &Store, id: &str, conn: ConnId, notice: &str) -> bool {
        let mut live = self.live();
        let Some(s) = live.get_mut(id) else {
            return false;
        };
        let before = s.operators.len();
        s.operators.retain(|(c, _)| *c != conn);
        s.endpoints.retain(|(_, c)| *c != conn);
        if before == s.operators.len() || !s.operators.is_empty() {
            return false;
        }
        if Self::apply(store, id, s, SessionEvent::OperatorLeft).is_ok() {
            notify(
                &s.agent,
                session_frame(
                    id,
                    SessionMessage::State {
                        state: SessionState::Waiting,
                        detail: notice.to_string(),
                    },
                ),
            );
        }
        true
    }

    /// Ends a live session: persists, tells both sides, releases the agent.
    /// Returns false when it was not live.
    pub fn end(
        &self,
        store: &Store,
        id: &str,
        event: SessionEvent,
        by: Party,
        reason: &str,
    ) -> bool {
        let Some(s) = self.live().remove(id) else {
            return false;
        };
        Self::finish(store, id, s, event, by, reason);
        true
    }

    /// The end of a session removed from the live map: persists, tells both
    /// sides, releases the agent.
    fn finish(
        store: &Store,
        id: &str,
        mut s: LiveSession,
        event: SessionEvent,
        by: Party,
        reason: &str,
    ) {
        let _ = Self::apply(store, id, &mut s, event);
        for what in std::mem::take(&mut s.open_streams).into_values() {
            let text = format!("{what} ended with the session");
            if let Err(e) = store.record(id, "stream", Party::Broker, &text) {
                tracing::warn!(session = id, "cannot record a stream's end: {e}");
            }
        }
        let msg = SessionMessage::End {
            by,
            reason: reason.to_string(),
        };
        notify(&s.agent, session_frame(id, msg.clone()));
        for (_, tx) in &s.operators {
            notify(tx, session_frame(id, msg.clone()));
        }
        s.ended.notify_one();
    }

    /// True when `conn` is attached to the live session `id`.
    pub fn is_attached(&self, id: &str, conn: ConnId) -> bool {
        self.live()
            .get(id)
            .is_some_and(|s| s.operators.iter().any(|(c, _)| *c == conn))
    }

    /// A plugin stream of live session `id` opened (`what` describes it).
    pub fn stream_opened(&self, id: &str, stream: u32, what: String) {
        if let Some(s) = self.live().get_mut(id) {
            // Bounded by the agent's own limit of streams per session.
            if s.open_streams.len() < MAX_OPEN_STREAMS_TRACKED {
                s.open_streams.insert(stream, what);
            }
        }
    }

    /// A plugin stream of live session `id` closed.
    pub fn stream_closed(&self, id: &str, stream: u32) {
        if let Some(s) = self.live().get_mut(id) {
            s.open_streams.remove(&stream);
        }
    }

    /// The agent's queue of a live session.
    pub fn agent_tx(&self, id: &str) -> Option<FrameSender> {
        self.live().get(id).map(|s| s.agent.clone())
    }

    /// Operator connection `conn` said hello as end-to-end `endpoint` in
    /// live session `id` (the oldest claim goes past `MAX_ENDPOINTS`).
    pub fn claim_endpoint(&self, id: &str, conn: ConnId, endpoint: u64) {
        if let Some(s) = self.live().get_mut(id) {
            s.endpoints.retain(|(e, _)| *e != endpoint);
            s.endpoints.push((endpoint, conn));
            if s.endpoints.len() > lifeline_protocol::e2e::MAX_ENDPOINTS {
                s.endpoints.remove(0);
            }
        }
    }

    /// True when a connection of this node said hello as `endpoint` in
    /// live session `id` and is still attached.
    pub fn endpoint_claimed(&self, id: &str, endpoint: u64) -> bool {
        self.live()
            .get(id)
            .is_some_and(|s| endpoint_owner(s, endpoint).is_some())
    }

    /// The queues what the agent sealed for `endpoint` goes to: the
    /// attached connection that said hello as it, when this node knows
    /// it; otherwise every attached operator's (a connection on another
    /// node, or a frame for no endpoint), which ignore other endpoints'.
    pub fn operator_txs_for(&self, id: &str, endpoint: Option<u64>) -> Vec<FrameSender> {
        let live = self.live();
        let Some(s) = live.get(id) else {
            return Vec::new();
        };
        match endpoint.and_then(|ep| endpoint_owner(s, ep)) {
            Some(tx) => vec![tx.clone()],
            None => s.operators.iter().map(|(_, tx)| tx.clone()).collect(),
        }
    }

    /// The attached operators' queues of a live session.
    pub fn operator_txs(&self, id: &str) -> Vec<FrameSender> {
        self.live()
            .get(id)
            .map(|s| s.operators.iter().map(|(_, tx)| tx.clone()).collect())
            .unwrap_or_default()
    }

    pub fn state(&self, id: &str) -> Option<SessionState> {
        self.live().get(id).map(|s| s.state)
    }

    /// Applies a feature's event (access suspended / restored, reboot) and
    /// tells the attached operators the new state.
    pub fn apply_event(
        &self,
        store: &Store,
        id: &str,
        event: SessionEvent,
        notice: &str,
    ) -> Result<SessionState, String> {
        let mut live = self.live();
        let s = live
            .get_mut(id)
            .ok_or_else(|| "the session is not live".to_string())?;
        let to = Self::apply(store, id, s, event).map_err(|e| e.to_string())?;
        tell_operators(s, id, to, notice);
        Ok(to)
    }

    /// Charges a report event of `bytes` bytes to a live session's quota;
    /// events of sessions that are not live are recorded.
    pub fn charge_report(&self, id: &str, bytes: usize, class: Class) -> Charge {
        self.live()
            .get_mut(id)
            .map_or(Charge::Record, |s| s.report.charge(bytes, class))
    }

    /// Counts one more rejoin ticket for a live session; false when it has
    /// had [`MAX_REJOIN_TICKETS`] already (or is not live).
    pub fn take_rejoin_ticket(&self, id: &str) -> bool {
        match self.live().get_mut(id) {
            Some(s) if s.rejoin_tickets < MAX_REJOIN_TICKETS => {
                s.rejoin_tickets += 1;
                true
            }
            _ => false,
        }
    }

    pub fn set_rejoin_deadline(&self, id: &str, at: i64) {
        if let Some(s) = self.live().get_mut(id) {
            s.rejoin_deadline = Some(at);
        }
    }

    /// Sessions waiting for their agent (rebooting, or reconnecting after a
    /// broker restart) whose deadline has passed, with their state.
    pub fn overdue_returns(&self, now: i64) -> Vec<(String, SessionState)> {
        self.live()
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s.state,
                    SessionState::Rebooting | SessionState::Reconnecting
                ) && s.rejoin_deadline.is_some_and(|d| d < now)
            })
            .map(|(id, s)| (id.clone(), s.state))
            .collect()
    }

    /// Takes a session out of this node's registry without ending it
    /// (another broker node takes it over); returns its operator
    /// connections' IDs.
    pub fn release(&self, session_id: &str) -> Option<Vec<ConnId>> {
        let s = self.live().remove(session_id)?;
        s.ended.notify_one();
        Some(s.operators.iter().map(|(c, _)| *c).collect())
    }

    /// Puts back a session the broker restored from the store after a
    /// restart (no one is connected to it yet).
    pub fn restore(&self, session_id: &str, live: LiveSession) {
        self.live().insert(session_id.to_string(), live);
    }

    /// The agent is back (`event`: a rejoin after a reboot, or a resume
    /// after a broker restart): its new connection replaces the old one,
    /// and operators still attached see the session connected again.
    /// Returns whether an operator is attached.
    pub fn customer_back(
        &self,
        store: &Store,
        id: &str,
        event: SessionEvent,
        agent: FrameSender,
        ended: Arc<Notify>,
        notice: &str,
    ) -> Result<bool, String> {
        let mut live = self.live();
        let s = live
            .get_mut(id)
            .ok_or_else(|| "the session has ended".to_string())?;
        Self::apply(store, id, s, event).map_err(|e| e.to_string())?;
        s.agent = agent;
        let old = std::mem::replace(&mut s.ended, ended);
        if !Arc::ptr_eq(&old, &s.ended) {
            // A newer connection took over: the old handler (its socket
            // perhaps half-open) stops without touching the session.
            old.notify_one();
        }
        s.rejoin_deadline = None;
        let present = !s.operators.is_empty();
        let state = if present {
            Self::apply(store, id, s, SessionEvent::OperatorAttached).map_err(|e| e.to_string())?
        } else {
            s.state
        };
        tell_operators(s, id, state, notice);
        Ok(present)
    }
}

/// What the loss of an agent connection did to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentLost {
    /// The session is not live (it ended already).
    NotLive,
    /// A newer agent connection has taken the session over (a rejoin after
    /// a reboot): nothing changed.
    Superseded,
    /// The session is rebooting and waits for the rejoin.
    Rebooting,
    /// The session ended: the customer's connection was lost.
    Ended,
}

impl Registry {
    /// The agent connection whose handler holds `ended` lost its link.
    /// Agent connections are told apart by their `ended` notifier (each
    /// handler creates its own; a rejoin replaces it), so checking and
    /// changing the session happen under one lock and a stale handler can
    /// never end or change a session a newer connection took over.
    pub fn agent_lost(
        &self,
        store: &Store,
        id: &str,
        ended: &Arc<Notify>,
        rebooting_notice: &str,
        lost_reason: &str,
    ) -> AgentLost {
        let mut live = self.live();
        let Some(s) = live.get_mut(id) else {
            return AgentLost::NotLive;
        };
        if !Arc::ptr_eq(&s.ended, ended) {
            return AgentLost::Superseded;
        }
        if matches!(
            s.state,
            SessionState::Rebooting | SessionState::Reconnecting
        ) {
            if let Ok(to) = Self::apply(store, id, s, SessionEvent::CustomerLost) {
                tell_operators(s, id, to, rebooting_notice);
            }
            return AgentLost::Rebooting;
        }
        let Some(s) = live.remove(id) else {
            return AgentLost::NotLive;
        };
        drop(live);
        Self::finish(
            store,
            id,
            s,
            SessionEvent::CustomerLost,
            Party::Broker,
            lost_reason,
        );
        AgentLost::Ended
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// Tells a session's attached operators its new state.
/// The queue of the attached connection that said hello as `endpoint`.
fn endpoint_owner(s: &LiveSession, endpoint: u64) -> Option<&FrameSender> {
    let (_, conn) = s.endpoints.iter().find(|(e, _)| *e == endpoint)?;
    s.operators
        .iter()
        .find(|(c, _)| c == conn)
        .map(|(_, tx)| tx)
}

fn tell_operators(s: &LiveSession, id: &str, state: SessionState, notice: &str) {
    for (_, tx) in &s.operators {
        notify(
            tx,
            session_frame(
                id,
                SessionMessage::State {
                    state,
                    detail: notice.to_string(),
                },
            ),
        );
    }
}

/// Builds a `Session` control frame.
pub fn frame(session_id: &str, msg: SessionMessage) -> Frame {
    session_frame(session_id, msg)
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
