//! Plugin streams on the operator's side (wire format in
//! `lifeline_protocol::stream`): subscribing is granting credit, reading
//! is consuming frames and granting their size back, and frames can be sent
//! back to the plugin (input events). The credit an operator client grants
//! is what may be in flight towards it, so a slow reader holds back the
//! plugin instead of filling the agent's, the broker's or its own memory.

use lifeline_protocol::StreamData;

use crate::{Client, Event, OperatorError};

/// The event of a data frame of session `session_id` from the broker.
pub(crate) fn event(session_id: String, payload: Vec<u8>) -> Event {
    if payload.first() != Some(&lifeline_protocol::stream::TAG_FRAME) {
        return Event::Data {
            session_id,
            payload,
        };
    }
    match StreamData::decode(payload) {
        Ok(StreamData::Frame { stream, body }) => Event::Stream {
            session_id,
            stream,
            body,
        },
        Ok(other) => Event::Error(format!("unexpected stream frame from the agent: {other:?}")),
        Err(e) => Event::Error(format!("malformed stream frame from the agent: {e}")),
    }
}

impl Client {
    /// Grants stream `stream` of attached session `session_id` `bytes` more
    /// in flight. The first grant subscribes; nothing flows before it.
    pub async fn stream_credit(
        &self,
        session_id: &str,
        stream: u32,
        bytes: u64,
    ) -> Result<(), OperatorError> {
        self.send_data(session_id, StreamData::Credit { stream, bytes }.encode())
            .await
    }

    /// Sends a frame to the plugin on stream `stream` (input events).
    pub async fn stream_input(
        &self,
        session_id: &str,
        stream: u32,
        body: Vec<u8>,
    ) -> Result<(), OperatorError> {
        self.send_data(session_id, StreamData::Input { stream, body }.encode())
            .await
    }
}
