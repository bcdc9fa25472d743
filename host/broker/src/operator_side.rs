//! An operator client connected to the broker: login, requests, and the
//! session traffic of the sessions it attached to.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use lifeline_core::link::Link;
use lifeline_core::session::SessionEvent;
use lifeline_protocol::{
    ErrorCode, Frame, Message, OperatorProfile, Party, ReplyBody, Request, SessionMessage,
    SessionState,
};
use tokio::time::Instant;

use crate::Shared;
use crate::accounts;
use crate::registry::ConnId;
use crate::server::{kind_of, next_before};

/// Longest ticket number.
pub const MAX_TICKET_CHARS: usize = 64;
/// Longest end-user name, operator name, title or e-mail address.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest chat message, consent detail or end reason.
pub const MAX_TEXT_CHARS: usize = 8 * 1024;

type Failure = (ErrorCode, String);

fn fail(code: ErrorCode, msg: impl Into<String>) -> Failure {
    (code, msg.into())
}

struct Conn {
    id: ConnId,
    peer: SocketAddr,
    operator: Option<(i64, OperatorProfile)>,
    token_hash: Option<String>,
    attached: BTreeSet<String>,
}

pub async fn run(shared: Arc<Shared>, mut link: Link, peer: SocketAddr) {
    let mut c = Conn {
        id: shared.next_conn_id(),
        peer,
        operator: None,
        token_hash: None,
        attached: BTreeSet::new(),
    };
    // Unauthenticated since the handshake, or since the last logout.
    let mut anonymous_since = Some(Instant::now());
    loop {
        let deadline = anonymous_since.map(|t| t + shared.cfg.limits.auth_deadline);
        let Some(frame) = next_before(&mut link, deadline, peer, "login").await else {
            break;
        };
        match frame {
            Frame::Control(Message::Request { id, body }) => {
                let body = match handle(&shared, &mut c, &link, body).await {
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
                if let Err((code, message)) = session_msg(&shared, &c, &session_id, msg).await {
                    let _ = link
                        .tx
                        .send(Frame::Control(Message::Error { code, message }))
                        .await;
                }
            }
            Frame::SessionData { session, payload } => {
                let target = c
                    .attached
                    .contains(&session)
                    .then(|| shared.registry.agent_tx(&session))
                    .flatten();
                match target {
                    Some(tx) => {
                        crate::relay::to(&shared, &tx, Frame::Data(payload)).await;
                    }
                    None => {
                        let message = format!(
                            "data for session {session:?}, which this connection is not attached to (or which has no agent now)"
                        );
                        let _ = link
                            .tx
                            .send(Frame::Control(Message::Error {
                                code: ErrorCode::WrongState,
                                message,
                            }))
                            .await;
                    }
                }
            }
            other => {
                let message = format!("unexpected {} from an operator client", kind_of(&other));
                let _ = link
                    .tx
                    .send(Frame::Control(Message::Error {
                        code: ErrorCode::BadMessage,
                        message,
                    }))
                    .await;
            }
        }
    }
    tracing::info!(peer = %c.peer, "operator connection closed: {}", link.close_reason.get());
    // A connection dropped for not reading is noted in every report it
    // was part of, even when other connections of the operator remain.
    let dropped = link.close_reason.stalled().then(|| link.close_reason.get());
    for id in std::mem::take(&mut c.attached) {
        leave(&shared, &c, &id, dropped.as_deref());
    }
    if let Some((op, _)) = &c.operator {
        shared.registry.operator_offline(*op, c.id);
    }
}

/// Detaches from a session; `dropped`: why the broker closed the
/// connection, when it did.
fn leave(shared: &Shared, c: &Conn, id: &str, dropped: Option<&str>) {
    let name = c
        .operator
        .as_ref()
        .map(|(_, p)| p.name.as_str())
        .unwrap_or("?");
    let notice = format!("{name} left; the session stays open");
    let last = shared.registry.detach(&shared.store, id, c.id, &notice);
    let text = match dropped {
        Some(why) => format!("{name} disconnected by the broker: {why}"),
        None if last => format!("{name} disconnected"),
        None => return,
    };
    shared.record(id, "disconnect", Party::Operator, &text);
}

fn check_len(what: &str, s: &str, max: usize, required: bool) -> Result<(), Failure> {
    if required && s.trim().is_empty() {
        return Err(fail(
            ErrorCode::Invalid,
            format!("{what} must not be empty"),
        ));
    }
    if s.chars().count() > max {
        return Err(fail(
            ErrorCode::Invalid,
            format!("{what} is longer than {max} characters"),
        ));
    }
    if s.chars()
        .any(|ch| ch.is_control() && ch != '\n' && ch != '\t')
    {
        return Err(fail(
            ErrorCode::Invalid,
            format!("{what} contains control characters"),
        ));
    }
    Ok(())
}

fn store_err(e: crate::store::StoreError) -> Failure {
    tracing::error!("store: {e}");
    fail(
        ErrorCode::Internal,
        "the broker's database failed; see the broker log",
    )
}

async fn handle(
    shared: &Arc<Shared>,
    c: &mut Conn,
    link: &Link,
    req: Request,
) -> Result<ReplyBody, Failure> {
    // Requests that need no login.
    match req {
        Request::Login { username, password } => {
            let (id, profile) = shared.login(c.peer.ip(), &username, password).await?;
            let token = accounts::new_token();
            let hash = accounts::token_hash(&token);
            let expires = lifeline_core::time::now_millis() + accounts::LOGIN_TOKEN_TTL_MS;
            shared
                .store
                .add_token(&hash, id, expires)
                .map_err(store_err)?;
            set_operator(shared, c, link, id, profile.clone(), hash);
            tracing::info!(operator = %profile.username, peer = %c.peer, "operator logged in");
            return Ok(ReplyBody::LoggedIn {
                token: Some(token),
                profile,
            });
        }
        Request::Resume { token } => {
            let hash = accounts::token_hash(&token);
            let id = shared
                .store
                .token_operator(&hash)
                .map_err(store_err)?
                .ok_or_else(|| {
                    fail(
                        ErrorCode::NotLoggedIn,
                        "the saved login has expired or was ended; log in again",
                    )
                })?;
            let row = shared
                .store
                .operator_by_id(id)
                .map_err(store_err)?
                .ok_or_else(|| {
                    fail(
                        ErrorCode::NotLoggedIn,
                        "this operator account no longer exists",
                    )
                })?;
            set_operator(shared, c, link, id, row.profile.clone(), hash);
            return Ok(ReplyBody::LoggedIn {
                token: None,
                profile: row.profile,
            });
        }
        _ => {}
    }
    let Some((op_id, profile)) = c.operator.clone() else {
        return Err(fail(
            ErrorCode::NotLoggedIn,
            "log in first (lifeline operator login)",
        ));
    };
    match req {
        Request::Login { .. } | Request::Resume { .. } => unreachable!("handled above"),
        Request::Logout => {
            if let Some(h) = c.token_hash.take() {
                shared.store.delete_token(&h).map_err(store_err)?;
            }
            shared.registry.operator_offline(op_id, c.id);
            for id in std::mem::take(&mut c.attached) {
                leave(shared, c, &id, None);
            }
            c.operator = None;
            Ok(ReplyBody::Ok)
        }
        Request::ChangePassword { old, new } => {
            shared.login(c.peer.ip(), &profile.username, old).await?;
            let hash = shared
                .hash_pool
                .run(move || accounts::hash_password(&new))
                .await
                .map_err(|busy| fail(ErrorCode::RateLimited, busy.to_string()))?
                .map_err(|_| fail(ErrorCode::Internal, "password hashing failed"))?
                .map_err(|e| fail(ErrorCode::Invalid, e.to_string()))?;
            shared
                .store
                .set_password_hash(op_id, &hash, c.token_hash.as_deref())
                .map_err(store_err)?;
            tracing::info!(operator = %profile.username, "password changed");
            Ok(ReplyBody::Ok)
        }
        Request::Profile => Ok(ReplyBody::Profile(profile)),
        Request::UpdateProfile { name, email, title } => {
            let mut p = profile;
            if let Some(n) = name {
                check_len("name", &n, MAX_NAME_CHARS, true)?;
                p.name = n;
            }
            if let Some(e) = email {
                check_len("e-mail", &e, MAX_NAME_CHARS, false)?;
                if !e.is_empty() && !crate::valid_email(&e) {
                    return Err(fail(
                        ErrorCode::Invalid,
                        format!("{e:?} is not an e-mail address like name@example.com"),
                    ));
                }
                p.email = e;
            }
            if let Some(t) = title {
                check_len("title", &t, MAX_NAME_CHARS, false)?;
                p.title = t;
            }
            shared.store.update_profile(op_id, &p).map_err(store_err)?;
            c.operator = Some((op_id, p.clone()));
            Ok(ReplyBody::Profile(p))
        }
        Request::ListSessions { all, after } => {
            let after = match after.as_deref() {
                None => None,
                Some(a) => Some(crate::pages::SessionCursor::decode(a).ok_or_else(|| {
                    fail(
                        ErrorCode::Invalid,
                        format!("{a:?} is not a session-list cursor from this broker"),
                    )
                })?),
            };
            let page = shared
                .store
                .sessions_page(if all { None } else { Some(op_id) }, after.as_ref())
                .map_err(store_err)?;
            Ok(ReplyBody::Sessions {
                sessions: page.items,
                next: page.next.map(|c| c.encode()),
            })
        }
        Request::CreateInvitation {
            ticket,
            end_user,
            ttl_secs,
        } => {
            check_len("ticket number", &ticket, MAX_TICKET_CHARS, true)?;
            check_len("end-user name", &end_user, MAX_NAME_CHARS, true)?;
            let inv = shared.create_invitation(
                op_id,
                &profile,
                ticket.trim(),
                end_user.trim(),
                ttl_secs,
            )?;
            Ok(ReplyBody::Invitation(inv))
        }
        Request::Attach { session_id } => {
            let row = own_session(shared, op_id, &session_id)?;
            if row.state == SessionState::Invited {
                return Err(fail(
                    ErrorCode::WrongState,
                    "the customer has not joined yet; the session is not ready",
                ));
            }
            let who = if profile.title.is_empty() {
                profile.name.clone()
            } else {
                format!("{} ({})", profile.name, profile.title)
            };
            shared
                .registry
                .attach(
                    &shared.store,
                    &session_id,
                    c.id,
                    link.tx.clone(),
                    &format!("{who} is connected"),
                )
                .map_err(|e| fail(ErrorCode::WrongState, e))?;
            if c.attached.insert(session_id.clone()) {
                shared.record(
                    &session_id,
                    "connect",
                    Party::Operator,
                    &format!("{who} connected"),
                );
            }
            let row = own_session(shared, op_id, &session_id)?;
            Ok(ReplyBody::Attached {
                session: row.summary(),
            })
        }
        Request::Detach { session_id } => {
            if c.attached.remove(&session_id) {
                leave(shared, c, &session_id, None);
            }
            Ok(ReplyBody::Ok)
        }
        Request::EndSession { session_id, reason } => {
            check_len("reason", &reason, MAX_TEXT_CHARS, false)?;
            let row = own_session(shared, op_id, &session_id)?;
            let reason = if reason.trim().is_empty() {
                "ended by the operator".to_string()
            } else {
                reason
            };
            match row.state {
                SessionState::Ended => {
                    return Err(fail(ErrorCode::WrongState, "the session has already ended"));
                }
                SessionState::Invited => {
                    shared
                        .store
                        .set_state(&session_id, SessionState::Ended)
                        .map_err(store_err)?;
                }
                _ => {
                    shared.registry.end(
                        &shared.store,
                        &session_id,
                        SessionEvent::Ended,
                        Party::Operator,
                        &reason,
                    );
                }
            }
            shared.record(
                &session_id,
                "end",
                Party::Operator,
                &format!("ended by {}: {reason}", profile.name),
            );
            c.attached.remove(&session_id);
            Ok(ReplyBody::Ok)
        }
        Request::ScriptCreate {
            name,
            category,
            description,
            exec,
            input,
        } => shared
            .script_create(op_id, &name, &category, &description, &exec, input.as_ref())
            .map(ReplyBody::Script),
        Request::ScriptUpdate {
            name,
            category,
            description,
            exec,
            input,
            remove_input,
        } => shared
            .script_update(
                op_id,
                &name,
                category.as_deref(),
                description.as_deref(),
                exec.as_ref(),
                input.as_ref(),
                remove_input,
            )
            .map(ReplyBody::Script),
        Request::ScriptDelete { name } => {
            shared.script_delete(op_id, &name).map(|()| ReplyBody::Ok)
        }
        Request::ScriptPublish { name, published } => shared
            .script_publish(op_id, &name, published)
            .map(ReplyBody::Script),
        Request::ScriptList { sort, descending } => shared
            .script_list(op_id, &sort, descending)
            .map(|scripts| ReplyBody::Scripts { scripts }),
        Request::ScriptCategories => Ok(ReplyBody::Categories {
            categories: shared.script_categories(),
        }),
        Request::RunScripts {
            session_id,
            names,
            stop_on_failure,
            timeout_secs,
        } => {
            own_session(shared, op_id, &session_id)?;
            if !c.attached.contains(&session_id) {
                return Err(fail(
                    ErrorCode::WrongState,
                    format!("not connected to session {session_id}; connect first"),
                ));
            }
            shared
                .run_scripts(
                    op_id,
                    &profile.name,
                    &session_id,
                    &names,
                    stop_on_failure,
                    timeout_secs,
                )
                .await
                .map(|batch_id| ReplyBody::ScriptBatch { batch_id })
        }
        Request::Report {
            session_id,
            after_seq,
        } => {
            let row = own_session(shared, op_id, &session_id)?;
            let page = shared
                .store
                .events_page(&session_id, after_seq)
                .map_err(store_err)?;
            Ok(ReplyBody::Report {
                session: row.summary(),
                events: page.items,
                next: page.next,
            })
        }
    }
}

fn set_operator(
    shared: &Shared,
    c: &mut Conn,
    link: &Link,
    id: i64,
    p: OperatorProfile,
    token_hash: String,
) {
    if let Some((old, _)) = c.operator.take() {
        shared.registry.operator_offline(old, c.id);
    }
    shared.registry.operator_online(id, c.id, link.tx.clone());
    c.operator = Some((id, p));
    c.token_hash = Some(token_hash);
}

fn own_session(shared: &Shared, op_id: i64, id: &str) -> Result<crate::store::SessionRow, Failure> {
    match shared.store.session(id).map_err(store_err)? {
        Some(r) if r.operator_id == op_id => Ok(r),
        _ => Err(fail(
            ErrorCode::NoSuchSession,
            format!("no session {id:?} of yours"),
        )),
    }
}

/// Records and relays one session message from the operator.
async fn session_msg(
    shared: &Shared,
    c: &Conn,
    id: &str,
    msg: SessionMessage,
) -> Result<(), Failure> {
    let Some((_, profile)) = &c.operator else {
        return Err(fail(ErrorCode::NotLoggedIn, "log in first"));
    };
    if !c.attached.contains(id) || !shared.registry.is_attached(id, c.id) {
        return Err(fail(
            ErrorCode::WrongState,
            format!("not connected to session {id}; connect first"),
        ));
    }
    if shared.registry.state(id) == Some(lifeline_protocol::SessionState::Rebooting) {
        return Err(fail(
            ErrorCode::WrongState,
            "the customer's computer is restarting; the agent rejoins by itself, try again then",
        ));
    }
    let msg = match msg {
        SessionMessage::Chat { text, .. } => {
            check_len("chat message", &text, MAX_TEXT_CHARS, true)?;
            shared.record_traffic(id, "chat", Party::Operator, &text);
            SessionMessage::Chat {
                from: Party::Operator,
                text,
            }
        }
        SessionMessage::ConsentRequest {
            request_id,
            plugin,
            action,
            detail,
            ..
        } => {
            check_len("detail", &detail, MAX_TEXT_CHARS, false)?;
            check_len("plugin", &plugin, MAX_NAME_CHARS, true)?;
            if lifeline_core::capability::Capability::parse(&action).is_none() {
                return Err(fail(
                    ErrorCode::Invalid,
                    format!(
                        "{action:?} is not a capability name; known: {}",
                        lifeline_core::capability::Capability::known_names()
                    ),
                ));
            }
            shared.record_traffic(
                id,
                "consent_request",
                Party::Operator,
                &format!(
                    "request {request_id}: {} asks to use {action} of plugin {plugin}: {detail}",
                    profile.name
                ),
            );
            SessionMessage::ConsentRequest {
                request_id,
                operator: profile.name.clone(),
                plugin,
                action,
                detail,
            }
        }
        msg @ SessionMessage::ListPlugins { .. } => msg,
        SessionMessage::RunPlugin {
            call_id,
            plugin,
            command,
            args,
        } => {
            check_len("plugin", &plugin, MAX_NAME_CHARS, true)?;
            check_len("command", &command, MAX_NAME_CHARS, true)?;
            let joined = args.join(" ");
            check_len("arguments", &joined, MAX_TEXT_CHARS, false)?;
            let line = format!("{} runs {plugin} {command} {joined}", profile.name);
            shared.record_traffic(
                id,
                "plugin_run",
                Party::Operator,
                &format!("{} (#{call_id})", line.trim_end()),
            );
            SessionMessage::RunPlugin {
                call_id,
                plugin,
                command,
                args,
            }
        }
        SessionMessage::CredentialReply { request_id, secret } => {
            // The password is relayed inside the encrypted session, never
            // recorded: the report says only whether one was given.
            let what = if secret.is_some() {
                "supplied the credentials"
            } else {
                "declined to supply credentials"
            };
            shared.record_traffic(
                id,
                "run_as",
                Party::Operator,
                &format!(
                    "{} {what} for request {request_id} (not recorded)",
                    profile.name
                ),
            );
            SessionMessage::CredentialReply { request_id, secret }
        }
        SessionMessage::End { .. } => {
            return Err(fail(
                ErrorCode::BadMessage,
                "operators end sessions with the end request",
            ));
        }
        other @ (SessionMessage::ConsentAnswer { .. }
        | SessionMessage::State { .. }
        | SessionMessage::Plugins { .. }
        | SessionMessage::PluginOutput { .. }
        | SessionMessage::PluginDone { .. }
        | SessionMessage::ConsentDecided { .. }
        | SessionMessage::PluginNotice { .. }
        | SessionMessage::StreamOpened { .. }
        | SessionMessage::StreamClosed { .. }
        | SessionMessage::ScriptBatch { .. }
        | SessionMessage::ScriptFiles { .. }
        | SessionMessage::ScriptOutput { .. }
        | SessionMessage::ScriptDone { .. }
        | SessionMessage::BatchDone { .. }
        | SessionMessage::CredentialRequest { .. }
        | SessionMessage::Access { .. }) => {
            return Err(fail(
                ErrorCode::BadMessage,
                format!("an operator may not send {other:?}"),
            ));
        }
    };
    if let Some(tx) = shared.registry.agent_tx(id) {
        crate::relay::to(shared, &tx, crate::registry::frame(id, msg)).await;
    }
    Ok(())
}
