//! The customer's terminal as a consent prompter: the question is shown, and
//! the next line the customer types answers it (chat waits meanwhile).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::consent::{ConsentRequest, Prompter};
use lifeline_protocol::ConsentDecision;
use tokio::sync::oneshot;

use crate::CustomerUi;

/// Asks through a [`CustomerUi`]; answers arrive through [`Self::offer`].
pub struct InputPrompter {
    ui: Arc<dyn CustomerUi>,
    pending: Mutex<Option<oneshot::Sender<String>>>,
}

/// Maps what the customer typed to a decision.
pub fn parse_answer(s: &str) -> Option<ConsentDecision> {
    match s.trim().to_ascii_lowercase().as_str() {
        "o" | "once" | "1" | "y" | "yes" => Some(ConsentDecision::AllowOnce),
        "s" | "session" | "2" => Some(ConsentDecision::AllowSession),
        "d" | "deny" | "3" | "n" | "no" => Some(ConsentDecision::Deny),
        _ => None,
    }
}

impl InputPrompter {
    pub fn new(ui: Arc<dyn CustomerUi>) -> Self {
        InputPrompter {
            ui,
            pending: Mutex::new(None),
        }
    }

    /// Hands a typed line to a waiting prompt; false when none is waiting.
    pub fn offer(&self, line: &str) -> bool {
        let mut p = self.pending.lock().expect("prompt lock is never poisoned");
        match p.take() {
            Some(tx) => {
                let _ = tx.send(line.to_string());
                true
            }
            None => false,
        }
    }

    async fn ask_inner(&self, req: &ConsentRequest, timeout: Duration) -> Option<ConsentDecision> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut first = true;
        let mut again = false;
        loop {
            let (tx, rx) = oneshot::channel();
            // Ready for the answer before the question is on screen.
            *self.pending.lock().expect("prompt lock is never poisoned") = Some(tx);
            if std::mem::take(&mut first) {
                self.ui.show(&format!(
                    "\n*** Consent needed ***\n{} asks to use \"{}\" of plugin \"{}\":\n  {}\nAnswer: [o] allow once, [s] allow for this session, [d] deny  (no answer within {} s = deny)",
                    req.operator,
                    req.action,
                    req.plugin,
                    req.detail,
                    timeout.as_secs()
                ));
            }
            if std::mem::take(&mut again) {
                self.ui
                    .show("Please answer o (once), s (session) or d (deny).");
            }
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(line)) => match parse_answer(&line) {
                    Some(d) => return Some(d),
                    None => again = true,
                },
                Ok(Err(_)) | Err(_) => {
                    self.pending
                        .lock()
                        .expect("prompt lock is never poisoned")
                        .take();
                    self.ui.show("No answer in time: denied.");
                    return None;
                }
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
        }
    }

    #[tokio::test]
    async fn typed_answer_and_timeout() {
        let p = Arc::new(InputPrompter::new(Arc::new(Quiet)));
        let p2 = Arc::clone(&p);
        let h = tokio::spawn(async move { p2.ask(&req(), Duration::from_secs(5)).await });
        while !p.offer("maybe") {
            tokio::task::yield_now().await;
        }
        while !p.offer("s") {
            tokio::task::yield_now().await;
        }
        assert_eq!(h.await.unwrap(), Some(ConsentDecision::AllowSession));
        assert_eq!(p.ask(&req(), Duration::from_millis(10)).await, None);
        assert!(!p.offer("o"), "no prompt is pending after a timeout");
    }
}
