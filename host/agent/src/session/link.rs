//! What arrives from the broker: data frames, opened, go to the plugin
//! streams; control messages to their handlers (session messages through
//! the end-to-end channels first, `sealed.rs`). Both matches below list
//! every kind (no catch-all arm), so a new message cannot compile without
//! a decision here.

use lifeline_protocol::{Frame, Message, SessionMessage};

use super::{Flow, Session};

impl Session<'_> {
    /// A frame from the broker; `None`: the link is gone.
    pub(super) async fn on_frame(&mut self, frame: Option<Frame>) -> Flow {
        let Some(frame) = frame else {
            let why = self.link.close_reason.get();
            return self.on_link_lost(why).await;
        };
        match frame {
            Frame::Control(msg) => return self.on_message(msg).await,
            // Credit and input come sealed by an operator endpoint.
            Frame::Data(d) => match self.ends.open_data(&d) {
                Ok((_endpoint, data)) => self.streams.on_operator_data(data),
                Err(e) => tracing::warn!("data frame of {} bytes refused: {e}", d.len()),
            },
            // Only the broker's operator side names sessions.
            Frame::SessionData { .. } => {}
        }
        Flow::Continue(())
    }

    async fn on_message(&mut self, msg: Message) -> Flow {
        match msg {
            Message::Session { msg, .. } => return self.on_session_message(msg).await,
            Message::RejoinTicket { ticket, expires_at } => {
                self.on_rejoin_ticket(ticket, expires_at)
            }
            Message::Error { message, .. } => self.on_broker_error(message),
            Message::ResumeCredential { credential } => self.resume = Some(credential),
            // The handshake is over, and these go from the agent to the
            // broker or to operators only.
            Message::Hello { .. }
            | Message::Welcome { .. }
            | Message::Ping { .. }
            | Message::Pong { .. }
            | Message::Request { .. }
            | Message::Reply { .. }
            | Message::Join { .. }
            | Message::Joined { .. }
            | Message::RejoinTicketRequest { .. }
            | Message::RebootCancelled { .. }
            | Message::Rejoin { .. }
            | Message::Sequenced { .. }
            | Message::Resume { .. }
            | Message::Rejoined { .. } => {}
        }
        Flow::Continue(())
    }

    /// One handler per kind the broker sends the agent, said by the broker
    /// in the clear (`operator` is `None`) or opened from the endpoint the
    /// broker named `operator`: who asks is that name, never one inside
    /// the message.
    pub(super) async fn dispatch(&mut self, msg: SessionMessage, operator: Option<String>) -> Flow {
        use SessionMessage as M;
        let name = operator.unwrap_or_else(|| self.operator.name.clone());
        match msg {
            M::Chat { text, .. } => self.on_chat(&text, name),
            M::State { state, detail } => return self.on_state(state, detail),
            M::End { by, reason } => return self.on_end(by, reason),
            M::CredentialReply { request_id, secret } => self.creds.answer(request_id, secret),
            M::ConsentRequest {
                request_id,
                plugin,
                action,
                detail,
                ..
            } => self.on_question(request_id, name, plugin, action, detail),
            M::ListPlugins { request_id } => self.on_list_plugins(request_id),
            M::RunPlugin {
                call_id,
                plugin,
                command,
                args,
            } => self.on_run_plugin(call_id, plugin, command, args, name),
            M::ScriptBatch {
                batch_id,
                operator,
                scripts,
                stop_on_failure,
                timeout_secs,
            } => self.on_script_batch(batch_id, operator, scripts, stop_on_failure, timeout_secs),
            M::ScriptFiles {
                batch_id,
                index,
                exec_b64,
                input_b64,
            } => self.on_script_files(batch_id, index, exec_b64, input_b64),
            // What the agent sends; nothing to do when one comes back.
            M::ConsentAnswer { .. }
            | M::ScriptOutput { .. }
            | M::ScriptDone { .. }
            | M::BatchDone { .. }
            | M::Plugins { .. }
            | M::PluginOutput { .. }
            | M::PluginDone { .. }
            | M::ConsentDecided { .. }
            | M::PluginNotice { .. }
            | M::StreamOpened { .. }
            | M::StreamClosed { .. }
            | M::CredentialRequest { .. }
            | M::Access { .. } => {}
            // The end-to-end envelope: the channels handle it before this.
            M::E2eHello { .. }
            | M::E2eReply { .. }
            | M::Sealed { .. }
            | M::E2eClosed { .. }
            | M::Record { .. } => {}
        }
        Flow::Continue(())
    }
}
