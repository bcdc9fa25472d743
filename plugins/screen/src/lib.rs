//! Screen sharing: the host captures (X11, XDamage, MIT-SHM) and injects
//! input (XTest) after the customer's consent; this plugin owns the rest —
//! which tiles changed, how each is encoded, how fast frames go — and
//! speaks the screen stream's wire format (`sdk/screen-format`) to the
//! operator. A long-lived plugin: its `live` commands and its session
//! events share one instance, whose state is [`SERVICE`].
//!
//! Only this file touches the WIT bindings; the logic lives in modules
//! tested on the build machine (`cargo test`).

wit_bindgen::generate!({
    world: "service",
    path: "../../sdk/wit",
});

pub mod api;
pub mod batch;
pub mod encode;
pub mod pacing;
pub mod picture;
pub mod pixels;
pub mod service;
pub mod share;
pub mod tiles;
pub mod zlib;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod clipboard_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use lifeline::plugin::host;
use lifeline::plugin::types::{
    CursorState, HostError, InputEvent, Level, Rect, ScreenChanges, ScreenInfo, StreamMode,
    StreamSent,
};

use crate::service::Service;
use crate::share::Stop;

/// The plugin's state, kept in the long-lived instance between calls.
static SERVICE: Mutex<Service> = Mutex::new(Service::new());

/// The host as the WIT imports reach it.
struct Wit;

/// When the instance first read the clock.
static EPOCH: OnceLock<Instant> = OnceLock::new();

impl api::Host for Wit {
    fn now_us(&mut self) -> u64 {
        EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
    }
    fn log(&mut self, level: Level, message: &str) {
        host::log(level, message);
    }
    fn report_line(&mut self, text: &str) -> Result<(), HostError> {
        host::report_line(text)
    }
    fn screen_open(&mut self) -> Result<ScreenInfo, HostError> {
        host::screen_open()
    }
    fn screen_changes(&mut self) -> Result<ScreenChanges, HostError> {
        host::screen_changes()
    }
    fn screen_read(&mut self, areas: &[Rect]) -> Result<Vec<u8>, HostError> {
        host::screen_read(areas)
    }
    fn screen_cursor(&mut self) -> Result<CursorState, HostError> {
        host::screen_cursor()
    }
    fn screen_close(&mut self) -> Result<(), HostError> {
        host::screen_close()
    }
    fn input_send(&mut self, events: &[InputEvent]) -> Result<(), HostError> {
        host::input_send(events)
    }
    fn clipboard_read(&mut self) -> Result<Option<String>, HostError> {
        host::clipboard_read()
    }
    fn clipboard_write(&mut self, text: &str) -> Result<(), HostError> {
        host::clipboard_write(text)
    }
    fn stream_open(
        &mut self,
        name: &str,
        content_type: &str,
        mode: StreamMode,
    ) -> Result<u32, HostError> {
        host::stream_open(name, content_type, mode)
    }
    fn stream_credit(&mut self, stream: u32) -> Result<u64, HostError> {
        host::stream_credit(stream)
    }
    fn stream_send(&mut self, stream: u32, frame: &[u8]) -> Result<StreamSent, HostError> {
        host::stream_send(stream, frame)
    }
    fn stream_recv(&mut self, stream: u32, timeout_ms: u32) -> Result<Option<Vec<u8>>, HostError> {
        host::stream_recv(stream, timeout_ms)
    }
    fn stream_close(&mut self, stream: u32) -> Result<(), HostError> {
        host::stream_close(stream)
    }
    fn timer_set(&mut self, after_ms: u32) -> Result<u32, HostError> {
        host::timer_set(after_ms)
    }
}

/// Runs `f` on the plugin's state (a panic in an earlier call does not
/// poison it for good: the state is whatever that call left).
fn with_service<R>(f: impl FnOnce(&mut Service, &mut Wit) -> R) -> R {
    let mut service = SERVICE.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut service, &mut Wit)
}

/// An argument as text (bytes read as UTF-8, lossily).
fn text(arg: Arg) -> String {
    match arg {
        Arg::Text(t) => t,
        Arg::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

struct Screen;

impl Guest for Screen {
    fn run(command: String, args: Vec<Arg>) -> Result<String, String> {
        let args: Vec<String> = args.into_iter().map(text).collect();
        with_service(|s, h| s.run(h, &command, &args))
    }

    fn start(reason: StartReason) -> Result<(), String> {
        if matches!(reason, StartReason::Reload | StartReason::Restart) {
            // A previous instance may have left the screen open (and the
            // customer's indicator on); its sharing is gone with it.
            let _ = host::screen_close();
        }
        Ok(())
    }

    fn on_event(event: SessionEvent) -> Result<(), String> {
        with_service(|s, h| match event {
            SessionEvent::Timer(id) => s.on_timer(h, id),
            SessionEvent::StreamInput(id) => s.on_stream_input(h, id),
            SessionEvent::Ending(reason) => {
                s.end(h, Stop::Ended(format!("the session is ending ({reason})")))
            }
            // No operator is attached any more: nobody watches, and the
            // customer's indicator must not go on naming one.
            SessionEvent::OperatorLeft(name) if s.is_sharing() => s.end(
                h,
                Stop::Ended(format!("the operator {name} left the session")),
            ),
            _ => {}
        });
        Ok(())
    }

    fn stop() {
        with_service(|s, h| s.end(h, Stop::Ended("the plugin stopped".into())));
    }
}

export!(Screen);
