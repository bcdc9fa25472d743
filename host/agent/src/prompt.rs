//! The customer's terminal as a consent prompter: the question is shown and
//! the customer answers with one of the answer commands ([`ALLOW_ONCE`],
//! [`ALLOW_SESSION`], [`DENY`]). Those commands are distinct from chat, so
//! a chat line such as "yes" typed while a question is open stays chat, and
//! [`crate::END_COMMAND`] always ends the session (the session loop checks
//! it before offering a line here).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lifeline_core::consent::{ConsentRequest, Prompter, RequestKind};
use lifeline_protocol::ConsentDecision;
use tokio::sync::oneshot;

use crate::CustomerUi;
use crate::channel::{ConsentAsk, ConsentKind, CustomerEvent, Resolution};

/// Allows what is asked this once.
pub const ALLOW_ONCE: &str = "/allow";
/// Allows a plugin's capability, as described, for the rest of the session.
pub const ALLOW_SESSION: &str = "/allow-session";
/// Refuses.
pub const DENY: &str = "/deny";

/// The question waiting for an answer.
struct Pending {
    id: u64,
    kind: RequestKind,
    tx: oneshot::Sender<ConsentDecision>,
}

#[derive(Default)]
struct State {
    /// The last request's ID (IDs count from 1).
    last_id: u64,
    pending: Option<Pending>,
    /// The latest security code of each operator's end-to-end channel,
    /// shown beside their name in a question.
    codes: BTreeMap<String, String>,
}

/// Most operators whose security code a prompter keeps: a session has a
/// handful; the names come from the broker, so they are bounded here.
pub const MAX_CODES: usize = 64;

/// Why an answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("consent request {0} was already answered or has expired")]
    AlreadyAnswered(u64),
    #[error("there is no consent request {0}")]
    Unknown(u64),
    #[error("this question can only be answered \"allow once\" or \"deny\"")]
    NotOffered,
}

/// Asks through a [`CustomerUi`]; answers arrive through [`Self::offer`]
/// (a typed line) or [`Self::answer`] (a window's button). Whichever comes
/// first decides; the other is told the request was already answered.
pub struct InputPrompter {
    ui: Arc<dyn CustomerUi>,
    state: Mutex<State>,
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

/// The request as the customer channel carries it (`code`: the security
/// code of the asking operator's channel).
fn ask_event(id: u64, req: &ConsentRequest, code: Option<String>, timeout: Duration) -> ConsentAsk {
    let (kind, answers) = match req.kind {
        RequestKind::Capability => (
            ConsentKind::Capability,
            vec![
                ConsentDecision::AllowOnce,
                ConsentDecision::AllowSession,
                ConsentDecision::Deny,
            ],
        ),
        RequestKind::Question => (
            ConsentKind::Question,
            vec![ConsentDecision::AllowOnce, ConsentDecision::Deny],
        ),
    };
    let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    ConsentAsk {
        id,
        operator: req.operator.clone(),
        plugin: req.plugin.clone(),
        action: req.action.clone(),
        detail: req.detail.clone(),
        code,
        kind,
        answers,
        deadline_ms: lifeline_core::time::now_millis().saturating_add(timeout_ms),
        timeout_secs: timeout.as_secs(),
    }
}

impl InputPrompter {
    pub fn new(ui: Arc<dyn CustomerUi>) -> Self {
        InputPrompter {
            ui,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("prompt lock is never poisoned")
    }

    /// `operator`'s end-to-end channel is ready with security code `code`:
    /// their questions show it from now on.
    pub fn set_code(&self, operator: &str, code: &str) {
        let mut st = self.state();
        if st.codes.len() >= MAX_CODES && !st.codes.contains_key(operator) {
            st.codes.pop_first();
        }
        st.codes.insert(operator.to_string(), code.to_string());
    }

    /// Takes a typed line if it is an answer command (true); any other line
    /// is left for chat (false).
    pub fn offer(&self, line: &str) -> bool {
        let Some(decision) = parse_answer(line) else {
            return false;
        };
        let id = {
            let st = self.state();
            st.pending.as_ref().map(|p| p.id).unwrap_or(st.last_id)
        };
        match self.answer(id, decision) {
            Ok(()) => {}
            Err(AnswerError::NotOffered) => self.ui.show(&format!(
                "This question can only be answered {ALLOW_ONCE} or {DENY}."
            )),
            Err(AnswerError::AlreadyAnswered(_)) => self
                .ui
                .show("That consent request was already answered (or has expired)."),
            Err(AnswerError::Unknown(_)) => {
                self.ui.show("No consent request is waiting for an answer.")
            }
        }
        true
    }

    /// Answers request `id` (a window's button).
    pub fn answer(&self, id: u64, decision: ConsentDecision) -> Result<(), AnswerError> {
        let mut st = self.state();
        match st.pending.take() {
            Some(p) if p.id == id => {
                if p.kind == RequestKind::Question && decision == ConsentDecision::AllowSession {
                    st.pending = Some(p);
                    return Err(AnswerError::NotOffered);
                }
                let _ = p.tx.send(decision);
                Ok(())
            }
            other => {
                st.pending = other;
                if id >= 1 && id <= st.last_id {
                    Err(AnswerError::AlreadyAnswered(id))
                } else {
                    Err(AnswerError::Unknown(id))
                }
            }
        }
    }

    async fn ask_inner(&self, req: &ConsentRequest, timeout: Duration) -> Option<ConsentDecision> {
        let (tx, rx) = oneshot::channel();
        // Ready for the answer before the question is on screen.
        let (id, code) = {
            let mut st = self.state();
            st.last_id += 1;
            let id = st.last_id;
            st.pending = Some(Pending {
                id,
                kind: req.kind,
                tx,
            });
            (id, st.codes.get(&req.operator).cloned())
        };
        self.ui
            .event(&CustomerEvent::Consent(ask_event(id, req, code, timeout)));
        let (resolution, decision) = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(d)) => (Resolution::Answered, Some(d)),
            Ok(Err(_)) | Err(_) => {
                let mut st = self.state();
                if st.pending.as_ref().is_some_and(|p| p.id == id) {
                    st.pending = None;
                }
                (Resolution::Expired, None)
            }
        };
        self.ui.event(&CustomerEvent::ConsentResolved {
            id,
            resolution,
            decision: decision.unwrap_or(ConsentDecision::Deny),
        });
        decision
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

