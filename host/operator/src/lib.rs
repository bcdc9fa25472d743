//! The operator client: a connection to the broker with request/reply
//! matching, the saved login, and the actions of the technician's CLI.

pub mod e2e;
mod mailto;
pub mod reconnect;
pub mod report;
pub mod screen;
pub mod stream;
pub mod token;

pub use mailto::mailto;

#[cfg(test)]
mod test_agent;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lifeline_core::client::{self, ConnectError, Endpoint};
use lifeline_core::config::OperatorConfig;
use lifeline_core::link::FrameSender;
use lifeline_protocol::{
    ClientRole, ConsentDecision, ErrorCode, Frame, InvitationInfo, Message, OperatorProfile,
    ReplyBody, ReportEvent, Request, Secret, SessionMessage, SessionState, SessionSummary,
};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Time a request waits for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Session messages buffered for the owner before the oldest wait.
pub const EVENT_QUEUE: usize = 256;
/// Most pages one paged listing (report, session list) may take: guards the
/// client against a broker whose pages never end.
pub const MAX_REPLY_PAGES: usize = 100_000;

fn too_many_pages(what: &str) -> OperatorError {
    OperatorError::Unexpected(format!(
        "the broker's {what} did not end within {MAX_REPLY_PAGES} pages"
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{message}")]
    Broker { code: ErrorCode, message: String },
    #[error("the connection to the broker was lost: {0}")]
    Lost(String),
    #[error("no reply from the broker within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply from the broker: {0}")]
    Unexpected(String),
    #[error("not logged in: run `lifeline operator login` first")]
    NotLoggedIn,
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error("timed out after {0:?} waiting for {1}")]
    Waited(Duration, &'static str),
    #[error(
        "a data frame of {len} bytes is larger than the {max} bytes the broker relays once sealed"
    )]
    TooLarge { len: usize, max: usize },
    #[error(
        "not attached to session {0}: attach first (session content goes end-to-end encrypted, on the channel attaching starts)"
    )]
    NotAttached(String),
    #[error(
        "session {session}: no end-to-end channel with the customer's agent within {waited:?} ({why}); nothing was sent"
    )]
    NoChannel {
        session: String,
        waited: Duration,
        why: String,
    },
    #[error("session {session}: no end-to-end channel with the customer's agent: {why}")]
    ChannelFailed { session: String, why: String },
    #[error("session {session}: cannot encrypt for the customer's agent: {source}")]
    Seal {
        session: String,
        #[source]
        source: lifeline_protocol::e2e::SealError,
    },
}

type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<ReplyBody>>>>;

/// Something the broker pushed that is not a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Session {
        session_id: String,
        msg: SessionMessage,
    },
    Error(String),
    /// A frame of a plugin stream of a session (see [`stream`]); grant
    /// credit back with [`Client::stream_credit`] once it is consumed.
    Stream {
        session_id: String,
        stream: u32,
        body: Vec<u8>,
    },
    /// A data frame of a session that is not a stream frame.
    Data {
        session_id: String,
        payload: Vec<u8>,
    },
    /// A new end-to-end channel with the customer's agent is ready (one
    /// `attach` did not wait for: the agent came back, or was away when
    /// attaching; `attach` hands its own by [`Client::sas`]): `sas` is the
    /// security code the customer's screen shows too. Ask the customer to
    /// read it out; if it differs, someone is between you: end the session.
    Secured {
        session_id: String,
        sas: String,
    },
}

/// A connection of the operator client.
pub struct Client {
    tx: FrameSender,
    pending: Pending,
    next_id: AtomicU64,
    events: Mutex<mpsc::Receiver<Event>>,
    closed: lifeline_core::link::CloseReason,
    /// The end-to-end channel of each attached session.
    e2e: Arc<e2e::Channels>,
    pub broker_name: String,
    pub profile: Option<OperatorProfile>,
}

impl Client {
    /// Connects (TLS, handshake) without logging in.
    pub async fn connect(ep: &Endpoint) -> Result<Client, OperatorError> {
        let (link, welcome) = client::connect(ep, ClientRole::Operator).await?;
        Ok(Client::from_link(link, welcome.broker_name))
    }

