//! A hostile relay between the agent and the real broker, for the tests of
//! the end-to-end layer: it terminates the agent's TLS with the broker's
//! own certificate and key (as a broker that wanted to read the session
//! would: it holds them), opens its own TLS connection to the broker, and
//! forwards frames both ways — except what [`Tamper`] says it changes.
//!
//! With [`Tamper::SwapKeys`] it is a full man in the middle of the
//! end-to-end handshake: it answers the operator endpoint's hello itself
//! (playing the agent, with `AgentEnds`) and greets the agent with a hello
//! of its own (playing the operator endpoint, with `OperatorEnd`), then
//! opens and re-seals every sealed message and data frame. It reads the
//! whole session; only the codes the two people compare give it away.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lifeline_core::tls::{self, Trust};
use lifeline_protocol::e2e::{AgentEnds, AgentIncoming, OperatorEnd, OperatorIncoming, split_data};
use lifeline_protocol::{Frame, MAX_FRAME_BYTES, Message, SessionMessage, read_frame, write_frame};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Which way a sealed message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Towards {
    /// From the operator endpoint (through the broker) to the agent.
    Agent,
    /// From the agent to the operator endpoint.
    Operator,
}

/// What the relay does to the end-to-end traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Substitutes its own keys on both sides, reads and re-seals.
    SwapKeys,
    /// Once armed: flips one ciphertext byte of the next sealed message
    /// going that way, then forwards everything unchanged again.
    FlipByte(Towards),
    /// Once armed: sends the next sealed message towards the agent twice.
    ReplayToAgent,
}

/// What the relay saw and did, for the tests' assertions.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Session messages the relay opened (read in the clear), as JSON.
    pub opened: Vec<String>,
    /// Stream data frames the relay opened, as bytes.
    pub opened_data: Vec<Vec<u8>>,
    /// The codes of the relay's channels with operator endpoints.
    pub codes_with_operator: Vec<String>,
    /// The codes of the relay's channels with the agent.
    pub codes_with_agent: Vec<String>,
    /// Sealed messages the relay changed (flipped or repeated).
    pub tampered: usize,
    /// Sealed messages it forwarded untouched (any tamper mode).
    pub forwarded_sealed: usize,
    /// What its own end-to-end ends refused, and why.
    pub refused: Vec<String>,
}

/// The relay: listening on loopback, serving agents until dropped.
pub struct Relay {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    armed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Starts a relay in front of the broker at `broker` whose TLS
    /// certificate and key are in `broker_data` (its `data_dir`), trusted
    /// by fingerprint `trust` on the way out.
    pub async fn start(broker: &str, broker_data: &Path, trust: Trust, tamper: Tamper) -> Relay {
        let names = ["localhost".to_string()];
        let id = tls::load_or_create_identity(broker_data, None, &names)
            .expect("the broker's certificate and key");
        assert!(!id.generated, "the broker's own certificate, not a new one");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&id).unwrap());
        let connector = tokio_rustls::TlsConnector::from(tls::client_config(&trust).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let armed = Arc::new(AtomicBool::new(false));
        let broker = broker.to_string();
        let (s, a) = (Arc::clone(&seen), Arc::clone(&armed));
        let task = tokio::spawn(async move {
            // Every agent connection (a resume is a new one) gets its own
            // pair of pumps; the substituted channels live per connection.
            while let Ok((tcp, _)) = listener.accept().await {
                let conn = Conn {
                    acceptor: acceptor.clone(),
                    connector: connector.clone(),
                    broker: broker.clone(),
                    state: Arc::new(Mutex::new(State {
                        tamper,
                        armed: Arc::clone(&a),
                        seen: Arc::clone(&s),
                        swaps: HashMap::new(),
                    })),
                };
                tokio::spawn(conn.serve(tcp));
            }
        });
        Relay {
            addr,
            seen,
            armed,
            task,
        }
    }

    /// From now on the relay changes the next sealed message (flip and
    /// replay modes).
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

struct Conn {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
    broker: String,
    state: Arc<Mutex<State>>,
}

