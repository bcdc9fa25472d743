//! Session content end to end (`crate::e2e`). Every session message from
//! the broker goes through the session's channels first: a hello is
//! answered, a ready channel shows the customer its security code, sealed
//! content is opened, checked and recorded, and content in the clear is
//! refused. What the agent sends that is content is recorded (the broker
//! cannot read it any more, so the customer's side keeps the report) and
//! sealed once per ready operator endpoint.
//!
//! Records are numbered like every other message the agent sends, so a
//! resume sends again what the broker had not recorded; sealed messages
//! are not: after a broker restart the operator endpoints start new
//! channels, and old sealed bytes would not open on them.

use lifeline_protocol::e2e::AgentIncoming;
use lifeline_protocol::{Message, Party, SessionMessage, report_text};

use super::{Flow, Session};
use crate::channel::CustomerEvent;
use crate::e2e::{Refusal, check_from_operator, fit};

impl Session<'_> {
    /// A session message from the broker.
    pub(super) async fn on_session_message(&mut self, msg: SessionMessage) -> Flow {
        match self.ends.incoming(msg) {
            AgentIncoming::Deliver {
                msg,
                operator: None,
            } => return self.dispatch(msg, None).await,
            AgentIncoming::Deliver {
                msg,
                operator: Some(operator),
            } => return self.on_opened(msg, operator).await,
            AgentIncoming::Reply(reply) => self.send_envelope(reply).await,
            AgentIncoming::Ready {
                endpoint,
                operator,
                sas,
            } => self.on_secured(endpoint, operator, sas),
            AgentIncoming::Gone { endpoint, reason } => {
                tracing::info!("end-to-end channel with endpoint {endpoint} closed: {reason}");
            }
            AgentIncoming::Refused { why, reply } => {
                tracing::warn!("end-to-end: {why}");
                if let Some(reply) = reply {
                    self.send_envelope(reply).await;
                }
            }
        }
        Flow::Continue(())
    }

    /// Content opened from the endpoint the broker named `operator`:
    /// checked (the broker no longer can), recorded, then handled.
    async fn on_opened(&mut self, msg: SessionMessage, operator: String) -> Flow {
        if let Err(refused) = check_from_operator(&operator, &msg) {
            let Refusal { why, reply } = *refused;
            tracing::warn!("refused {} from {operator}: {why}", msg.kind_name());
            if let Some(reply) = reply {
                self.send(reply).await;
            }
            return Flow::Continue(());
        }
        if let Some((event, text)) = report_text::from_operator(&operator, &msg) {
            self.record(event, Party::Operator, text).await;
        }
        self.dispatch(msg, Some(operator)).await
    }

    /// A channel is ready: the customer sees its code beside the
    /// operator's name, to compare with what the operator reads out.
    fn on_secured(&self, endpoint: u64, operator: String, code: String) {
        tracing::info!(
            endpoint,
            %operator,
            "end-to-end channel ready: security code {code}"
        );
        self.prompter.set_code(&operator, &code);
        self.ui.event(&CustomerEvent::Secured { operator, code });
    }

    /// Sends content: recorded (numbered), then sealed to every ready
    /// operator endpoint (not numbered). With no endpoint ready it is only
    /// recorded.
    pub(super) async fn send_content(&mut self, msg: SessionMessage) {
        let msg = fit(msg);
        if let Some((event, text)) = report_text::from_customer(&msg) {
            self.record(event, Party::Customer, text).await;
        }
        let sealed = match self.ends.seal_all(&msg) {
            Ok(sealed) => sealed,
            Err(e) => {
                tracing::warn!("{} not sent to the operators: {e}", msg.kind_name());
                return;
            }
        };
        for m in sealed {
            self.send_envelope(m).await;
        }
    }

    /// A report event for content the broker relays sealed.
    async fn record(&mut self, event: &str, party: Party, text: String) {
        if text.is_empty() {
            return;
        }
        let event = event.to_string();
        self.send_numbered(SessionMessage::Record { event, party, text })
            .await;
    }

    /// Sends an end-to-end envelope (hello answer, sealed message,
    /// closed channel) as it is: not numbered, never sent again.
    async fn send_envelope(&self, msg: SessionMessage) {
        let session_id = self.sid.clone();
        self.send_frame(Message::Session { session_id, msg }).await;
    }
}
