//! The customer's end of the end-to-end channel for the benchmarks' raw
//! agents (a bare link after `Join`, no agent library): it answers the
//! operator client's handshake with the agent's own state machine
//! (`lifeline_protocol::e2e::AgentEnds`), opens what the operator seals and
//! seals what the customer says, as the agent library does.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use lifeline_core::link::Link;
use lifeline_operator::Client;
use lifeline_protocol::e2e::{AgentEnds, AgentIncoming};
use lifeline_protocol::{Frame, Message, Party, SessionMessage, report_text};

use crate::{STEP, step};

/// One raw agent's channels for its session.
pub struct RawE2e {
    session: String,
    ends: AgentEnds,
}

/// Attaches `op` to `sid` while the raw agent `agent` answers the
/// end-to-end handshake (the attach returns once the channel is ready).
pub async fn attach(op: &Client, agent: &mut Link, sid: &str) -> Result<RawE2e> {
    Ok(attach_timed(op, agent, sid).await?.0)
}

/// [`attach`], with when the operator's side of the channel was ready (its
/// `attach` returned), counted from the call; the agent's is when this
/// returns (it read the operator's confirm).
pub async fn attach_timed(op: &Client, agent: &mut Link, sid: &str) -> Result<(RawE2e, Duration)> {
    let mut e2e = RawE2e {
        session: sid.to_string(),
        ends: AgentEnds::new(sid),
    };
    let t = Instant::now();
    let (attached, answered) = tokio::join!(
        async { (step("attach", op.attach(sid)).await, t.elapsed()) },
        e2e.answer(agent)
    );
    attached.0?;
    answered?;
    Ok((e2e, attached.1))
}

impl RawE2e {
    /// Reads `agent` until one more channel is ready, answering the
    /// handshake; anything else read meanwhile is dropped.
    async fn answer(&mut self, agent: &mut Link) -> Result<()> {
        let before = self.ends.ready().len();
        while self.ends.ready().len() == before {
            let frame = tokio::time::timeout(STEP, agent.rx.recv())
                .await
                .map_err(|_| anyhow!("no end-to-end handshake within {STEP:?}"))?
                .ok_or_else(|| anyhow!("agent link closed: {}", agent.close_reason.get()))?;
            if let Frame::Control(Message::Session { msg, .. }) = frame {
                match self.ends.incoming(msg, rand::random()) {
                    AgentIncoming::Reply(m) => agent
                        .tx
                        .send(self.frame(m))
                        .await
                        .map_err(|_| anyhow!("agent link closed"))?,
                    AgentIncoming::Refused { why, .. } => bail!("the raw agent refused: {why}"),
                    AgentIncoming::Ready { .. }
                    | AgentIncoming::Deliver { .. }
                    | AgentIncoming::Gone { .. } => {}
                }
            }
        }
        Ok(())
    }

    /// The operator's content in a frame the raw agent read, opened.
    pub fn open(&mut self, frame: Frame) -> Option<SessionMessage> {
        let Frame::Control(Message::Session { msg, .. }) = frame else {
            return None;
        };
        match self.ends.incoming(msg, rand::random()) {
            AgentIncoming::Deliver { msg, .. } => Some(msg),
            _ => None,
        }
    }

    /// What the agent sends for the customer's content `msg`: the report
    /// record, then a sealed copy per ready operator endpoint.
    pub fn content(&mut self, msg: &SessionMessage) -> Result<Vec<Frame>> {
        let mut frames = Vec::new();
        if let Some((event, text)) = report_text::from_customer(msg) {
            frames.push(self.frame(SessionMessage::Record {
                event: event.into(),
                party: Party::Customer,
                text,
            }));
        }
        let sealed = self.ends.seal_all(msg)?;
        frames.extend(sealed.into_iter().map(|m| self.frame(m)));
        Ok(frames)
    }

    fn frame(&self, msg: SessionMessage) -> Frame {
        Frame::Control(Message::Session {
            session_id: self.session.clone(),
            msg,
        })
    }
}
