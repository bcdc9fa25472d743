//! An operator client connected to the broker: the connection's loop, its
//! requests, and the session traffic of the sessions it attached to.
//!
//! Shape: `run` reads frames and hands each to one place: a request to
//! `crate::requests::dispatch` (one small handler per request, the login
//! checked once there), a session message to `session_msg` (its checks,
//! then one small function per kind of message in `checked_session_msg`),
//! session data to `relay_data`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

use lifeline_core::link::Link;
use lifeline_protocol::{
    ErrorCode, Frame, Message, OperatorProfile, Party, ReplyBody, SessionMessage,
};
use tokio::time::Instant;

use crate::Shared;
use crate::registry::ConnId;
use crate::requests::{self, Failure, check_len, fail};
use crate::server::{kind_of, next_before};

/// Longest ticket number.
pub const MAX_TICKET_CHARS: usize = 64;
/// Longest end-user name, operator name, title or e-mail address.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest chat message, consent detail or end reason.
pub const MAX_TEXT_CHARS: usize = 8 * 1024;
/// Longest end-to-end hello (base64): a Noise NN first message is 32 bytes
/// of key and 32 of commitment; anything much longer is not one.
pub const MAX_E2E_HELLO_CHARS: usize = 256;

/// One operator connection's state, which requests read and change.
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    /// The logged-in operator; `None` before login and after logout.
    pub(crate) operator: Option<(i64, OperatorProfile)>,
    /// The login token's hash, ended by logout.
    pub(crate) token_hash: Option<String>,
    /// Sessions this connection receives the traffic of.
    pub(crate) attached: BTreeSet<String>,
    /// The end-to-end endpoints this connection said hello as, per
    /// session (at most `MAX_ENDPOINTS` each): the agent forgets their
    /// channels when the connection leaves the session. Kept here, not
    /// only in the registry's claims, because a session homed on another
    /// cluster node has no registry entry on this one.
    pub(crate) endpoints: BTreeMap<String, Vec<u64>>,
}

impl Conn {
    /// A new, anonymous connection.
    pub(crate) fn new(id: ConnId, peer: SocketAddr) -> Conn {
        Conn {
            id,
            peer,
            operator: None,
            token_hash: None,
            attached: BTreeSet::new(),
            endpoints: BTreeMap::new(),
        }
    }
}

