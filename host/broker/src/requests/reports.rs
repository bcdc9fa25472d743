//! `Report`: one page of a session's report.

use lifeline_protocol::ReplyBody;

use super::{Failure, LoggedIn, store_err};

/// The events of the operator's session `session_id` after `after_seq`,
/// as many as fit in one reply (see [`crate::pages`]).
pub(super) fn page(
    op: LoggedIn<'_>,
    session_id: &str,
    after_seq: u64,
) -> Result<ReplyBody, Failure> {
    let row = op.own_session(session_id)?;
    let page = op
        .shared
        .store
        .events_page(session_id, after_seq)
        .map_err(store_err)?;
    Ok(ReplyBody::Report {
        session: row.summary(),
        events: page.items,
        next: page.next,
    })
}