impl Conn {
    async fn serve(self, tcp: TcpStream) {
        let Ok(agent) = self.acceptor.accept(tcp).await else {
            return;
        };
        let Ok(up) = TcpStream::connect(&self.broker).await else {
            return;
        };
        let name = ServerName::try_from("localhost").unwrap();
        let Ok(broker) = self.connector.connect(name, up).await else {
            return;
        };
        let (mut agent_r, agent_w) = tokio::io::split(agent);
        let (mut broker_r, broker_w) = tokio::io::split(broker);
        let to_agent = writer(agent_w);
        let to_broker = writer(broker_w);
        let (state, ta, tb) = (Arc::clone(&self.state), to_agent.clone(), to_broker.clone());
        let mut from_agent = tokio::spawn(async move {
            while let Ok(frame) = read_frame(&mut agent_r, MAX_FRAME_BYTES).await {
                let out = state.lock().unwrap().on_agent_frame(frame);
                send_all(out, &ta, &tb);
            }
        });
        let state = Arc::clone(&self.state);
        let mut from_broker = tokio::spawn(async move {
            while let Ok(frame) = read_frame(&mut broker_r, MAX_FRAME_BYTES).await {
                let out = state.lock().unwrap().on_broker_frame(frame);
                send_all(out, &to_agent, &to_broker);
            }
        });
        // Either side closing closes the other: both pumps stop, their
        // senders go, so the writers end and both connections drop.
        tokio::select! {
            _ = &mut from_agent => {}
            _ = &mut from_broker => {}
        }
        from_agent.abort();
        from_broker.abort();
    }
}

type Out = Vec<(Towards, Frame)>;

fn send_all(
    out: Out,
    to_agent: &mpsc::UnboundedSender<Frame>,
    to_broker: &mpsc::UnboundedSender<Frame>,
) {
    for (towards, frame) in out {
        let _ = match towards {
            Towards::Agent => to_agent.send(frame),
            Towards::Operator => to_broker.send(frame),
        };
    }
}

fn writer<W>(mut w: W) -> mpsc::UnboundedSender<Frame>
where
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if write_frame(&mut w, &frame).await.is_err() {
                break;
            }
        }
    });
    tx
}

/// The relay's two ends of one substituted channel.
struct Swap {
    /// Towards the operator endpoint: the relay plays the agent.
    with_operator: AgentEnds,
    /// Towards the agent: the relay plays the operator endpoint.
    with_agent: OperatorEnd,
    /// The relay's answer to the operator endpoint's hello, sent in place
    /// of the agent's (keeping the agent's message number).
    reply: Option<SessionMessage>,
}

struct State {
    tamper: Tamper,
    armed: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    swaps: HashMap<u64, Swap>,
}

/// A session message in either envelope: the broker's `Session`, the
/// agent's numbered `Sequenced`.
struct Envelope {
    session_id: String,
    seq: Option<u64>,
}

impl Envelope {
    fn open(msg: Message) -> Result<(Envelope, SessionMessage), Box<Message>> {
        match msg {
            Message::Session { session_id, msg } => Ok((
                Envelope {
                    session_id,
                    seq: None,
                },
                msg,
            )),
            Message::Sequenced {
                session_id,
                msg,
                seq,
            } => Ok((
                Envelope {
                    session_id,
                    seq: Some(seq),
                },
                msg,
            )),
            other => Err(Box::new(other)),
        }
    }

    fn wrap(&self, msg: SessionMessage) -> Frame {
        let session_id = self.session_id.clone();
        Frame::Control(match self.seq {
            Some(seq) => Message::Sequenced {
                session_id,
                msg,
                seq,
            },
            None => Message::Session { session_id, msg },
        })
    }

    /// The relay's own message to the agent (the broker's envelope).
    fn to_agent(&self, msg: SessionMessage) -> Frame {
        Frame::Control(Message::Session {
            session_id: self.session_id.clone(),
            msg,
        })
    }
}

fn seed() -> [u8; 32] {
    rand::random()
}

impl State {
    fn on_broker_frame(&mut self, frame: Frame) -> Out {
        let frame = match self.tamper {
            Tamper::SwapKeys => return self.swap_from_broker(frame),
            Tamper::FlipByte(Towards::Agent) | Tamper::ReplayToAgent => {
                return self.tamper_frame(frame, Towards::Agent);
            }
            Tamper::FlipByte(Towards::Operator) => frame,
        };
        vec![(Towards::Agent, frame)]
    }

