//! One session of the agent, from its entry to its end.
//!
//! The shape follows tokio's mini-redis, where each command is a small
//! module of its own: a [`Session`] holds everything the session owns (the
//! broker link, the consent engine, the plugin host and its long-lived
//! plugins, the run-as login, script batches, the channels from plugin
//! calls), and [`serve`] is three steps:
//!
//! - [`Session::open`] (`setup.rs`): lock the data folder, start the
//!   plugins, join or rejoin, greet the customer, start the long-lived
//!   plugins;
//! - [`Session::run`] (this file): a short loop that waits for the next
//!   [`Event`] and hands it to its handler;
//! - [`Session::close`] (`teardown.rs`): stop the plugins, end a run-as
//!   login, write the audit entry.
//!
//! Every message from the broker is dispatched by one `match` without a
//! catch-all arm (`link.rs`), each kind to a small handler in the module of
//! its concern: `lifecycle.rs` (state, end), `chat.rs` (chat both ways and
//! what the customer types), `question.rs` (the operator's consent
//! questions), `plugin_calls.rs` (listing and running plugins, passwords for
//! a run-as login), `batches.rs` (script batches), `control.rs` (rejoin
//! tickets and reboot notices), `outgoing.rs` (what plugin calls send to the
//! operator), `resume.rs` (a lost broker connection, resumed with the
//! resume credential), `sealed.rs` (session content end to end: opened,
//! checked and recorded on the way in, recorded and sealed on the way out). A new message kind does not compile until it is given a
//! handler there. A handler answers [`Flow`]: go on, or the session ends
//! with this result.

mod batches;
mod chat;
mod control;
mod customer;
mod lifecycle;
mod link;
mod outgoing;
mod plugin_calls;
mod question;
mod resume;
mod sealed;
pub(crate) mod setup;
mod teardown;

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::config::AgentConfig;
use lifeline_core::consent::ConsentEngine;
use lifeline_core::link::Link;
use lifeline_protocol::{Frame, Message, OperatorProfile, SessionInfo, SessionMessage};
use lifeline_runtime::{PluginHost, Services, StreamHub};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::channel::CommandRequest;
use crate::{AgentError, Customer, CustomerUi, Entry, InputPrompter, Outcome, native, scripts};

/// What a handler tells the loop: go on, or the session is over.
pub(crate) type Flow = ControlFlow<Result<Outcome, AgentError>>;

/// Where the broker's rejoin ticket goes once it arrives.
type TicketReply = oneshot::Sender<Result<(lifeline_protocol::Secret, i64), String>>;

/// What woke the session loop.
enum Event {
    /// A frame from the broker, or `None`: the link is gone.
    Frame(Option<Frame>),
    /// A consent question of the operator was decided.
    Decided,
    /// A plugin call (or the agent itself) sends this to the operator.
    Outgoing(SessionMessage),
    /// A plugin call needs the broker connection (rejoin ticket, reboot).
    Ctl(native::Ctl),
    /// The customer answered an operator's question.
    Answer(SessionMessage),
    /// A line the customer typed, or `None`: their input closed.
    Input(Option<String>),
    /// A command from the customer's window.
    Command(CommandRequest),
}

/// Everything one session owns.
pub(crate) struct Session<'a> {
    cfg: &'a AgentConfig,
    ui: Arc<dyn CustomerUi>,
    /// Lines the customer types.
    input: mpsc::Receiver<String>,
    /// Commands of the customer's window (`channel`).
    commands: mpsc::Receiver<CommandRequest>,
    link: Link,
    /// The link the plugin streams write to (the same as `link`'s sender,
    /// replaced with it on a resume).
    sink_link: Arc<std::sync::RwLock<lifeline_core::link::FrameSender>>,
    /// The broker's resume credential, once it sent one: with it the
    /// session survives a broker restart (`resume.rs`).
    resume: Option<lifeline_protocol::Secret>,
    /// The number of the last session message sent to the broker.
    seq: u64,
    /// The last messages sent, with their numbers, kept to be sent again
    /// after a resume (`resume::Outbox` bounds them).
    outbox: resume::Outbox,
    sid: String,
    /// The end-to-end channels with the operator endpoints (shared with
    /// the plugin streams, which seal their frames on them).
    ends: Arc<crate::e2e::SessionEnds>,
    session: SessionInfo,
    operator: OperatorProfile,
    engine: Arc<Mutex<ConsentEngine>>,
    prompter: Arc<InputPrompter>,
    runas: Arc<crate::runas::RunAs>,
    /// The display plugins share (`screen.capture`, `input.control`).
    screen: Arc<crate::screen::SessionScreen>,
    creds: Arc<native::Credentials>,
    admin: Option<Arc<crate::admin::AgentAdmin>>,
    plugin_host: Option<Arc<PluginHost>>,
    services: Arc<Services>,
    streams: Arc<StreamHub>,
    /// Messages plugin calls send to the operator (through [`Event::Outgoing`]).
    plug_tx: mpsc::UnboundedSender<SessionMessage>,
    plug_rx: mpsc::UnboundedReceiver<SessionMessage>,
    ctl_tx: mpsc::UnboundedSender<native::Ctl>,
    ctl_rx: mpsc::UnboundedReceiver<native::Ctl>,
    answer_tx: mpsc::Sender<SessionMessage>,
    answer_rx: mpsc::Receiver<SessionMessage>,
    /// Consent decisions in progress; aborted when the session ends.
    deciding: tokio::task::JoinSet<()>,
    batches: scripts::Batches,
    /// While the operator works as another user: who, and the customer's
    /// chat lines held until the access is back.
    suspended: Option<String>,
    held: Vec<String>,
    pending_ticket: Option<TicketReply>,
    /// Kept for the session: hot reload, and the data folder's lock.
    _hot_reload: Option<lifeline_runtime::watch::HotReload>,
    _lock: std::fs::File,
}

