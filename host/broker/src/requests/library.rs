//! The script library's requests (`ScriptCreate`, `ScriptUpdate`,
//! `ScriptDelete`, `ScriptPublish`, `ScriptList`, `ScriptCategories`) and
//! `RunScripts`; the library itself is [`crate::library`].

use lifeline_protocol::{ErrorCode, FileUpload, ReplyBody};

use super::{Failure, LoggedIn, fail};
use crate::operator_side::Conn;

pub(super) fn create(
    op: LoggedIn<'_>,
    name: &str,
    category: &str,
    description: &str,
    exec: &FileUpload,
    input: Option<&FileUpload>,
) -> Result<ReplyBody, Failure> {
    op.shared
        .script_create(op.id, name, category, description, exec, input)
        .map(ReplyBody::Script)
}

/// Changes one of the operator's own scripts; absent fields stay.
pub(super) fn update(
    op: LoggedIn<'_>,
    name: String,
    category: Option<String>,
    description: Option<String>,
    exec: Option<FileUpload>,
    input: Option<FileUpload>,
    remove_input: bool,
) -> Result<ReplyBody, Failure> {
    op.shared
        .script_update(
            op.id,
            &name,
            category.as_deref(),
            description.as_deref(),
            exec.as_ref(),
            input.as_ref(),
            remove_input,
        )
        .map(ReplyBody::Script)
}

pub(super) fn delete(op: LoggedIn<'_>, name: &str) -> Result<ReplyBody, Failure> {
    op.shared.script_delete(op.id, name).map(|()| ReplyBody::Ok)
}

pub(super) fn publish(op: LoggedIn<'_>, name: &str, published: bool) -> Result<ReplyBody, Failure> {
    op.shared
        .script_publish(op.id, name, published)
        .map(ReplyBody::Script)
}

/// The operator's own scripts and the published ones.
pub(super) fn list(op: LoggedIn<'_>, sort: &str, descending: bool) -> Result<ReplyBody, Failure> {
    op.shared
        .script_list(op.id, sort, descending)
        .map(|scripts| ReplyBody::Scripts { scripts })
}

pub(super) fn categories(op: LoggedIn<'_>) -> Result<ReplyBody, Failure> {
    Ok(ReplyBody::Categories {
        categories: op.shared.script_categories(),
    })
}

/// Sends library scripts, in this order, to the agent of a session this
/// connection is attached to.
pub(super) async fn run(
    op: LoggedIn<'_>,
    c: &Conn,
    session_id: String,
    names: Vec<String>,
    stop_on_failure: bool,
    timeout_secs: Option<u64>,
) -> Result<ReplyBody, Failure> {
    op.own_session(&session_id)?;
    if !c.attached.contains(&session_id) {
        return Err(fail(
            ErrorCode::WrongState,
            format!("not connected to session {session_id}; connect first"),
        ));
    }
    op.shared
        .run_scripts(
            op.id,
            &op.profile.name,
            &session_id,
            &names,
            stop_on_failure,
            timeout_secs,
        )
        .await
        .map(|batch_id| ReplyBody::ScriptBatch { batch_id })
}
