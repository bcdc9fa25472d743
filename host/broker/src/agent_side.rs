//! A customer's agent connected to the broker: join by connection ID, link
//! token or short code, then relay its session traffic to the operator.
//!
//! Shape: `enter` answers the first frame (join or rejoin); then `on_frame`
//! maps each frame to one small handler (data, session message, rejoin
//! ticket, cancelled reboot), and `from_customer` does the same for the
//! session messages that need more than recording and relaying. A new kind
//! of agent message is a new small function plus one line in `on_frame`.

use std::net::SocketAddr;
use std::sync::Arc;

use lifeline_core::link::Link;
use lifeline_core::session::SessionEvent;
use lifeline_protocol::{
    ErrorCode, Frame, JoinCredential, Message, Party, SessionMessage, SessionState,
};
use tokio::sync::Notify;

use crate::Shared;
use crate::registry::LiveSession;
use crate::server::kind_of;

/// Longest host name an agent may report.
pub const MAX_HOST_CHARS: usize = 255;

pub async fn run(shared: Arc<Shared>, mut link: Link, peer: SocketAddr) {
    let ended = Arc::new(Notify::new());
    // `enter` and `on_frame` are boxed: their states are large (joins,
    // cluster requests, the store) and needed only while they run, so an
    // idle agent's task does not carry them (docs/benchmarks.md, "Idle
    // agents", After).
    let Some(id) = Box::pin(enter(&shared, &mut link, peer, &ended)).await else {
        return;
    };
    loop {
        let frame = tokio::select! {
            f = link.rx.recv() => f,
            _ = ended.notified() => return,
        };
        let Some(frame) = frame else {
            shared.agent_link_closed(&id, &ended, &link.close_reason.get());
            return;
        };
        if !Box::pin(on_frame(&shared, &id, &link, &ended, frame)).await {
            return;
        }
    }
}

/// The agent's first frame, a join or a rejoin, checked and answered; the
/// session's ID when the agent is in.
async fn enter(
    shared: &Shared,
    link: &mut Link,
    peer: SocketAddr,
    ended: &Arc<Notify>,
) -> Option<String> {
    let joined = match crate::server::first_frame(shared, link, peer).await? {
        Frame::Control(Message::Join { credential, host }) => {
            let host: String = host.chars().take(MAX_HOST_CHARS).collect();
            shared
                .join(
                    &credential,
                    peer.ip(),
                    &host,
                    link.tx.clone(),
                    Arc::clone(ended),
                )
                .map(|(session, operator)| {
                    let id = session.session_id.clone();
                    (id, Message::Joined { session, operator })
                })
        }
        Frame::Control(Message::Rejoin { ticket, host }) => {
            let host: String = host.chars().take(MAX_HOST_CHARS).collect();
            shared.take_over_rebooting(&ticket).await;
            let (agent, ended) = (link.tx.clone(), Arc::clone(ended));
            let back = shared.rejoin(&ticket, peer.ip(), &host, agent, ended);
            back.map(|b| rejoined(shared, b))
        }
        Frame::Control(Message::Resume { credential, host }) => {
            let host: String = host.chars().take(MAX_HOST_CHARS).collect();
            shared.adopt_orphan(&credential).await;
            let (agent, ended) = (link.tx.clone(), Arc::clone(ended));
            let back = shared.resume(&credential, peer.ip(), &host, agent, ended);
            back.map(|b| rejoined(shared, b))
        }
        other => {
            let reason = format!("expected join, got {}", kind_of(&other));
            tracing::info!(%peer, "agent refused: {reason}");
            send_error(link, ErrorCode::BadMessage, reason).await;
            return None;
        }
    };
    match joined {
        Ok((id, reply)) => {
            tracing::info!(%peer, session = %id, "customer joined");
            // Homed before the agent hears it is in: what operators on
            // other nodes send from then on finds it.
            let came_back = matches!(reply, Message::Rejoined { .. });
            home_here(shared, &id, came_back).await;
            link.tx.send(Frame::Control(reply)).await.ok()?;
            send_resume_credential(shared, &id, link).await;
            Some(id)
        }
        Err((code, message)) => {
            tracing::info!(%peer, "join refused: {message}");
            send_error(link, code, message).await;
            None
        }
    }
}