pub async fn run(shared: Arc<Shared>, mut link: Link, peer: SocketAddr) {
    let mut c = Conn::new(shared.next_conn_id(), peer);
    if let Some(cluster) = &shared.cluster {
        cluster.conn_open(c.id, link.tx.clone());
    }
    // Unauthenticated since the handshake, or since the last logout.
    let mut anonymous_since = Some(Instant::now());
    // A frame read behind a batch of data frames, handled next.
    let mut held = None;
    loop {
        let deadline = anonymous_since.map(|t| t + shared.cfg.limits.auth_deadline);
        let frame = match held.take() {
            Some(f) => f,
            None => match next_before(&mut link, deadline, peer, "login").await {
                Some(f) => f,
                None => break,
            },
        };
        match frame {
            Frame::Control(Message::Request { id, body }) => {
                let body = match requests::dispatch(&shared, &mut c, &link, body).await {
                    Ok(b) => b,
                    Err((code, message)) => ReplyBody::Error { code, message },
                };
                anonymous_since = match (c.operator.is_some(), anonymous_since) {
                    (true, _) => None,
                    (false, None) => Some(Instant::now()),
                    (false, since) => since,
                };
                if link
                    .tx
                    .send(Frame::Control(Message::Reply { id, body }))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Frame::Control(Message::Session { session_id, msg }) => {
                if let Err((code, message)) = session_msg(&shared, &mut c, &session_id, msg).await {
                    send_error(&link, code, message).await;
                }
            }
            Frame::SessionData { session, payload } => {
                // Batched for an agent on another node only: one NATS
                // message for several frames; here each goes as it came.
                let (batch, next) = if shared.agent_elsewhere(&session) {
                    waiting_data(&mut link, &session, payload)
                } else {
                    (vec![Frame::Data(payload)], None)
                };
                held = next;
                relay_data(&shared, &c, &link, session, batch).await;
            }
            other => {
                let message = format!("unexpected {} from an operator client", kind_of(&other));
                send_error(&link, ErrorCode::BadMessage, message).await;
            }
        }
    }
    tracing::info!(peer = %c.peer, "operator connection closed: {}", link.close_reason.get());
    // A connection dropped for not reading is noted in every report it
    // was part of, even when other connections of the operator remain.
    let dropped = link.close_reason.stalled().then(|| link.close_reason.get());
    for id in std::mem::take(&mut c.attached) {
        leave(&shared, &c, &id, dropped.as_deref()).await;
    }
    if let Some((op, _)) = &c.operator {
        shared.registry.operator_offline(*op, c.id);
    }
    if let Some(cluster) = &shared.cluster {
        cluster.conn_closed(c.id);
    }
}

async fn send_error(link: &Link, code: ErrorCode, message: String) {
    let _ = link
        .tx
        .send(Frame::Control(Message::Error { code, message }))
        .await;
}

/// The operator's data frames for `session` already read and waiting
/// behind the first (`payload`), up to `cluster::NATS_BATCH_BYTES` in all:
/// relayed together (to another node, in one NATS message). The first
/// other frame comes back, to be handled next.
fn waiting_data(link: &mut Link, session: &str, payload: Vec<u8>) -> (Vec<Frame>, Option<Frame>) {
    let same_session = |read| match read {
        Frame::SessionData {
            session: s,
            payload,
        } if s == session => ControlFlow::Continue(Frame::Data(payload)),
        other => ControlFlow::Break(other),
    };
    crate::cluster::take_waiting_by(Frame::Data(payload), || link.rx.try_recv(), same_session)
}

/// Relays the operator's data frames to the agent of an attached session.
async fn relay_data(shared: &Shared, c: &Conn, link: &Link, session: String, batch: Vec<Frame>) {
    for frame in &batch {
        if let Frame::Data(payload) = frame {
            crate::e2e_records::trace_relayed_data(&session, "operator", payload);
        }
    }
    let reached =
        c.attached.contains(&session) && shared.to_agent_all(&session, batch).await.is_some();
    if !reached {
        let message = format!(
            "data for session {session:?}, which this connection is not attached to (or which has no agent now)"
        );
        send_error(link, ErrorCode::WrongState, message).await;
    }
}

/// Detaches from a session; `dropped`: why the broker closed the
/// connection, when it did.
pub(crate) async fn leave(shared: &Shared, c: &Conn, id: &str, dropped: Option<&str>) {
    let name = c
        .operator
        .as_ref()
        .map(|(_, p)| p.name.as_str())
        .unwrap_or("?");
    for endpoint in c.endpoints.get(id).into_iter().flatten() {
        let gone = SessionMessage::E2eClosed {
            endpoint: *endpoint,
            reason: format!("{name} left"),
        };
        let _ = shared.to_agent(id, crate::registry::frame(id, gone)).await;
    }
    let notice = format!("{name} left; the session stays open");
    let last = shared.detach_anywhere(id, c.id, &notice).await;
    let text = match dropped {
        Some(why) => format!("{name} disconnected by the broker: {why}"),
        None if last => format!("{name} disconnected"),
        None => return,
    };
    shared.record(id, "disconnect", Party::Operator, &text);
}

/// Records and relays one session message from the operator.
pub(crate) async fn session_msg(
    shared: &Shared,
    c: &mut Conn,
    id: &str,
    msg: SessionMessage,
) -> Result<(), Failure> {
    let Some((_, profile)) = &c.operator else {
        return Err(fail(ErrorCode::NotLoggedIn, "log in first"));
    };
    if !c.attached.contains(id) || !shared.is_attached_anywhere(id, c.id) {
        return Err(fail(
            ErrorCode::WrongState,
            format!("not connected to session {id}; connect first"),
        ));
    }
    match shared.registry.state(id) {
        Some(lifeline_protocol::SessionState::Rebooting) => {
            return Err(fail(
                ErrorCode::WrongState,
                "the customer's computer is restarting; the agent rejoins by itself, try again then",
            ));
        }
        Some(lifeline_protocol::SessionState::Reconnecting) => {
            return Err(fail(
                ErrorCode::WrongState,
                "the broker restarted and the customer's agent is reconnecting; try again in a moment",
            ));
        }
        _ => {}
    }
    let msg = checked_session_msg(profile, id, msg)?;
    if let SessionMessage::E2eHello { endpoint, .. } = &msg {
        shared.registry.claim_endpoint(id, c.id, *endpoint);
        let mine = c.endpoints.entry(id.to_string()).or_default();
        if !mine.contains(endpoint) {
            mine.push(*endpoint);
            if mine.len() > lifeline_protocol::e2e::MAX_ENDPOINTS {
                mine.remove(0);
            }
        }
    }
    let _ = shared.to_agent(id, crate::registry::frame(id, msg)).await;
    Ok(())
}

/// Checks one session message from the operator `profile`; the message
/// as the agent gets it. Content goes sealed end to end: the broker stamps
/// the operator's name on a channel's hello (the agent shows it beside
/// the channel's code) and relays sealed messages it cannot read; the
/// agent records their report events.
fn checked_session_msg(
    profile: &OperatorProfile,
    id: &str,
    msg: SessionMessage,
) -> Result<SessionMessage, Failure> {
    use SessionMessage as M;
    let msg = match msg {
        M::E2eHello {
            endpoint, noise, ..
        } => {
            check_len("end-to-end hello", &noise, MAX_E2E_HELLO_CHARS, true)?;
            M::E2eHello {
                endpoint,
                operator: profile.name.clone(),
                noise,
            }
        }
        msg @ M::Sealed { .. } => msg,
        M::End { .. } => {
            return Err(fail(
                ErrorCode::BadMessage,
                "operators end sessions with the end request",
            ));
        }
        other if other.is_content() => {
            return Err(fail(
                ErrorCode::BadMessage,
                format!(
                    "{} refused: session content goes sealed end to end; this operator client does not encrypt (update it)",
                    other.kind_name()
                ),
            ));
        }
        other => {
            return Err(fail(
                ErrorCode::BadMessage,
                format!("an operator may not send {}", other.kind_name()),
            ));
        }
    };
    crate::e2e_records::trace_relayed(id, "operator", &msg);
    Ok(msg)
}
