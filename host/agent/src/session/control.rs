//! What plugin calls need the broker connection for (a rejoin ticket
//! before a reboot, a cancelled reboot), and the broker's replies.

use lifeline_protocol::{Message, Secret};

use super::Session;
use crate::native::Ctl;

impl Session<'_> {
    /// A request of a plugin call for the broker.
    pub(super) async fn on_ctl(&mut self, ctl: Ctl) {
        match ctl {
            Ctl::TicketRequest { detail, reply } => {
                self.pending_ticket = Some(reply);
                self.send_frame(Message::RejoinTicketRequest { detail })
                    .await;
            }
            Ctl::RebootCancelled { reason } => {
                self.send_frame(Message::RebootCancelled { reason }).await;
            }
        }
    }

    /// `RejoinTicket`: to the reboot waiting for it.
    pub(super) fn on_rejoin_ticket(&mut self, ticket: Secret, expires_at: i64) {
        if let Some(tx) = self.pending_ticket.take() {
            let _ = tx.send(Ok((ticket, expires_at)));
        }
    }

    /// `Error`: a reboot waiting for its ticket fails with it; the customer
    /// sees it.
    pub(super) fn on_broker_error(&mut self, message: String) {
        if let Some(tx) = self.pending_ticket.take() {
            let _ = tx.send(Err(message.clone()));
        }
        self.ui.show(&format!("! {message}"));
    }
}
