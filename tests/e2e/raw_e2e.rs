//! The customer's end of the end-to-end channels for protocol-level test
//! agents (no agent library): it answers operator endpoints' hellos with
//! the real state machine (`lifeline_protocol::e2e::AgentEnds`) and turns
//! the customer's content into what a real agent sends: the report record
//! and one sealed copy per operator endpoint.

use std::sync::{Arc, Mutex};

use lifeline_protocol::e2e::{AgentEnds, AgentIncoming};
use lifeline_protocol::{Frame, Message, Party, SessionMessage, report_text};
use tokio::io::{AsyncRead, AsyncWrite};

/// One raw agent's channels for its session (cheap to clone and share
/// between its reader task and its writer).
#[derive(Clone)]
pub struct RawE2e {
    session: String,
    ends: Arc<Mutex<AgentEnds>>,
}

impl RawE2e {
    pub fn new(session: &str) -> RawE2e {
        RawE2e {
            session: session.to_string(),
            ends: Arc::new(Mutex::new(AgentEnds::new(session))),
        }
    }

    /// Handles a message from the broker: the frames to send back (a
    /// handshake's answer) and the message to hand on, if any (opened
    /// content, or anything that is not a session message).
    pub fn incoming(&self, msg: Message) -> (Vec<Frame>, Option<Message>) {
        let Message::Session { session_id, msg } = msg else {
            return (vec![], Some(msg));
        };
        let seed: [u8; 32] = rand::random();
        let out = self.ends.lock().unwrap().incoming(msg, seed);
        let session = |msg| {
            Frame::Control(Message::Session {
                session_id: session_id.clone(),
                msg,
            })
        };
        match out {
            AgentIncoming::Reply(m) => (vec![session(m)], None),
            AgentIncoming::Ready { .. } | AgentIncoming::Gone { .. } => (vec![], None),
            AgentIncoming::Refused { why, reply } => {
                eprintln!("raw agent refused a message: {why}");
                (reply.into_iter().map(session).collect(), None)
            }
            AgentIncoming::Deliver { msg, .. } => {
                (vec![], Some(Message::Session { session_id, msg }))
            }
        }
    }

    /// What a real agent sends for the customer's content `msg`: the
    /// report record, then a sealed copy per ready operator endpoint.
    pub fn content(&self, msg: &SessionMessage) -> Vec<Frame> {
        let mut frames = Vec::new();
        if let Some((event, text)) = report_text::from_customer(msg) {
            frames.push(self.session_frame(SessionMessage::Record {
                event: event.into(),
                party: Party::Customer,
                text,
            }));
        }
        let sealed = self
            .ends
            .lock()
            .unwrap()
            .seal_all(msg)
            .expect("content seals");
        frames.extend(sealed.into_iter().map(|m| self.session_frame(m)));
        frames
    }

    /// A data frame's payload as a real agent sends it: one sealed copy
    /// per ready operator endpoint.
    pub fn data(&self, payload: &[u8]) -> Vec<Frame> {
        let sealed = self
            .ends
            .lock()
            .unwrap()
            .seal_data_all(payload)
            .expect("data seals");
        sealed.into_iter().map(Frame::Data).collect()
    }

    /// How many operator endpoints have a ready channel.
    pub fn ready(&self) -> usize {
        self.ends.lock().unwrap().ready().len()
    }

    fn session_frame(&self, msg: SessionMessage) -> Frame {
        Frame::Control(Message::Session {
            session_id: self.session.clone(),
            msg,
        })
    }
}

/// Reads `rd` until one more channel is ready, answering the handshake on
/// `wr`; what else arrives meanwhile is dropped. For raw agents without a
/// reader task, run beside the operator's attach (`tokio::join!`).
pub async fn answer_hello<R, W>(e2e: &RawE2e, rd: &mut R, wr: &mut W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let before = e2e.ready();
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while e2e.ready() == before {
        let frame = tokio::time::timeout_at(
            deadline,
            lifeline_protocol::read_frame(rd, lifeline_protocol::MAX_FRAME_BYTES),
        )
        .await
        .expect("the operator endpoint said hello in time")
        .expect("the connection stays open");
        if let Frame::Control(m) = frame {
            for f in e2e.incoming(m).0 {
                lifeline_protocol::write_frame(wr, &f).await.unwrap();
            }
        }
    }
}

/// [`answer_hello`] for a raw agent on a [`Link`](lifeline_core::link::Link)
/// (the client library's framed connection): reads its queue until one
/// more channel is ready, answering the handshake; what else arrives
/// meanwhile is dropped. Run beside the operator's attach (`tokio::join!`).
pub async fn answer_hello_on_link(e2e: &RawE2e, link: &mut lifeline_core::link::Link) {
    let before = e2e.ready();
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while e2e.ready() == before {
        let frame = tokio::time::timeout_at(deadline, link.rx.recv())
            .await
            .expect("the operator endpoint said hello in time")
            .expect("the link stays open");
        if let Frame::Control(m) = frame {
            for f in e2e.incoming(m).0 {
                link.tx.send(f).await.expect("the link stays open");
            }
        }
    }
}

/// The operator `op` attaches to `session_id` while the raw agent on
/// `link` answers the channel's handshake; the agent's end, ready.
pub async fn attach_beside_raw_agent(
    op: &lifeline_operator::Client,
    session_id: &str,
    link: &mut lifeline_core::link::Link,
) -> RawE2e {
    let e2e = RawE2e::new(session_id);
    let (attached, ()) = tokio::join!(op.attach(session_id), answer_hello_on_link(&e2e, link));
    attached.expect("the operator attaches once the raw agent answered");
    e2e
}

/// A raw agent on `tb` joined to a new invitation of `op` (ticket
/// `ticket`), `op` attached with its channel ready: the agent's link, its
/// end, and the session's ID.
pub async fn raw_agent_attached(
    tb: &crate::support::TestBroker,
    op: &lifeline_operator::Client,
    ticket: &str,
) -> (lifeline_core::link::Link, RawE2e, String) {
    use lifeline_protocol::{ClientRole, JoinCredential};
    let inv = op.invite(ticket, "Mario Rossi", None).await.unwrap();
    let (mut link, _) = lifeline_core::client::connect(&tb.endpoint(), ClientRole::Agent)
        .await
        .unwrap();
    let join = Message::Join {
        credential: JoinCredential::ConnectionId(inv.connection_id.clone()),
        host: "pc".into(),
    };
    link.tx.send(Frame::Control(join)).await.unwrap();
    op.wait_ready(&inv.session_id, crate::support::WAIT)
        .await
        .unwrap();
    let e2e = attach_beside_raw_agent(op, &inv.session_id, &mut link).await;
    (link, e2e, inv.session_id)
}

/// Hands what arrives on `link` to `e2e` until `done` holds (bounded by
/// `WAIT`; `what` names the wait in the failure).
pub async fn pump_until(
    e2e: &RawE2e,
    link: &mut lifeline_core::link::Link,
    what: &str,
    done: impl Fn(&RawE2e) -> bool,
) {
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while !done(e2e) {
        let frame = tokio::time::timeout_at(deadline, link.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: not within the wait"))
            .expect("the agent's link stays open");
        if let Frame::Control(m) = frame {
            e2e.incoming(m);
        }
    }
}
