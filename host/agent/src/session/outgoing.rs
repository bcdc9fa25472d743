//! What plugin calls (and the agent's own script runs) send to the
//! operator: forwarded to the broker, and what the customer should know
//! shown to them too. A run-as login suspends and restores the customer's
//! access here: their chat lines are held meanwhile and sent afterwards.

use lifeline_protocol::SessionMessage;
use lifeline_runtime::wit::SessionEvent;

use super::Session;
use crate::channel::CustomerEvent;

impl Session<'_> {
    pub(super) async fn on_outgoing(&mut self, msg: SessionMessage) {
        let mut release = Vec::new();
        match &msg {
            SessionMessage::Access {
                suspended: true,
                user,
                ..
            } => self.on_suspended(user),
            SessionMessage::Access {
                suspended: false,
                user,
                detail,
            } => release = self.on_restored(user, detail),
            other => {
                if let Some(line) = customer_line(other) {
                    self.ui.show(&line);
                }
            }
        }
        self.send(msg).await;
        for text in release {
            self.send_chat(text).await;
        }
    }

    /// The operator now works as `user`: the customer's input is held.
    fn on_suspended(&mut self, user: &str) {
        self.services
            .event(&SessionEvent::AccessSuspended(user.to_string()));
        self.suspended = Some(user.to_string());
        self.ui.event(&CustomerEvent::Suspension {
            active: true,
            operator: self.operator.name.clone(),
            user: user.to_string(),
            detail: String::new(),
        });
    }

    /// The login as `user` ended: returns the held chat lines to send.
    fn on_restored(&mut self, user: &str, detail: &str) -> Vec<String> {
        self.services
            .event(&SessionEvent::AccessRestored(user.to_string()));
        self.suspended = None;
        self.ui.event(&CustomerEvent::Suspension {
            active: false,
            operator: self.operator.name.clone(),
            user: user.to_string(),
            detail: detail.to_string(),
        });
        std::mem::take(&mut self.held)
    }
}

/// What the customer sees of a message to the operator, if anything.
fn customer_line(msg: &SessionMessage) -> Option<String> {
    use SessionMessage as M;
    match msg {
        M::PluginNotice { text } => Some(format!("* {text}")),
        M::ScriptOutput { script, line, .. } => Some(format!("[{script}] {line}")),
        M::ScriptDone {
            script,
            exit_code,
            duration_ms,
            timed_out,
            error,
            ..
        } => {
            let how = lifeline_protocol::script_outcome(*exit_code, *timed_out, error.as_deref());
            Some(format!("* script {script}: {how} ({duration_ms} ms)"))
        }
        M::BatchDone { summary, .. } => Some(format!("* scripts: {summary}")),
        M::PluginDone {
            plugin, ok, text, ..
        } => Some(if *ok {
            format!("* {plugin} finished")
        } else {
            let first = text.lines().next().unwrap_or("");
            format!("* {plugin} failed: {first}")
        }),
        M::Chat { .. }
        | M::ConsentRequest { .. }
        | M::ConsentAnswer { .. }
        | M::End { .. }
        | M::ListPlugins { .. }
        | M::Plugins { .. }
        | M::RunPlugin { .. }
        | M::PluginOutput { .. }
        | M::ConsentDecided { .. }
        | M::StreamOpened { .. }
        | M::StreamClosed { .. }
        | M::ScriptBatch { .. }
        | M::ScriptFiles { .. }
        | M::State { .. }
        | M::CredentialRequest { .. }
        | M::CredentialReply { .. }
        | M::Access { .. }
        | M::E2eHello { .. }
        | M::E2eReply { .. }
        | M::Sealed { .. }
        | M::E2eClosed { .. }
        | M::Record { .. } => None,
    }
}