    fn attended(&self) -> bool {
        self.ui.attended()
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
        while p.state.lock().unwrap().pending.is_none() {
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
        assert!(
            p.state.lock().unwrap().pending.is_none(),
            "and answers nothing"
        );
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
        assert!(p.state.lock().unwrap().pending.is_some(), "still waiting");
        assert!(p.offer(DENY));
        assert_eq!(h.await.unwrap(), Some(ConsentDecision::Deny));
    }

    /// Records the consent questions put to the customer.
    #[derive(Default)]
    struct Asked(Mutex<Vec<ConsentAsk>>);
    impl CustomerUi for Asked {
        fn show(&self, _: &str) {}
        fn event(&self, ev: &CustomerEvent) {
            if let CustomerEvent::Consent(ask) = ev {
                self.0.lock().unwrap().push(ask.clone());
            }
        }
    }

    /// Once an operator's end-to-end channel is ready, their questions
    /// show its security code beside their name; others' do not.
    #[tokio::test]
    async fn a_question_shows_the_askers_security_code() {
        let ui = Arc::new(Asked::default());
        let p = InputPrompter::new(Arc::clone(&ui) as Arc<dyn CustomerUi>);
        assert_eq!(p.ask(&req(), Duration::from_millis(1)).await, None);
        p.set_code("Bob", "111 111");
        p.set_code("Alice", "123 456");
        assert_eq!(p.ask(&req(), Duration::from_millis(1)).await, None);
        let asked = ui.0.lock().unwrap().clone();
        assert_eq!(asked[0].code, None);
        assert_eq!(asked[1].code.as_deref(), Some("123 456"));
        let text = CustomerEvent::Consent(asked[1].clone()).text().unwrap();
        assert!(
            text.contains("Alice (security code 123 456) wants plugin"),
            "{text}"
        );
        for i in 0..MAX_CODES {
            p.set_code(&format!("op{i:03}"), "000 000");
        }
        assert_eq!(p.state().codes.len(), MAX_CODES, "bounded");
    }

    /// A window's answer and a typed one to the same request: the first
    /// decides, the second is told; unknown IDs are refused.
    #[tokio::test]
    async fn the_first_answer_wins_and_unknown_ids_are_refused() {
        let p = Arc::new(InputPrompter::new(Arc::new(Quiet)));
        let p2 = Arc::clone(&p);
        let h = tokio::spawn(async move { p2.ask(&req(), Duration::from_secs(5)).await });
        wait_pending(&p).await;
        assert_eq!(
            p.answer(99, ConsentDecision::AllowOnce),
            Err(AnswerError::Unknown(99))
        );
        assert_eq!(p.answer(1, ConsentDecision::Deny), Ok(()));
        assert_eq!(h.await.unwrap(), Some(ConsentDecision::Deny));
        assert_eq!(
            p.answer(1, ConsentDecision::AllowOnce),
            Err(AnswerError::AlreadyAnswered(1))
        );
        assert!(p.offer(ALLOW_ONCE), "still an answer command, refused");
    }
}
