//! A scripted desktop on a real Xvfb for the screen-sharing tests: windows
//! of a colour or a photo-like image, moved; an xterm; RandR monitors; the
//! display's pixels read back with GetImage; the customer's own pointer
//! (XTest) for clicking the sharing indicator; events a window received;
//! the clipboard pasted (ConvertSelection) and copied (an owner serving
//! SelectionRequest on a thread of its own).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux,
    EventMask, ImageFormat, MapState, PropMode, SELECTION_NOTIFY_EVENT, SelectionNotifyEvent,
    Window, WindowClass,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

/// Bound on waiting for the display to settle.
const SETTLE_WAIT: Duration = Duration::from_secs(10);
/// Two reads this far apart and equal: the display has settled.
const SETTLE_GAP: Duration = Duration::from_millis(150);
/// Bound on a paste: the clipboard's owner answers within this.
const PASTE_WAIT: Duration = Duration::from_secs(10);

pub struct Desk {
    pub conn: RustConnection,
    pub root: Window,
    pub width: u16,
    pub height: u16,
}

/// A rectangle of the display.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub x: i16,
    pub y: i16,
    pub w: u16,
    pub h: u16,
}

impl Desk {
    pub fn open(display: &str) -> Desk {
        let (conn, screen) = x11rb::connect(Some(display)).expect("the test's Xvfb");
        let s = &conn.setup().roots[screen];
        let (root, width, height) = (s.root, s.width_in_pixels, s.height_in_pixels);
        Desk {
            conn,
            root,
            width,
            height,
        }
    }

    pub fn all(&self) -> Area {
        Area {
            x: 0,
            y: 0,
            w: self.width,
            h: self.height,
        }
    }

