//! The report events session messages add: one wording, whether the broker
//! records a message it relays in the clear or the agent records what it
//! sent and received on an end-to-end channel (`SessionMessage::Record`).

use crate::message::SessionMessage;

/// The report event (kind, text) a message from the customer adds, if any.
pub fn from_customer(msg: &SessionMessage) -> Option<(&'static str, String)> {
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
        M::StreamOpened {
            stream,
            plugin,
            name,
            content_type,
            latest_wins,
        } => (
            "stream",
            format!(
                "plugin {plugin} opened stream {stream} {name:?} ({content_type}, {})",
                if *latest_wins {
                    "latest wins"
                } else {
                    "queued"
                }
            ),
        ),
        M::StreamClosed {
            stream,
            plugin,
            name,
            frames,
            bytes,
            dropped,
            reason,
        } => (
            "stream",
            format!(
                "plugin {plugin} closed stream {stream} {name:?}: {frames} frames, {bytes} bytes, {dropped} dropped ({reason})"
            ),
        ),
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
            let how = crate::script_outcome(*exit_code, *timed_out, error.as_deref());
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
        | M::CredentialReply { .. }
        | M::E2eHello { .. }
        | M::E2eReply { .. }
        | M::Sealed { .. }
        | M::E2eClosed { .. }
        | M::Record { .. } => return None,
    };
    Some(entry)
}

/// The report event (kind, text) a message from operator `operator` adds,
/// if any. A password is never recorded: only whether one was given.
pub fn from_operator(operator: &str, msg: &SessionMessage) -> Option<(&'static str, String)> {
    use SessionMessage as M;
    let entry = match msg {
        M::Chat { text, .. } => ("chat", text.clone()),
        M::ConsentRequest {
            request_id,
            plugin,
            action,
            detail,
            ..
        } => (
            "consent_request",
            format!(
                "request {request_id}: {operator} asks to use {action} of plugin {plugin}: {detail}"
            ),
        ),
        M::RunPlugin {
            call_id,
            plugin,
            command,
            args,
        } => {
            let line = format!("{operator} runs {plugin} {command} {}", args.join(" "));
            ("plugin_run", format!("{} (#{call_id})", line.trim_end()))
        }
        M::CredentialReply { request_id, secret } => {
            let what = if secret.is_some() {
                "supplied the credentials"
            } else {
                "declined to supply credentials"
            };
            (
                "run_as",
                format!("{operator} {what} for request {request_id} (not recorded)"),
            )
        }
        _ => return None,
    };
    Some(entry)
}
