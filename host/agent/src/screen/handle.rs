//! How plugin calls reach the session's screen: a session port holds a
//! [`PortScreen`] and hands each call a [`ScreenHandle`] (the
//! [`ScreenAccess`] of the runtime) that knows the operator (for the
//! indicator) and the call (for report lines).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lifeline_runtime::{Capability, HostError, ScreenAccess, wit};

use super::{SessionScreen, WITHDRAWN, lock};

/// The session's screen as one plugin call (or the long-lived plugins)
/// sees it.
pub struct ScreenHandle {
    screen: Arc<SessionScreen>,
    operator: String,
    call_id: u64,
}

impl ScreenAccess for ScreenHandle {
    fn available(&self) -> Result<(), HostError> {
        self.screen.available()
    }
    fn open(&self, plugin: &str) -> Result<wit::ScreenInfo, HostError> {
        self.screen.open(plugin, &self.operator, self.call_id)
    }
    fn sharing(&self, plugin: &str) -> bool {
        self.screen.sharing(plugin)
    }
    fn changes(&self, plugin: &str) -> Result<wit::ScreenChanges, HostError> {
        self.screen.changes(plugin)
    }
    fn read(&self, plugin: &str, areas: &[wit::Rect], out: &mut Vec<u8>) -> Result<(), HostError> {
        self.screen.read(plugin, areas, out)
    }
    fn cursor(&self, plugin: &str) -> Result<wit::CursorState, HostError> {
        self.screen.cursor(plugin)
    }
    fn close(&self, plugin: &str) {
        self.screen.close(plugin);
    }
    fn input(&self, plugin: &str, events: &[wit::InputEvent]) -> Result<(), HostError> {
        self.screen.input(plugin, events)
    }
    fn clipboard_read(&self, plugin: &str) -> Result<Option<String>, HostError> {
        self.screen.clipboard_read(plugin)
    }
    fn clipboard_write(&self, plugin: &str, text: &str) -> Result<(), HostError> {
        self.screen.clipboard_write(plugin, text)
    }
}

/// A session port's link to the screen: which of the customer's
/// withdrawals it has passed on (`SessionPort::take_withdrawn`: each port
/// hears each withdrawal once, so every call holding a grant forgets it).
pub struct PortScreen {
    screen: Arc<SessionScreen>,
    seen: Mutex<HashMap<String, u64>>,
}

impl PortScreen {
    /// A port created now: withdrawals before it concern it not (it holds
    /// no grant from before).
    pub fn new(screen: Arc<SessionScreen>) -> PortScreen {
        let seen = Mutex::new(screen.all_withdrawals());
        PortScreen { screen, seen }
    }

    /// The screen for a call of this port, on behalf of `operator`.
    pub fn handle(&self, operator: &str, call_id: u64) -> Arc<dyn ScreenAccess> {
        Arc::new(ScreenHandle {
            screen: Arc::clone(&self.screen),
            operator: operator.to_string(),
            call_id,
        })
    }

    /// `screen.capture`, `input.control` and `clipboard.text` when the
    /// customer withdrew them from `plugin` since this port last asked.
    pub fn take_withdrawn(&self, plugin: &str) -> Vec<Capability> {
        let now = self.screen.withdrawals(plugin);
        let mut seen = lock(&self.seen);
        let before = seen.insert(plugin.to_string(), now).unwrap_or(0);
        if now > before {
            WITHDRAWN.to_vec()
        } else {
            Vec::new()
        }
    }
}
