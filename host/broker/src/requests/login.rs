//! `Login` and `Resume`, the two requests served without a login, and
//! `Logout`.

use lifeline_core::link::Link;
use lifeline_protocol::{ErrorCode, OperatorProfile, ReplyBody};

use super::{Failure, LoggedIn, fail, store_err};
use crate::Shared;
use crate::accounts;
use crate::operator_side::{Conn, leave};

/// Checks the password and starts a login that a saved token can resume.
pub(super) async fn login(
    shared: &Shared,
    c: &mut Conn,
    link: &Link,
    username: String,
    password: String,
) -> Result<ReplyBody, Failure> {
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
    Ok(ReplyBody::LoggedIn {
        token: Some(token),
        profile,
    })
}

/// Logs in with the token of an earlier `Login`.
pub(super) fn resume(
    shared: &Shared,
    c: &mut Conn,
    link: &Link,
    token: &str,
) -> Result<ReplyBody, Failure> {
    let hash = accounts::token_hash(token);
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
    Ok(ReplyBody::LoggedIn {
        token: None,
        profile: row.profile,
    })
}

/// Ends the login token, goes offline and leaves every attached session.
pub(super) async fn logout(op: LoggedIn<'_>, c: &mut Conn) -> Result<ReplyBody, Failure> {
    if let Some(h) = c.token_hash.take() {
        op.shared.store.delete_token(&h).map_err(store_err)?;
    }
    op.shared.registry.operator_offline(op.id, c.id);
    for id in std::mem::take(&mut c.attached) {
        leave(op.shared, c, &id, None).await;
    }
    c.operator = None;
    Ok(ReplyBody::Ok)
}

/// Makes operator `id` this connection's, in place of any earlier one.
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
