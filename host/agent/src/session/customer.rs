//! Commands from the customer's window (`channel`): chat, consent
//! answers (through the same prompter as typed answers), Stop sharing and
//! End session. Each command's outcome goes back to the window.

use std::sync::Arc;

use super::{Flow, Session};
use crate::channel::{CommandRequest, CustomerCommand};

impl Session<'_> {
    pub(super) async fn on_command(&mut self, req: CommandRequest) -> Flow {
        let CommandRequest { command, reply } = req;
        let outcome = match command {
            CustomerCommand::Chat { text } => {
                let text = text.trim().to_string();
                if text.is_empty() {
                    Err("an empty chat line is not sent".to_string())
                } else {
                    self.chat_from_customer(text).await;
                    Ok(())
                }
            }
            CustomerCommand::Consent { id, answer } => {
                self.prompter.answer(id, answer).map_err(|e| e.to_string())
            }
            CustomerCommand::StopSharing => self.stop_sharing().await,
            CustomerCommand::End => {
                let _ = reply.send(Ok(()));
                return self.end_by_customer().await;
            }
        };
        let _ = reply.send(outcome);
        Flow::Continue(())
    }

    /// The window's Stop: as the indicator's Stop button (blocking: it
    /// waits for the indicator's thread and the X server).
    async fn stop_sharing(&self) -> Result<(), String> {
        if !self.screen.indicator_shown() {
            return Err("the screen is not shared".into());
        }
        let screen = Arc::clone(&self.screen);
        tokio::task::spawn_blocking(move || screen.stop_by_customer())
            .await
            .map_err(|e| format!("stopping the share failed: {e}"))
    }
}
