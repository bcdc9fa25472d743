//! The screen calls of [`CallContext`]: `screen-*` (`screen.capture`),
//! `input-send` (`input.control`) and `clipboard-*` (`clipboard.text`).
//! Only `screen-open` starts a share; input and the clipboard work on an
//! open share only, and ask the customer on their first use.

use std::sync::Arc;

use super::{CallContext, HostError, off_the_clock};
use crate::capability::HostCall;
use crate::screen::{self as screen_limits, ScreenAccess};
use crate::wit;

impl CallContext {
    fn screen(&mut self, call: HostCall) -> Result<Arc<dyn ScreenAccess>, HostError> {
        self.check(call)?;
        self.port
            .natives()
            .and_then(|n| n.screen())
            .ok_or_else(|| HostError::Failed(screen_limits::NOT_SUPPORTED.to_string()))
    }

    /// Starts sharing the screen (asks the customer first, unless there is
    /// no display to share); the layout.
    pub fn screen_open(&mut self) -> Result<wit::ScreenInfo, HostError> {
        if self.manifest.grants(HostCall::ScreenOpen.capability())
            && let Some(screen) = self.port.natives().and_then(|n| n.screen())
        {
            screen.available()?;
        }
        let screen = self.screen(HostCall::ScreenOpen)?;
        let id = self.manifest.id.clone();
        off_the_clock(&mut self.host_wait, || screen.open(&id))
    }

    pub fn screen_changes(&mut self) -> Result<wit::ScreenChanges, HostError> {
        let screen = self.screen(HostCall::ScreenChanges)?;
        screen.changes(&self.manifest.id)
    }

    pub fn screen_read(&mut self, areas: &[wit::Rect]) -> Result<Vec<u8>, HostError> {
        let screen = self.screen(HostCall::ScreenRead)?;
        let size = screen_limits::read_size(areas)?;
        let mut out = Vec::with_capacity(size);
        screen.read(&self.manifest.id, areas, &mut out)?;
        Ok(out)
    }

    pub fn screen_cursor(&mut self) -> Result<wit::CursorState, HostError> {
        let screen = self.screen(HostCall::ScreenCursor)?;
        screen.cursor(&self.manifest.id)
    }

    pub fn screen_close(&mut self) -> Result<(), HostError> {
        let screen = self.screen(HostCall::ScreenClose)?;
        screen.close(&self.manifest.id);
        Ok(())
    }

    /// Injects input. Only into an open share: without one nothing is
    /// asked (a stopped share asks nothing until the operator shares again).
    pub fn input_send(&mut self, events: &[wit::InputEvent]) -> Result<(), HostError> {
        if events.len() > screen_limits::MAX_INPUT_EVENTS {
            return Err(HostError::Limit(format!(
                "input-send carries {} events; at most {} in one call",
                events.len(),
                screen_limits::MAX_INPUT_EVENTS
            )));
        }
        let screen = self.open_share(HostCall::InputSend, "input")?;
        screen.input(&self.manifest.id, events)
    }

    /// The text on the shared display's clipboard; `None` when it is empty
    /// or holds no text. Only during an open share, like input; the first
    /// use in an instance asks the customer (`clipboard.text`). Waiting for
    /// the application that holds the clipboard is off the plugin's clock.
    pub fn clipboard_read(&mut self) -> Result<Option<String>, HostError> {
        let screen = self.open_share(HostCall::ClipboardRead, "the clipboard")?;
        let id = self.manifest.id.clone();
        let text = off_the_clock(&mut self.host_wait, || screen.clipboard_read(&id))?;
        if let Some(t) = &text {
            screen_limits::clipboard_size(t.len())?;
        }
        Ok(text)
    }

    /// Puts `text` on the shared display's clipboard (the agent holds it
    /// until someone else copies). Only during an open share; the first use
    /// in an instance asks the customer (`clipboard.text`).
    pub fn clipboard_write(&mut self, text: &str) -> Result<(), HostError> {
        screen_limits::clipboard_size(text.len())?;
        let screen = self.open_share(HostCall::ClipboardWrite, "the clipboard")?;
        let id = self.manifest.id.clone();
        off_the_clock(&mut self.host_wait, || screen.clipboard_write(&id, text))
    }

    /// The screen for `call`, which works on the plugin's open share only:
    /// without one it is `denied` before anything is asked (a share the
    /// customer stopped asks nothing until the operator shares again);
    /// with one, the permission gate (and the customer's consent).
    fn open_share(
        &mut self,
        call: HostCall,
        what: &str,
    ) -> Result<Arc<dyn ScreenAccess>, HostError> {
        let screen = self
            .port
            .natives()
            .and_then(|n| n.screen())
            .ok_or_else(|| HostError::Failed(screen_limits::NOT_SUPPORTED.to_string()))?;
        if !screen.sharing(&self.manifest.id) {
            return Err(HostError::Denied(format!(
                "{what} needs an open screen share (screen-open)"
            )));
        }
        self.check(call)?;
        Ok(screen)
    }
}
