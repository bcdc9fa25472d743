//! The clipboard's text both ways while sharing (`clipboard.text`, asked
//! of the customer separately from viewing and control):
//!
//! - `RequestClipboard` asks (a `clipboard-read`); the answer goes to the
//!   operator as a status line, and once allowed the clipboard's text as a
//!   `Clipboard` message;
//! - while allowed, the clipboard is looked at every [`CLIPBOARD_POLL_MS`]
//!   on the frame timer, and its text goes to the operator whenever it
//!   changed (only when the stream's credit takes it: sending never waits);
//! - the operator's `Clipboard` texts are written with `clipboard-write`
//!   (the first one asks, unless a request did); the next look does not
//!   send them back.
//!
//! The text may be a secret: it is never logged or reported, and only a
//! hash of the last one is kept.

use lifeline_screen_format::{clipboard_fits, Level, Message, MAX_CLIPBOARD_BYTES};

use super::{Sharing, Stop};
use crate::api::{error_text, Host, HostError};

/// How often the customer's clipboard is looked at while access is
/// allowed, in milliseconds: a copy reaches the operator within half a
/// second, and the host is asked twice a second (it asks the application
/// holding the clipboard only when that changed).
pub const CLIPBOARD_POLL_MS: u64 = 500;
/// The status line when the customer allows the clipboard.
pub const CLIPBOARD_ALLOWED: &str = "clipboard access allowed";
/// The status line and report line when the customer (or the agent's
/// policy) refuses it; the host's reason follows in parentheses.
pub const CLIPBOARD_REFUSED: &str = "clipboard access was not allowed";

/// Whether the clipboard's text goes both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Not asked yet (a request or the operator's first text asks).
    NotAsked,
    Allowed,
    /// The customer refused: the operator's texts are dropped until the
    /// operator asks again.
    Refused,
}

/// The clipboard's side of a share.
#[derive(Debug)]
pub(super) struct ClipboardSync {
    access: Access,
    /// Hash of the clipboard's text as last seen or written (`None`:
    /// empty); `None` before the first look.
    last: Option<Option<u64>>,
    /// A changed text waiting for the stream's credit.
    pending: Option<String>,
    /// When the clipboard is looked at next (the plugin's clock).
    next_poll_us: u64,
    /// The problem last shown to the operator (shown once).
    problem: Option<String>,
}

impl Default for ClipboardSync {
    fn default() -> Self {
        ClipboardSync {
            access: Access::NotAsked,
            last: None,
            pending: None,
            next_poll_us: 0,
            problem: None,
        }
    }
}

fn hash(text: Option<&str>) -> Option<u64> {
    text.map(|t| xxhash_rust::xxh3::xxh3_64(t.as_bytes()))
}

impl Sharing {
    /// Whether the clipboard is shared.
    pub fn clipboard_access(&self) -> Access {
        self.clipboard.access
    }

    /// `RequestClipboard`: a read asks the customer; the answer is a
    /// status line, and the text follows.
    pub(super) fn request_clipboard(&mut self, host: &mut dyn Host) -> Result<(), Stop> {
        match host.clipboard_read() {
            Ok(text) => {
                self.clipboard_allowed(host)?;
                // Asked for: the current text goes again.
                self.clipboard.last = None;
                self.clipboard_seen(host, text)?;
                self.clipboard_send(host)
            }
            Err(HostError::Denied(why)) => self.clipboard_refused(host, &why),
            Err(e) => {
                // Allowed (the host asks before it reads), but unreadable.
                self.clipboard.access = Access::Allowed;
                self.clipboard_problem(host, error_text(&e))
            }
        }
    }

