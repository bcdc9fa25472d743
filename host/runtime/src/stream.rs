//! Plugin streams on the agent's side: the credit each stream holds, the
//! frame a latest-wins stream keeps waiting, and the operator's frames
//! waiting for the plugin. One [`StreamHub`] per session; the wire format
//! is `lifeline_protocol::stream`.
//!
//! Memory is bounded on this hop by construction: a queued stream's
//! `send` waits (off the plugin's clock) until the operator side granted
//! credit, a latest-wins stream keeps at most one frame, and the sink is
//! the link's bounded send queue. What the operator sends back waits in a
//! per-stream inbox of at most [`MAX_INBOX_BYTES`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lifeline_protocol::StreamData;
use lifeline_protocol::stream::{MAX_STREAM_FRAME_BYTES, MAX_WINDOW_BYTES};

use crate::host::HostError;

/// Streams open at once in one session: each costs an entry, a waiting
/// frame and an inbox, so a plugin opening streams in a loop is stopped.
pub const MAX_STREAMS: usize = 16;
/// Longest a queued stream's `send` waits for credit before it fails: an
/// operator side that takes nothing for this long is not reading.
pub const SEND_WAIT: Duration = Duration::from_secs(30);
/// Bytes of operator frames one stream keeps for its plugin; more is
/// dropped (and counted) rather than queued without bound.
pub const MAX_INBOX_BYTES: usize = 1 << 20;
/// Longest stream name or content type.
pub const MAX_NAME_CHARS: usize = 128;
/// How often a waiting `send` looks whether the session ended.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// How a stream treats frames the operator side cannot take yet (mirrors
/// the WIT `stream-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Queued,
    LatestWins,
}

/// What a stream is, as announced to the operator side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub id: u32,
    pub plugin: String,
    pub name: String,
    pub content_type: String,
    pub mode: Mode,
}

/// What went through a stream, as told when it closes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub frames: u64,
    pub bytes: u64,
    /// Frames a latest-wins stream replaced before they could go.
    pub dropped: u64,
    /// Operator frames dropped because the plugin's inbox was full.
    pub input_dropped: u64,
}

/// The answer to a `send` (mirrors the WIT `stream-sent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub credit: u64,
    pub dropped: u64,
}

/// Where a session's streams go: the agent's link, or files in
/// `lifeline plugin test`.
pub trait StreamSink: Send + Sync {
    /// Queues a data frame payload towards the operator side, waiting while
    /// the queue is full; false when the session's connection is gone.
    fn data(&self, payload: Vec<u8>) -> bool;
    /// Queues a data frame payload only if there is room now.
    fn try_data(&self, payload: Vec<u8>) -> bool;
    fn opened(&self, info: &StreamInfo);
    fn closed(&self, info: &StreamInfo, stats: &StreamStats, reason: &str);
    /// The operator sent a frame on a stream of `plugin` (a long-lived
    /// plugin is told with a `stream-input` event).
    fn input(&self, plugin: &str, stream: u32) {
        let _ = (plugin, stream);
    }
}

struct Stream {
    info: StreamInfo,
    credit: u64,
    /// The newest frame of a latest-wins stream waiting for credit.
    waiting: Option<Vec<u8>>,
    inbox: VecDeque<Vec<u8>>,
    inbox_bytes: usize,
    stats: StreamStats,
}

#[derive(Default)]
struct Hub {
    next_id: u32,
    streams: BTreeMap<u32, Stream>,
    /// Set when the session ended: waiting senders stop.
    over: bool,
}

/// The streams of one session.
pub struct StreamHub {
    hub: Mutex<Hub>,
    changed: Condvar,
    sink: Box<dyn StreamSink>,
    /// Credit every stream has without a reader (`plugin test`).
    unlimited: bool,
}

fn not_yours(id: u32) -> HostError {
    HostError::Failed(format!("no open stream {id} of this plugin"))
}

impl StreamHub {
    /// A hub whose streams flow as the operator side grants credit.
    pub fn new(sink: Box<dyn StreamSink>) -> Arc<StreamHub> {
        Self::build(sink, false)
    }

