//! End-to-end encryption of the operator client's sessions
//! (`lifeline_protocol::e2e`): one [`OperatorEnd`] per attached session
//! seals what the client sends and opens what the customer's agent sends,
//! so the broker relays session content it can neither read nor alter.
//!
//! - [`Client::attach`](crate::Client::attach) starts a channel (a hello
//!   with a random endpoint number and key) and waits up to
//!   [`HANDSHAKE_TIMEOUT`] for it. The confirm goes out before anything
//!   else sealed; then the security code (the short authentication string
//!   the customer's screen shows too) is [`Client::sas`](crate::Client::sas)
//!   and an [`Event::Secured`].
//! - When the customer's agent goes away (its computer restarts, or the
//!   broker restarted: the broker's `State` says so) the channel is
//!   dropped; once the agent is back a new channel starts by itself, with
//!   a new code and another [`Event::Secured`]. A channel the agent closed,
//!   or that failed, starts anew too, at most [`MAX_FAILED_HANDSHAKES`]
//!   times in a row.
//! - Content sent while no channel is ready waits for one up to
//!   [`SEND_WAIT`], then fails naming why.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lifeline_core::link::{CloseReason, FrameSender};
use lifeline_protocol::e2e::{
    DATA_HEADER_BYTES, OperatorEnd, OperatorIncoming, SealError, split_data,
};
use lifeline_protocol::{
    E2eOffer, Frame, MAX_DATA_PAYLOAD_BYTES, Message, SessionMessage, SessionState,
};
use rand::RngCore;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Event, OperatorError};

/// Time [`Client::attach`](crate::Client::attach) waits for the end-to-end
/// channel with the customer's agent (one round trip through the broker).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Time a message or data frame waits for a ready channel (a new one
/// after the agent came back) before sending it fails.
pub const SEND_WAIT: Duration = Duration::from_secs(15);

/// Channels that may fail (closed by the agent, or a message that did not
/// open) one after the other before the client stops starting new ones.
pub const MAX_FAILED_HANDSHAKES: u32 = 3;

/// Bytes sealing adds to a data frame: the tag and the endpoint
/// ([`DATA_HEADER_BYTES`]), the channel's counter (8) and the
/// ChaCha20-Poly1305 tag (16).
pub const SEAL_OVERHEAD_BYTES: usize = DATA_HEADER_BYTES + 8 + 16;

/// Largest data frame (a whole stream frame) the client sends: sealed, it
/// is the most the broker relays ([`MAX_DATA_PAYLOAD_BYTES`]).
pub const MAX_DATA_BYTES: usize = MAX_DATA_PAYLOAD_BYTES - SEAL_OVERHEAD_BYTES;

/// Where one session's channel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    /// The attach request is under way: whether the agent is there is not
    /// known yet.
    Attaching,
    /// The customer's agent is away (why); a channel starts once it is back.
    Away(String),
    /// The hello went out; the agent's answer is due.
    Handshaking,
    /// The confirm is queued: content may be sealed. The security code.
    Ready(String),
    /// No channel, and none starts by itself: why.
    Failed(String),
}

struct Slot {
    end: Option<OperatorEnd>,
    status: Status,
    /// Channels failed in a row since the last ready one.
    failures: u32,
    /// `attach` waits for the next ready channel and hands its code to
    /// the caller: no [`Event::Secured`] for that one (callers that attach
    /// once see no new event).
    quiet: bool,
}

/// What the reader does with one session message, decided under the lock.
enum Outcome {
    Deliver(SessionMessage),
    Drop,
    Confirm {
        endpoint: u64,
        confirm: SessionMessage,
        sas: String,
    },
    Refused {
        why: String,
        closed: bool,
    },
}

/// The channels of one client connection, by session ID.
pub(crate) struct Channels {
    slots: Mutex<HashMap<String, Slot>>,
    /// Bumped whenever a channel's status changes; waiters watch it.
    changed: watch::Sender<u64>,
    /// Held from sealing a control message until it is queued, so sealed
    /// messages leave in the order of their numbers.
    control: tokio::sync::Mutex<()>,
    /// The same for data frames.
    data: tokio::sync::Mutex<()>,
    /// The connection's queue; taken when the client is dropped, so that
    /// the reader task (which holds these channels) does not keep the
    /// connection open.
    tx: Mutex<Option<FrameSender>>,
    closed: CloseReason,
}

