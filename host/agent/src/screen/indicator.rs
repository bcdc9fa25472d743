//! The sharing indicator: while any plugin shares the screen, a window at
//! the top centre of the customer's display (of its primary monitor) says
//! who sees it, with a "Stop sharing" button.
//!
//! Threat: an operator (or a plugin) watching or controlling the screen
//! without the customer noticing. The window is override-redirect (no
//! window manager can hide or move it), is raised again whenever another
//! window covers it, and the agent draws it itself: a plugin cannot change
//! its text or suppress it. Like the run-as banner, it belongs to its own
//! X connection: if the agent dies, the window and the share go with it.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use x11rb::COPY_DEPTH_FROM_PARENT;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    AtomEnum, Char2b, ConfigureWindowAux, ConnectionExt, CreateGCAux, CreateWindowAux, EventMask,
    PropMode, Rectangle, StackMode, Visibility, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use crate::x11::latin1;

/// Title (`WM_NAME`) of the indicator window: tests and window managers
/// find it by this.
pub const INDICATOR_TITLE: &str = "Lifeline: your screen is shared";
/// Height of the indicator in pixels.
pub const INDICATOR_HEIGHT: u16 = 28;
/// Background of the indicator (amber: unlike the run-as banner's red and
/// unlike most desktops), as a 24-bit RGB pixel.
pub const INDICATOR_RGB: u32 = 0x00ff_b000;
/// Colour of the text.
pub const TEXT_RGB: u32 = 0x0000_0000;
/// Background of the Stop button.
pub const STOP_RGB: u32 = 0x00ff_ffff;
/// The Stop button's label.
pub const STOP_LABEL: &str = "Stop sharing";
/// Width of the Stop button.
pub const STOP_WIDTH: u16 = 96;
/// Space between the Stop button and the indicator's edges.
pub const STOP_MARGIN: u16 = 3;
/// Space left of the text and between the text and the button.
pub const TEXT_MARGIN: u16 = 12;
/// How often the indicator's thread looks for clicks, redraws and messages.
const POLL: Duration = Duration::from_millis(30);

/// What the indicator says: who sees the screen, through which plugins.
pub fn message(operator: &str, plugins: &[String]) -> String {
    let which = match plugins {
        [one] => format!("plugin {one}"),
        many => format!("plugins {}", many.join(", ")),
    };
    format!("Your screen is shared with {operator} ({which})")
}

/// The Stop button inside an indicator `width` wide (x, y, width, height
/// relative to the window).
pub fn stop_button(width: u16) -> (i16, i16, u16, u16) {
    let x = width.saturating_sub(STOP_MARGIN + STOP_WIDTH);
    let m = STOP_MARGIN as i16;
    (
        i16::try_from(x).unwrap_or(0),
        m,
        STOP_WIDTH,
        INDICATOR_HEIGHT - 2 * STOP_MARGIN,
    )
}

/// The indicator's width for a text `text_width` pixels wide, on a
/// monitor `monitor_width` wide.
pub fn width_for(text_width: u16, monitor_width: u16) -> u16 {
    let want = TEXT_MARGIN
        .saturating_add(text_width)
        .saturating_add(TEXT_MARGIN)
        .saturating_add(STOP_WIDTH)
        .saturating_add(STOP_MARGIN);
    want.min(monitor_width.max(STOP_WIDTH + 2 * STOP_MARGIN))
}

/// What the indicator's thread is told.
enum Msg {
    Text(String),
}

