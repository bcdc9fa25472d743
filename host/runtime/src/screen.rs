//! Screen sharing and remote control as host capabilities: `screen.capture`
//! (the display's layout, what changed, the pixels of given areas, the
//! pointer), `input.control` (keyboard and pointer events) and
//! `clipboard.text` (the clipboard's text, both ways). The agent
//! implements [`ScreenAccess`] natively (X11: MIT-SHM, XDamage, RandR,
//! XFixes, XTest, selections) and shows the customer the sharing
//! indicator; the plugin owns tiling, change detection, encoding and
//! pacing.

use crate::host::{HostError, NOT_ON_THIS_HOST};
use crate::wit;

/// Most pixel bytes one `screen-read` may return (a 4K display, 4 bytes a
/// pixel, with room to spare).
///
/// Threat: a plugin asking for the same large area many times in one call
/// would make the agent allocate without bound; past this the call is a
/// `limit` error.
pub const MAX_SCREEN_READ_BYTES: usize = 64 << 20;
/// Most areas one `screen-read` may name (a 4K display in 64-pixel tiles).
pub const MAX_SCREEN_READ_AREAS: usize = 2048;
/// Most input events one `input-send` may carry.
pub const MAX_INPUT_EVENTS: usize = 1024;
/// Most bytes of clipboard text (UTF-8) one `clipboard-read` returns or one
/// `clipboard-write` takes: 1 MiB, far more than text copied by hand.
///
/// Threat: another application of the customer's (or a plugin) offering
/// or writing a huge clipboard would make the agent hold it without
/// bound; past this the call is a `limit` error.
pub const MAX_CLIPBOARD_BYTES: usize = 1 << 20;

/// What the operator sees when a host has no screen to share.
pub const NOT_SUPPORTED: &str = "screen sharing is not supported on this display";

/// The agent's screen for one session. Every method is for `plugin`: a
/// share is the plugin's, opened by `open` (after the customer's consent)
/// and ended by `close`, by the customer's Stop, or by the session's end.
/// `Err(Denied)` when the plugin has no open share (never opened, or the
/// customer stopped it), `Err(Failed)` when the display cannot be used.
pub trait ScreenAccess: Send + Sync {
    /// Whether there is a display to share at all, asked before the
    /// customer is (nobody is asked to allow what cannot happen): `Err`
    /// ([`NOT_SUPPORTED`] and why) on Wayland or without a display.
    fn available(&self) -> Result<(), HostError> {
        Ok(())
    }
    /// Starts (or continues) the plugin's share and shows the indicator;
    /// the layout of the display.
    fn open(&self, plugin: &str) -> Result<wit::ScreenInfo, HostError>;
    /// Whether the plugin has an open share.
    fn sharing(&self, plugin: &str) -> bool;
    /// Areas changed since the previous call, and a new layout.
    fn changes(&self, plugin: &str) -> Result<wit::ScreenChanges, HostError>;
    /// The pixels of `areas` (BGRX, rows top to bottom), appended to `out`.
    fn read(&self, plugin: &str, areas: &[wit::Rect], out: &mut Vec<u8>) -> Result<(), HostError>;
    /// The pointer, with its image when it changed.
    fn cursor(&self, plugin: &str) -> Result<wit::CursorState, HostError>;
    /// Ends the plugin's share (nothing when there is none).
    fn close(&self, plugin: &str);
    /// Injects input events on the shared display.
    fn input(&self, plugin: &str, events: &[wit::InputEvent]) -> Result<(), HostError>;
    /// The text on the shared display's clipboard (at most
    /// [`MAX_CLIPBOARD_BYTES`], else `Err(Limit)`); `None` when it is
    /// empty or holds no text. The text is the customer's: never logged
    /// or reported. Default: not on this host.
    fn clipboard_read(&self, plugin: &str) -> Result<Option<String>, HostError> {
        let _ = plugin;
        Err(HostError::Failed(format!(
            "{NOT_ON_THIS_HOST}: no clipboard"
        )))
    }
    /// Puts `text` on the shared display's clipboard, held until someone
    /// else copies or the share ends. Default: not on this host.
    fn clipboard_write(&self, plugin: &str, text: &str) -> Result<(), HostError> {
        let _ = (plugin, text);
        Err(HostError::Failed(format!(
            "{NOT_ON_THIS_HOST}: no clipboard"
        )))
    }
}

/// `Ok` when `bytes` of clipboard text are within [`MAX_CLIPBOARD_BYTES`],
/// else the error naming the limit.
pub fn clipboard_size(bytes: usize) -> Result<(), HostError> {
    if bytes > MAX_CLIPBOARD_BYTES {
        return Err(HostError::Limit(format!(
            "clipboard text of {bytes} bytes; at most {MAX_CLIPBOARD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Bytes `areas` take as BGRX pixels, or the error naming the limit.
pub fn read_size(areas: &[wit::Rect]) -> Result<usize, HostError> {
    if areas.len() > MAX_SCREEN_READ_AREAS {
        return Err(HostError::Limit(format!(
            "screen-read names {} areas; at most {MAX_SCREEN_READ_AREAS} in one call",
            areas.len()
        )));
    }
    let mut total: usize = 0;
    for a in areas {
        let bytes = (a.width as usize)
            .saturating_mul(a.height as usize)
            .saturating_mul(4);
        total = total.saturating_add(bytes);
    }
    if total > MAX_SCREEN_READ_BYTES {
        return Err(HostError::Limit(format!(
            "screen-read asks for {total} bytes of pixels; at most {MAX_SCREEN_READ_BYTES} in one call"
        )));
    }
    Ok(total)
}
