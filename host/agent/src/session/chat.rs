//! Chat both ways, and what the customer types: consent answers, chat
//! lines (held while the operator works as another user) and `/end`.

use lifeline_protocol::{Party, SessionMessage};
use tokio::sync::mpsc;

use super::{Flow, Session};
use crate::END_COMMAND;

impl Session<'_> {
    /// `Chat` from the operator.
    pub(super) fn on_chat(&self, text: &str) {
        self.ui.show(&format!("[{}] {text}", self.operator.name));
    }

    /// A line the customer typed; `None`: their input closed.
    pub(super) async fn on_input(&mut self, line: Option<String>) -> Flow {
        let Some(line) = line else {
            // Input closed (e.g. stdin at EOF): keep serving the session.
            self.input = mpsc::channel(1).1;
            return Flow::Continue(());
        };
        let line = line.trim().to_string();
        if self.prompter.offer(&line) || line.is_empty() {
            return Flow::Continue(());
        }
        if line == END_COMMAND {
            return self.end_by_customer().await;
        }
        if let Some(user) = &self.suspended {
            self.ui.show(&format!(
                "* Held: your input is paused while the operator works as {user}. Type {END_COMMAND} to end the session."
            ));
            self.held.push(line);
            return Flow::Continue(());
        }
        self.send_chat(line).await;
        Flow::Continue(())
    }

    /// The customer typed `/end`.
    async fn end_by_customer(&mut self) -> Flow {
        let reason = "ended by the customer".to_string();
        self.send(SessionMessage::End {
            by: Party::Customer,
            reason: reason.clone(),
        })
        .await;
        self.ui.show("* You ended the session.");
        Flow::Break(Ok(self.outcome(Party::Customer, reason)))
    }

    /// A chat line of the customer to the operator.
    pub(super) async fn send_chat(&self, text: String) {
        let from = Party::Customer;
        self.send(SessionMessage::Chat { from, text }).await;
    }
}