/// The answer to an agent back in its session (a rejoin or a resume), with
/// the session's ID; `received` tells it what of its own it need not send
/// again.
fn rejoined(
    shared: &Shared,
    (session, operator, operator_present): crate::rejoin::Back,
) -> (String, Message) {
    let id = session.session_id.clone();
    let received = shared.agent_seq_recorded(&id);
    let reply = Message::Rejoined {
        session,
        operator,
        operator_present,
        received,
    };
    (id, reply)
}

/// With `[cluster]`: session `id`'s agent is on this node, which is now
/// the session's home for every other node.
async fn home_here(shared: &Shared, id: &str, came_back: bool) {
    let Some(cluster) = &shared.cluster else {
        return;
    };
    if let Err(e) = shared.store.set_home_node(id, &cluster.node) {
        tracing::warn!(session = %id, "cluster: cannot record the session's node: {e}");
    }
    // A fresh join has no operator attached anywhere yet: only an agent
    // coming back (rejoin, resume) may have moved the session here. (This
    // node's subjects serve every session homed here: nothing to subscribe.)
    if came_back {
        cluster.announce_home(id).await;
    }
}

/// Gives the agent that just entered session `id` its resume credential.
/// Without one (the store failed) the session still goes on; it just
/// cannot survive a broker restart, and the agent is not told otherwise.
async fn send_resume_credential(shared: &Shared, id: &str, link: &Link) {
    match shared.issue_resume_credential(id) {
        Ok(credential) => {
            let msg = Message::ResumeCredential { credential };
            let _ = link.tx.send(Frame::Control(msg)).await;
        }
        Err(e) => tracing::warn!(session = %id, "no resume credential: {e}"),
    }
}

/// Handles one frame from the agent of session `id`; false when the
/// session is over.
async fn on_frame(
    shared: &Shared,
    id: &str,
    link: &Link,
    ended: &Arc<Notify>,
    frame: Frame,
) -> bool {
    match frame {
        Frame::Data(payload) => relay_data(shared, id, link, payload).await,
        Frame::Control(Message::Session { msg, .. }) => {
            return from_customer(shared, id, msg, None, link).await;
        }
        Frame::Control(Message::Sequenced { msg, seq, .. }) => {
            return from_customer(shared, id, msg, Some(seq), link).await;
        }
        Frame::Control(Message::RejoinTicketRequest { detail }) => {
            rejoin_ticket(shared, id, link, &detail).await;
        }
        Frame::Control(Message::RebootCancelled { reason }) => {
            reboot_cancelled(shared, id, link, ended, &reason);
        }
        other => {
            let reason = format!("unexpected {} from the agent", kind_of(&other));
            send_error(link, ErrorCode::BadMessage, reason).await;
        }
    }
    true
}

/// Relays the agent's data to every operator connection attached.
async fn relay_data(shared: &Shared, id: &str, link: &Link, payload: Vec<u8>) {
    if payload.len() > lifeline_protocol::MAX_DATA_PAYLOAD_BYTES {
        let reason = format!(
            "data frame of {} bytes dropped: relayed data is limited to {} bytes per frame",
            payload.len(),
            lifeline_protocol::MAX_DATA_PAYLOAD_BYTES
        );
        send_error(link, ErrorCode::Invalid, reason).await;
        return;
    }
    crate::e2e_records::trace_relayed_data(id, "agent", &payload);
    let endpoint = lifeline_protocol::e2e::split_data(&payload).map(|(e, _)| e);
    // Operators may watch several sessions: the frame names its own.
    let frame = Frame::SessionData {
        session: id.to_string(),
        payload,
    };
    let txs = sealed_recipients(shared, id, link, endpoint).await;
    crate::relay::to_all(shared, txs, frame).await;
}