/// A shown indicator; dropping it removes the window.
pub struct Indicator {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl Indicator {
    /// Shows the indicator on `display` saying `text`; `on_stop` runs (on
    /// the indicator's thread) when the customer clicks Stop.
    pub fn start(
        display: &str,
        text: String,
        on_stop: Box<dyn Fn() + Send>,
    ) -> Result<Indicator, String> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel::<Msg>();
        let name = display.to_string();
        let thread = std::thread::Builder::new()
            .name("screen-indicator".into())
            .spawn(move || match Window::open(&name, text) {
                Ok(w) => {
                    let _ = ready_tx.send(Ok(()));
                    w.serve(&rx, on_stop.as_ref());
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| format!("cannot start the indicator's thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Indicator {
                tx: Some(tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("the indicator's thread ended unexpectedly".into()),
        }
    }

    /// Changes what the indicator says.
    pub fn set_text(&self, text: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Text(text));
        }
    }
}

impl Drop for Indicator {
    /// Removes the window and waits until the X server has done so; from
    /// the indicator's own thread (a Stop click), it goes right after.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

/// The indicator's window and drawing state.
struct Window {
    conn: RustConnection,
    win: u32,
    text_gc: u32,
    button_gc: u32,
    label_gc: u32,
    font: u32,
    text: Vec<u8>,
    width: u16,
    /// The monitor the indicator is centred on (x, y, width).
    monitor: (i16, i16, u16),
}

fn x_err(what: &str, display: &str, e: impl std::fmt::Display) -> String {
    format!("cannot show the screen-sharing indicator ({what}) on X display {display}: {e}")
}

impl Window {
    fn open(display: &str, text: String) -> Result<Window, String> {
        let (conn, screen_num) =
            x11rb::connect(Some(display)).map_err(|e| x_err("connect", display, e))?;
        let screen = conn.setup().roots[screen_num].clone();
        let monitor = primary_monitor(&conn, screen.root).unwrap_or((0, 0, screen.width_in_pixels));
        let id = || conn.generate_id().map_err(|e| x_err("ids", display, e));
        let (win, font, text_gc, button_gc, label_gc) = (id()?, id()?, id()?, id()?, id()?);
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            win,
            screen.root,
            monitor.0,
            monitor.1,
            1,
            INDICATOR_HEIGHT,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(INDICATOR_RGB)
                .override_redirect(1)
                .event_mask(
                    EventMask::EXPOSURE | EventMask::BUTTON_PRESS | EventMask::VISIBILITY_CHANGE,
                ),
        )
        .map_err(|e| x_err("window", display, e))?;
        conn.change_property8(
            PropMode::REPLACE,
            win,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            INDICATOR_TITLE.as_bytes(),
        )
        .map_err(|e| x_err("title", display, e))?;
        conn.open_font(font, b"fixed")
            .map_err(|e| x_err("font", display, e))?;
        let gc = |gc, fg, bg| {
            conn.create_gc(
                gc,
                win,
                &CreateGCAux::new().foreground(fg).background(bg).font(font),
            )
            .map_err(|e| x_err("gc", display, e))
        };
        gc(text_gc, TEXT_RGB, INDICATOR_RGB)?;
        gc(button_gc, STOP_RGB, STOP_RGB)?;
        gc(label_gc, TEXT_RGB, STOP_RGB)?;
        let mut w = Window {
            conn,
            win,
            text_gc,
            button_gc,
            label_gc,
            font,
            text: Vec::new(),
            width: 1,
            monitor,
        };
        w.set_text(&text).map_err(|e| x_err("layout", display, e))?;
        w.conn
            .map_window(win)
            .map_err(|e| x_err("map", display, e))?;
        // A round trip: the window is there when `start` returns.
        w.conn
            .get_input_focus()
            .map_err(|e| x_err("map", display, e))?
            .reply()
            .map_err(|e| x_err("map", display, e))?;
        w.draw();
        Ok(w)
    }