    fn on_agent_frame(&mut self, frame: Frame) -> Out {
        let frame = match self.tamper {
            Tamper::SwapKeys => return self.swap_from_agent(frame),
            Tamper::FlipByte(Towards::Operator) => {
                return self.tamper_frame(frame, Towards::Operator);
            }
            Tamper::FlipByte(Towards::Agent) | Tamper::ReplayToAgent => frame,
        };
        vec![(Towards::Operator, frame)]
    }

    /// Flip and replay: changes the first sealed message after `arm`.
    fn tamper_frame(&mut self, frame: Frame, towards: Towards) -> Out {
        let Frame::Control(msg) = frame else {
            return vec![(towards, frame)];
        };
        let (env, msg) = match Envelope::open(msg) {
            Ok(opened) => opened,
            Err(other) => return vec![(towards, Frame::Control(*other))],
        };
        let SessionMessage::Sealed { endpoint, data } = msg else {
            return vec![(towards, env.wrap(msg))];
        };
        if !self.armed.swap(false, Ordering::SeqCst) {
            self.seen.lock().unwrap().forwarded_sealed += 1;
            return vec![(towards, env.wrap(SessionMessage::Sealed { endpoint, data }))];
        }
        self.seen.lock().unwrap().tampered += 1;
        if self.tamper == Tamper::ReplayToAgent {
            let again = SessionMessage::Sealed {
                endpoint,
                data: data.clone(),
            };
            let once = SessionMessage::Sealed { endpoint, data };
            return vec![(towards, env.wrap(once)), (towards, env.wrap(again))];
        }
        let mut bytes = B64.decode(&data).expect("sealed data is base64");
        // The first byte after the 8-byte counter: ciphertext.
        bytes[8] ^= 0x01;
        let flipped = SessionMessage::Sealed {
            endpoint,
            data: B64.encode(bytes),
        };
        vec![(towards, env.wrap(flipped))]
    }

    fn note_refused(&self, why: String) {
        self.seen.lock().unwrap().refused.push(why);
    }

    fn note_opened(&self, msg: &SessionMessage) {
        let json = serde_json::to_string(msg).unwrap();
        self.seen.lock().unwrap().opened.push(json);
    }

    fn swap_from_broker(&mut self, frame: Frame) -> Out {
        let msg = match frame {
            Frame::Control(msg) => msg,
            Frame::Data(payload) => return self.swap_data_to_agent(payload),
            other => return vec![(Towards::Agent, other)],
        };
        let (env, msg) = match Envelope::open(msg) {
            Ok(opened) => opened,
            Err(other) => return vec![(Towards::Agent, Frame::Control(*other))],
        };
        match msg {
            SessionMessage::E2eHello {
                endpoint,
                operator,
                noise,
            } => {
                // Play the agent towards the operator endpoint...
                let mut with_operator = AgentEnds::new(&env.session_id);
                let hello = SessionMessage::E2eHello {
                    endpoint,
                    operator: operator.clone(),
                    noise,
                };
                let reply = match with_operator.incoming(hello, seed()) {
                    AgentIncoming::Reply(reply) => reply,
                    other => {
                        self.note_refused(format!("the operator's hello: {other:?}"));
                        return vec![];
                    }
                };
                // ...and the operator endpoint towards the agent, under the
                // name the broker stamped.
                let (with_agent, own) = OperatorEnd::start(&env.session_id, endpoint, seed())
                    .expect("the relay's own hello");
                let SessionMessage::E2eHello { noise, .. } = own else {
                    unreachable!("OperatorEnd::start returns a hello")
                };
                self.swaps.insert(
                    endpoint,
                    Swap {
                        with_operator,
                        with_agent,
                        reply: Some(reply),
                    },
                );
                let own = SessionMessage::E2eHello {
                    endpoint,
                    operator,
                    noise,
                };
                vec![(Towards::Agent, env.wrap(own))]
            }
            SessionMessage::Sealed { endpoint, data } => {
                let Some(swap) = self.swaps.get_mut(&endpoint) else {
                    let msg = SessionMessage::Sealed { endpoint, data };
                    return vec![(Towards::Agent, env.wrap(msg))];
                };
                let sealed = SessionMessage::Sealed { endpoint, data };
                match swap.with_operator.incoming(sealed, seed()) {
                    AgentIncoming::Ready { sas, .. } => {
                        self.seen.lock().unwrap().codes_with_operator.push(sas);
                        vec![]
                    }
                    AgentIncoming::Deliver { msg, .. } => {
                        let resealed = swap.with_agent.seal(&msg).expect("the relay reseals");
                        self.note_opened(&msg);
                        vec![(Towards::Agent, env.wrap(resealed))]
                    }
                    other => {
                        self.note_refused(format!("from the operator: {other:?}"));
                        vec![]
                    }
                }
            }
            msg => vec![(Towards::Agent, env.wrap(msg))],
        }
    }

