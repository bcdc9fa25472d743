//! `ListSessions`, `Attach`, `Detach` and `EndSession`.

use lifeline_core::link::Link;
use lifeline_protocol::{E2eOffer, ErrorCode, Party, ReplyBody, SessionMessage, SessionState};

use super::{Failure, LoggedIn, check_len, fail, store_err};
use crate::operator_side::{Conn, MAX_TEXT_CHARS, leave, session_msg};
use crate::pages::SessionCursor;

/// One page of the operator's sessions (`all`: everyone's), newest first,
/// after the cursor `after` of the previous page.
pub(super) fn list(op: LoggedIn<'_>, all: bool, after: Option<&str>) -> Result<ReplyBody, Failure> {
    let after = match after {
        None => None,
        Some(a) => Some(SessionCursor::decode(a).ok_or_else(|| {
            fail(
                ErrorCode::Invalid,
                format!("{a:?} is not a session-list cursor from this broker"),
            )
        })?),
    };
    let page = op
        .shared
        .store
        .sessions_page(if all { None } else { Some(op.id) }, after.as_ref())
        .map_err(store_err)?;
    Ok(ReplyBody::Sessions {
        sessions: page.items,
        next: page.next.map(|c| c.encode()),
    })
}

/// Connects this connection to a ready session of the operator's: from now
/// on its traffic reaches this connection. The endpoint's end-to-end
/// `hello`, if any, goes on to the agent as if sent right after.
pub(super) async fn attach(
    op: LoggedIn<'_>,
    c: &mut Conn,
    link: &Link,
    session_id: String,
    hello: Option<E2eOffer>,
) -> Result<ReplyBody, Failure> {
    let row = op.own_session(&session_id)?;
    if row.state == SessionState::Invited {
        return Err(fail(
            ErrorCode::WrongState,
            "the customer has not joined yet; the session is not ready",
        ));
    }
    let p = &op.profile;
    let who = if p.title.is_empty() {
        p.name.clone()
    } else {
        format!("{} ({})", p.name, p.title)
    };
    let shared = op.shared;
    shared
        .attach_anywhere(
            &session_id,
            c.id,
            link.tx.clone(),
            &format!("{who} is connected"),
        )
        .await
        .map_err(|e| fail(ErrorCode::WrongState, e))?;
    if c.attached.insert(session_id.clone()) {
        shared.record(
            &session_id,
            "connect",
            Party::Operator,
            &format!("{who} connected"),
        );
    }
    let row = op.own_session(&session_id)?;
    let e2e_hello_relayed = match hello {
        Some(h) => relay_hello(shared, c, &session_id, h).await,
        None => false,
    };
    Ok(ReplyBody::Attached {
        session: row.summary(),
        e2e_hello_relayed,
    })
}

/// Relays the hello an `Attach` carried, checked as any session message
/// (an agent away refuses it); whether it went on. Refused, the client
/// starts the channel itself once the agent is there, so the reason goes
/// to the log only.
async fn relay_hello(shared: &crate::Shared, c: &mut Conn, id: &str, h: E2eOffer) -> bool {
    let msg = SessionMessage::E2eHello {
        endpoint: h.endpoint,
        operator: String::new(),
        noise: h.noise,
    };
    match session_msg(shared, c, id, msg).await {
        Ok(()) => true,
        Err((_, why)) => {
            tracing::debug!(session = %id, "the attach's end-to-end hello was not relayed: {why}");
            false
        }
    }
}

/// Disconnects this connection from a session; the session stays open.
pub(super) async fn detach(
    op: LoggedIn<'_>,
    c: &mut Conn,
    session_id: &str,
) -> Result<ReplyBody, Failure> {
    if c.attached.remove(session_id) {
        leave(op.shared, c, session_id, None).await;
    }
    Ok(ReplyBody::Ok)
}

/// Ends a session of the operator's, joined or still an invitation.
pub(super) async fn end(
    op: LoggedIn<'_>,
    c: &mut Conn,
    session_id: &str,
    reason: String,
) -> Result<ReplyBody, Failure> {
    check_len("reason", &reason, MAX_TEXT_CHARS, false)?;
    let row = op.own_session(session_id)?;
    let reason = if reason.trim().is_empty() {
        "ended by the operator".to_string()
    } else {
        reason
    };
    let shared = op.shared;
    match row.state {
        SessionState::Ended => {
            return Err(fail(ErrorCode::WrongState, "the session has already ended"));
        }
        SessionState::Invited => {
            shared
                .store
                .set_state(session_id, SessionState::Ended)
                .map_err(store_err)?;
        }
        _ => {
            if let Err(why) = shared.end_anywhere(session_id, &reason).await {
                // No node holds the session any more (its node was lost and
                // the agent has not resumed): the store says it is over.
                tracing::info!(session = %session_id, "ending a session no node holds: {why}");
                shared
                    .store
                    .set_state(session_id, SessionState::Ended)
                    .map_err(store_err)?;
            }
        }
    }
    shared.record(
        session_id,
        "end",
        Party::Operator,
        &format!("ended by {}: {reason}", op.profile.name),
    );
    c.attached.remove(session_id);
    Ok(ReplyBody::Ok)
}
