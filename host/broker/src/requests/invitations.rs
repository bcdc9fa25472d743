//! `CreateInvitation` and `Invitation`.

use lifeline_protocol::{ErrorCode, ReplyBody, SessionState};

use super::{Failure, LoggedIn, check_len, fail};
use crate::operator_side::{MAX_NAME_CHARS, MAX_TICKET_CHARS};

/// Invites `end_user` for `ticket` (see [`crate::Shared::create_invitation`]).
pub(super) fn create(
    op: LoggedIn<'_>,
    ticket: &str,
    end_user: &str,
    ttl_secs: Option<u64>,
) -> Result<ReplyBody, Failure> {
    check_len("ticket number", ticket, MAX_TICKET_CHARS, true)?;
    check_len("end-user name", end_user, MAX_NAME_CHARS, true)?;
    let inv = op.shared.create_invitation(
        op.id,
        &op.profile,
        ticket.trim(),
        end_user.trim(),
        ttl_secs,
    )?;
    Ok(ReplyBody::Invitation(inv))
}

/// The operator's invitation `session_id` again, while the customer can
/// still use it (not used, not expired, not ended).
pub(super) fn show(op: LoggedIn<'_>, session_id: &str) -> Result<ReplyBody, Failure> {
    let row = op.own_session(session_id)?;
    let why = if row.used_at.is_some() || row.state != SessionState::Invited {
        Some("the invitation was already used or the session has ended")
    } else if row.expires_at < lifeline_core::time::now_millis() {
        Some("the invitation has expired; create a new one")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(fail(ErrorCode::WrongState, why));
    }
    Ok(ReplyBody::Invitation(op.shared.invitation_info(
        &crate::store::NewSession {
            id: &row.id,
            operator_id: row.operator_id,
            ticket: &row.ticket,
            end_user: &row.end_user,
            connection_id: &row.connection_id,
            link_token: &row.link_token,
            short_code: &row.short_code,
            expires_at: row.expires_at,
        },
    )))
}