fn session_frame(session_id: &str, msg: SessionMessage) -> Frame {
    Frame::Control(Message::Session {
        session_id: session_id.to_string(),
        msg,
    })
}

/// Why the agent is away in session state `state`, if it is.
fn away(state: SessionState) -> Option<String> {
    match state {
        SessionState::Rebooting => Some(
            "the customer's computer is restarting; a new channel starts when the agent is back"
                .into(),
        ),
        SessionState::Reconnecting => Some(
            "the customer's agent has not resumed the session since the broker restarted".into(),
        ),
        _ => None,
    }
}

/// A new channel's end and its hello: random endpoint number and key seed
/// from the operating system's random source.
fn new_end(session_id: &str) -> Result<(OperatorEnd, SessionMessage), String> {
    let mut rng = rand::rngs::OsRng;
    let mut seed = [0u8; 32];
    rng.try_fill_bytes(&mut seed)
        .map_err(|e| format!("the system's random source failed: {e}"))?;
    let endpoint = rng.next_u64();
    OperatorEnd::start(session_id, endpoint, seed).map_err(|e| e.to_string())
}

impl Channels {
    pub(crate) fn new(tx: FrameSender, closed: CloseReason) -> Channels {
        Channels {
            slots: Mutex::default(),
            changed: watch::Sender::new(0),
            control: tokio::sync::Mutex::new(()),
            data: tokio::sync::Mutex::new(()),
            tx: Mutex::new(Some(tx)),
            closed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots
            .lock()
            .expect("end-to-end channels lock is never poisoned")
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn lost(&self) -> OperatorError {
        OperatorError::Lost(self.closed.get())
    }

    /// Queues `frame` towards the broker.
    async fn queue(&self, frame: Frame) -> Result<(), OperatorError> {
        let tx = self
            .tx
            .lock()
            .expect("connection queue lock is never poisoned")
            .clone()
            .ok_or_else(|| self.lost())?;
        tx.send(frame).await.map_err(|_| self.lost())
    }

    /// The client is gone: the connection closes once what is queued is
    /// written (the reader task ends with it).
    pub(crate) fn client_dropped(&self) {
        self.tx
            .lock()
            .expect("connection queue lock is never poisoned")
            .take();
    }

    /// The security code of `session_id`'s channel, once ready.
    pub(crate) fn sas(&self, session_id: &str) -> Option<String> {
        match self.lock().get(session_id).map(|s| &s.status) {
            Some(Status::Ready(sas)) => Some(sas.clone()),
            _ => None,
        }
    }

    /// Before the attach request: `session_id` gets a slot, its agent's
    /// presence unknown yet (a state notice may arrive before the reply),
    /// and a new channel whose hello the attach request carries (`None`
    /// if no end could be made: the channel starts after the reply then,
    /// or fails there with the reason).
    pub(crate) fn attaching(&self, session_id: &str) -> Option<E2eOffer> {
        let (end, offer) = match new_end(session_id) {
            Ok((
                end,
                SessionMessage::E2eHello {
                    endpoint, noise, ..
                },
            )) => (Some(end), Some(E2eOffer { endpoint, noise })),
            _ => (None, None),
        };
        let slot = Slot {
            status: if end.is_some() {
                Status::Handshaking
            } else {
                Status::Attaching
            },
            end,
            failures: 0,
            quiet: true,
        };
        self.lock().insert(session_id.to_string(), slot);
        self.bump();
        offer
    }

    /// The session was detached (or the attach failed): its channel goes.
    pub(crate) fn forget(&self, session_id: &str) {
        self.lock().remove(session_id);
        self.bump();
    }

    /// The connection is gone: every wait ends.
    pub(crate) fn connection_lost(&self) {
        let why = format!(
            "the connection to the broker was lost: {}",
            self.closed.get()
        );
        for slot in self.lock().values_mut() {
            slot.end = None;
            slot.status = Status::Failed(why.clone());
        }
        self.bump();
    }

    /// The attach reply said the session is in `state`, and whether the
    /// hello the request carried (`offered`) went on to the agent. Starts
    /// the channel unless the agent is away, the hello went, or a state
    /// notice started it already. Returns whether `attach` waits for the
    /// channel (not when the agent is away: the channel starts when it is
    /// back, with an [`Event::Secured`]).
    pub(crate) async fn attached(
        &self,
        session_id: &str,
        state: SessionState,
        offered: bool,
        relayed: bool,
    ) -> Result<bool, OperatorError> {
        let (start, wait) = {
            let mut slots = self.lock();
            match slots.get_mut(session_id) {
                None => (false, false),
                Some(slot) => {
                    // Only this attach has started a channel (if any), and
                    // its hello did not reach the agent.
                    let ours = match (offered, &slot.status) {
                        (false, Status::Attaching) => true,
                        (true, Status::Handshaking) => !relayed,
                        _ => false,
                    };
                    match (ours, away(state)) {
                        (true, Some(why)) => {
                            slot.end = None;
                            slot.status = Status::Away(why);
                            slot.quiet = false;
                            (false, false)
                        }
                        (true, None) => (true, true),
                        // A state notice said so before the reply.
                        (false, Some(_)) if matches!(slot.status, Status::Away(_)) => {
                            slot.quiet = false;
                            (false, false)
                        }
                        // The hello went, or a state notice since the
                        // request started the channel: the agent is there.
                        (false, _) => (false, true),
                    }
                }
            }
        };
        if start {
            self.start(session_id).await?;
        } else {
            self.bump();
        }
        Ok(wait)
    }

    /// `attach` stopped waiting (the wait failed): a channel ready later
    /// is announced.
    pub(crate) fn unquiet(&self, session_id: &str) {
        if let Some(slot) = self.lock().get_mut(session_id) {
            slot.quiet = false;
        }
    }

    /// Starts a new channel for `session_id` (new endpoint, new keys):
    /// sends its hello.
    async fn start(&self, session_id: &str) -> Result<(), OperatorError> {
        let hello = {
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(session_id) else {
                return Ok(());
            };
            match new_end(session_id) {
                Ok((end, hello)) => {
                    slot.end = Some(end);
                    slot.status = Status::Handshaking;
                    Ok(hello)
                }
                Err(why) => {
                    slot.end = None;
                    slot.status = Status::Failed(why.clone());
                    Err(why)
                }
            }
        };
        self.bump();
        let hello = hello.map_err(|why| OperatorError::ChannelFailed {
            session: session_id.to_string(),
            why,
        })?;
        self.queue(session_frame(session_id, hello)).await
    }

    /// Waits until `session_id`'s channel is ready (at most until
    /// `deadline`; `wait`: the whole wait, for the error); its code.
    pub(crate) async fn ready(
        &self,
        session_id: &str,
        deadline: Instant,
        wait: Duration,
    ) -> Result<String, OperatorError> {
        let mut rx = self.changed.subscribe();
        loop {
            let status = self.lock().get(session_id).map(|s| s.status.clone());
            let why = match status {
                None => return Err(OperatorError::NotAttached(session_id.to_string())),
                Some(Status::Ready(sas)) => return Ok(sas),
                Some(Status::Failed(why)) => {
                    return Err(OperatorError::ChannelFailed {
                        session: session_id.to_string(),
                        why,
                    });
                }
                Some(Status::Away(why)) => why,
                Some(Status::Attaching | Status::Handshaking) => {
                    "the customer's agent did not answer the end-to-end handshake".to_string()
                }
            };
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Err(_) => {
                    return Err(OperatorError::NoChannel {
                        session: session_id.to_string(),
                        waited: wait,
                        why,
                    });
                }
                Ok(Err(_)) => return Err(self.lost()),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Sends a session message: content sealed on the session's channel
    /// (waiting up to [`SEND_WAIT`] for one), the rest in the clear.
    pub(crate) async fn send(
        &self,
        session_id: &str,
        msg: SessionMessage,
    ) -> Result<(), OperatorError> {
        if !msg.is_content() {
            return self.queue(session_frame(session_id, msg)).await;
        }
        let (sealed, _order) = self
            .seal_on_channel(session_id, &self.control, |end| end.seal(&msg))
            .await?;
        self.queue(session_frame(session_id, sealed)).await
    }

    /// Waits (up to [`SEND_WAIT`]) for `session_id`'s ready channel and
    /// seals with `seal` on it; returns what it sealed with `order` held,
    /// so that what is sealed in one order is queued in the same order.
    async fn seal_on_channel<'a, T>(
        &self,
        session_id: &str,
        order: &'a tokio::sync::Mutex<()>,
        mut seal: impl FnMut(&mut OperatorEnd) -> Result<T, SealError>,
    ) -> Result<(T, tokio::sync::MutexGuard<'a, ()>), OperatorError> {
        let deadline = Instant::now() + SEND_WAIT;
        loop {
            self.ready(session_id, deadline, SEND_WAIT).await?;
            let guard = order.lock().await;
            let sealed = match self.lock().get_mut(session_id) {
                None => return Err(OperatorError::NotAttached(session_id.to_string())),
                Some(Slot {
                    end: Some(end),
                    status: Status::Ready(_),
                    ..
                }) => seal(end),
                // The channel changed while this waited for its turn.
                Some(_) => continue,
            };
            let sealed = sealed.map_err(|source| OperatorError::Seal {
                session: session_id.to_string(),
                source,
            })?;
            return Ok((sealed, guard));
        }
    }

    /// Sends a data frame (a whole stream frame) sealed on the session's
    /// channel, waiting up to [`SEND_WAIT`] for one.
    pub(crate) async fn send_data(
        &self,
        session_id: &str,
        plain: &[u8],
    ) -> Result<(), OperatorError> {
        if plain.len() > MAX_DATA_BYTES {
            return Err(OperatorError::TooLarge {
                len: plain.len(),
                max: MAX_DATA_BYTES,
            });
        }
        let (payload, _order) = self
            .seal_on_channel(session_id, &self.data, |end| end.seal_data(plain))
            .await?;
        let frame = Frame::SessionData {
            session: session_id.to_string(),
            payload,
        };
        self.queue(frame).await
    }

    /// One session message from the broker: the event to hand on, if any.
    pub(crate) async fn incoming(&self, session_id: String, msg: SessionMessage) -> Option<Event> {
        if let SessionMessage::State { state, .. } = &msg {
            self.on_state(&session_id, *state).await;
        }
        let outcome = match self.lock().get_mut(&session_id) {
            Some(Slot { end: Some(end), .. }) => {
                let endpoint = end.endpoint();
                match end.incoming(msg) {
                    OperatorIncoming::Deliver(m) => Outcome::Deliver(m),
                    OperatorIncoming::Ignore => Outcome::Drop,
                    OperatorIncoming::Ready { confirm, sas } => Outcome::Confirm {
                        endpoint,
                        confirm,
                        sas,
                    },
                    OperatorIncoming::Refused(why) => Outcome::Refused {
                        why,
                        closed: end.is_closed(),
                    },
                }
            }
            _ => without_channel(msg),
        };
        match outcome {
            Outcome::Deliver(msg) => {
                if let SessionMessage::End { reason, .. } = &msg {
                    self.ended(&session_id, reason);
                }
                Some(Event::Session { session_id, msg })
            }
            Outcome::Drop => None,
            Outcome::Confirm {
                endpoint,
                confirm,
                sas,
            } => self.confirm(session_id, endpoint, confirm, sas).await,
            Outcome::Refused { why, closed } => {
                if closed {
                    self.restart(&session_id, &why).await;
                }
                Some(Event::Error(format!("session {session_id}: {why}")))
            }
        }
    }

    /// The channel of `endpoint` is ready: the confirm goes out first,
    /// then content may be sealed.
    async fn confirm(
        &self,
        session_id: String,
        endpoint: u64,
        confirm: SessionMessage,
        sas: String,
    ) -> Option<Event> {
        if self
            .queue(session_frame(&session_id, confirm))
            .await
            .is_err()
        {
            return None;
        }
        {
            let mut slots = self.lock();
            let slot = slots.get_mut(&session_id)?;
            if slot.end.as_ref().map(OperatorEnd::endpoint) != Some(endpoint) {
                // Replaced meanwhile (the agent went away).
                return None;
            }
            slot.status = Status::Ready(sas.clone());
            slot.failures = 0;
            if std::mem::replace(&mut slot.quiet, false) {
                drop(slots);
                self.bump();
                return None;
            }
        }
        self.bump();
        Some(Event::Secured { session_id, sas })
    }

    /// The channel closed (`why`): a new one starts, unless too many
    /// failed in a row.
    async fn restart(&self, session_id: &str, why: &str) {
        let again = {
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(session_id) else {
                return;
            };
            slot.end = None;
            slot.failures += 1;
            if slot.failures >= MAX_FAILED_HANDSHAKES {
                slot.status = Status::Failed(format!(
                    "{why} ({MAX_FAILED_HANDSHAKES} end-to-end channels failed in a row; attach again to retry)"
                ));
                false
            } else {
                true
            }
        };
        self.start_or_bump(session_id, again).await;
    }

    /// A state notice: the agent went away (the channel goes) or is there
    /// again (a new channel starts if there is none).
    async fn on_state(&self, session_id: &str, state: SessionState) {
        let start = {
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(session_id) else {
                return;
            };
            match (away(state), state) {
                (Some(why), _) => {
                    slot.end = None;
                    slot.status = Status::Away(why);
                    false
                }
                (
                    None,
                    SessionState::Connected | SessionState::Suspended | SessionState::Waiting,
                ) => {
                    let start = matches!(slot.status, Status::Attaching | Status::Away(_));
                    if start {
                        slot.failures = 0;
                    }
                    start
                }
                (None, _) => false,
            }
        };
        self.start_or_bump(session_id, start).await;
    }

    /// Starts a new channel for `session_id` when `start`; otherwise wakes
    /// the waiters to look at the changed status.
    async fn start_or_bump(&self, session_id: &str, start: bool) {
        if !start {
            self.bump();
        } else if let Err(e) = self.start(session_id).await {
            tracing::warn!(
                session = session_id,
                "cannot start a new end-to-end channel: {e}"
            );
        }
    }

    fn ended(&self, session_id: &str, reason: &str) {
        if let Some(slot) = self.lock().get_mut(session_id) {
            slot.end = None;
            slot.status = Status::Failed(format!("the session ended: {reason}"));
        }
        self.bump();
    }

    /// One data frame from the broker: opened when it is this endpoint's,
    /// dropped when it is another's, refused when it came unencrypted.
    pub(crate) fn incoming_data(&self, session_id: String, payload: Vec<u8>) -> Option<Event> {
        let opened = match self.lock().get_mut(&session_id) {
            Some(Slot { end: Some(end), .. }) => end.open_data(&payload),
            // Sealed for a channel that is gone, or for another endpoint.
            _ if split_data(&payload).is_some() => return None,
            _ => {
                return Some(Event::Error(format!(
                    "session {session_id}: refused a data frame that arrived unencrypted: session content comes only through the end-to-end channel"
                )));
            }
        };
        match opened {
            Ok(Some(plain)) => Some(crate::stream::event(session_id, plain)),
            Ok(None) => None,
            Err(e) => Some(Event::Error(format!(
                "session {session_id}: refused a data frame from the agent: {e}"
            ))),
        }
    }
}

/// A session message for a session without a channel: what the broker
/// may say in the clear passes, content is refused, another channel's
/// envelope is not ours.
fn without_channel(msg: SessionMessage) -> Outcome {
    use SessionMessage as M;
    match msg {
        M::E2eReply { .. } | M::Sealed { .. } | M::E2eClosed { .. } => Outcome::Drop,
        msg if msg.is_content() => Outcome::Refused {
            why: format!(
                "refused {} that arrived unencrypted: session content comes only through the end-to-end channel",
                msg.kind_name()
            ),
            closed: false,
        },
        msg => Outcome::Deliver(msg),
    }
}

#[cfg(test)]
#[path = "e2e_tests.rs"]
mod tests;
