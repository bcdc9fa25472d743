//! Screen sharing on the operator's side: a [`ScreenSession`] starts the
//! customer's `screen` plugin (`screen share`), follows its stream
//! ([`lifeline_screen_format::CONTENT_TYPE`]) with credit, keeps the
//! picture in a [`Framebuffer`] (and the customer's clipboard text, once
//! allowed), sends input and clipboard text back, and stops the share.
//! Recordings of the stream: [`record`].
//!
//! A `ScreenSession` reads its [`Client`]'s events itself, and drops those
//! that are not its own (chat, other streams): give it a connection of its
//! own (the CLI does; a web console opens one per viewer).

mod framebuffer;
pub mod record;
mod zlib_tiles;

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub use framebuffer::{
    Cursor, CursorImage, Framebuffer, MAX_PICTURE_PIXELS, PictureError, TileProblem,
};
use lifeline_protocol::SessionMessage;
use lifeline_protocol::stream::{MAX_STREAM_FRAME_BYTES, MAX_WINDOW_BYTES};
pub use lifeline_screen_format as format;
pub use lifeline_screen_format::{
    CONTENT_TYPE, DecodeError, Input, Level, Message, MonitorChoice, Quality, STREAM_NAME,
};
use tokio::time::Instant;

use crate::{Client, Event, OperatorError};

/// The plugin that shares the screen.
pub const PLUGIN: &str = "screen";
/// Its command that starts sharing (`share [monitor] [quality]`).
pub const SHARE_COMMAND: &str = "share";
/// Its command that stops sharing.
pub const STOP_COMMAND: &str = "stop";
/// Time `share` waits for the plugin's answer, the customer's consent
/// prompt included.
pub const SHARE_TIMEOUT: Duration = Duration::from_secs(300);
/// Time the stream may take to open after `share` answered.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Time [`ScreenSession::first_picture`] waits for the screen's layout.
pub const LAYOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time [`ScreenSession::sync`] waits for the plugin's answer.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Time [`ScreenSession::stop`] waits for the plugin's answer and the
/// stream's end.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Credit granted to the screen stream: what may be in flight towards the
/// operator. Four of the largest frames, so a full-screen update keeps
/// the link busy; within what an agent holds ([`MAX_WINDOW_BYTES`]).
pub const WINDOW_BYTES: u64 = 4 * MAX_STREAM_FRAME_BYTES as u64;
const _: () = assert!(WINDOW_BYTES <= MAX_WINDOW_BYTES);

/// Why a screen operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error("screen share failed on the customer's side: {0}")]
    ShareFailed(String),
    #[error(
        "screen share answered {answer:?}, but no screen stream opened within {waited:?} (if a share is already running, stop it first with `run screen stop`)"
    )]
    NoStream { answer: String, waited: Duration },
    #[error(
        "the screen stream has content type {found:?}; this operator client reads {CONTENT_TYPE}"
    )]
    ContentType { found: String },
    #[error("screen stop failed on the customer's side: {0}")]
    StopFailed(String),
    #[error("timed out after {0:?} waiting for {1}")]
    Waited(Duration, &'static str),
    #[error("the screen stream closed while waiting for {what}: {reason}")]
    Closed { what: &'static str, reason: String },
    #[error("the session ended: {0}")]
    SessionEnded(String),
    #[error("the broker reported an error: {0}")]
    Broker(String),
    #[error("frame {frame} of the screen stream: {source}")]
    Decode { frame: u64, source: DecodeError },
    #[error("frame {frame} of the screen stream: {source}")]
    Picture { frame: u64, source: PictureError },
    #[error(
        "{count} inputs make a frame of {len} bytes, more than a stream frame may carry ({MAX_STREAM_FRAME_BYTES})"
    )]
    InputTooLarge { count: usize, len: usize },
    #[error(
        "clipboard text of {len} bytes; the screen stream carries at most {} bytes",
        format::MAX_CLIPBOARD_BYTES
    )]
    ClipboardTooLarge { len: usize },
}

