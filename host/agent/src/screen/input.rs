//! Injecting the operator's keyboard and pointer events (XTest
//! `FakeInput`) on the shared display.
//!
//! Keys come as keysyms and are typed with the keycode the customer's
//! keyboard mapping gives them, with Shift pressed around a keysym only on
//! the shifted level (or released around a plain one while the operator
//! holds Shift). The mapping is read again for every batch (the customer
//! may switch layouts). A keysym not on the keyboard is mapped onto a keycode
//! that types nothing, for the rest of the share. Everything still pressed,
//! and every keycode so mapped, is released and restored when the share
//! ends.

use std::sync::Arc;

use lifeline_runtime::wit;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::error::{ScreenError, XContext};
use super::keymap::{self, KeyPosition, Keymap, Level, XK_SHIFT_L};
use super::rects::Area;

/// Pointer buttons the operator may press: 1 left, 2 middle, 3 right,
/// 4/5 wheel up/down, 6/7 wheel left/right.
pub const BUTTONS: std::ops::RangeInclusive<u8> = 1..=7;

// X core event codes FakeInput takes.
const KEY_PRESS: u8 = 2;
const KEY_RELEASE: u8 = 3;
const BUTTON_PRESS: u8 = 4;
const BUTTON_RELEASE: u8 = 5;
const MOTION_NOTIFY: u8 = 6;

/// Injects input on one display.
pub struct Injector {
    conn: Arc<RustConnection>,
    root: Window,
    display: String,
    keymap: Keymap,
    /// Keycodes and buttons pressed and not yet released.
    keys_down: Vec<u8>,
    buttons_down: Vec<u8>,
    /// Keycodes given a keysym for this share (restored at the end), in
    /// the order used (the oldest is reused when none is free).
    borrowed: Vec<u8>,
    /// Releases what is held if the agent dies (started with the first
    /// batch; see `guard`).
    guard: Option<super::guard::Guard>,
}

impl Injector {
    /// XTest on the capture's connection, with the keyboard mapping.
    pub fn new(
        conn: Arc<RustConnection>,
        root: Window,
        display: &str,
    ) -> Result<Injector, ScreenError> {
        let name = x11rb::protocol::xtest::X11_EXTENSION_NAME;
        let present = x11rb::connection::RequestConnection::extension_information(&*conn, name)
            .x("cannot list the X extensions", display)?
            .is_some();
        if !present {
            return Err(ScreenError::NotSupported(format!(
                "X display {display} has no {name} extension: no remote control"
            )));
        }
        conn.xtest_get_version(2, 2)
            .x("cannot use XTEST", display)?
            .reply()
            .x("cannot use XTEST", display)?;
        let keymap = read_keymap(&conn, display)?;
        Ok(Injector {
            conn,
            root,
            display: display.to_string(),
            keymap,
            keys_down: Vec::new(),
            buttons_down: Vec::new(),
            borrowed: Vec::new(),
            guard: None,
        })
    }

    /// Injects `events` in order; `bounds`: the display (pointer positions
    /// are kept on it).
    pub fn send(&mut self, events: &[wit::InputEvent], bounds: &Area) -> Result<(), ScreenError> {
        // The customer may have switched layouts since (one round trip).
        self.keymap = read_keymap(&self.conn, &self.display)?;
        if self.guard.is_none() {
            self.guard = super::guard::Guard::start(&self.display);
        }
        let result = events.iter().try_for_each(|e| self.event(e, bounds));
        self.conn.flush().x("cannot send input", &self.display)?;
        if let Some(g) = &mut self.guard {
            g.held(&self.keys_down, &self.buttons_down);
        }
        result
    }

