//! Suspending the customer's keyboard and pointer on an X display during a
//! run-as login: a banner window across the top of the screen says why, and
//! the agent grabs keyboard and pointer so nothing reaches other windows.
//!
//! The grab belongs to the agent's X connection: if the agent dies, the X
//! server drops the connection, its window and its grabs, so the customer's
//! access comes back by itself.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt, CreateGCAux, CreateWindowAux, EventMask, GrabMode, GrabStatus,
    PropMode, WindowClass,
};
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{COPY_DEPTH_FROM_PARENT, CURRENT_TIME, NONE};

/// Title of the banner window (tests and window managers find it by this).
pub const BANNER_TITLE: &str = "Lifeline: your access is suspended";
/// Height of the banner in pixels.
pub const BANNER_HEIGHT: u16 = 56;
/// How long the agent retries when another program holds a grab.
pub const GRAB_WAIT: Duration = Duration::from_secs(2);
/// How often the banner thread looks for redraws and the stop signal.
const POLL: Duration = Duration::from_millis(50);
/// Banner background (dark red) and text colour.
const BANNER_RGB: u32 = 0x00a0_1020;

/// An active suspension; [`XSuspension::release`] (or dropping it) gives
/// keyboard and pointer back.
pub struct XSuspension {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    pub display: String,
}

impl XSuspension {
    /// Opens the banner on `display` and grabs keyboard and pointer.
    /// Returns once both grabs are held, or why not.
    pub fn start(display: &str, lines: Vec<String>) -> Result<XSuspension, String> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let name = display.to_string();
        let thread = std::thread::Builder::new()
            .name("x11-suspend".into())
            .spawn(move || {
                let banner = match Banner::open(&name, lines) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                banner.serve(&stop_rx);
            })
            .map_err(|e| format!("cannot start the display thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(XSuspension {
                stop: Some(stop_tx),
                thread: Some(thread),
                display: display.to_string(),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("the display thread ended unexpectedly".into()),
        }
    }

    /// Ungrabs, removes the banner, and waits until the X server has it.
    pub fn release(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for XSuspension {
    fn drop(&mut self) {
        self.stop_now();
    }
}

struct Banner {
    conn: x11rb::rust_connection::RustConnection,
    win: u32,
    gc: u32,
    lines: Vec<Vec<u8>>,
}

fn x_err(what: &str, display: &str, e: impl std::fmt::Display) -> String {
    format!("{what} on X display {display}: {e}")
}

/// The core "fixed" font is Latin-1: other characters become '?'.
pub(crate) fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| if (c as u32) < 0x100 { c as u8 } else { b'?' })
        .take(250)
        .collect()
}

impl Banner {
    fn open(display: &str, lines: Vec<String>) -> Result<Banner, String> {
        let (conn, screen_num) =
            x11rb::connect(Some(display)).map_err(|e| x_err("cannot connect", display, e))?;
        let screen = conn.setup().roots[screen_num].clone();
        let win = conn
            .generate_id()
            .map_err(|x| x_err("no window id", display, x))?;
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            win,
            screen.root,
            0,
            0,
            screen.width_in_pixels,
            BANNER_HEIGHT,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(BANNER_RGB)
                .override_redirect(1)
                .event_mask(EventMask::EXPOSURE),
        )
        .map_err(|x| x_err("cannot create the banner", display, x))?;
        conn.change_property8(
            PropMode::REPLACE,
            win,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            BANNER_TITLE.as_bytes(),
        )
        .map_err(|x| x_err("cannot name the banner", display, x))?;
        let font = conn
            .generate_id()
            .map_err(|x| x_err("no font id", display, x))?;
        conn.open_font(font, b"fixed")
            .map_err(|x| x_err("cannot open the font", display, x))?;
        let gc = conn
            .generate_id()
            .map_err(|x| x_err("no gc id", display, x))?;
        conn.create_gc(
            gc,
            win,
            &CreateGCAux::new()
                .foreground(screen.white_pixel)
                .background(BANNER_RGB)
                .font(font),
        )
        .map_err(|x| x_err("cannot create the banner", display, x))?;
        conn.map_window(win)
            .map_err(|x| x_err("cannot show the banner", display, x))?;
        conn.flush()
            .map_err(|x| x_err("cannot show the banner", display, x))?;
        let banner = Banner {
            conn,
            win,
            gc,
            lines: lines.iter().map(|l| latin1(l)).collect(),
        };
        banner.grab(display)?;
        banner.draw();
        Ok(banner)
    }

    /// Grabs keyboard and pointer, retrying while another client holds them.
    fn grab(&self, display: &str) -> Result<(), String> {
        let deadline = Instant::now() + GRAB_WAIT;
        loop {
            let kb = self
                .conn
                .grab_keyboard(
                    true,
                    self.win,
                    CURRENT_TIME,
                    GrabMode::ASYNC,
                    GrabMode::ASYNC,
                )
                .map_err(|x| x_err("cannot grab the keyboard", display, x))?
                .reply()
                .map_err(|x| x_err("cannot grab the keyboard", display, x))?;
            let ptr = if kb.status == GrabStatus::SUCCESS {
                self.conn
                    .grab_pointer(
                        true,
                        self.win,
                        EventMask::NO_EVENT,
                        GrabMode::ASYNC,
                        GrabMode::ASYNC,
                        self.win,
                        NONE,
                        CURRENT_TIME,
                    )
                    .map_err(|x| x_err("cannot grab the pointer", display, x))?
                    .reply()
                    .map_err(|x| x_err("cannot grab the pointer", display, x))?
                    .status
            } else {
                kb.status
            };
            if kb.status == GrabStatus::SUCCESS && ptr == GrabStatus::SUCCESS {
                return Ok(());
            }
            let _ = self.conn.ungrab_keyboard(CURRENT_TIME);
            if Instant::now() >= deadline {
                return Err(format!(
                    "cannot suspend the customer's keyboard and pointer on X display {display}: another program holds them ({:?})",
                    if kb.status == GrabStatus::SUCCESS {
                        ptr
                    } else {
                        kb.status
                    }
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn draw(&self) {
        for (i, line) in self.lines.iter().enumerate() {
            let y = 20 + 16 * i as i16;
            let _ = self.conn.image_text8(self.win, self.gc, 12, y, line);
        }
        let _ = self.conn.flush();
    }

    /// Redraws on exposure until told to stop, then releases everything.
    fn serve(self, stop: &mpsc::Receiver<()>) {
        // A stop message, or the sender gone, ends the suspension.
        while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(POLL) {
            let mut redraw = false;
            while let Ok(Some(ev)) = self.conn.poll_for_event() {
                if matches!(ev, Event::Expose(_)) {
                    redraw = true;
                }
            }
            if redraw {
                self.draw();
            }
        }
        let _ = self.conn.ungrab_keyboard(CURRENT_TIME);
        let _ = self.conn.ungrab_pointer(CURRENT_TIME);
        let _ = self.conn.destroy_window(self.win);
        // A round trip: when this returns the server has processed it all.
        let _ = self.conn.get_input_focus().map(|c| c.reply());
    }
}