    /// A client over an established link (after the handshake): replies
    /// matched to requests, everything else queued as [`Event`]s.
    pub(crate) fn from_link(mut link: lifeline_core::link::Link, broker_name: String) -> Client {
        let pending: Pending = Arc::default();
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let p = Arc::clone(&pending);
        let channels = Arc::new(e2e::Channels::new(
            link.tx.clone(),
            link.close_reason.clone(),
        ));
        let e2e = Arc::clone(&channels);
        tokio::spawn(async move {
            while let Some(frame) = link.rx.recv().await {
                let ev = match frame {
                    Frame::Control(Message::Reply { id, body }) => {
                        let waiter = p
                            .lock()
                            .expect("pending lock is never poisoned")
                            .remove(&id);
                        if let Some(w) = waiter {
                            let _ = w.send(body);
                        }
                        continue;
                    }
                    Frame::Control(Message::Session { session_id, msg }) => {
                        match e2e.incoming(session_id, msg).await {
                            Some(ev) => ev,
                            None => continue,
                        }
                    }
                    Frame::Control(Message::Error { message, .. }) => Event::Error(message),
                    Frame::Control(_) => continue,
                    Frame::SessionData { session, payload } => {
                        match e2e.incoming_data(session, payload) {
                            Some(ev) => ev,
                            None => continue,
                        }
                    }
                    // The broker names the session of every data frame.
                    Frame::Data(_) => continue,
                };
                if ev_tx.send(ev).await.is_err() {
                    break;
                }
            }
            // Dropping the waiters makes pending requests fail as "lost".
            p.lock().expect("pending lock is never poisoned").clear();
            e2e.connection_lost();
        });
        Client {
            tx: link.tx,
            pending,
            next_id: AtomicU64::new(1),
            events: Mutex::new(ev_rx),
            closed: link.close_reason,
            e2e: channels,
            broker_name,
            profile: None,
        }
    }