    /// The display's pixels of `a` as RGB, read with GetImage.
    pub fn grab(&self, a: Area) -> Vec<u8> {
        let img = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, a.x, a.y, a.w, a.h, !0)
            .unwrap()
            .reply()
            .unwrap();
        let mut rgb = Vec::with_capacity(usize::from(a.w) * usize::from(a.h) * 3);
        for px in img.data.chunks_exact(4) {
            rgb.extend_from_slice(&[px[2], px[1], px[0]]);
        }
        rgb
    }

    /// Waits until the display stops changing; its pixels then.
    pub fn settle(&self) -> Vec<u8> {
        let deadline = Instant::now() + SETTLE_WAIT;
        let mut before = self.grab(self.all());
        loop {
            std::thread::sleep(SETTLE_GAP);
            let now = self.grab(self.all());
            if now == before {
                return now;
            }
            assert!(Instant::now() < deadline, "the display never settled");
            before = now;
        }
    }

    /// A mapped, unmanaged window of one colour (0xRRGGBB) that reports
    /// key presses and clicks.
    pub fn window(&self, a: Area, rgb: u32) -> Window {
        let w = self.conn.generate_id().unwrap();
        let aux = CreateWindowAux::new()
            .background_pixel(rgb)
            .override_redirect(1)
            .event_mask(EventMask::BUTTON_PRESS | EventMask::KEY_PRESS | EventMask::EXPOSURE);
        self.conn
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                w,
                self.root,
                a.x,
                a.y,
                a.w,
                a.h,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &aux,
            )
            .unwrap();
        self.conn.map_window(w).unwrap();
        self.conn.flush().unwrap();
        w
    }

    /// A window showing a photo-like picture: gradients with noise.
    pub fn photo(&self, a: Area) -> Window {
        let w = self.window(a, 0);
        let gc = self.conn.generate_id().unwrap();
        self.conn
            .create_gc(gc, w, &CreateGCAux::new().graphics_exposures(0))
            .unwrap();
        let mut data = Vec::with_capacity(usize::from(a.w) * usize::from(a.h) * 4);
        let mut seed = 0x1234_5678u32;
        for y in 0..u32::from(a.h) {
            for x in 0..u32::from(a.w) {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let n = (seed >> 24) as u8 & 0x1f;
                let r = ((x * 255) / u32::from(a.w)) as u8;
                let g = ((y * 255) / u32::from(a.h)) as u8;
                let b = (((x + y) * 3) & 0xff) as u8;
                data.extend_from_slice(&[b ^ n, g.wrapping_add(n), r.wrapping_sub(n), 0]);
            }
        }
        self.conn
            .put_image(ImageFormat::Z_PIXMAP, w, gc, a.w, a.h, 0, 0, 0, 24, &data)
            .unwrap();
        self.conn.flush().unwrap();
        w
    }

    pub fn move_window(&self, w: Window, x: i32, y: i32) {
        self.conn
            .configure_window(w, &ConfigureWindowAux::new().x(x).y(y))
            .unwrap();
        self.conn.flush().unwrap();
    }

    pub fn destroy(&self, w: Window) {
        self.conn.destroy_window(w).unwrap();
        self.conn.flush().unwrap();
    }

    /// Defines RandR monitors (name, area), as `xrandr --setmonitor` does.
    pub fn set_monitors(&self, monitors: &[(&str, Area)]) {
        self.conn
            .randr_query_version(1, 6)
            .unwrap()
            .reply()
            .unwrap();
        for (i, (name, a)) in monitors.iter().enumerate() {
            let atom = self
                .conn
                .intern_atom(false, name.as_bytes())
                .unwrap()
                .reply()
                .unwrap()
                .atom;
            let info = randr::MonitorInfo {
                name: atom,
                primary: i == 0,
                automatic: false,
                x: a.x,
                y: a.y,
                width: a.w,
                height: a.h,
                width_in_millimeters: u32::from(a.w) / 4,
                height_in_millimeters: u32::from(a.h) / 4,
                outputs: vec![],
            };
            self.conn
                .randr_set_monitor(self.root, info)
                .unwrap()
                .check()
                .unwrap();
        }
    }

    /// The mapped top-level window titled `title`, and where it is.
    pub fn find(&self, title: &str) -> Option<(Window, Area)> {
        let tree = self.conn.query_tree(self.root).unwrap().reply().unwrap();
        for w in tree.children {
            let name = self
                .conn
                .get_property(false, w, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 1024)
                .unwrap()
                .reply();
            let Ok(name) = name else { continue };
            if name.value != title.as_bytes() {
                continue;
            }
            // A window may close between the listing and these questions
            // (an xterm whose program just ended): it is not the one then.
            let Ok(attrs) = self.conn.get_window_attributes(w).unwrap().reply() else {
                continue;
            };
            if attrs.map_state != MapState::VIEWABLE {
                continue;
            }
            let Ok(g) = self.conn.get_geometry(w).unwrap().reply() else {
                continue;
            };
            return Some((
                w,
                Area {
                    x: g.x,
                    y: g.y,
                    w: g.width,
                    h: g.height,
                },
            ));
        }
        None
    }

    /// The customer clicks at (x, y) with their own pointer.
    pub fn click(&self, x: i16, y: i16) {
        const MOTION: u8 = 6;
        const PRESS: u8 = 4;
        const RELEASE: u8 = 5;
        let c = &self.conn;
        c.xtest_fake_input(MOTION, 0, 0, self.root, x, y, 0)
            .unwrap();
        c.xtest_fake_input(PRESS, 1, 0, self.root, 0, 0, 0).unwrap();
        c.xtest_fake_input(RELEASE, 1, 0, self.root, 0, 0, 0)
            .unwrap();
        c.flush().unwrap();
    }

    /// Events for this connection's windows, for up to `wait`.
    pub fn events(&self, wait: Duration) -> Vec<Event> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            while let Some(e) = self.conn.poll_for_event().unwrap() {
                out.push(e);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    }
}

fn atom(conn: &RustConnection, name: &str) -> Atom {
    conn.intern_atom(false, name.as_bytes())
        .unwrap()
        .reply()
        .unwrap()
        .atom
}

/// An unmapped window of `conn`'s for the clipboard.
fn hidden_window(conn: &RustConnection, root: Window) -> Window {
    let w = conn.generate_id().unwrap();
    conn.create_window(
        0,
        w,
        root,
        0,
        0,
        1,
        1,
        0,
        WindowClass::INPUT_ONLY,
        0,
        &CreateWindowAux::new(),
    )
    .unwrap();
    w
}

