//! Screen sharing and remote control, natively: the agent's
//! [`lifeline_runtime::ScreenAccess`] for one session, on an X11 display.
//!
//! - [`capture`]: a share's own X connection; layout (RandR monitors),
//!   changes (XDamage + XFixes regions), pixels ([`pixels`]: MIT-SHM into a
//!   sealed memfd, [`shm`], else plain `GetImage`), the pointer ([`cursor`]);
//! - [`input`]: XTest keyboard and pointer events, keysyms through the
//!   customer's keyboard mapping ([`keymap`]);
//! - [`clipboard`]: the CLIPBOARD selection's text, read and owned on the
//!   operator's behalf (`clipboard.text`), on a connection of its own;
//! - [`indicator`]: the window telling the customer who sees the screen,
//!   with a Stop button that withdraws the consent;
//! - [`display`]: which display (`[screen] display`, `$DISPLAY`), or why
//!   there is none (Wayland, no display).
//!
//! A share is one plugin's: opened by `screen-open` (after the customer's
//! consent), ended by `screen-close`, by the customer's Stop, or by the end
//! of the session. The plugin owns tiling, encoding and pacing.

mod capture;
pub mod clipboard;
#[cfg(test)]
mod clipboard_tests;
mod cursor;
pub mod display;
mod error;
mod events;
pub mod guard;
mod handle;
pub mod indicator;
mod input;
mod keymap;
mod pixels;
mod rects;
mod shm;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod xvfb;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use lifeline_runtime::{Capability, HostError, wit};

use crate::channel::CustomerEvent;

use capture::Capture;
pub use capture::{Layout, MonitorArea, WHOLE_SCREEN_MONITOR};
use clipboard::Clipboard;
pub use error::ScreenError;
pub use events::{SessionEvents, ShareEvents};
pub use handle::{PortScreen, ScreenHandle};
pub use indicator::INDICATOR_TITLE;
use indicator::Indicator;
use input::Injector;
pub use rects::{Area, MAX_CHANGED_AREAS};

/// What the customer's Stop withdraws from the plugin.
pub const WITHDRAWN: [Capability; 3] = [
    Capability::ScreenCapture,
    Capability::InputControl,
    Capability::ClipboardText,
];
/// The answer to a screen call after the customer stopped the share, and
/// the session report's line.
pub const STOPPED_BY_CUSTOMER: &str = "the customer stopped screen sharing";

/// Whether a run-as login suspends the customer's input, and on which X
/// display ([`crate::runas::RunAs`]).
pub trait Suspension: Send + Sync {
    fn suspended_display(&self) -> Option<String>;
}

impl Suspension for crate::runas::RunAs {
    fn suspended_display(&self) -> Option<String> {
        crate::runas::RunAs::suspended_display(self)
    }
}

/// The screen of one session: its shares (one per plugin), the indicator.
pub struct SessionScreen {
    inner: Arc<Inner>,
}

struct Inner {
    /// The display to share, or why there is none.
    display: Result<String, String>,
    suspension: Arc<dyn Suspension>,
    events: Arc<dyn ShareEvents>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    shares: BTreeMap<String, Arc<Share>>,
    /// Plugins whose share the customer stopped (until they open again).
    stopped: HashSet<String>,
    /// Per plugin: how often the customer withdrew its capabilities.
    withdrawals: HashMap<String, u64>,
    /// Shown while `shares` is not empty.
    indicator: Option<Indicator>,
    /// The session is over: nothing opens any more (a plugin call still
    /// running cannot bring the indicator back).
    ended: bool,
}

/// One plugin's open share.
struct Share {
    plugin: String,
    operator: String,
    /// The plugin call that opened it (its report lines go there).
    call_id: u64,
    display: String,
    capture: Mutex<Capture>,
    input: Mutex<InputState>,
    clipboard: Mutex<ClipboardState>,
}

/// A share's clipboard, started by its first `clipboard-*` call.
#[derive(Default)]
struct ClipboardState {
    clipboard: Option<Clipboard>,
    /// The first read and the first write are reported (never the text).
    read: bool,
    written: bool,
}