    /// New text: the window is resized (still centred) and redrawn.
    fn set_text(&mut self, text: &str) -> Result<(), String> {
        self.text = latin1(text);
        let chars: Vec<Char2b> = self
            .text
            .iter()
            .map(|b| Char2b {
                byte1: 0,
                byte2: *b,
            })
            .collect();
        let ext = self
            .conn
            .query_text_extents(self.font, &chars)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        let text_width = u16::try_from(ext.overall_width.max(0)).unwrap_or(u16::MAX);
        let (mx, my, mw) = self.monitor;
        self.width = width_for(text_width, mw);
        let x = i32::from(mx) + (i32::from(mw) - i32::from(self.width)) / 2;
        self.conn
            .configure_window(
                self.win,
                &ConfigureWindowAux::new()
                    .x(x)
                    .y(i32::from(my))
                    .width(u32::from(self.width))
                    .stack_mode(StackMode::ABOVE),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn draw(&self) {
        let c = &self.conn;
        let _ = c.clear_area(false, self.win, 0, 0, 0, 0);
        let baseline = i16::try_from(INDICATOR_HEIGHT / 2 + 4).unwrap_or(18);
        let margin = i16::try_from(TEXT_MARGIN).unwrap_or(12);
        let _ = c.image_text8(self.win, self.text_gc, margin, baseline, &self.text);
        let (x, y, w, h) = stop_button(self.width);
        let area = Rectangle {
            x,
            y,
            width: w,
            height: h,
        };
        let _ = c.poly_fill_rectangle(self.win, self.button_gc, &[area]);
        let outline = Rectangle {
            width: w.saturating_sub(1),
            height: h.saturating_sub(1),
            ..area
        };
        let _ = c.poly_rectangle(self.win, self.text_gc, &[outline]);
        let label_x = x + 6 * 2;
        let _ = c.image_text8(
            self.win,
            self.label_gc,
            label_x,
            baseline,
            STOP_LABEL.as_bytes(),
        );
        let _ = c.flush();
    }

    fn on_button(&self, x: i16, y: i16) -> bool {
        let (bx, by, bw, bh) = stop_button(self.width);
        let (x, y) = (i32::from(x), i32::from(y));
        x >= i32::from(bx)
            && x < i32::from(bx) + i32::from(bw)
            && y >= i32::from(by)
            && y < i32::from(by) + i32::from(bh)
    }

    /// Redraws, stays on top, and hands Stop clicks to `on_stop` until
    /// the handle is dropped; then removes the window.
    fn serve(mut self, rx: &mpsc::Receiver<Msg>, on_stop: &dyn Fn()) {
        loop {
            match rx.recv_timeout(POLL) {
                Ok(Msg::Text(t)) => {
                    if let Err(e) = self.set_text(&t) {
                        tracing::warn!("the screen-sharing indicator: {e}");
                    }
                    self.draw();
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.events(on_stop),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.conn.destroy_window(self.win);
        let _ = self.conn.get_input_focus().map(|c| c.reply());
    }

    fn events(&self, on_stop: &dyn Fn()) {
        let mut redraw = false;
        while let Ok(Some(ev)) = self.conn.poll_for_event() {
            match ev {
                Event::Expose(_) => redraw = true,
                Event::VisibilityNotify(v) if v.state != Visibility::UNOBSCURED => {
                    let above = ConfigureWindowAux::new().stack_mode(StackMode::ABOVE);
                    let _ = self.conn.configure_window(self.win, &above);
                    redraw = true;
                }
                Event::ButtonPress(b) if b.detail == 1 && self.on_button(b.event_x, b.event_y) => {
                    on_stop();
                }
                _ => {}
            }
        }
        if redraw {
            self.draw();
        }
    }
}

/// The primary RandR monitor (else the first), as x, y, width.
fn primary_monitor(conn: &RustConnection, root: u32) -> Option<(i16, i16, u16)> {
    conn.extension_information(randr::X11_EXTENSION_NAME)
        .ok()
        .flatten()?;
    let v = conn.randr_query_version(1, 5).ok()?.reply().ok()?;
    if (v.major_version, v.minor_version) < (1, 5) {
        return None;
    }
    let reply = conn.randr_get_monitors(root, true).ok()?.reply().ok()?;
    let m = reply
        .monitors
        .iter()
        .find(|m| m.primary)
        .or(reply.monitors.first())?;
    Some((m.x, m.y, m.width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_operator_and_the_plugins() {
        assert_eq!(
            message("Alice", &["screen".into()]),
            "Your screen is shared with Alice (plugin screen)"
        );
        assert_eq!(
            message("Alice", &["a".into(), "b".into()]),
            "Your screen is shared with Alice (plugins a, b)"
        );
    }

    #[test]
    fn the_stop_button_is_at_the_right_end() {
        let w = width_for(300, 1280);
        assert_eq!(
            w,
            TEXT_MARGIN + 300 + TEXT_MARGIN + STOP_WIDTH + STOP_MARGIN
        );
        let (x, y, bw, bh) = stop_button(w);
        assert_eq!(x as u16 + bw + STOP_MARGIN, w);
        assert_eq!(
            (y as u16, y as u16 + bh + STOP_MARGIN),
            (STOP_MARGIN, INDICATOR_HEIGHT)
        );
        assert_eq!(width_for(5000, 800), 800, "never wider than the monitor");
    }
}