/// How the screen stream ended (from the agent's `StreamClosed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// Why: the plugin's or the agent's words ("stopped by the customer").
    pub reason: String,
    /// Frames and bytes the agent sent, and frames it dropped.
    pub frames: u64,
    pub bytes: u64,
    pub dropped: u64,
}

/// Options of [`ScreenSession::share_with`].
#[derive(Debug, Clone, Copy)]
pub struct ShareOptions {
    pub monitor: MonitorChoice,
    pub quality: Quality,
    /// Time to wait for the plugin's answer (the customer's consent
    /// included).
    pub wait: Duration,
    /// Time the stream may take to open once the plugin answered.
    pub open_wait: Duration,
}

impl Default for ShareOptions {
    fn default() -> Self {
        ShareOptions {
            monitor: MonitorChoice::All,
            quality: Quality::Auto,
            wait: SHARE_TIMEOUT,
            open_wait: OPEN_TIMEOUT,
        }
    }
}

/// `screen share`'s monitor argument: `all` or the monitor's index.
pub fn monitor_arg(m: MonitorChoice) -> String {
    match m {
        MonitorChoice::All => "all".into(),
        MonitorChoice::Index(i) => i.to_string(),
    }
}

/// `screen share`'s quality argument: `auto` or `lossless`.
pub fn quality_arg(q: Quality) -> &'static str {
    match q {
        Quality::Auto => "auto",
        Quality::Lossless => "lossless",
    }
}

/// Reads a monitor choice: `all` or an index (0 to 254).
pub fn parse_monitor(s: &str) -> Result<MonitorChoice, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(MonitorChoice::All);
    }
    match s.parse::<u8>() {
        Ok(i) if i != u8::MAX => Ok(MonitorChoice::Index(i)),
        _ => Err(format!(
            "{s:?} is not a monitor: give `all` or a monitor's index (0, 1, …)"
        )),
    }
}

/// Reads a quality: `auto` or `lossless`.
pub fn parse_quality(s: &str) -> Result<Quality, String> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(Quality::Auto),
        "lossless" => Ok(Quality::Lossless),
        _ => Err(format!("{s:?} is not a quality: give `auto` or `lossless`")),
    }
}

/// What the event loop makes of one event.
enum Seen {
    /// A frame of our stream.
    Frame(Vec<u8>),
    /// Our stream closed.
    Closed,
    /// `PluginDone` of the call being waited for: (ok, text).
    Done(bool, String),
    /// Nothing for us.
    Other,
}

/// A screen share being followed on an attached session.
///
/// Frames are granted back as they are consumed: the credit for a frame
/// returns when the next one is asked for, so at most [`WINDOW_BYTES`]
/// wait anywhere for a slow reader. [`ScreenSession::next`] and
/// [`ScreenSession::next_frame`] are cancel-safe (wrap them in a timeout
/// or a `select!`). Dropping a session does not end the share on the
/// customer's side: call [`ScreenSession::stop`].
pub struct ScreenSession<C: Borrow<Client>> {
    client: C,
    session_id: String,
    stream: u32,
    answer: String,
    /// Frames that arrived while waiting for something else.
    pending: VecDeque<Vec<u8>>,
    /// Credit for the frames handed out and not yet granted back.
    owed: u64,
    closed: Option<StreamEnd>,
    framebuffer: Framebuffer,
    next_token: u32,
    frames: u64,
    bytes: u64,
    /// The customer's clipboard text, as last received.
    clipboard: Option<String>,
}

impl<C: Borrow<Client>> ScreenSession<C> {
    /// Starts sharing `monitor` at `quality` on the attached session
    /// `session_id` (see [`ScreenSession::share_with`]).
    pub async fn share(
        client: C,
        session_id: &str,
        monitor: MonitorChoice,
        quality: Quality,
    ) -> Result<Self, ScreenError> {
        let opts = ShareOptions {
            monitor,
            quality,
            ..ShareOptions::default()
        };
        Self::share_with(client, session_id, &opts, |_, _| {}).await
    }