/// Runs one session from its entry to its end.
pub async fn serve(
    cfg: &AgentConfig,
    entry: Entry,
    ui: Arc<dyn CustomerUi>,
    input: mpsc::Receiver<String>,
) -> Result<Outcome, AgentError> {
    serve_channel(cfg, entry, Customer::terminal(ui, input)).await
}

/// [`serve`] for a customer with a window as well.
pub async fn serve_channel(
    cfg: &AgentConfig,
    entry: Entry,
    customer: Customer,
) -> Result<Outcome, AgentError> {
    let mut session = Session::open(cfg, entry, customer).await?;
    let result = session.run().await;
    session.close(result).await
}

impl Session<'_> {
    /// Waits for the next event and hands it to its handler, until one
    /// ends the session.
    async fn run(&mut self) -> Result<Outcome, AgentError> {
        loop {
            let event = tokio::select! {
                // In order: what a plugin said before asking for a rejoin
                // ticket (its consent decision) reaches the broker before
                // the request.
                biased;
                frame = self.link.rx.recv() => Event::Frame(frame),
                Some(_) = self.deciding.join_next(), if !self.deciding.is_empty() => Event::Decided,
                Some(msg) = self.plug_rx.recv() => Event::Outgoing(msg),
                Some(ctl) = self.ctl_rx.recv() => Event::Ctl(ctl),
                Some(answer) = self.answer_rx.recv() => Event::Answer(answer),
                line = self.input.recv() => Event::Input(line),
                Some(req) = self.commands.recv() => Event::Command(req),
            };
            if let ControlFlow::Break(result) = self.handle(event).await {
                return result;
            }
        }
    }

    async fn handle(&mut self, event: Event) -> Flow {
        match event {
            Event::Frame(frame) => return self.on_frame(frame).await,
            Event::Decided => {}
            Event::Outgoing(msg) => self.on_outgoing(msg).await,
            Event::Ctl(ctl) => self.on_ctl(ctl).await,
            Event::Answer(answer) => self.on_answer(answer).await,
            Event::Input(line) => return self.on_input(line).await,
            Event::Command(req) => return self.on_command(req).await,
        }
        Flow::Continue(())
    }

    /// Sends a session message: content sealed to every ready operator
    /// endpoint and recorded (`sealed.rs`), the rest as it is, numbered.
    async fn send(&mut self, msg: SessionMessage) {
        if msg.is_content() {
            self.send_content(msg).await;
        } else {
            self.send_numbered(msg).await;
        }
    }

    /// Sends a session message to the broker, numbered and kept for a
    /// resend after a resume (a lost link shows up as the end of the
    /// incoming frames).
    async fn send_numbered(&mut self, msg: SessionMessage) {
        self.seq += 1;
        self.outbox.keep(self.seq, &msg);
        let session_id = self.sid.clone();
        let seq = self.seq;
        self.send_frame(Message::Sequenced {
            session_id,
            msg,
            seq,
        })
        .await;
    }

    /// Sends a control message to the broker.
    async fn send_frame(&self, msg: Message) {
        let _ = self.link.tx.send(Frame::Control(msg)).await;
    }

    /// The session port of plugin call `call_id` (0: the long-lived plugins).
    fn port(&self, call_id: u64) -> Arc<crate::plugins::AgentPort> {
        self.port_for(call_id, self.operator.name.clone())
    }

    /// The session port of plugin call `call_id` that `operator` asked for
    /// (the name the broker gave their endpoint).
    fn port_for(&self, call_id: u64, operator: String) -> Arc<crate::plugins::AgentPort> {
        Arc::new(crate::plugins::AgentPort {
            session_id: self.sid.clone(),
            operator,
            call_id,
            engine: Arc::clone(&self.engine),
            prompter: Arc::clone(&self.prompter),
            tx: self.plug_tx.clone(),
            rt: tokio::runtime::Handle::current(),
            runas: Arc::clone(&self.runas),
            creds: Arc::clone(&self.creds),
            credential_timeout: self.cfg.run_as.credential_timeout,
            ctl: self.ctl_tx.clone(),
            data_dir: self.cfg.data_dir.clone(),
            power: self.cfg.power.clone(),
            ui: Arc::clone(&self.ui),
            admin: self
                .admin
                .clone()
                .map(|a| a as Arc<dyn lifeline_runtime::AdminResources>),
            streams: Arc::clone(&self.streams),
            screen: crate::screen::PortScreen::new(Arc::clone(&self.screen)),
        })
    }

    /// The result of a session that ended normally.
    fn outcome(&self, ended_by: lifeline_protocol::Party, reason: String) -> Outcome {
        Outcome {
            session: self.session.clone(),
            operator: self.operator.clone(),
            ended_by,
            reason,
        }
    }
}
