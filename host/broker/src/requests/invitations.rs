//! `CreateInvitation`.

use lifeline_protocol::ReplyBody;

use super::{Failure, LoggedIn, check_len};
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
