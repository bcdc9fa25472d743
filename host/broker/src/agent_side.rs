//! A customer's agent connected to the broker: join by connection ID, link
//! token or short code, then relay its session traffic to the operator.

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
    let first = link.rx.recv().await;
    let ended = Arc::new(Notify::new());
    let joined = match first {
        Some(Frame::Control(Message::Join { credential, host })) => {
            let host: String = host.chars().take(MAX_HOST_CHARS).collect();
            shared
                .join(
                    &credential,
                    peer.ip(),
                    &host,
                    link.tx.clone(),
                    Arc::clone(&ended),
                )
                .map(|(session, operator)| Message::Joined { session, operator })
        }
        Some(Frame::Control(Message::Rejoin { ticket, host })) => {
            let host: String = host.chars().take(MAX_HOST_CHARS).collect();
            shared
                .rejoin(
                    &ticket,
                    peer.ip(),
                    &host,
                    link.tx.clone(),
                    Arc::clone(&ended),
                )
                .map(|(session, operator, operator_present)| Message::Rejoined {
                    session,
                    operator,
                    operator_present,
                })
        }
        Some(other) => {
            let reason = format!("expected join, got {}", kind_of(&other));
            tracing::info!(%peer, "agent refused: {reason}");
            send_error(&link, ErrorCode::BadMessage, reason).await;
            return;
        }
        None => return,
    };
    let reply = match joined {
        Ok(reply) => reply,
        Err((code, message)) => {
            tracing::info!(%peer, "join refused: {message}");
            send_error(&link, code, message).await;
            return;
        }
    };
    let id = match &reply {
        Message::Joined { session, .. } | Message::Rejoined { session, .. } => {
            session.session_id.clone()
        }
        _ => unreachable!("built just above as Joined or Rejoined"),
    };
    tracing::info!(%peer, session = %id, "customer joined");
    if link.tx.send(Frame::Control(reply)).await.is_err() {
        return;
    }
    loop {
        let frame = tokio::select! {
            f = link.rx.recv() => f,
            _ = ended.notified() => return,
        };
        let Some(frame) = frame else {
            shared.agent_link_closed(&id, &ended, &link.close_reason.get());
            return;
        };
        match frame {
            Frame::Data(_) => {
                for tx in shared.registry.operator_txs(&id) {
                    let _ = tx.send(frame.clone()).await;
                }
            }
            Frame::Control(Message::Session { msg, .. }) => {
                if !from_customer(&shared, &id, msg, &link).await {
                    return;
                }
            }
            Frame::Control(Message::RejoinTicketRequest { detail }) => {
                let detail: String = detail.chars().take(MAX_HOST_CHARS).collect();
                let reply = match shared.issue_rejoin_ticket(&id) {
                    Ok((ticket, expires_at)) => {
                        shared.rebooting(&id, &detail);
                        Message::RejoinTicket { ticket, expires_at }
                    }
                    Err(message) => Message::Error {
                        code: ErrorCode::Internal,
                        message,
                    },
                };
                let _ = link.tx.send(Frame::Control(reply)).await;
            }
            Frame::Control(Message::RebootCancelled { reason }) => {
                let reason: String = reason.chars().take(MAX_HOST_CHARS).collect();
                let notice = format!("the restart did not happen: {reason}");
                shared.record(&id, "reboot", Party::Customer, &notice);
                let _ = shared.registry.customer_rejoined(
                    &shared.store,
                    &id,
                    link.tx.clone(),
                    Arc::clone(&ended),
                    &notice,
                );
            }
            other => {
                let reason = format!("unexpected {} from the agent", kind_of(&other));
                send_error(&link, ErrorCode::BadMessage, reason).await;
            }
        }
    }
}

/// The report event (kind, text) a message from the customer adds, if any.
fn report_entry(msg: &SessionMessage) -> Option<(&'static str, String)> {
    use SessionMessage as M;
    let entry = match msg {
        M::Chat { text, .. } => ("chat", text.clone()),
        M::ConsentAnswer {
            request_id,
            decision,
            decided_by,
            audit_hash,
        } => (
            "consent",
            format!(
                "request {request_id}: {} (decided by {decided_by}; agent audit entry {audit_hash})",
                decision.as_str()
            ),
        ),
        M::ConsentDecided {
            plugin,
            action,
            decision,
            decided_by,
            audit_hash,
        } => (
            "consent",
            format!(
                "{action} for plugin {plugin}: {} (decided by {decided_by}; agent audit entry {audit_hash})",
                decision.as_str()
            ),
        ),
        M::PluginOutput {
            call_id,
            plugin,
            stream,
            text,
        } => (
            "plugin_output",
            format!("[{plugin} #{call_id} {stream}] {text}"),
        ),
        M::PluginDone {
            call_id,
            plugin,
            ok,
            text,
        } => {
            let outcome = if *ok { "finished" } else { "failed" };
            (
                "plugin_done",
                format!("[{plugin} #{call_id}] {outcome}: {text}"),
            )
        }
        M::PluginNotice { text } => ("plugin", text.clone()),
        M::CredentialRequest {
            call_id,
            request_id,
            user,
            ..
        } => (
            "run_as",
            format!(
                "plugin call #{call_id} asks the operator for the password of {user} (request {request_id})"
            ),
        ),
        M::Access {
            suspended,
            user,
            detail,
        } => (
            "run_as",
            if *suspended {
                format!("logged in as {user}; the customer's access is suspended: {detail}")
            } else {
                format!("run-as login as {user} ended; the customer's access is restored: {detail}")
            },
        ),
        M::ScriptOutput {
            script,
            stream,
            line,
            ..
        } => ("script_output", format!("[{script} {stream}] {line}")),
        M::ScriptDone {
            batch_id,
            script,
            exit_code,
            duration_ms,
            timed_out,
            error,
        } => {
            let how = lifeline_protocol::script_outcome(*exit_code, *timed_out, error.as_deref());
            (
                "script_done",
                format!("{script}: {how}, {duration_ms} ms (batch {batch_id})"),
            )
        }
        M::BatchDone {
            batch_id, summary, ..
        } => ("scripts_done", format!("batch {batch_id}: {summary}")),
        M::Plugins { .. }
        | M::End { .. }
        | M::ConsentRequest { .. }
        | M::State { .. }
        | M::ListPlugins { .. }
        | M::RunPlugin { .. }
        | M::ScriptBatch { .. }
        | M::ScriptFiles { .. }
        | M::CredentialReply { .. } => return None,
    };
    Some(entry)
}