    /// Connects and authenticates with the saved token, or with the
    /// username and password of the config.
    pub async fn connect_logged_in(cfg: &OperatorConfig) -> Result<Client, OperatorError> {
        let mut c = Client::connect(&cfg.endpoint).await?;
        if let Some(saved) = token::load(&cfg.data_dir)? {
            match c.request(Request::Resume { token: saved.token }).await {
                Ok(ReplyBody::LoggedIn { profile, .. }) => {
                    c.profile = Some(profile);
                    return Ok(c);
                }
                Err(OperatorError::Broker {
                    code: ErrorCode::NotLoggedIn,
                    ..
                }) => {}
                Ok(other) => return Err(OperatorError::Unexpected(format!("{other:?}"))),
                Err(e) => return Err(e),
            }
        }
        match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => {
                c.login(u, p).await?;
                Ok(c)
            }
            _ => Err(OperatorError::NotLoggedIn),
        }
    }

    /// Sends a request and waits for its reply; a broker error becomes `Err`.
    pub async fn request(&self, body: Request) -> Result<ReplyBody, OperatorError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock is never poisoned")
            .insert(id, tx);
        self.tx
            .send(Frame::Control(Message::Request { id, body }))
            .await
            .map_err(|_| OperatorError::Lost(self.closed.get()))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Err(_) => Err(OperatorError::Timeout(REQUEST_TIMEOUT)),
            Ok(Err(_)) => Err(OperatorError::Lost(self.closed.get())),
            Ok(Ok(ReplyBody::Error { code, message })) => {
                Err(OperatorError::Broker { code, message })
            }
            Ok(Ok(body)) => Ok(body),
        }
    }

    /// Logs in; returns the token to save.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<String, OperatorError> {
        match self
            .request(Request::Login {
                username: username.into(),
                password: password.into(),
            })
            .await?
        {
            ReplyBody::LoggedIn {
                token: Some(t),
                profile,
            } => {
                self.profile = Some(profile);
                Ok(t)
            }
            other => Err(OperatorError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The whole session list, fetched page by page (each reply fits in one
    /// frame however many sessions there are).
    pub async fn sessions(&self, all: bool) -> Result<Vec<SessionSummary>, OperatorError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_REPLY_PAGES {
            let req = Request::ListSessions {
                all,
                after: after.clone(),
            };
            match self.request(req).await? {
                ReplyBody::Sessions { sessions, next } => {
                    out.extend(sessions);
                    match next {
                        None => return Ok(out),
                        Some(n) if Some(&n) == after.as_ref() => {
                            return Err(OperatorError::Unexpected(format!(
                                "the session list repeats page {n:?}"
                            )));
                        }
                        Some(n) => after = Some(n),
                    }
                }
                other => return Err(OperatorError::Unexpected(format!("{other:?}"))),
            }
        }
        Err(too_many_pages("session list"))
    }

    pub async fn invite(
        &self,
        ticket: &str,
        end_user: &str,
        ttl_secs: Option<u64>,
    ) -> Result<InvitationInfo, OperatorError> {
        match self
            .request(Request::CreateInvitation {
                ticket: ticket.into(),
                end_user: end_user.into(),
                ttl_secs,
            })
            .await?
        {
            ReplyBody::Invitation(i) => Ok(i),
            other => Err(OperatorError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Attaches to a session and starts its end-to-end channel with the
    /// customer's agent: returns once the channel is ready (the security
    /// code is then [`Client::sas`]), waiting up to
    /// [`e2e::HANDSHAKE_TIMEOUT`]. When the agent is away (the customer's
    /// computer restarts, or it has not resumed the session since the
    /// broker restarted) it returns at once; the channel starts when the
    /// agent is back ([`Event::Secured`]). Every channel after the one
    /// `attach` waited for is an [`Event::Secured`] too.
    pub async fn attach(&self, session_id: &str) -> Result<SessionSummary, OperatorError> {
        let e2e_hello = self.e2e.attaching(session_id);
        let offered = e2e_hello.is_some();
        let attached = self
            .request(Request::Attach {
                session_id: session_id.into(),
                e2e_hello,
            })
            .await;
        let (session, relayed) = match attached {
            Ok(ReplyBody::Attached {
                session,
                e2e_hello_relayed,
            }) => (session, e2e_hello_relayed),
            Ok(other) => {
                self.e2e.forget(session_id);
                return Err(OperatorError::Unexpected(format!("{other:?}")));
            }
            Err(e) => {
                self.e2e.forget(session_id);
                return Err(e);
            }
        };
        if self
            .e2e
            .attached(session_id, session.state, offered, relayed)
            .await?
        {
            let deadline = tokio::time::Instant::now() + e2e::HANDSHAKE_TIMEOUT;
            let ready = self
                .e2e
                .ready(session_id, deadline, e2e::HANDSHAKE_TIMEOUT)
                .await;
            if let Err(e) = ready {
                self.e2e.unquiet(session_id);
                return Err(e);
            }
        }
        Ok(session)
    }

    /// The security code of `session_id`'s end-to-end channel, once it is
    /// ready: the customer's screen shows the same digits unless someone
    /// is between the operator and the customer. `None` while there is no
    /// ready channel (not attached, or the agent is away).
    pub fn sas(&self, session_id: &str) -> Option<String> {
        self.e2e.sas(session_id)
    }

    pub async fn detach(&self, session_id: &str) -> Result<(), OperatorError> {
        let res = self
            .request(Request::Detach {
                session_id: session_id.into(),
            })
            .await
            .map(|_| ());
        self.e2e.forget(session_id);
        res
    }

    pub async fn end(&self, session_id: &str, reason: &str) -> Result<(), OperatorError> {
        self.request(Request::EndSession {
            session_id: session_id.into(),
            reason: reason.into(),
        })
        .await
        .map(|_| ())
    }

    /// A session's whole report, fetched page by page (each reply fits in
    /// one frame however long the report is).
    pub async fn report(
        &self,
        session_id: &str,
    ) -> Result<(SessionSummary, Vec<ReportEvent>), OperatorError> {
        lifeline_protocol::report::all_pages(session_id, MAX_REPLY_PAGES, |req| self.request(req))
            .await
            .map_err(|e| e.map_or_else(|failed| failed, OperatorError::Unexpected))
    }

    /// Sends a session message on an attached session: content (see
    /// `SessionMessage::is_content`) sealed on its end-to-end channel,
    /// waiting up to [`e2e::SEND_WAIT`] for a ready one.
    pub async fn send(&self, session_id: &str, msg: SessionMessage) -> Result<(), OperatorError> {
        self.e2e.send(session_id, msg).await
    }

    /// Sends a data frame (a stream frame) to the agent of attached
    /// session `session_id`, sealed on its end-to-end channel.
    pub async fn send_data(&self, session_id: &str, bytes: Vec<u8>) -> Result<(), OperatorError> {
        self.e2e.send_data(session_id, &bytes).await
    }

    pub async fn chat(&self, session_id: &str, text: &str) -> Result<(), OperatorError> {
        self.send(
            session_id,
            SessionMessage::Chat {
                from: lifeline_protocol::Party::Operator,
                text: text.into(),
            },
        )
        .await
    }

    /// The next pushed event; `None` when the connection is gone.
    pub async fn next_event(&self) -> Option<Event> {
        self.events.lock().await.recv().await
    }

    /// Waits (bounded by `wait`) for the event `pick` accepts. The end of
    /// `session_id`, a broker error or a lost connection end the wait too.
    async fn await_event<T>(
        &self,
        session_id: &str,
        wait: Duration,
        what: &'static str,
        mut pick: impl FnMut(Event) -> Option<T>,
    ) -> Result<T, OperatorError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.next_event())
                .await
                .map_err(|_| OperatorError::Waited(wait, what))?
                .ok_or_else(|| OperatorError::Lost(self.closed.get()))?;
            match ev {
                Event::Session {
                    msg: SessionMessage::End { reason, .. },
                    session_id: s,
                } if s == session_id => {
                    return Err(OperatorError::Broker {
                        code: ErrorCode::WrongState,
                        message: format!("the session ended: {reason}"),
                    });
                }
                Event::Error(message) => {
                    return Err(OperatorError::Broker {
                        code: ErrorCode::BadMessage,
                        message,
                    });
                }
                ev => {
                    if let Some(v) = pick(ev) {
                        return Ok(v);
                    }
                }
            }
        }
    }

    /// Asks the customer's consent and waits for the answer (the customer's
    /// own prompt timeout applies on the agent; `wait` bounds this side).
    pub async fn ask_consent(
        &self,
        session_id: &str,
        plugin: &str,
        action: &str,
        detail: &str,
        wait: Duration,
    ) -> Result<(ConsentDecision, String), OperatorError> {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = SessionMessage::ConsentRequest {
            request_id,
            operator: String::new(),
            plugin: plugin.into(),
            action: action.into(),
            detail: detail.into(),
        };
        self.send(session_id, msg).await?;
        self.await_event(session_id, wait, "the customer's consent", |ev| match ev {
            Event::Session {
                msg:
                    SessionMessage::ConsentAnswer {
                        request_id: r,
                        decision,
                        decided_by,
                        ..
                    },
                ..
            } if r == request_id => Some((decision, decided_by)),
            _ => None,
        })
        .await
    }

    /// The plugins the session's agent has.
    pub async fn plugins(
        &self,
        session_id: &str,
        wait: Duration,
    ) -> Result<Vec<lifeline_protocol::PluginSummary>, OperatorError> {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.send(session_id, SessionMessage::ListPlugins { request_id })
            .await?;
        self.await_event(session_id, wait, "the agent's plugin list", |ev| match ev {
            Event::Session {
                msg:
                    SessionMessage::Plugins {
                        request_id: r,
                        plugins,
                    },
                ..
            } if r == request_id => Some(plugins),
            _ => None,
        })
        .await
    }

    /// Runs a plugin command on the agent; `on_output(stream, text)` sees
    /// the output as it streams. `Ok` is the plugin's result, `Err` says why
    /// the call failed (denied capability, crash, limit…).
    pub async fn run_plugin(
        &self,
        session_id: &str,
        plugin: &str,
        command: &str,
        args: &[String],
        wait: Duration,
        on_output: impl FnMut(&str, &str),
    ) -> Result<Result<String, String>, OperatorError> {
        self.run_plugin_with(
            session_id,
            plugin,
            command,
            args,
            wait,
            on_output,
            |_, _| None,
        )
        .await
    }

    /// Like [`Client::run_plugin`]; when the plugin needs a password (a
    /// run-as login, after the customer consented), `credentials(user,
    /// prompt)` supplies it (`None` declines). The password travels only
    /// inside the encrypted session; the broker does not record it.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_plugin_with(
        &self,
        session_id: &str,
        plugin: &str,
        command: &str,
        args: &[String],
        wait: Duration,
        mut on_output: impl FnMut(&str, &str),
        mut credentials: impl FnMut(&str, &str) -> Option<Secret>,
    ) -> Result<Result<String, String>, OperatorError> {
        let call_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = SessionMessage::RunPlugin {
            call_id,
            plugin: plugin.into(),
            command: command.into(),
            args: args.to_vec(),
        };
        self.send(session_id, msg).await?;
        /// What waiting for the call brought.
        enum Step {
            Done(Result<String, String>),
            /// The plugin asks for a password (request, user, prompt).
            Password(u64, String, String),
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let step = self
                .await_event(session_id, left, "the plugin to finish", |ev| match ev {
                    Event::Session {
                        msg:
                            SessionMessage::PluginOutput {
                                call_id: c,
                                stream,
                                text,
                                ..
                            },
                        ..
                    } if c == call_id => {
                        on_output(&stream, &text);
                        None
                    }
                    Event::Session {
                        msg:
                            SessionMessage::ConsentDecided {
                                action,
                                decision,
                                decided_by,
                                ..
                            },
                        ..
                    } => {
                        on_output(
                            "consent",
                            &format!("{action}: {} ({decided_by})", decision.as_str()),
                        );
                        None
                    }
                    Event::Session {
                        msg:
                            SessionMessage::CredentialRequest {
                                call_id: c,
                                request_id,
                                user,
                                prompt,
                            },
                        ..
                    } if c == call_id => Some(Step::Password(request_id, user, prompt)),
                    Event::Session {
                        msg:
                            SessionMessage::State {
                                state: SessionState::Rebooting,
                                detail,
                            },
                        ..
                    } => Some(Step::Done(Ok(detail))),
                    Event::Session {
                        msg:
                            SessionMessage::PluginDone {
                                call_id: c,
                                ok,
                                text,
                                ..
                            },
                        ..
                    } if c == call_id => Some(Step::Done(if ok { Ok(text) } else { Err(text) })),
                    _ => None,
                })
                .await
                .map_err(|e| match e {
                    // The whole wait, not what was left of it.
                    OperatorError::Waited(_, what) => OperatorError::Waited(wait, what),
                    e => e,
                })?;
            match step {
                Step::Done(result) => return Ok(result),
                Step::Password(request_id, user, prompt) => {
                    let secret = credentials(&user, &prompt);
                    let reply = SessionMessage::CredentialReply { request_id, secret };
                    if let Err(e) = self.send(session_id, reply).await {
                        return Ok(Err(format!("the password could not be sent: {e}")));
                    }
                }
            }
        }
    }

    pub async fn run_scripts(
        &self,
        session_id: &str,
        names: &[String],
        stop_on_failure: bool,
        timeout_secs: Option<u64>,
        wait: Duration,
        mut on_event: impl FnMut(&SessionMessage),
    ) -> Result<(bool, String), OperatorError> {
        let req = Request::RunScripts {
            session_id: session_id.into(),
            names: names.to_vec(),
            stop_on_failure,
            timeout_secs,
        };
        let batch = match self.request(req).await? {
            ReplyBody::ScriptBatch { batch_id } => batch_id,
            other => return Err(OperatorError::Unexpected(format!("{other:?}"))),
        };
        self.await_event(session_id, wait, "the scripts to finish", |ev| match ev {
            Event::Session {
                msg:
                    SessionMessage::BatchDone {
                        batch_id,
                        ok,
                        summary,
                    },
                ..
            } if batch_id == batch => Some((ok, summary)),
            Event::Session {
                msg:
                    msg @ (SessionMessage::ScriptOutput { .. }
                    | SessionMessage::ScriptDone { .. }
                    | SessionMessage::ConsentDecided { .. }),
                ..
            } => {
                on_event(&msg);
                None
            }
            _ => None,
        })
        .await
    }

    /// Waits until the session is ready (customer joined), polling the list
    /// and listening for notices; bounded by `wait`.
    pub async fn wait_ready(
        &self,
        session_id: &str,
        wait: Duration,
    ) -> Result<SessionSummary, OperatorError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let s = self
                .sessions(false)
                .await?
                .into_iter()
                .find(|s| s.session_id == session_id)
                .ok_or_else(|| OperatorError::Broker {
                    code: ErrorCode::NoSuchSession,
                    message: format!("no session {session_id:?} of yours"),
                })?;
            match s.state {
                SessionState::Waiting | SessionState::Connected => return Ok(s),
                SessionState::Ended => {
                    return Err(OperatorError::Broker {
                        code: ErrorCode::WrongState,
                        message: "the session has ended".into(),
                    });
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OperatorError::Waited(wait, "the customer to join"));
            }
            // A "ready" notice wakes us early; otherwise poll again shortly.
            let nap = deadline.min(tokio::time::Instant::now() + Duration::from_millis(250));
            let _ = tokio::time::timeout_at(nap, self.next_event()).await;
        }
    }
}

impl Drop for Client {
    /// Dropping the client closes its connection (once what is queued is
    /// written), as before it had end-to-end channels: the channels' copy
    /// of the connection's queue goes too.
    fn drop(&mut self) {
        self.e2e.client_dropped();
    }
}
