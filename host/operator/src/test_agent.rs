//! For the unit tests: the broker and the customer's agent in one, on the
//! other end of an in-memory link from a [`Client`]. It answers the attach
//! request like a broker and runs the agent's real end-to-end channels
//! (`lifeline_protocol::e2e::AgentEnds`), so what it hands the test is
//! what the agent would read, and what it sends is sealed as the agent
//! seals it.

use std::time::Duration;

use lifeline_core::link::{FrameReceiver, FrameSender, spawn_link};
use lifeline_protocol::e2e::{AgentEnds, AgentIncoming};
use lifeline_protocol::{
    E2eOffer, Frame, Message, ReplyBody, Request, SessionMessage, SessionState, SessionSummary,
};

use crate::Client;

/// Bounds every wait of the fake, so a broken test fails instead of
/// hanging.
pub(crate) const FAKE_WAIT: Duration = Duration::from_secs(10);

/// The operator's name the fake broker stamps on a hello.
pub(crate) const OPERATOR: &str = "Alice";

pub(crate) struct FakeAgent {
    pub(crate) tx: FrameSender,
    rx: FrameReceiver,
    pub(crate) session: String,
    /// The agent's channels.
    pub(crate) ends: AgentEnds,
    /// The code of the last channel that became ready on the agent's side.
    pub(crate) sas: Option<String>,
    /// The state the fake broker reports when the client attaches.
    pub(crate) state: SessionState,
    /// Every frame the client sent, as it came over the wire.
    pub(crate) wire: Vec<Frame>,
    /// Channels that became ready on the agent's side so far.
    pub(crate) ready_seen: usize,
}

/// A client and the fake on an in-memory link, not attached yet.
pub(crate) fn pair(session: &str) -> (Client, FakeAgent) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let beat = Duration::from_secs(30);
    let max = lifeline_protocol::MAX_FRAME_BYTES;
    let client = Client::from_link(spawn_link(a, beat, max), "test broker".into());
    let link = spawn_link(b, beat, max);
    let fake = FakeAgent {
        tx: link.tx,
        rx: link.rx,
        session: session.to_string(),
        ends: AgentEnds::new(session),
        sas: None,
        state: SessionState::Connected,
        wire: Vec::new(),
        ready_seen: 0,
    };
    (client, fake)
}

/// A client attached to `session` with its channel ready, and the fake.
pub(crate) async fn attached(session: &str) -> (Client, FakeAgent) {
    let (client, mut fake) = pair(session);
    let (summary, ()) = tokio::join!(client.attach(session), fake.handshake());
    summary.expect("attach");
    assert_eq!(client.sas(session), fake.sas, "both sides show one code");
    (client, fake)
}

impl FakeAgent {
    /// The next frame from the client, as sent.
    pub(crate) async fn raw(&mut self) -> Frame {
        let f = tokio::time::timeout(FAKE_WAIT, self.rx.recv())
            .await
            .expect("the client sends within the wait")
            .expect("the link is open");
        self.wire.push(f.clone());
        f
    }

    /// The next frame from the client as the agent reads it: the attach
    /// request answered, handshakes answered, sealed messages and data
    /// opened (a session message or a data frame with the plain payload).
    pub(crate) async fn recv(&mut self) -> Frame {
        loop {
            if let Some(f) = self.step().await {
                return f;
            }
        }
    }

    /// Handles one frame from the client: `None` when it was the fake's
    /// own business (attach, detach, handshake).
    async fn step(&mut self) -> Option<Frame> {
        match self.raw().await {
            Frame::Control(Message::Request {
                id,
                body:
                    Request::Attach {
                        session_id,
                        e2e_hello,
                    },
            }) => {
                self.answer_attach(id, session_id, e2e_hello).await;
                None
            }
            Frame::Control(Message::Request {
                id,
                body: Request::Detach { .. },
            }) => {
                self.reply(id, ReplyBody::Ok).await;
                None
            }
            Frame::Control(Message::Session { session_id, msg }) => {
                assert_eq!(session_id, self.session);
                let msg = self.agent_reads(msg).await?;
                Some(Frame::Control(Message::Session { session_id, msg }))
            }
            Frame::SessionData { session, payload } => {
                let (_, plain) = self.ends.open_data(&payload).expect("sealed data opens");
                Some(Frame::SessionData {
                    session,
                    payload: plain,
                })
            }
            other => Some(other),
        }
    }