/// Why the broker tells the agent to forget a channel no connection holds.
pub const STALE_ENDPOINT: &str = "no operator connection holds this channel any more (its connection ended with a broker restart)";

/// Where what the agent sealed for `endpoint` goes: the connection that
/// said hello as it. On a single broker an endpoint no attached
/// connection said hello as is stale (its connection went with a broker
/// restart, which forgot who said hello): the agent is told to forget it
/// (`E2eClosed`) and nothing is relayed, so it stops sealing for it. With
/// `[cluster]` the endpoint may be a connection on another node: every
/// attached connection gets it (and ignores what is not its own).
async fn sealed_recipients(
    shared: &Shared,
    id: &str,
    link: &Link,
    endpoint: Option<u64>,
) -> Vec<lifeline_core::link::FrameSender> {
    if let Some(ep) = endpoint
        && shared.cluster.is_none()
        && !shared.registry.endpoint_claimed(id, ep)
    {
        let gone = SessionMessage::E2eClosed {
            endpoint: ep,
            reason: STALE_ENDPOINT.to_string(),
        };
        let _ = link.tx.send(crate::registry::frame(id, gone)).await;
        return Vec::new();
    }
    shared.registry.operator_txs_for(id, endpoint)
}

/// The agent is about to restart the computer: a rejoin ticket, within
/// the session's allowance.
async fn rejoin_ticket(shared: &Shared, id: &str, link: &Link, detail: &str) {
    let detail: String = detail.chars().take(MAX_HOST_CHARS).collect();
    let reply = if !shared.registry.take_rejoin_ticket(id) {
        Message::Error {
            code: ErrorCode::RateLimited,
            message: format!(
                "this session has had {} restarts already; start a new session to restart again",
                crate::quota::MAX_REJOIN_TICKETS
            ),
        }
    } else {
        match shared.issue_rejoin_ticket(id) {
            Ok((ticket, expires_at)) => {
                shared.rebooting(id, &detail);
                Message::RejoinTicket { ticket, expires_at }
            }
            Err(message) => Message::Error {
                code: ErrorCode::Internal,
                message,
            },
        }
    };
    let _ = link.tx.send(Frame::Control(reply)).await;
}

/// The restart did not happen: the session goes on with this connection.
fn reboot_cancelled(shared: &Shared, id: &str, link: &Link, ended: &Arc<Notify>, reason: &str) {
    let reason: String = reason.chars().take(MAX_HOST_CHARS).collect();
    let notice = format!("the restart did not happen: {reason}");
    shared.record_traffic(id, "reboot", Party::Customer, &notice);
    let _ = shared.registry.customer_back(
        &shared.store,
        id,
        SessionEvent::CustomerRejoined,
        link.tx.clone(),
        Arc::clone(ended),
        &notice,
    );
}