    fn swap_from_agent(&mut self, frame: Frame) -> Out {
        let msg = match frame {
            Frame::Control(msg) => msg,
            Frame::Data(payload) => return self.swap_data_to_operator(payload),
            other => return vec![(Towards::Operator, other)],
        };
        let (env, msg) = match Envelope::open(msg) {
            Ok(opened) => opened,
            Err(other) => return vec![(Towards::Operator, Frame::Control(*other))],
        };
        let endpoint = match &msg {
            SessionMessage::E2eReply { endpoint, .. } | SessionMessage::Sealed { endpoint, .. } => {
                *endpoint
            }
            _ => return vec![(Towards::Operator, env.wrap(msg))],
        };
        let Some(swap) = self.swaps.get_mut(&endpoint) else {
            return vec![(Towards::Operator, env.wrap(msg))];
        };
        match swap.with_agent.incoming(msg) {
            OperatorIncoming::Ready { confirm, sas } => {
                self.seen.lock().unwrap().codes_with_agent.push(sas);
                // The relay's confirm to the agent, and its own answer to
                // the operator endpoint in place of the agent's.
                let reply = swap.reply.take().expect("one reply per hello");
                vec![
                    (Towards::Agent, env.to_agent(confirm)),
                    (Towards::Operator, env.wrap(reply)),
                ]
            }
            OperatorIncoming::Deliver(msg) => {
                let mut resealed = swap
                    .with_operator
                    .seal_all(&msg)
                    .expect("the relay reseals");
                assert_eq!(resealed.len(), 1, "one channel per endpoint");
                self.note_opened(&msg);
                vec![(Towards::Operator, env.wrap(resealed.remove(0)))]
            }
            other => {
                self.note_refused(format!("from the agent: {other:?}"));
                vec![]
            }
        }
    }

    fn swap_data_to_agent(&mut self, payload: Vec<u8>) -> Out {
        let Some(swap) = split_data(&payload).and_then(|(e, _)| self.swaps.get_mut(&e)) else {
            return vec![(Towards::Agent, Frame::Data(payload))];
        };
        match swap.with_operator.open_data(&payload) {
            Ok((_, plain)) => {
                let sealed = swap
                    .with_agent
                    .seal_data(&plain)
                    .expect("the relay reseals");
                self.seen.lock().unwrap().opened_data.push(plain);
                vec![(Towards::Agent, Frame::Data(sealed))]
            }
            Err(e) => {
                self.note_refused(format!("data from the operator: {e}"));
                vec![]
            }
        }
    }

    fn swap_data_to_operator(&mut self, payload: Vec<u8>) -> Out {
        let Some(swap) = split_data(&payload).and_then(|(e, _)| self.swaps.get_mut(&e)) else {
            return vec![(Towards::Operator, Frame::Data(payload))];
        };
        match swap.with_agent.open_data(&payload) {
            Ok(Some(plain)) => {
                let mut sealed = swap
                    .with_operator
                    .seal_data_all(&plain)
                    .expect("the relay reseals");
                self.seen.lock().unwrap().opened_data.push(plain);
                vec![(Towards::Operator, Frame::Data(sealed.remove(0)))]
            }
            Ok(None) => vec![(Towards::Operator, Frame::Data(payload))],
            Err(e) => {
                self.note_refused(format!("data from the agent: {e}"));
                vec![]
            }
        }
    }
}