    /// Waits until the client's side closed the connection.
    pub(crate) async fn closed(&mut self) {
        while let Some(f) = tokio::time::timeout(FAKE_WAIT, self.rx.recv())
            .await
            .expect("the connection closes within the wait")
        {
            self.wire.push(f);
        }
    }

    /// The next session message from the client, opened.
    pub(crate) async fn msg(&mut self) -> SessionMessage {
        match self.recv().await {
            Frame::Control(Message::Session { msg, .. }) => msg,
            other => panic!("expected a session message, got {other:?}"),
        }
    }

    /// Reads until a new channel is ready on the agent's side (answering
    /// the attach request on the way); nothing else may come first.
    pub(crate) async fn handshake(&mut self) {
        let before = self.ready_seen;
        while self.ready_seen == before {
            if let Some(f) = self.step().await {
                panic!("unexpected before the channel was ready: {f:?}");
            }
        }
    }

    async fn reply(&mut self, id: u64, body: ReplyBody) {
        let f = Frame::Control(Message::Reply { id, body });
        self.tx.send(f).await.expect("the link is open");
    }

    /// Answers an attach as the broker does: the hello it carries goes on
    /// to the agent unless the agent is away.
    pub(crate) async fn answer_attach(
        &mut self,
        id: u64,
        session_id: String,
        hello: Option<E2eOffer>,
    ) {
        let session = SessionSummary {
            session_id,
            operator: OPERATOR.into(),
            ticket: "T-1".into(),
            end_user: "Mario".into(),
            state: self.state,
            customer_host: Some("pc".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            ended_at: None,
        };
        let away = matches!(
            self.state,
            SessionState::Rebooting | SessionState::Reconnecting
        );
        let hello = hello.filter(|_| !away);
        let e2e_hello_relayed = hello.is_some();
        self.reply(
            id,
            ReplyBody::Attached {
                session,
                e2e_hello_relayed,
            },
        )
        .await;
        if let Some(E2eOffer { endpoint, noise }) = hello {
            let msg = SessionMessage::E2eHello {
                endpoint,
                operator: String::new(),
                noise,
            };
            let read = self.agent_reads(msg).await;
            assert!(read.is_none(), "a hello is the handshake's business");
        }
    }

    /// What the agent makes of one session message from the client:
    /// content for the test, or `None` (handshake traffic, answered).
    async fn agent_reads(&mut self, msg: SessionMessage) -> Option<SessionMessage> {
        let msg = match msg {
            SessionMessage::E2eHello {
                endpoint, noise, ..
            } => SessionMessage::E2eHello {
                endpoint,
                operator: OPERATOR.into(),
                noise,
            },
            msg => msg,
        };
        let seed = rand::random::<[u8; 32]>();
        match self.ends.incoming(msg, seed) {
            AgentIncoming::Deliver { msg, .. } => Some(msg),
            AgentIncoming::Reply(reply) => {
                self.say_clear(reply).await;
                None
            }
            AgentIncoming::Ready { operator, sas, .. } => {
                assert_eq!(operator, OPERATOR);
                self.sas = Some(sas);
                self.ready_seen += 1;
                None
            }
            AgentIncoming::Gone { .. } => None,
            AgentIncoming::Refused { why, .. } => panic!("the agent refused: {why}"),
        }
    }

    /// Sends a session message as the broker (in the clear).
    pub(crate) async fn say_clear(&self, msg: SessionMessage) {
        let f = Frame::Control(Message::Session {
            session_id: self.session.clone(),
            msg,
        });
        self.tx.send(f).await.expect("the link is open");
    }

    /// Sends a session message as the agent: sealed for every ready
    /// channel when it is content, in the clear otherwise.
    pub(crate) async fn say(&mut self, msg: SessionMessage) {
        if !msg.is_content() {
            return self.say_clear(msg).await;
        }
        for sealed in self.ends.seal_all(&msg).expect("seal") {
            self.say_clear(sealed).await;
        }
    }

    /// Sends a data frame (a whole stream frame) as the agent, sealed.
    pub(crate) async fn data(&mut self, plain: &[u8]) {
        for payload in self.ends.seal_data_all(plain).expect("seal") {
            let f = Frame::SessionData {
                session: self.session.clone(),
                payload,
            };
            self.tx.send(f).await.expect("the link is open");
        }
    }
}
