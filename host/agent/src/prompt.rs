//! The customer's terminal as a consent prompter: the question is shown and
//! the customer answers with one of the answer commands ([`ALLOW_ONCE`],
//! [`ALLOW_SESSION`], [`DENY`]). Those commands are distinct from chat, so
//! a chat line such as "yes" typed while a question is open stays chat, and
//! [`crate::END_COMMAND`] always ends the session (the session loop checks
//! it before offering a line here).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::consent::{ConsentRequest, Prompter, RequestKind};
use lifeline_protocol::ConsentDecision;
use tokio::sync::oneshot;

use crate::CustomerUi;

/// Allows what is asked this once.
pub const ALLOW_ONCE: &str = "/allow";
/// Allows a plugin's capability, as described, for the rest of the session.
pub const ALLOW_SESSION: &str = "/allow-session";
/// Refuses.
pub const DENY: &str = "/deny";

/// The question waiting for an answer.
struct Pending {
    kind: RequestKind,
    tx: oneshot::Sender<ConsentDecision>,
}

/// Asks through a [`CustomerUi`]; answers arrive through [`Self::offer`].
pub struct InputPrompter {
    ui: Arc<dyn CustomerUi>,
    pending: Mutex<Option<Pending>>,
}

/// Maps an answer command to a decision; `None` for anything else (chat).
pub fn parse_answer(s: &str) -> Option<ConsentDecision> {
    match s.trim() {
        ALLOW_ONCE => Some(ConsentDecision::AllowOnce),
        ALLOW_SESSION => Some(ConsentDecision::AllowSession),
        DENY => Some(ConsentDecision::Deny),
        _ => None,
    }
}

/// The question as the customer reads it.
fn question_text(req: &ConsentRequest, timeout: Duration) -> String {
    let secs = timeout.as_secs();
    match req.kind {
        RequestKind::Capability => format!(
            "\n*** Consent needed ***\n{} wants plugin \"{}\" to use \"{}\":\n  {}\nType {ALLOW_ONCE} (this once), {ALLOW_SESSION} (this, as described, for the rest of the session) or {DENY}. Other lines are chat. No answer within {secs} s = deny.",
            req.operator, req.plugin, req.action, req.detail
        ),
        RequestKind::Question => format!(
            "\n*** Consent needed: a question from {} ***\n  {}\n(about \"{}\" of plugin \"{}\"; your answer is recorded and gives no permission by itself)\nType {ALLOW_ONCE} or {DENY}. Other lines are chat. No answer within {secs} s = deny.",
            req.operator, req.detail, req.action, req.plugin
        ),
    }
}

impl InputPrompter {
    pub fn new(ui: Arc<dyn CustomerUi>) -> Self {
        InputPrompter {
            ui,
            pending: Mutex::new(None),
        }
    }

    /// Takes a typed line if it is an answer command (true); any other line
    /// is left for chat (false).
    pub fn offer(&self, line: &str) -> bool {
        let Some(decision) = parse_answer(line) else {
            return false;
        };
        let mut p = self.pending.lock().expect("prompt lock is never poisoned");
        match p.take() {
            Some(Pending { kind, tx })
                if kind == RequestKind::Question && decision == ConsentDecision::AllowSession =>
            {
                *p = Some(Pending { kind, tx });
                self.ui.show(&format!(
                    "This question can only be answered {ALLOW_ONCE} or {DENY}."
                ));
            }
            Some(Pending { tx, .. }) => {
                let _ = tx.send(decision);
            }
            None => self.ui.show("No consent request is waiting for an answer."),
        }
        true
    }

    async fn ask_inner(&self, req: &ConsentRequest, timeout: Duration) -> Option<ConsentDecision> {
        let (tx, rx) = oneshot::channel();
        // Ready for the answer before the question is on screen.
        *self.pending.lock().expect("prompt lock is never poisoned") =
            Some(Pending { kind: req.kind, tx });
        self.ui.show(&question_text(req, timeout));
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(d)) => Some(d),
            Ok(Err(_)) | Err(_) => {
                self.pending
                    .lock()
                    .expect("prompt lock is never poisoned")
                    .take();
                self.ui.show("No answer in time: denied.");
                None
            }
        }
    }
}

impl Prompter for InputPrompter {
    fn ask<'a>(
        &'a self,
        request: &'a ConsentRequest,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Option<ConsentDecision>> + Send + 'a>> {
        Box::pin(self.ask_inner(request, timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;
    impl CustomerUi for Quiet {
        fn show(&self, _: &str) {}
    }

    fn req() -> ConsentRequest {
        ConsentRequest {
            session_id: "s".into(),
            operator: "Alice".into(),
            plugin: "p".into(),
            action: "a.b".into(),
            detail: "d".into(),
            kind: RequestKind::Capability,
        }
    }

    async fn wait_pending(p: &InputPrompter) {
        while p.pending.lock().unwrap().is_none() {
            tokio::task::yield_now().await;
        }
    }

    /// The review's reproduction: chat typed while a question is open is
    /// not an answer, and only the answer commands are.
    #[tokio::test]
    async fn chat_lines_are_never_answers() {
        let p = Arc::new(InputPrompter::new(Arc::new(Quiet)));
        let p2 = Arc::clone(&p);
        let h = tokio::spawn(async move { p2.ask(&req(), Duration::from_secs(5)).await });
        wait_pending(&p).await;
        for chat in ["yes", "1", "s", "o", "y", "allow", "/allowed", "/end"] {
            assert!(!p.offer(chat), "{chat:?} is chat, not an answer");
        }
        assert!(p.offer(ALLOW_SESSION));
        assert_eq!(h.await.unwrap(), Some(ConsentDecision::AllowSession));
        assert_eq!(p.ask(&req(), Duration::from_millis(10)).await, None);
        assert!(p.offer(ALLOW_ONCE), "an answer command is consumed");
        assert!(p.pending.lock().unwrap().is_none(), "and answers nothing");
    }

    #[tokio::test]
    async fn a_question_cannot_be_allowed_for_the_session() {
        let p = Arc::new(InputPrompter::new(Arc::new(Quiet)));
        let p2 = Arc::clone(&p);
        let mut q = req();
        q.kind = RequestKind::Question;
        let h = tokio::spawn(async move { p2.ask(&q, Duration::from_secs(5)).await });
        wait_pending(&p).await;
        assert!(p.offer(ALLOW_SESSION));
        assert!(p.pending.lock().unwrap().is_some(), "still waiting");
        assert!(p.offer(DENY));
        assert_eq!(h.await.unwrap(), Some(ConsentDecision::Deny));
    }
}