    /// The operator's text for the customer's clipboard.
    pub(super) fn write_clipboard(&mut self, host: &mut dyn Host, text: &str) -> Result<(), Stop> {
        if self.clipboard.access == Access::Refused {
            return Ok(());
        }
        match host.clipboard_write(text) {
            Ok(()) => {
                if self.clipboard.access == Access::NotAsked {
                    self.clipboard_allowed(host)?;
                }
                // What the operator wrote is not sent back.
                self.clipboard.last = Some(hash(Some(text)));
                self.clipboard.pending = None;
                Ok(())
            }
            Err(HostError::Denied(why)) => self.clipboard_refused(host, &why),
            Err(e) => self.clipboard_problem(host, error_text(&e)),
        }
    }

    /// On the frame timer: looks at the clipboard when it is time, and
    /// sends a changed text when the credit takes it.
    pub(super) fn clipboard_tick(&mut self, host: &mut dyn Host) -> Result<(), Stop> {
        if self.clipboard.access != Access::Allowed {
            return Ok(());
        }
        let now = host.now_us();
        if now >= self.clipboard.next_poll_us {
            self.clipboard.next_poll_us = now + CLIPBOARD_POLL_MS * 1000;
            match host.clipboard_read() {
                Ok(text) => self.clipboard_seen(host, text)?,
                Err(HostError::Denied(why)) => return self.clipboard_refused(host, &why),
                Err(e) => return self.clipboard_problem(host, error_text(&e)),
            }
        }
        self.clipboard_send(host)
    }

    fn clipboard_allowed(&mut self, host: &mut dyn Host) -> Result<(), Stop> {
        self.clipboard.access = Access::Allowed;
        self.clipboard.problem = None;
        let now = host.now_us();
        self.clipboard.next_poll_us = now + CLIPBOARD_POLL_MS * 1000;
        self.status(host, Level::Info, CLIPBOARD_ALLOWED)
    }

    fn clipboard_refused(&mut self, host: &mut dyn Host, why: &str) -> Result<(), Stop> {
        self.clipboard = ClipboardSync {
            access: Access::Refused,
            ..ClipboardSync::default()
        };
        let text = format!("{CLIPBOARD_REFUSED} ({why})");
        let _ = host.report_line(&format!("screen: {text}"));
        self.status(host, Level::Warning, &text)
    }

    /// A problem with the clipboard, said to the operator once.
    fn clipboard_problem(&mut self, host: &mut dyn Host, text: &str) -> Result<(), Stop> {
        if self.clipboard.problem.as_deref() == Some(text) {
            return Ok(());
        }
        self.clipboard.problem = Some(text.to_string());
        self.status(host, Level::Warning, &format!("clipboard: {text}"))
    }

    /// The clipboard's text as just read: a changed text waits to be sent.
    fn clipboard_seen(&mut self, host: &mut dyn Host, text: Option<String>) -> Result<(), Stop> {
        let h = hash(text.as_deref());
        if self.clipboard.last == Some(h) {
            return Ok(());
        }
        self.clipboard.last = Some(h);
        self.clipboard.pending = None;
        let Some(text) = text else {
            // Emptied: the operator keeps the last text.
            return Ok(());
        };
        if !clipboard_fits(&text) {
            let why = format!(
                "the customer copied {} KiB of text, more than the screen stream carries ({} KiB); it is not sent",
                text.len() >> 10,
                MAX_CLIPBOARD_BYTES >> 10
            );
            return self.clipboard_problem(host, &why);
        }
        self.clipboard.problem = None;
        self.clipboard.pending = Some(text);
        Ok(())
    }

    /// Sends the waiting text when the stream's credit takes it whole.
    fn clipboard_send(&mut self, host: &mut dyn Host) -> Result<(), Stop> {
        let Some(len) = self.clipboard.pending.as_ref().map(String::len) else {
            return Ok(());
        };
        let credit = host.stream_credit(self.stream).map_err(Stop::stream)?;
        // Tag and length before the text.
        if credit < (len + 5) as u64 {
            return Ok(());
        }
        if let Some(text) = self.clipboard.pending.take() {
            self.send(host, &Message::Clipboard { text })?;
        }
        Ok(())
    }
}
