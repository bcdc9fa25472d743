//! The host calls sharing needs, as a trait: the plugin implements it on
//! the WIT imports (`lib.rs`), the tests on a simulated display and
//! operator (`testutil.rs`). The records are the WIT's own.

pub use crate::lifeline::plugin::types::{
    ButtonChange, CursorImage, CursorState, HostError, InputEvent, KeyChange, Level as LogLevel,
    Monitor, PointerPosition, Rect, ScreenChanges, ScreenInfo, StreamMode, StreamSent,
};

/// What the plugin asks of the host (see `sdk/wit/lifeline-plugin.wit`).
pub trait Host {
    /// Microseconds on a clock that only goes forward.
    fn now_us(&mut self) -> u64;
    fn log(&mut self, level: LogLevel, message: &str);
    fn report_line(&mut self, text: &str) -> Result<(), HostError>;
    fn screen_open(&mut self) -> Result<ScreenInfo, HostError>;
    fn screen_changes(&mut self) -> Result<ScreenChanges, HostError>;
    fn screen_read(&mut self, areas: &[Rect]) -> Result<Vec<u8>, HostError>;
    fn screen_cursor(&mut self) -> Result<CursorState, HostError>;
    fn screen_close(&mut self) -> Result<(), HostError>;
    fn input_send(&mut self, events: &[InputEvent]) -> Result<(), HostError>;
    fn clipboard_read(&mut self) -> Result<Option<String>, HostError>;
    fn clipboard_write(&mut self, text: &str) -> Result<(), HostError>;
    fn stream_open(
        &mut self,
        name: &str,
        content_type: &str,
        mode: StreamMode,
    ) -> Result<u32, HostError>;
    fn stream_credit(&mut self, stream: u32) -> Result<u64, HostError>;
    fn stream_send(&mut self, stream: u32, frame: &[u8]) -> Result<StreamSent, HostError>;
    fn stream_recv(&mut self, stream: u32, timeout_ms: u32) -> Result<Option<Vec<u8>>, HostError>;
    fn stream_close(&mut self, stream: u32) -> Result<(), HostError>;
    fn timer_set(&mut self, after_ms: u32) -> Result<u32, HostError>;
}

/// The host's explanation, whatever the kind of error.
pub fn error_text(e: &HostError) -> &str {
    match e {
        HostError::NotDeclared(m)
        | HostError::Denied(m)
        | HostError::Limit(m)
        | HostError::Failed(m) => m,
    }
}
