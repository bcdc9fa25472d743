//! `ChangePassword`, `Profile` and `UpdateProfile`: the operator's own
//! account.

use lifeline_protocol::{ErrorCode, ReplyBody};

use super::{Failure, LoggedIn, check_len, fail, store_err};
use crate::accounts;
use crate::operator_side::{Conn, MAX_NAME_CHARS};

/// Checks the old password again, then sets the new one; the operator's
/// other login tokens end, this connection's stays.
pub(super) async fn change_password(
    op: LoggedIn<'_>,
    c: &Conn,
    old: String,
    new: String,
) -> Result<ReplyBody, Failure> {
    let shared = op.shared;
    shared.login(c.peer.ip(), &op.profile.username, old).await?;
    let hash = shared
        .hash_pool
        .run(move || accounts::hash_password(&new))
        .await
        .map_err(|busy| fail(ErrorCode::RateLimited, busy.to_string()))?
        .map_err(|_| fail(ErrorCode::Internal, "password hashing failed"))?
        .map_err(|e| fail(ErrorCode::Invalid, e.to_string()))?;
    shared
        .store
        .set_password_hash(op.id, &hash, c.token_hash.as_deref())
        .map_err(store_err)?;
    tracing::info!(operator = %op.profile.username, "password changed");
    Ok(ReplyBody::Ok)
}

pub(super) fn show(op: LoggedIn<'_>) -> Result<ReplyBody, Failure> {
    Ok(ReplyBody::Profile(op.profile))
}

/// Changes the given fields; the others stay.
pub(super) fn update(
    op: LoggedIn<'_>,
    c: &mut Conn,
    name: Option<String>,
    email: Option<String>,
    title: Option<String>,
) -> Result<ReplyBody, Failure> {
    let mut p = op.profile;
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
    op.shared
        .store
        .update_profile(op.id, &p)
        .map_err(store_err)?;
    c.operator = Some((op.id, p.clone()));
    Ok(ReplyBody::Profile(p))
}