    /// Runs `screen share MONITOR QUALITY` on the attached session
    /// `session_id`, waits for its answer and for the plugin's screen
    /// stream to open, and subscribes to the stream. `on_output(stream,
    /// text)` sees the call's output and consent decisions meanwhile.
    pub async fn share_with(
        client: C,
        session_id: &str,
        opts: &ShareOptions,
        mut on_output: impl FnMut(&str, &str),
    ) -> Result<Self, ScreenError> {
        let c = client.borrow();
        let call_id = c.next_id.fetch_add(1, Ordering::Relaxed);
        let args = vec![
            monitor_arg(opts.monitor),
            quality_arg(opts.quality).to_string(),
        ];
        let msg = SessionMessage::RunPlugin {
            call_id,
            plugin: PLUGIN.into(),
            command: SHARE_COMMAND.into(),
            args,
        };
        c.send(session_id, msg).await?;
        let mut s = ScreenSession {
            client,
            session_id: session_id.to_string(),
            stream: 0,
            answer: String::new(),
            pending: VecDeque::new(),
            owed: 0,
            closed: None,
            framebuffer: Framebuffer::new(),
            next_token: 1,
            frames: 0,
            bytes: 0,
            clipboard: None,
        };
        let mut opened = false;
        let mut answered: Option<String> = None;
        let mut deadline = (Instant::now() + opts.wait, opts.wait);
        while !(opened && answered.is_some()) {
            let waiting = if answered.is_some() {
                "the screen stream to open"
            } else {
                "the screen plugin to answer screen share"
            };
            let ev = match s.next_event(Some(deadline), waiting).await {
                Err(ScreenError::Waited(waited, _)) if answered.is_some() => {
                    return Err(ScreenError::NoStream {
                        answer: answered.unwrap_or_default(),
                        waited,
                    });
                }
                r => r?,
            };
            if !opened && let Some(found) = opening(&s.session_id, &ev) {
                s.stream = found?;
                opened = true;
                s.client
                    .borrow()
                    .stream_credit(&s.session_id, s.stream, WINDOW_BYTES)
                    .await?;
                continue;
            }
            match s.see(ev, Some(call_id), &mut on_output) {
                Seen::Frame(body) => s.pending.push_back(body),
                Seen::Closed => {
                    return Err(ScreenError::Closed {
                        what: "screen share to answer",
                        reason: s.closed_reason(),
                    });
                }
                Seen::Done(false, text) => return Err(ScreenError::ShareFailed(text)),
                Seen::Done(true, text) => {
                    if !opened {
                        deadline = (Instant::now() + opts.open_wait, opts.open_wait);
                    }
                    answered = Some(text);
                }
                Seen::Other => {}
            }
        }
        s.answer = answered.unwrap_or_default();
        Ok(s)
    }

    /// The next event before `deadline` (the instant, and the whole wait
    /// for the error), or why waiting must stop.
    async fn event_before(
        &self,
        (at, wait): (Instant, Duration),
        what: &'static str,
    ) -> Result<Event, ScreenError> {
        let c = self.client.borrow();
        match tokio::time::timeout_at(at, c.next_event()).await {
            Err(_) => Err(ScreenError::Waited(wait, what)),
            Ok(None) => Err(OperatorError::Lost(c.closed.get()).into()),
            Ok(Some(ev)) => Ok(ev),
        }
    }

    /// Why the stream closed, as far as known.
    fn closed_reason(&self) -> String {
        self.closed
            .as_ref()
            .map_or_else(String::new, |e| e.reason.clone())
    }