    fn event(&mut self, e: &wit::InputEvent, bounds: &Area) -> Result<(), ScreenError> {
        match e {
            wit::InputEvent::PointerMove(p) => {
                let x = p.x.min(bounds.width.saturating_sub(1));
                let y = p.y.min(bounds.height.saturating_sub(1));
                let x = i16::try_from(x).unwrap_or(i16::MAX);
                let y = i16::try_from(y).unwrap_or(i16::MAX);
                self.fake(MOTION_NOTIFY, 0, x, y)
            }
            wit::InputEvent::PointerButton(b) => self.button(b.button, b.pressed),
            wit::InputEvent::Key(k) => {
                if k.pressed {
                    self.key_press(k.keysym)
                } else {
                    self.key_release(k.keysym)
                }
            }
        }
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), ScreenError> {
        self.conn
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)
            .x("cannot inject input (XTEST)", &self.display)?;
        Ok(())
    }

    fn button(&mut self, button: u8, pressed: bool) -> Result<(), ScreenError> {
        if !BUTTONS.contains(&button) {
            return Err(ScreenError::Input(format!(
                "button {button} is not a pointer button (1 to 7)"
            )));
        }
        if pressed {
            self.fake(BUTTON_PRESS, button, 0, 0)?;
            if !self.buttons_down.contains(&button) {
                self.buttons_down.push(button);
            }
        } else {
            self.fake(BUTTON_RELEASE, button, 0, 0)?;
            self.buttons_down.retain(|b| *b != button);
        }
        Ok(())
    }

    fn key_press(&mut self, keysym: u32) -> Result<(), ScreenError> {
        let pos = self.position(keysym)?;
        let shifts: Vec<u8> = self
            .keys_down
            .iter()
            .copied()
            .filter(|k| self.keymap.is_shift(*k))
            .collect();
        match pos.level {
            Level::Shifted if shifts.is_empty() => {
                let shift = self.shift_keycode(keysym)?;
                self.fake(KEY_PRESS, shift, 0, 0)?;
                self.fake(KEY_PRESS, pos.keycode, 0, 0)?;
                self.fake(KEY_RELEASE, shift, 0, 0)?;
            }
            Level::Plain if !shifts.is_empty() && self.keymap.shift_matters(pos.keycode) => {
                for s in &shifts {
                    self.fake(KEY_RELEASE, *s, 0, 0)?;
                }
                self.fake(KEY_PRESS, pos.keycode, 0, 0)?;
                for s in &shifts {
                    self.fake(KEY_PRESS, *s, 0, 0)?;
                }
            }
            _ => self.fake(KEY_PRESS, pos.keycode, 0, 0)?,
        }
        if !self.keys_down.contains(&pos.keycode) {
            self.keys_down.push(pos.keycode);
        }
        Ok(())
    }

    fn key_release(&mut self, keysym: u32) -> Result<(), ScreenError> {
        let pos = self.position(keysym)?;
        self.fake(KEY_RELEASE, pos.keycode, 0, 0)?;
        self.keys_down.retain(|k| *k != pos.keycode);
        Ok(())
    }

    fn shift_keycode(&self, keysym: u32) -> Result<u8, ScreenError> {
        self.keymap
            .find(XK_SHIFT_L)
            .or_else(|| self.keymap.find(keymap::XK_SHIFT_R))
            .map(|p| p.keycode)
            .ok_or_else(|| {
                ScreenError::Input(format!(
                    "{} needs Shift, and the keyboard of X display {} has no Shift key",
                    keymap::describe(keysym),
                    self.display
                ))
            })
    }

    /// The keycode of `keysym`, mapping it onto a free keycode when the
    /// keyboard has none.
    fn position(&mut self, keysym: u32) -> Result<KeyPosition, ScreenError> {
        if let Some(p) = self.keymap.find(keysym) {
            return Ok(p);
        }
        if keysym == keymap::NO_SYMBOL {
            return Err(ScreenError::Input("keysym 0 (NoSymbol) is no key".into()));
        }
        let keycode = self.free_keycode(keysym)?;
        self.map_keycode(keycode, keysym)?;
        self.borrowed.retain(|k| *k != keycode);
        self.borrowed.push(keycode);
        Ok(KeyPosition {
            keycode,
            level: Level::Plain,
        })
    }

    /// A keycode typing nothing, else the longest-borrowed one not held.
    fn free_keycode(&self, keysym: u32) -> Result<u8, ScreenError> {
        let free = self.keymap.unused().into_iter().next();
        let reusable = || {
            self.borrowed
                .iter()
                .copied()
                .find(|k| !self.keys_down.contains(k))
        };
        free.or_else(reusable).ok_or_else(|| {
            ScreenError::Input(format!(
                "{} is not on the keyboard of X display {}, and no keycode is free to type it",
                keymap::describe(keysym),
                self.display
            ))
        })
    }

    fn map_keycode(&mut self, keycode: u8, keysym: u32) -> Result<(), ScreenError> {
        let row = self.keymap.row_for(keysym);
        self.conn
            .change_keyboard_mapping(1, keycode, self.keymap.per_keycode(), &row)
            .x("cannot map a key", &self.display)?
            .check()
            .x("cannot map a key", &self.display)?;
        self.keymap.set(keycode, keysym);
        Ok(())
    }

    /// Releases every key and button still pressed and gives borrowed
    /// keycodes their empty mapping back (the end of the share).
    pub fn release_all(&mut self) {
        for k in std::mem::take(&mut self.keys_down) {
            let _ = self.fake(KEY_RELEASE, k, 0, 0);
        }
        for b in std::mem::take(&mut self.buttons_down) {
            let _ = self.fake(BUTTON_RELEASE, b, 0, 0);
        }
        for k in std::mem::take(&mut self.borrowed) {
            let row = self.keymap.row_for(keymap::NO_SYMBOL);
            let per = self.keymap.per_keycode();
            let _ = self.conn.change_keyboard_mapping(1, k, per, &row);
            self.keymap.set(k, keymap::NO_SYMBOL);
        }
        // A round trip: the server has it all when this returns.
        let _ = self.conn.get_input_focus().map(|c| c.reply());
        // Nothing is held: the guard exits without releasing anything.
        if let Some(mut g) = self.guard.take() {
            g.held(&[], &[]);
        }
    }
}

fn read_keymap(conn: &RustConnection, display: &str) -> Result<Keymap, ScreenError> {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let reply = conn
        .get_keyboard_mapping(min, max - min + 1)
        .x("cannot read the keyboard mapping", display)?
        .reply()
        .x("cannot read the keyboard mapping", display)?;
    Ok(Keymap::new(min, reply.keysyms_per_keycode, reply.keysyms))
}
