//! Chat both ways, and what the customer types: consent answers, chat
//! lines (held while the operator works as another user) and `/end`.

use lifeline_protocol::{Party, SessionMessage};
use tokio::sync::mpsc;

use super::{Flow, Session};
use crate::END_COMMAND;
use crate::channel::CustomerEvent;

impl Session<'_> {
    /// `Chat` from the operator named `name`.
    pub(super) fn on_chat(&self, text: &str, name: String) {
        self.ui.event(&CustomerEvent::Chat {
            from: Party::Operator,
            name,
            text: text.to_string(),
        });
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
        self.chat_from_customer(line).await;
        Flow::Continue(())
    }

    /// A chat line of the customer's (typed or from their window): held
    /// while the operator works as another user, else sent.
    pub(super) async fn chat_from_customer(&mut self, line: String) {
        if let Some(user) = &self.suspended {
            self.ui.show(&format!(
                "* Held: your input is paused while the operator works as {user}. Type {END_COMMAND} to end the session."
            ));
            self.held.push(line);
            return;
        }
        self.send_chat(line).await;
    }

    /// The customer typed `/end` (or pressed End session).
    pub(super) async fn end_by_customer(&mut self) -> Flow {
        let reason = "ended by the customer".to_string();
        self.send(SessionMessage::End {
            by: Party::Customer,
            reason: reason.clone(),
        })
        .await;
        self.ui.event(&CustomerEvent::Ended {
            by: Party::Customer,
            reason: reason.clone(),
        });
        Flow::Break(Ok(self.outcome(Party::Customer, reason)))
    }

    /// A chat line of the customer to the operator (refused when longer
    /// than an operator's may be).
    pub(super) async fn send_chat(&mut self, text: String) {
        if let Err(why) = crate::e2e::check_customer_chat(&text) {
            self.ui.show(&format!("! {why}"));
            return;
        }
        let from = Party::Customer;
        self.ui.event(&CustomerEvent::Chat {
            from,
            name: String::new(),
            text: text.clone(),
        });
        self.send(SessionMessage::Chat { from, text }).await;
    }
}