#[derive(Default)]
struct InputState {
    injector: Option<Injector>,
    /// The first `input-send` is reported.
    controlled: bool,
    /// A refusal during the current run-as suspension was reported.
    refusal_reported: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SessionScreen {
    /// The screen of a session sharing `display` (or, `Err`, why none).
    pub fn new(
        display: Result<String, String>,
        suspension: Arc<dyn Suspension>,
        events: Arc<dyn ShareEvents>,
    ) -> SessionScreen {
        SessionScreen {
            inner: Arc::new(Inner {
                display,
                suspension,
                events,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Starts (or continues) `plugin`'s share for `operator` and shows
    /// the indicator; the layout.
    pub fn open(
        &self,
        plugin: &str,
        operator: &str,
        call_id: u64,
    ) -> Result<wit::ScreenInfo, HostError> {
        Ok(self.inner.open(plugin, operator, call_id)?)
    }

    /// Whether this agent has a display to share (see
    /// [`lifeline_runtime::ScreenAccess::available`]).
    pub fn available(&self) -> Result<(), HostError> {
        match &self.inner.display {
            Ok(_) => Ok(()),
            Err(why) => Err(ScreenError::NotSupported(why.clone()).into()),
        }
    }

    pub fn sharing(&self, plugin: &str) -> bool {
        lock(&self.inner.state).shares.contains_key(plugin)
    }

    pub fn changes(&self, plugin: &str) -> Result<wit::ScreenChanges, HostError> {
        let share = self.inner.share(plugin)?;
        let changes = lock(&share.capture).changes()?;
        Ok(changes)
    }

    pub fn read(
        &self,
        plugin: &str,
        areas: &[wit::Rect],
        out: &mut Vec<u8>,
    ) -> Result<(), HostError> {
        lifeline_runtime::screen::read_size(areas)?;
        let share = self.inner.share(plugin)?;
        let areas: Vec<Area> = areas.iter().map(Area::from_wit).collect();
        lock(&share.capture).read(&areas, out)?;
        Ok(())
    }

    pub fn cursor(&self, plugin: &str) -> Result<wit::CursorState, HostError> {
        let share = self.inner.share(plugin)?;
        let state = lock(&share.capture).cursor()?;
        Ok(state)
    }

    pub fn input(&self, plugin: &str, events: &[wit::InputEvent]) -> Result<(), HostError> {
        self.inner.input(plugin, events)
    }

    /// The text on the shared display's clipboard (`clipboard-read`).
    pub fn clipboard_read(&self, plugin: &str) -> Result<Option<String>, HostError> {
        self.inner
            .clipboard(plugin, ClipboardUse::Read, |c| c.read())
    }

    /// Puts `text` on the shared display's clipboard (`clipboard-write`).
    pub fn clipboard_write(&self, plugin: &str, text: &str) -> Result<(), HostError> {
        lifeline_runtime::screen::clipboard_size(text.len())?;
        self.inner
            .clipboard(plugin, ClipboardUse::Write, |c| c.write(text.to_string()))
    }

    /// Ends `plugin`'s share (nothing when there is none).
    pub fn close(&self, plugin: &str) {
        self.inner.close(Some(plugin), "screen sharing closed");
    }

    /// Ends every share: the session is over, and no share opens again.
    pub fn close_all(&self) {
        self.inner.state().ended = true;
        self.inner
            .close(None, "screen sharing ended with the session");
    }

    /// The customer clicked Stop: every share ends and its plugin loses
    /// `screen.capture`, `input.control` and `clipboard.text`.
    pub fn stop_by_customer(&self) {
        self.inner.stop_by_customer();
    }

    /// How often the customer withdrew `plugin`'s capabilities so far.
    pub fn withdrawals(&self, plugin: &str) -> u64 {
        lock(&self.inner.state)
            .withdrawals
            .get(plugin)
            .copied()
            .unwrap_or(0)
    }

    /// Every plugin's withdrawal count (a new port starts from these).
    pub fn all_withdrawals(&self) -> HashMap<String, u64> {
        lock(&self.inner.state).withdrawals.clone()
    }

    /// Whether the indicator is shown.
    pub fn indicator_shown(&self) -> bool {
        lock(&self.inner.state).indicator.is_some()
    }
}

impl Drop for SessionScreen {
    fn drop(&mut self) {
        self.close_all();
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The open share of `plugin`, or why there is none.
    fn share(&self, plugin: &str) -> Result<Arc<Share>, HostError> {
        let st = self.state();
        if let Some(s) = st.shares.get(plugin) {
            return Ok(Arc::clone(s));
        }
        if st.stopped.contains(plugin) {
            return Err(HostError::Denied(STOPPED_BY_CUSTOMER.into()));
        }
        Err(HostError::Denied(
            "no open screen share: call screen-open first".into(),
        ))
    }

    fn open(
        self: &Arc<Self>,
        plugin: &str,
        operator: &str,
        call_id: u64,
    ) -> Result<wit::ScreenInfo, ScreenError> {
        let display = self.display.clone().map_err(ScreenError::NotSupported)?;
        if let Some(info) = self.current(plugin)? {
            return Ok(info);
        }
        let capture = Capture::open(&display)?;
        let (info, shm) = (capture.info(), capture.uses_shm());
        let share = Arc::new(Share {
            plugin: plugin.to_string(),
            operator: operator.to_string(),
            call_id,
            display: display.clone(),
            capture: Mutex::new(capture),
            input: Mutex::new(InputState::default()),
            clipboard: Mutex::new(ClipboardState::default()),
        });
        {
            let mut st = self.state();
            if let Some(info) = current(&st, plugin)? {
                return Ok(info);
            }
            st.stopped.remove(plugin);
            st.shares.insert(plugin.to_string(), share);
            if let Err(e) = self.show_indicator(&mut st, &display, operator) {
                st.shares.remove(plugin);
                return Err(ScreenError::Indicator(e));
            }
        }
        let how = if shm { "MIT-SHM" } else { "without MIT-SHM" };
        self.events.report(
            call_id,
            plugin,
            &format!(
                "screen sharing started: plugin {plugin}, operator {operator}, display {display}, {}x{} ({} monitor(s), {how})",
                info.width,
                info.height,
                info.monitors.len()
            ),
        );
        self.events.customer_event(CustomerEvent::Sharing {
            active: true,
            operator: operator.to_string(),
            plugin: plugin.to_string(),
            by_customer: false,
        });
        Ok(info)
    }

    /// The layout of `plugin`'s open share, if any.
    fn current(&self, plugin: &str) -> Result<Option<wit::ScreenInfo>, ScreenError> {
        current(&self.state(), plugin)
    }

    /// Shows the indicator, or updates its text to the sharing plugins.
    fn show_indicator(
        self: &Arc<Self>,
        st: &mut State,
        display: &str,
        operator: &str,
    ) -> Result<(), String> {
        let plugins: Vec<String> = st.shares.keys().cloned().collect();
        let text = indicator::message(operator, &plugins);
        if let Some(i) = &st.indicator {
            i.set_text(text);
            return Ok(());
        }
        let weak: Weak<Inner> = Arc::downgrade(self);
        let on_stop = Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.stop_by_customer();
            }
        });
        st.indicator = Some(Indicator::start(display, text, on_stop)?);
        Ok(())
    }

    fn input(&self, plugin: &str, events: &[wit::InputEvent]) -> Result<(), HostError> {
        let share = self.share(plugin)?;
        let mut input = lock(&share.input);
        if let Some(d) = self.suspension.suspended_display()
            && display::same_display(&d, &share.display)
        {
            if !std::mem::replace(&mut input.refusal_reported, true) {
                self.events.report(
                    share.call_id,
                    plugin,
                    &format!(
                        "input refused: a run-as login suspends the customer's input on display {d} (plugin {plugin})"
                    ),
                );
            }
            return Err(HostError::Failed(format!(
                "input is refused while a run-as login suspends the customer's input on display {d}; it works again after the logout"
            )));
        }
        input.refusal_reported = false;
        let (bounds, conn) = {
            let c = lock(&share.capture);
            (c.layout().bounds(), c.connection())
        };
        if input.injector.is_none() {
            input.injector = Some(Injector::new(conn.0, conn.1, &share.display)?);
        }
        if let Some(inj) = input.injector.as_mut() {
            inj.send(events, &bounds)?;
        }
        if !std::mem::replace(&mut input.controlled, true) {
            let op = &share.operator;
            self.events.report(
                share.call_id,
                plugin,
                &format!(
                    "remote control started: {op} controls the keyboard and pointer on display {} (plugin {plugin})",
                    share.display
                ),
            );
            self.events.customer(&format!(
                "* {op} now controls your keyboard and mouse (plugin {plugin})."
            ));
        }
        Ok(())
    }

    /// Runs `f` on `plugin`'s clipboard (started on first use); the first
    /// read and the first write of the share are reported.
    fn clipboard<R>(
        &self,
        plugin: &str,
        how: ClipboardUse,
        f: impl FnOnce(&Clipboard) -> Result<R, HostError>,
    ) -> Result<R, HostError> {
        let share = self.share(plugin)?;
        let mut state = lock(&share.clipboard);
        let clipboard = match state.clipboard.take() {
            Some(c) => c,
            None => Clipboard::start(&share.display)?,
        };
        let value = f(state.clipboard.insert(clipboard))?;
        let first = match how {
            ClipboardUse::Read => !std::mem::replace(&mut state.read, true),
            ClipboardUse::Write => !std::mem::replace(&mut state.written, true),
        };
        if first {
            let (op, display) = (&share.operator, &share.display);
            let (line, customer) = match how {
                ClipboardUse::Read => (
                    format!(
                        "clipboard shared: {op} receives the clipboard's text of display {display} (plugin {plugin})"
                    ),
                    format!("* {op} now receives the text you copy (plugin {plugin})."),
                ),
                ClipboardUse::Write => (
                    format!(
                        "clipboard replaced: {op} put text on the clipboard of display {display} (plugin {plugin})"
                    ),
                    format!("* {op} put text on your clipboard (plugin {plugin})."),
                ),
            };
            self.events.report(share.call_id, plugin, &line);
            self.events.customer(&customer);
        }
        Ok(value)
    }

    /// Ends `plugin`'s share (`None`: every share), reporting `why`.
    fn close(&self, plugin: Option<&str>, why: &str) {
        let (ended, indicator) = {
            let mut st = self.state();
            let ended: Vec<Arc<Share>> = match plugin {
                Some(p) => st.shares.remove(p).into_iter().collect(),
                None => std::mem::take(&mut st.shares).into_values().collect(),
            };
            if ended.is_empty() {
                return;
            }
            (ended, self.indicator_after(&mut st))
        };
        // Outside the lock: dropping the indicator waits for its thread,
        // which may be waiting for the lock (a Stop click).
        drop(indicator);
        for share in ended {
            share.end();
            self.events.report(
                share.call_id,
                &share.plugin,
                &format!("{why} (plugin {})", share.plugin),
            );
            self.events.customer_event(CustomerEvent::Sharing {
                active: false,
                operator: share.operator.clone(),
                plugin: share.plugin.clone(),
                by_customer: false,
            });
        }
    }

    /// The indicator to drop once nobody shares (else its new text).
    fn indicator_after(&self, st: &mut State) -> Option<Indicator> {
        if st.shares.is_empty() {
            return st.indicator.take();
        }
        if let (Some(i), Some(s)) = (&st.indicator, st.shares.values().next()) {
            let plugins: Vec<String> = st.shares.keys().cloned().collect();
            i.set_text(indicator::message(&s.operator, &plugins));
        }
        None
    }

    fn stop_by_customer(&self) {
        let (ended, indicator) = {
            let mut st = self.state();
            let ended: Vec<Arc<Share>> = std::mem::take(&mut st.shares).into_values().collect();
            for s in &ended {
                st.stopped.insert(s.plugin.clone());
                *st.withdrawals.entry(s.plugin.clone()).or_default() += 1;
            }
            (ended, st.indicator.take())
        };
        drop(indicator);
        let Some(first) = ended.first() else {
            return;
        };
        let stopped = CustomerEvent::Sharing {
            active: false,
            operator: first.operator.clone(),
            plugin: ended
                .iter()
                .map(|s| s.plugin.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            by_customer: true,
        };
        for share in ended {
            share.end();
            self.events.withdrawn(&share.plugin, &WITHDRAWN);
            self.events.report(
                share.call_id,
                &share.plugin,
                &format!(
                    "{STOPPED_BY_CUSTOMER} (plugin {}): {} withdrawn",
                    share.plugin,
                    withdrawn_names()
                ),
            );
        }
        self.events.customer_event(stopped);
    }
}

/// What a share's clipboard is used for (each is reported once).
#[derive(Clone, Copy)]
enum ClipboardUse {
    Read,
    Write,
}

/// "screen.capture, input.control and clipboard.text".
fn withdrawn_names() -> String {
    let names: Vec<&str> = WITHDRAWN.iter().map(|c| c.name()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// The layout of `plugin`'s open share, if any; nothing opens once the
/// session ended.
fn current(st: &State, plugin: &str) -> Result<Option<wit::ScreenInfo>, ScreenError> {
    if st.ended {
        return Err(ScreenError::Ended);
    }
    Ok(st.shares.get(plugin).map(|s| lock(&s.capture).info()))
}

impl Share {
    /// Releases what the operator still holds pressed and gives the
    /// clipboard up; the capture goes with the last reference.
    fn end(&self) {
        if let Some(inj) = lock(&self.input).injector.as_mut() {
            inj.release_all();
        }
        drop(lock(&self.clipboard).clipboard.take());
    }
}
