//! The operator's requests, one small handler each, in the shape of
//! mini-redis's commands: a request's checks and effects live in one
//! function of a small module of related requests, and [`dispatch`] maps
//! each [`Request`] variant to its handler.
//!
//! | module | requests |
//! |---|---|
//! | [`login`] | `Login`, `Resume` (the two that need no login), `Logout` |
//! | [`profile`] | `ChangePassword`, `Profile`, `UpdateProfile` |
//! | [`invitations`] | `CreateInvitation`, `Invitation` |
//! | [`sessions`] | `ListSessions`, `Attach`, `Detach`, `EndSession` |
//! | [`reports`] | `Report` |
//! | [`library`] | `ScriptCreate` … `ScriptCategories`, `RunScripts` |
//!
//! **A new request is a new small function (in a new file, or beside its
//! relatives) plus one line in [`dispatch`].** The match there has no
//! catch-all arm, so a request added to the protocol does not compile until
//! it has a handler. For a `Request::Foo { bar }` that needs a login:
//!
//! ```text
//! // requests/foo.rs
//! pub(super) fn foo(op: LoggedIn<'_>, bar: String) -> Result<ReplyBody, Failure> { … }
//! // dispatch
//! R::Foo { bar } => foo::foo(op?, bar),
//! ```
//!
//! and a sample of it in `tests.rs` (whose `kind` does not compile without
//! one either).
//!
//! **Logins.** `dispatch` checks the login once, before it looks at the
//! request, and gets a [`LoggedIn`] or the "log in first" failure. Every
//! handler but `Login`'s and `Resume`'s takes that `LoggedIn` (its way to
//! the broker, the operator's ID and profile), so its dispatcher line says
//! `op?`, which answers an anonymous connection before the handler runs.
//! The test in `tests.rs` sends every request but those two on an
//! anonymous connection and expects "log in first".
//!
//! A handler answers `Ok(reply)` or a [`Failure`] (error code and message),
//! which the connection sends as the `Error` reply.

mod invitations;
mod library;
mod login;
mod profile;
mod reports;
mod sessions;

use lifeline_core::link::Link;
use lifeline_protocol::{ErrorCode, OperatorProfile, ReplyBody, Request};

use crate::Shared;
use crate::operator_side::Conn;
use crate::store::{SessionRow, StoreError};

/// Why a request was refused: the error code and message the operator gets.
pub(crate) type Failure = (ErrorCode, String);

pub(crate) fn fail(code: ErrorCode, msg: impl Into<String>) -> Failure {
    (code, msg.into())
}

/// Answers one request of an operator connection.
pub(crate) async fn dispatch(
    shared: &Shared,
    conn: &mut Conn,
    link: &Link,
    req: Request,
) -> Result<ReplyBody, Failure> {
    use Request as R;
    // The one login check; see the module docs.
    let op = LoggedIn::check(shared, conn);
    match req {
        // No login needed.
        R::Login { username, password } => {
            login::login(shared, conn, link, username, password).await
        }
        R::Resume { token } => login::resume(shared, conn, link, &token),
        // A login needed: `op?`.
        R::Logout => login::logout(op?, conn).await,
        R::ChangePassword { old, new } => profile::change_password(op?, conn, old, new).await,
        R::Profile => profile::show(op?),
        R::UpdateProfile { name, email, title } => profile::update(op?, conn, name, email, title),
        R::CreateInvitation {
            ticket,
            end_user,
            ttl_secs,
        } => invitations::create(op?, &ticket, &end_user, ttl_secs),
        R::Invitation { session_id } => invitations::show(op?, &session_id),
        R::ListSessions { all, after } => sessions::list(op?, all, after.as_deref()),
        R::Attach {
            session_id,
            e2e_hello,
        } => sessions::attach(op?, conn, link, session_id, e2e_hello).await,
        R::Detach { session_id } => sessions::detach(op?, conn, &session_id).await,
        R::EndSession { session_id, reason } => sessions::end(op?, conn, &session_id, reason).await,
        R::Report {
            session_id,
            after_seq,
        } => reports::page(op?, &session_id, after_seq),
        R::ScriptCreate {
            name,
            category,
            description,
            exec,
            input,
        } => library::create(op?, &name, &category, &description, &exec, input.as_ref()),
        R::ScriptUpdate {
            name,
            category,
            description,
            exec,
            input,
            remove_input,
        } => library::update(op?, name, category, description, exec, input, remove_input),
        R::ScriptDelete { name } => library::delete(op?, &name),
        R::ScriptPublish { name, published } => library::publish(op?, &name, published),
        R::ScriptList { sort, descending } => library::list(op?, &sort, descending),
        R::ScriptCategories => library::categories(op?),
        R::RunScripts {
            session_id,
            names,
            stop_on_failure,
            timeout_secs,
        } => library::run(op?, conn, session_id, names, stop_on_failure, timeout_secs).await,
    }
}

/// A request from a logged-in operator: the broker, and who asks. Made
/// only by [`LoggedIn::check`], the one login check (see the module docs).
pub(crate) struct LoggedIn<'a> {
    shared: &'a Shared,
    id: i64,
    profile: OperatorProfile,
}

impl<'a> LoggedIn<'a> {
    /// The connection's operator, or "log in first".
    fn check(shared: &'a Shared, conn: &Conn) -> Result<LoggedIn<'a>, Failure> {
        match conn.operator.clone() {
            Some((id, profile)) => Ok(LoggedIn {
                shared,
                id,
                profile,
            }),
            None => Err(fail(
                ErrorCode::NotLoggedIn,
                "log in first (lifeline operator login)",
            )),
        }
    }

    /// Session `id` if it is this operator's.
    fn own_session(&self, id: &str) -> Result<SessionRow, Failure> {
        match self.shared.store.session(id).map_err(store_err)? {
            Some(r) if r.operator_id == self.id => Ok(r),
            _ => Err(fail(
                ErrorCode::NoSuchSession,
                format!("no session {id:?} of yours"),
            )),
        }
    }
}

/// Checks a text field: not blank when `required`, at most `max`
/// characters, no control characters but newline and tab.
pub(crate) fn check_len(what: &str, s: &str, max: usize, required: bool) -> Result<(), Failure> {
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

/// A database failure: logged here, told to the operator in general terms.
fn store_err(e: StoreError) -> Failure {
    tracing::error!("store: {e}");
    fail(
        ErrorCode::Internal,
        "the broker's database failed; see the broker log",
    )
}

#[cfg(test)]
pub(crate) mod tests;