/// Records and relays one session message from the customer; false when the
/// session is over.
async fn from_customer(
    shared: &Shared,
    id: &str,
    msg: SessionMessage,
    seq: Option<u64>,
    link: &Link,
) -> bool {
    use SessionMessage as M;
    let msg = match msg {
        M::End { reason, .. } => {
            shared.record(
                id,
                "end",
                Party::Customer,
                &format!("ended by the customer: {reason}"),
            );
            shared.registry.end(
                &shared.store,
                id,
                SessionEvent::Ended,
                Party::Customer,
                &reason,
            );
            return false;
        }
        other @ (M::State { .. }
        | M::ScriptBatch { .. }
        | M::ScriptFiles { .. }
        | M::E2eHello { .. }) => {
            let reason = format!("an agent may not send {}", other.kind_name());
            send_error(link, ErrorCode::BadMessage, reason).await;
            return true;
        }
        other if other.is_content() => {
            let reason = format!(
                "{} refused: session content goes sealed end to end (sealed messages)",
                other.kind_name()
            );
            send_error(link, ErrorCode::BadMessage, reason).await;
            return true;
        }
        M::Record { event, party, text } => {
            if let Err(reason) = crate::e2e_records::check(&event, party, &text) {
                send_error(link, ErrorCode::Invalid, reason).await;
            } else {
                shared.record_traffic_from(id, &event, party, &text, seq);
            }
            return true;
        }
        M::Access {
            suspended,
            user,
            detail,
        } => {
            access_changed(shared, id, suspended, &user);
            M::Access {
                suspended,
                user,
                detail,
            }
        }
        msg => msg,
    };
    if let Some((kind, text)) = lifeline_protocol::report_text::from_customer(&msg) {
        shared.record_traffic_from(id, kind, Party::Customer, &text, seq);
    }
    match &msg {
        M::StreamOpened {
            stream,
            plugin,
            name,
            ..
        } => shared.registry.stream_opened(
            id,
            *stream,
            format!("plugin {plugin} stream {stream} {name:?}"),
        ),
        M::StreamClosed { stream, .. } => shared.registry.stream_closed(id, *stream),
        _ => {}
    }
    crate::e2e_records::trace_relayed(id, "agent", &msg);
    let endpoint = match &msg {
        M::Sealed { endpoint, .. }
        | M::E2eReply { endpoint, .. }
        | M::E2eClosed { endpoint, .. } => Some(*endpoint),
        _ => None,
    };
    let txs = sealed_recipients(shared, id, link, endpoint).await;
    let frame = crate::registry::frame(id, msg);
    crate::relay::to_all(shared, txs, frame).await;
    true
}

/// The operator logged in as `user` (`suspended`) or out again: the
/// session moves Connected ⇄ Suspended, and on to Waiting when no operator
/// is attached any more.
fn access_changed(shared: &Shared, id: &str, suspended: bool, user: &str) {
    let event = if suspended {
        SessionEvent::AccessSuspended
    } else {
        SessionEvent::AccessRestored
    };
    let notice = if suspended {
        format!("the operator works as {user}; the customer's access is suspended")
    } else {
        "the customer's access is restored".to_string()
    };
    match shared
        .registry
        .apply_event(&shared.store, id, event, &notice)
    {
        Ok(SessionState::Connected) if shared.registry.operator_txs(id).is_empty() => {
            let _ = shared.registry.apply_event(
                &shared.store,
                id,
                SessionEvent::OperatorLeft,
                "waiting for the operator",
            );
        }
        Ok(_) => {}
        Err(e) => tracing::info!(session = id, "access change not applied: {e}"),
    }
}

async fn send_error(link: &Link, code: ErrorCode, message: String) {
    let _ = link
        .tx
        .send(Frame::Control(Message::Error { code, message }))
        .await;
}

type Refusal = (ErrorCode, String);

fn internal(e: crate::store::StoreError) -> Refusal {
    tracing::error!("join: {e}");
    (
        ErrorCode::Internal,
        "the broker could not look up the invitation".to_string(),
    )
}

fn refused(what: &str, why: &str) -> Refusal {
    (
        ErrorCode::InvalidInvitation,
        format!("this {what} {why}; ask your technician for a new invitation"),
    )
}

/// A joined session and who helps in it, as the agent is told.
type Joined = (
    lifeline_protocol::SessionInfo,
    lifeline_protocol::OperatorProfile,
);

impl Shared {
    /// Checks a join credential, claims the invitation, and registers the
    /// live session. Only wrong connection IDs pay from the guessing budget
    /// (`invitations`); links and short links are never limited.
    pub fn join(
        &self,
        credential: &JoinCredential,
        source: std::net::IpAddr,
        host: &str,
        agent: lifeline_core::link::FrameSender,
        ended: Arc<Notify>,
    ) -> Result<Joined, Refusal> {
        let row = match credential {
            JoinCredential::ConnectionId(code) => {
                self.claim_by_connection_id(code, source, host)?
            }
            JoinCredential::LinkToken(t) => {
                let row = self.store.session_by_link_token(t).map_err(internal)?;
                self.claim(row, "link", host)?
            }
            JoinCredential::ShortCode(c) => {
                let row = self.store.session_by_short_code(c).map_err(internal)?;
                self.claim(row, "link", host)?
            }
        };
        let what = match credential {
            JoinCredential::ConnectionId(_) => "connection ID",
            _ => "link",
        };
        self.register_joined(row, what, source, host, agent, ended)
    }