    /// Sorts one event: a frame or the end of our stream (remembered),
    /// the answer to call `call_id`, output passed to `on_output`.
    fn see(
        &mut self,
        ev: Event,
        call_id: Option<u64>,
        on_output: &mut impl FnMut(&str, &str),
    ) -> Seen {
        match ev {
            Event::Stream {
                session_id,
                stream,
                body,
            } if session_id == self.session_id && stream == self.stream => Seen::Frame(body),
            Event::Session { session_id, msg } if session_id == self.session_id => match msg {
                SessionMessage::StreamClosed {
                    stream,
                    frames,
                    bytes,
                    dropped,
                    reason,
                    ..
                } if stream == self.stream && self.stream != 0 => {
                    self.closed = Some(StreamEnd {
                        reason,
                        frames,
                        bytes,
                        dropped,
                    });
                    Seen::Closed
                }
                SessionMessage::PluginOutput {
                    call_id: c,
                    stream,
                    text,
                    ..
                } if Some(c) == call_id => {
                    on_output(&stream, &text);
                    Seen::Other
                }
                SessionMessage::ConsentDecided {
                    action,
                    decision,
                    decided_by,
                    ..
                } if call_id.is_some() => {
                    let line = format!("{action}: {} ({decided_by})", decision.as_str());
                    on_output("consent", &line);
                    Seen::Other
                }
                SessionMessage::PluginDone {
                    call_id: c,
                    ok,
                    text,
                    ..
                } if Some(c) == call_id => Seen::Done(ok, text),
                _ => Seen::Other,
            },
            _ => Seen::Other,
        }
    }

    /// The next event, or the error that ends every wait: the session's
    /// end, a broker error, a lost connection.
    async fn next_event(
        &self,
        deadline: Option<(Instant, Duration)>,
        what: &'static str,
    ) -> Result<Event, ScreenError> {
        let ev = match deadline {
            Some(d) => self.event_before(d, what).await?,
            None => {
                let c = self.client.borrow();
                c.next_event()
                    .await
                    .ok_or_else(|| OperatorError::Lost(c.closed.get()))?
            }
        };
        match ev {
            Event::Session {
                session_id,
                msg: SessionMessage::End { reason, .. },
            } if session_id == self.session_id => Err(ScreenError::SessionEnded(reason)),
            Event::Error(m) => Err(ScreenError::Broker(m)),
            ev => Ok(ev),
        }
    }

    /// Grants back the credit of the frames handed out.
    async fn repay(&mut self) -> Result<(), ScreenError> {
        if self.owed > 0 && self.closed.is_none() {
            self.client
                .borrow()
                .stream_credit(&self.session_id, self.stream, self.owed)
                .await?;
        }
        self.owed = 0;
        Ok(())
    }

    /// The next frame of the stream, exactly as received (to record or to
    /// relay); `None` once the stream closed ([`ScreenSession::closed`]
    /// says why). Waits as long as the screen does not change. The
    /// picture is not updated: mixing this with [`ScreenSession::next`]
    /// leaves it missing frames.
    pub async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ScreenError> {
        self.frame_before(None, "the next screen frame").await
    }