    /// A hub where every stream has unlimited credit (no reader to wait for).
    pub fn unlimited(sink: Box<dyn StreamSink>) -> Arc<StreamHub> {
        Self::build(sink, true)
    }

    fn build(sink: Box<dyn StreamSink>, unlimited: bool) -> Arc<StreamHub> {
        Arc::new(StreamHub {
            hub: Mutex::new(Hub {
                next_id: 1,
                ..Hub::default()
            }),
            changed: Condvar::new(),
            sink,
            unlimited,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn open(
        &self,
        plugin: &str,
        name: &str,
        content_type: &str,
        mode: Mode,
    ) -> Result<u32, HostError> {
        for (what, v) in [("name", name), ("content type", content_type)] {
            if v.is_empty() || v.chars().count() > MAX_NAME_CHARS || v.chars().any(char::is_control)
            {
                return Err(HostError::Failed(format!(
                    "a stream {what} has 1 to {MAX_NAME_CHARS} printable characters"
                )));
            }
        }
        let info = {
            let mut hub = self.lock();
            if hub.over {
                return Err(HostError::Failed("the session has ended".into()));
            }
            if hub.streams.len() >= MAX_STREAMS {
                return Err(HostError::Limit(format!(
                    "at most {MAX_STREAMS} streams are open at once in a session"
                )));
            }
            let id = hub.next_id;
            hub.next_id = hub.next_id.wrapping_add(1).max(1);
            let info = StreamInfo {
                id,
                plugin: plugin.to_string(),
                name: name.to_string(),
                content_type: content_type.to_string(),
                mode,
            };
            hub.streams.insert(
                id,
                Stream {
                    info: info.clone(),
                    credit: 0,
                    waiting: None,
                    inbox: VecDeque::new(),
                    inbox_bytes: 0,
                    stats: StreamStats::default(),
                },
            );
            info
        };
        self.sink.opened(&info);
        Ok(info.id)
    }

    fn credit_of(&self, s: &Stream) -> u64 {
        if self.unlimited { u64::MAX } else { s.credit }
    }

    pub fn credit(&self, plugin: &str, id: u32) -> Result<u64, HostError> {
        let hub = self.lock();
        let s = hub
            .streams
            .get(&id)
            .filter(|s| s.info.plugin == plugin)
            .ok_or_else(|| not_yours(id))?;
        Ok(self.credit_of(s))
    }

    /// Sends one frame (see the WIT `stream-send`). `ended` says whether the
    /// session is over while a queued stream waits for credit.
    pub fn send(
        &self,
        plugin: &str,
        id: u32,
        frame: Vec<u8>,
        ended: &dyn Fn() -> bool,
    ) -> Result<Sent, HostError> {
        if frame.len() > MAX_STREAM_FRAME_BYTES {
            return Err(HostError::Limit(format!(
                "a stream frame is limited to {} KiB; split it",
                MAX_STREAM_FRAME_BYTES >> 10
            )));
        }
        let deadline = Instant::now() + SEND_WAIT;
        let mut hub = self.lock();
        loop {
            if hub.over || ended() {
                return Err(HostError::Failed("the session has ended".into()));
            }
            let unlimited = self.unlimited;
            let s = hub
                .streams
                .get_mut(&id)
                .filter(|s| s.info.plugin == plugin)
                .ok_or_else(|| not_yours(id))?;
            if unlimited || s.credit > 0 {
                // Credit may go below the frame's size once: a frame is at
                // most 1 MiB beyond the window, and no reader can deadlock
                // a writer by granting less than one frame.
                s.credit = s.credit.saturating_sub(frame.len() as u64);
                if s.waiting.take().is_some() {
                    s.stats.dropped += 1;
                }
                s.stats.frames += 1;
                s.stats.bytes += frame.len() as u64;
                let sent = Sent {
                    credit: self.credit_of(s),
                    dropped: s.stats.dropped,
                };
                let payload = StreamData::Frame {
                    stream: id,
                    body: frame,
                }
                .encode();
                drop(hub);
                if !self.sink.data(payload) {
                    return Err(HostError::Failed("the session's connection is gone".into()));
                }
                return Ok(sent);
            }
            if s.info.mode == Mode::LatestWins {
                if s.waiting.replace(frame).is_some() {
                    s.stats.dropped += 1;
                }
                return Ok(Sent {
                    credit: 0,
                    dropped: s.stats.dropped,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HostError::Limit(format!(
                    "the operator side took nothing from stream {id} for {} s",
                    SEND_WAIT.as_secs()
                )));
            }
            hub = self
                .changed
                .wait_timeout(hub, WAIT_SLICE.min(deadline - now))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The next operator frame of stream `id`, waiting at most `timeout`.
    pub fn recv(
        &self,
        plugin: &str,
        id: u32,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, HostError> {
        let deadline = Instant::now() + timeout;
        let mut hub = self.lock();
        loop {
            let s = hub
                .streams
                .get_mut(&id)
                .filter(|s| s.info.plugin == plugin)
                .ok_or_else(|| not_yours(id))?;
            if let Some(f) = s.inbox.pop_front() {
                s.inbox_bytes -= f.len();
                return Ok(Some(f));
            }
            let now = Instant::now();
            if hub.over || now >= deadline {
                return Ok(None);
            }
            hub = self
                .changed
                .wait_timeout(hub, WAIT_SLICE.min(deadline - now))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Closes stream `id` of `plugin`; the operator side is told why.
    pub fn close(&self, plugin: &str, id: u32, reason: &str) -> Result<(), HostError> {
        let s = {
            let mut hub = self.lock();
            if hub.streams.get(&id).is_none_or(|s| s.info.plugin != plugin) {
                return Err(not_yours(id));
            }
            hub.streams.remove(&id).expect("checked just above")
        };
        self.changed.notify_all();
        self.sink.closed(&s.info, &s.stats, reason);
        Ok(())
    }

    /// The session ended: every stream closes and waiting senders stop.
    pub fn close_all(&self, reason: &str) {
        let streams = {
            let mut hub = self.lock();
            hub.over = true;
            std::mem::take(&mut hub.streams)
        };
        self.changed.notify_all();
        for s in streams.values() {
            self.sink.closed(&s.info, &s.stats, reason);
        }
    }

    /// The link to the operator was lost while the session goes on (the
    /// agent resumes it): every open stream closes, since the operator's
    /// credit and the frames in flight went with the link. Plugins may
    /// open new streams once the link is back.
    pub fn close_open(&self, reason: &str) {
        let streams = std::mem::take(&mut self.lock().streams);
        self.changed.notify_all();
        for s in streams.values() {
            self.sink.closed(&s.info, &s.stats, reason);
        }
    }

    /// What an operator client sent: credit (which may release a
    /// latest-wins stream's waiting frame) or a frame for the plugin.
    /// Frames for streams that are not open are ignored.
    pub fn on_operator_data(&self, data: StreamData) {
        match data {
            StreamData::Credit { stream, bytes } => self.grant(stream, bytes),
            StreamData::Input { stream, body } => self.input(stream, body),
            StreamData::Frame { .. } => {}
        }
    }

    fn grant(&self, id: u32, bytes: u64) {
        let mut hub = self.lock();
        let Some(s) = hub.streams.get_mut(&id) else {
            return;
        };
        s.credit = s.credit.saturating_add(bytes).min(MAX_WINDOW_BYTES);
        if let Some(frame) = s.waiting.take() {
            let len = frame.len() as u64;
            let payload = StreamData::Frame {
                stream: id,
                body: frame,
            }
            .encode();
            // Never waits: this runs on the session's loop.
            if self.sink.try_data(payload.clone()) {
                s.credit = s.credit.saturating_sub(len);
                s.stats.frames += 1;
                s.stats.bytes += len;
            } else {
                s.waiting = Some(payload[lifeline_protocol::stream::HEADER_BYTES..].to_vec());
            }
        }
        drop(hub);
        self.changed.notify_all();
    }

    fn input(&self, id: u32, body: Vec<u8>) {
        let plugin = {
            let mut hub = self.lock();
            let Some(s) = hub.streams.get_mut(&id) else {
                return;
            };
            if s.inbox_bytes + body.len() > MAX_INBOX_BYTES {
                s.stats.input_dropped += 1;
                return;
            }
            s.inbox_bytes += body.len();
            s.inbox.push_back(body);
            s.info.plugin.clone()
        };
        self.changed.notify_all();
        self.sink.input(&plugin, id);
    }

    /// Streams open now (for tests and status).
    pub fn open_streams(&self) -> Vec<StreamInfo> {
        self.lock()
            .streams
            .values()
            .map(|s| s.info.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Captured {
        frames: Mutex<Vec<Vec<u8>>>,
        closed: Mutex<Vec<(u32, StreamStats)>>,
    }
    struct Sink(Arc<Captured>);
    impl StreamSink for Sink {
        fn data(&self, payload: Vec<u8>) -> bool {
            self.0.frames.lock().unwrap().push(payload);
            true
        }
        fn try_data(&self, payload: Vec<u8>) -> bool {
            self.data(payload)
        }
        fn opened(&self, _: &StreamInfo) {}
        fn closed(&self, info: &StreamInfo, stats: &StreamStats, _: &str) {
            self.0.closed.lock().unwrap().push((info.id, *stats));
        }
    }

    fn bodies(c: &Captured) -> Vec<Vec<u8>> {
        c.frames
            .lock()
            .unwrap()
            .iter()
            .map(|p| match StreamData::decode(p.clone()).unwrap() {
                StreamData::Frame { body, .. } => body,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn latest_wins_keeps_only_the_newest_frame_until_credit() {
        let c = Arc::new(Captured::default());
        let hub = StreamHub::new(Box::new(Sink(Arc::clone(&c))));
        let id = hub
            .open("p", "screen", "image/png", Mode::LatestWins)
            .unwrap();
        let never = || false;
        for i in 0..10u8 {
            let sent = hub.send("p", id, vec![i], &never).unwrap();
            assert_eq!(sent.credit, 0);
        }
        assert!(bodies(&c).is_empty(), "nothing flows before credit");
        hub.on_operator_data(StreamData::Credit {
            stream: id,
            bytes: 1,
        });
        assert_eq!(bodies(&c), vec![vec![9]], "only the newest frame went");
        hub.close("p", id, "done").unwrap();
        let closed = c.closed.lock().unwrap();
        assert_eq!(closed[0].1.dropped, 9);
        assert_eq!(closed[0].1.frames, 1);
    }

    #[test]
    fn queued_send_waits_for_credit_and_others_cannot_touch_it() {
        let c = Arc::new(Captured::default());
        let hub = StreamHub::new(Box::new(Sink(Arc::clone(&c))));
        let id = hub
            .open("p", "data", "application/octet-stream", Mode::Queued)
            .unwrap();
        assert!(hub.credit("q", id).is_err(), "another plugin's stream");
        let h2 = Arc::clone(&hub);
        let t = std::thread::spawn(move || h2.send("p", id, vec![7; 10], &|| false));
        std::thread::sleep(Duration::from_millis(150));
        assert!(bodies(&c).is_empty(), "waits without credit");
        hub.on_operator_data(StreamData::Credit {
            stream: id,
            bytes: 100,
        });
        let sent = t.join().unwrap().unwrap();
        assert_eq!(sent.credit, 90);
        assert_eq!(bodies(&c), vec![vec![7; 10]]);
        hub.on_operator_data(StreamData::Input {
            stream: id,
            body: b"key a".to_vec(),
        });
        assert_eq!(
            hub.recv("p", id, Duration::from_millis(10)).unwrap(),
            Some(b"key a".to_vec())
        );
        assert_eq!(hub.recv("p", id, Duration::from_millis(10)).unwrap(), None);
        hub.close_all("session over");
        assert!(hub.send("p", id, vec![1], &|| false).is_err());
    }
}