    /// A connection ID: reserves its risk from the guessing budget before
    /// the check (so parallel guesses cannot overrun it), gives it back when
    /// the code was right.
    fn claim_by_connection_id(
        &self,
        code: &str,
        source: std::net::IpAddr,
        host: &str,
    ) -> Result<crate::store::SessionRow, Refusal> {
        let code = code.trim().replace([' ', '-'], "");
        if !crate::invitations::is_connection_id(&code) {
            return Err((
                ErrorCode::Invalid,
                format!("{code:?} is not a connection ID: it has exactly 6 digits"),
            ));
        }
        let now = lifeline_core::time::now_millis();
        let live = self.store.live_connection_ids(now).map_err(internal)?;
        let cost = crate::invitations::wrong_id_cost(live);
        // One check at a time: a right code is never refused for the
        // tokens another check holds while it runs (see `ratelimit`).
        let checked = self.join_limiter.check_weighted(source, cost, || {
            let row = self
                .store
                .session_by_connection_id(&code)
                .map_err(internal)?;
            self.claim(row, "connection ID", host)
        });
        checked.map_err(|l| {
            (
                ErrorCode::RateLimited,
                format!(
                    "too many wrong connection IDs; try again in {} s, or use the invitation link",
                    l.retry_after.as_secs().max(1)
                ),
            )
        })?
    }

    /// Claims the invitation of `row` if it is still open.
    fn claim(
        &self,
        row: Option<crate::store::SessionRow>,
        what: &str,
        host: &str,
    ) -> Result<crate::store::SessionRow, Refusal> {
        let now = lifeline_core::time::now_millis();
        let Some(row) = row else {
            return Err((
                ErrorCode::InvalidInvitation,
                format!(
                    "this {what} is not valid; check it, or ask your technician for a new invitation"
                ),
            ));
        };
        if row.used_at.is_some() || row.state != lifeline_protocol::SessionState::Invited {
            return Err(refused(what, "was already used"));
        }
        if row.expires_at < now {
            return Err(refused(what, "has expired"));
        }
        if !self
            .store
            .claim_invitation(
                &row.id,
                host,
                now,
                self.cluster.as_ref().map(|c| c.node.as_str()),
            )
            .map_err(internal)?
        {
            return Err(refused(what, "was already used"));
        }
        Ok(row)
    }

    /// Records the join and puts the session into the registry.
    fn register_joined(
        &self,
        row: crate::store::SessionRow,
        what: &str,
        source: std::net::IpAddr,
        host: &str,
        agent: lifeline_core::link::FrameSender,
        ended: Arc<Notify>,
    ) -> Result<Joined, Refusal> {
        let operator = self
            .store
            .operator_by_id(row.operator_id)
            .map_err(internal)?
            .ok_or_else(|| {
                (
                    ErrorCode::Internal,
                    "the inviting operator no longer exists".to_string(),
                )
            })?;
        let notice = format!("{} joined from {host}: the session is ready", row.end_user);
        self.record(
            &row.id,
            "join",
            Party::Customer,
            &format!(
                "{} joined by {what} from host {host} ({source})",
                row.end_user
            ),
        );
        let ready = self.registry.customer_joined(
            &row.id,
            LiveSession {
                state: lifeline_protocol::SessionState::Waiting,
                operator_id: row.operator_id,
                operator_name: operator.profile.name.clone(),
                agent,
                ended,
                operators: Vec::new(),
                rejoin_deadline: None,
                report: Default::default(),
                rejoin_tickets: 0,
                open_streams: Default::default(),
                endpoints: Vec::new(),
            },
            &notice,
        );
        self.announce_ready(row.operator_id, ready);
        Ok((
            lifeline_protocol::SessionInfo {
                session_id: row.id,
                ticket: row.ticket,
                end_user: row.end_user,
            },
            operator.profile,
        ))
    }
}