/// Records and relays one session message from the customer; false when the
/// session is over.
async fn from_customer(shared: &Shared, id: &str, msg: SessionMessage, link: &Link) -> bool {
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
        other @ (M::ConsentRequest { .. }
        | M::State { .. }
        | M::ListPlugins { .. }
        | M::RunPlugin { .. }
        | M::ScriptBatch { .. }
        | M::ScriptFiles { .. }
        | M::CredentialReply { .. }) => {
            let reason = format!("an agent may not send {other:?}");
            send_error(link, ErrorCode::BadMessage, reason).await;
            return true;
        }
        // The broker, not the agent, says who is talking.
        M::Chat { text, .. } => M::Chat {
            from: Party::Customer,
            text,
        },
        M::Access {
            suspended,
            user,
            detail,
        } => {
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
            M::Access {
                suspended,
                user,
                detail,
            }
        }
        msg => msg,
    };
    if let Some((kind, text)) = report_entry(&msg) {
        shared.record(id, kind, Party::Customer, &text);
    }
    let frame = crate::registry::frame(id, msg);
    for tx in shared.registry.operator_txs(id) {
        let _ = tx.send(frame.clone()).await;
    }
    true
}

async fn send_error(link: &Link, code: ErrorCode, message: String) {
    let _ = link
        .tx
        .send(Frame::Control(Message::Error { code, message }))
        .await;
}

impl Shared {
    /// Checks a join credential (rate-limited), claims the invitation, and
    /// registers the live session.
    pub fn join(
        &self,
        credential: &JoinCredential,
        source: std::net::IpAddr,
        host: &str,
        agent: lifeline_core::link::FrameSender,
        ended: Arc<Notify>,
    ) -> Result<
        (
            lifeline_protocol::SessionInfo,
            lifeline_protocol::OperatorProfile,
        ),
        (ErrorCode, String),
    > {
        if let Err(l) = self.join_limiter.acquire(source) {
            return Err((
                ErrorCode::RateLimited,
                format!(
                    "too many wrong connection IDs; try again in {} s, or use the invitation link",
                    l.retry_after.as_secs().max(1)
                ),
            ));
        }
        let internal = |e: crate::store::StoreError| {
            tracing::error!("join: {e}");
            (
                ErrorCode::Internal,
                "the broker could not look up the invitation".to_string(),
            )
        };
        let (row, what) = match credential {
            JoinCredential::ConnectionId(code) => {
                let code = code.trim().replace([' ', '-'], "");
                if !crate::invitations::is_connection_id(&code) {
                    return Err((
                        ErrorCode::Invalid,
                        format!("{code:?} is not a connection ID: it has exactly 6 digits"),
                    ));
                }
                (
                    self.store
                        .session_by_connection_id(&code)
                        .map_err(internal)?,
                    "connection ID",
                )
            }
            JoinCredential::LinkToken(t) => (
                self.store.session_by_link_token(t).map_err(internal)?,
                "link",
            ),
            JoinCredential::ShortCode(c) => (
                self.store.session_by_short_code(c).map_err(internal)?,
                "link",
            ),
        };
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
            return Err((
                ErrorCode::InvalidInvitation,
                format!("this {what} was already used; ask your technician for a new invitation"),
            ));
        }
        if row.expires_at < now {
            return Err((
                ErrorCode::InvalidInvitation,
                format!("this {what} has expired; ask your technician for a new invitation"),
            ));
        }
        if !self
            .store
            .claim_invitation(&row.id, host, now)
            .map_err(internal)?
        {
            return Err((
                ErrorCode::InvalidInvitation,
                format!("this {what} was already used; ask your technician for a new invitation"),
            ));
        }
        self.join_limiter.refund(source);
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
        self.registry.customer_joined(
            &row.id,
            LiveSession {
                state: lifeline_protocol::SessionState::Waiting,
                operator_id: row.operator_id,
                operator_name: operator.profile.name.clone(),
                agent,
                ended,
                operators: Vec::new(),
                rejoin_deadline: None,
            },
            &notice,
        );
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