    async fn frame_before(
        &mut self,
        deadline: Option<(Instant, Duration)>,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, ScreenError> {
        self.repay().await?;
        loop {
            if let Some(body) = self.pending.pop_front() {
                self.owed += body.len() as u64;
                self.frames += 1;
                self.bytes += body.len() as u64;
                return Ok(Some(body));
            }
            if self.closed.is_some() {
                return Ok(None);
            }
            let ev = self.next_event(deadline, what).await?;
            match self.see(ev, None, &mut |_, _| {}) {
                Seen::Frame(body) => self.pending.push_back(body),
                Seen::Closed => {}
                Seen::Done(..) | Seen::Other => {}
            }
        }
    }

    /// The next message of the stream, applied to the picture first;
    /// `None` once the stream closed. A frame that is not a screen
    /// message, or a message the picture cannot take (a bad tile), is an
    /// error naming the frame; the stream goes on.
    pub async fn next(&mut self) -> Result<Option<Message>, ScreenError> {
        self.message_before(None, "the next screen message").await
    }

    async fn message_before(
        &mut self,
        deadline: Option<(Instant, Duration)>,
        what: &'static str,
    ) -> Result<Option<Message>, ScreenError> {
        let Some(frame) = self.frame_before(deadline, what).await? else {
            return Ok(None);
        };
        let n = self.frames;
        let msg = lifeline_screen_format::decode_message(&frame)
            .map_err(|source| ScreenError::Decode { frame: n, source })?;
        self.framebuffer
            .apply(&msg)
            .map_err(|source| ScreenError::Picture { frame: n, source })?;
        if let Message::Clipboard { text } = &msg {
            self.clipboard = Some(text.clone());
        }
        Ok(Some(msg))
    }

    /// Sends `inputs` to the plugin in one stream frame.
    pub async fn send_input(&self, inputs: &[Input]) -> Result<(), ScreenError> {
        if let Some(end) = &self.closed {
            return Err(ScreenError::Closed {
                what: "input to be sent",
                reason: end.reason.clone(),
            });
        }
        let mut body = Vec::new();
        for i in inputs {
            lifeline_screen_format::encode_input(i, &mut body);
        }
        if body.len() > MAX_STREAM_FRAME_BYTES {
            return Err(ScreenError::InputTooLarge {
                count: inputs.len(),
                len: body.len(),
            });
        }
        self.client
            .borrow()
            .stream_input(&self.session_id, self.stream, body)
            .await?;
        Ok(())
    }

    /// Puts `text` on the customer's clipboard ([`Input::Clipboard`]); the
    /// first one asks the customer for `clipboard.text`, unless
    /// [`ScreenSession::request_clipboard`] did. The plugin's answer, if
    /// any, is a status line.
    pub async fn send_clipboard(&self, text: &str) -> Result<(), ScreenError> {
        if !format::clipboard_fits(text) {
            return Err(ScreenError::ClipboardTooLarge { len: text.len() });
        }
        let text = text.to_string();
        self.send_input(&[Input::Clipboard { text }]).await
    }

    /// Asks for the customer's clipboard ([`Input::RequestClipboard`]):
    /// the customer is asked for `clipboard.text`; the answer is a status
    /// line, and once allowed the clipboard's text arrives as
    /// [`Message::Clipboard`] (again whenever it changes).
    pub async fn request_clipboard(&self) -> Result<(), ScreenError> {
        self.send_input(&[Input::RequestClipboard]).await
    }

    /// The customer's clipboard text, as last received through
    /// [`ScreenSession::next`] (never logged: it may be a secret).
    pub fn clipboard(&self) -> Option<&str> {
        self.clipboard.as_deref()
    }

    /// Sends a sync marker and returns once the plugin answered it, every
    /// message before the answer applied to the picture: the picture then
    /// shows at least what the display showed when the plugin read the
    /// marker.
    pub async fn sync(&mut self) -> Result<(), ScreenError> {
        self.sync_with(|_| {}).await
    }

    /// [`ScreenSession::sync`], showing `on_message` every message on the
    /// way (status lines for the operator).
    pub async fn sync_with(
        &mut self,
        mut on_message: impl FnMut(&Message),
    ) -> Result<(), ScreenError> {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        self.send_input(&[Input::Sync { token }]).await?;
        let deadline = (Instant::now() + SYNC_TIMEOUT, SYNC_TIMEOUT);
        const WHAT: &str = "the screen plugin to answer a sync";
        loop {
            let Some(msg) = self.message_before(Some(deadline), WHAT).await? else {
                return Err(ScreenError::Closed {
                    what: WHAT,
                    reason: self.closed_reason(),
                });
            };
            on_message(&msg);
            if msg == (Message::Sync { token }) {
                return Ok(());
            }
        }
    }

    /// Waits for the first complete picture: the screen's layout (bounded
    /// by [`LAYOUT_TIMEOUT`]), then a [`ScreenSession::sync`].
    pub async fn first_picture(&mut self) -> Result<(), ScreenError> {
        self.first_picture_with(|_| {}).await
    }

    /// [`ScreenSession::first_picture`], showing `on_message` every
    /// message on the way.
    pub async fn first_picture_with(
        &mut self,
        mut on_message: impl FnMut(&Message),
    ) -> Result<(), ScreenError> {
        const WHAT: &str = "the screen's layout";
        let deadline = (Instant::now() + LAYOUT_TIMEOUT, LAYOUT_TIMEOUT);
        while !self.framebuffer.has_layout() {
            match self.message_before(Some(deadline), WHAT).await? {
                Some(msg) => on_message(&msg),
                None => {
                    return Err(ScreenError::Closed {
                        what: WHAT,
                        reason: self.closed_reason(),
                    });
                }
            }
        }
        self.sync_with(on_message).await
    }

    /// Runs `screen stop` and waits (bounded by [`STOP_TIMEOUT`]) for its
    /// answer and the stream's end; frames still arriving are dropped.
    /// Nothing is asked when the stream has already closed.
    pub async fn stop(mut self) -> Result<StreamEnd, ScreenError> {
        if let Some(end) = self.closed.take() {
            return Ok(end);
        }
        // Frames not handed out are dropped; all their credit goes back.
        self.owed += self.pending.drain(..).map(|f| f.len() as u64).sum::<u64>();
        self.repay().await?;
        let call_id = self.client.borrow().next_id.fetch_add(1, Ordering::Relaxed);
        let msg = SessionMessage::RunPlugin {
            call_id,
            plugin: PLUGIN.into(),
            command: STOP_COMMAND.into(),
            args: Vec::new(),
        };
        self.client.borrow().send(&self.session_id, msg).await?;
        let deadline = (Instant::now() + STOP_TIMEOUT, STOP_TIMEOUT);
        let mut answered = false;
        loop {
            let what = if answered {
                "the screen stream to close"
            } else {
                "the screen plugin to answer screen stop"
            };
            let ev = self.next_event(Some(deadline), what).await?;
            match self.see(ev, Some(call_id), &mut |_, _| {}) {
                // Dropped, but granted back: the plugin must not wait for
                // credit to see the stop.
                Seen::Frame(body) => {
                    self.client
                        .borrow()
                        .stream_credit(&self.session_id, self.stream, body.len() as u64)
                        .await?;
                }
                Seen::Closed => {
                    if let Some(end) = self.closed.take() {
                        return Ok(end);
                    }
                }
                Seen::Done(false, text) => return Err(ScreenError::StopFailed(text)),
                Seen::Done(true, _) => answered = true,
                Seen::Other => {}
            }
        }
    }

    /// The answer of `screen share` ("sharing monitor 0, 1920×1080").
    pub fn answer(&self) -> &str {
        &self.answer
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The screen stream's id in the session.
    pub fn stream_id(&self) -> u32 {
        self.stream
    }

    /// The connection.
    pub fn client(&self) -> &Client {
        self.client.borrow()
    }

    /// The picture as the messages so far made it.
    pub fn framebuffer(&self) -> &Framebuffer {
        &self.framebuffer
    }

    /// Frames handed out so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes of the frames handed out so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How the stream ended, once it has.
    pub fn closed(&self) -> Option<&StreamEnd> {
        self.closed.as_ref()
    }
}

/// The stream id of `ev` when it announces the screen stream of
/// `session_id` (an error when its content type is not ours).
fn opening(session_id: &str, ev: &Event) -> Option<Result<u32, ScreenError>> {
    match ev {
        Event::Session {
            session_id: s,
            msg:
                SessionMessage::StreamOpened {
                    stream,
                    plugin,
                    name,
                    content_type,
                    ..
                },
        } if s == session_id && plugin == PLUGIN && name == STREAM_NAME => {
            Some(if content_type == CONTENT_TYPE {
                Ok(*stream)
            } else {
                Err(ScreenError::ContentType {
                    found: content_type.clone(),
                })
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod session_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        for m in [
            MonitorChoice::All,
            MonitorChoice::Index(0),
            MonitorChoice::Index(3),
        ] {
            assert_eq!(parse_monitor(&monitor_arg(m)), Ok(m));
        }
        for q in [Quality::Auto, Quality::Lossless] {
            assert_eq!(parse_quality(quality_arg(q)), Ok(q));
        }
        assert_eq!(parse_monitor("ALL"), Ok(MonitorChoice::All));
        assert!(parse_monitor("255").is_err());
        assert!(parse_monitor("-1").is_err());
        assert!(parse_quality("best").unwrap_err().contains("auto"));
    }
}