impl Desk {
    /// Pastes the clipboard as UTF-8 text, as an application of the
    /// customer's does (ConvertSelection); `None` when nobody copied or
    /// the owner refused.
    pub fn clipboard_text(&self) -> Option<String> {
        let c = &self.conn;
        let win = hidden_window(c, self.root);
        let (clipboard, utf8, prop) = (
            atom(c, "CLIPBOARD"),
            atom(c, "UTF8_STRING"),
            atom(c, "PASTED"),
        );
        c.convert_selection(win, clipboard, utf8, prop, CURRENT_TIME)
            .unwrap();
        c.flush().unwrap();
        let deadline = Instant::now() + PASTE_WAIT;
        let answer = loop {
            assert!(
                Instant::now() < deadline,
                "the clipboard's owner never answered"
            );
            match c.poll_for_event().unwrap() {
                Some(Event::SelectionNotify(n)) if n.requestor == win => break n.property,
                Some(_) => {}
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let text = (answer != NONE).then(|| {
            let r = c
                .get_property(true, win, prop, AtomEnum::ANY, 0, 1 << 20)
                .unwrap()
                .reply()
                .unwrap();
            String::from_utf8(r.value).unwrap()
        });
        c.destroy_window(win).unwrap();
        c.flush().unwrap();
        text
    }
}

/// The customer copied `text`: an application of theirs owns the
/// clipboard and serves UTF8_STRING (on its own connection and thread)
/// until dropped.
pub struct ClipboardOwner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ClipboardOwner {
    pub fn start(display: &str, text: &str) -> ClipboardOwner {
        let (conn, screen) = x11rb::connect(Some(display)).expect("the test's Xvfb");
        let root = conn.setup().roots[screen].root;
        let win = hidden_window(&conn, root);
        let (clipboard, utf8) = (atom(&conn, "CLIPBOARD"), atom(&conn, "UTF8_STRING"));
        conn.set_selection_owner(win, clipboard, CURRENT_TIME)
            .unwrap();
        let owner = conn
            .get_selection_owner(clipboard)
            .unwrap()
            .reply()
            .unwrap();
        assert_eq!(owner.owner, win, "the test owns the clipboard");
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, text) = (Arc::clone(&stop), text.to_string());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Some(ev) = conn.poll_for_event().unwrap() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let Event::SelectionRequest(r) = ev else {
                    continue;
                };
                let given = r.target == utf8;
                if given {
                    conn.change_property8(
                        PropMode::REPLACE,
                        r.requestor,
                        r.property,
                        utf8,
                        text.as_bytes(),
                    )
                    .unwrap();
                }
                let notify = SelectionNotifyEvent {
                    response_type: SELECTION_NOTIFY_EVENT,
                    sequence: 0,
                    time: r.time,
                    requestor: r.requestor,
                    selection: r.selection,
                    target: r.target,
                    property: if given { r.property } else { NONE },
                };
                conn.send_event(false, r.requestor, EventMask::NO_EVENT, notify)
                    .unwrap();
                conn.flush().unwrap();
            }
        });
        ClipboardOwner {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ClipboardOwner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where two RGB pictures of `width` differ: count and first (x, y).
pub fn diff(a: &[u8], b: &[u8], width: usize) -> Option<(usize, (usize, usize))> {
    assert_eq!(a.len(), b.len(), "pictures of different sizes");
    let mut first = None;
    let mut count = 0;
    for (i, (p, q)) in a.chunks_exact(3).zip(b.chunks_exact(3)).enumerate() {
        if p != q {
            count += 1;
            first.get_or_insert((i % width, i / width));
        }
    }
    first.map(|f| (count, f))
}

/// A cropped copy of an RGB picture of `width`.
pub fn crop(rgb: &[u8], width: usize, a: Area) -> Vec<u8> {
    let mut out = Vec::new();
    for y in a.y as usize..a.y as usize + usize::from(a.h) {
        let start = (y * width + a.x as usize) * 3;
        out.extend_from_slice(&rgb[start..start + usize::from(a.w) * 3]);
    }
    out
}
