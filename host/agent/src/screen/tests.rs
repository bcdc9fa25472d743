//! The session screen against a real X server (Xvfb): layout, changes,
//! pixels, the pointer, input, the indicator and its Stop button.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeline_runtime::screen::NOT_SUPPORTED;
use lifeline_runtime::{Capability, HostError, wit};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, ImageFormat, InputFocus,
    KeyButMask, Rectangle, WindowClass,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::indicator::{self, INDICATOR_HEIGHT, INDICATOR_RGB};
use super::xvfb::{HEIGHT, WIDTH, Xvfb};
use super::*;

pub(super) const PLUGIN: &str = "screen";
pub(super) const OPERATOR: &str = "Alice";

/// What the screen told the session.
#[derive(Default)]
pub(super) struct Recorded {
    pub(super) reports: Mutex<Vec<(u64, String, String)>>,
    pub(super) customer: Mutex<Vec<String>>,
    pub(super) withdrawn: Mutex<Vec<(String, Vec<Capability>)>>,
}

impl ShareEvents for Recorded {
    fn report(&self, call_id: u64, plugin: &str, line: &str) {
        lock(&self.reports).push((call_id, plugin.into(), line.into()));
    }
    fn customer(&self, line: &str) {
        lock(&self.customer).push(line.into());
    }
    fn withdrawn(&self, plugin: &str, caps: &[Capability]) {
        lock(&self.withdrawn).push((plugin.into(), caps.to_vec()));
    }
}

impl Recorded {
    pub(super) fn reported(&self, part: &str) -> usize {
        lock(&self.reports)
            .iter()
            .filter(|(_, _, l)| l.contains(part))
            .count()
    }
}

/// A run-as suspension on a display, or none.
struct Suspended(Mutex<Option<String>>);

impl Suspension for Suspended {
    fn suspended_display(&self) -> Option<String> {
        lock(&self.0).clone()
    }
}

pub(super) struct Fixture {
    pub(super) x: Xvfb,
    pub(super) screen: Arc<SessionScreen>,
    pub(super) events: Arc<Recorded>,
    suspended: Arc<Suspended>,
    /// A client of the test's own (draws, reads back, clicks).
    pub(super) conn: RustConnection,
    pub(super) root: u32,
}

pub(super) fn fixture() -> Fixture {
    let x = Xvfb::start();
    let events = Arc::new(Recorded::default());
    let suspended = Arc::new(Suspended(Mutex::new(None)));
    let screen = Arc::new(SessionScreen::new(
        Ok(x.display.clone()),
        Arc::clone(&suspended) as Arc<dyn Suspension>,
        Arc::clone(&events) as Arc<dyn ShareEvents>,
    ));
    let (conn, n) = x11rb::connect(Some(&x.display)).unwrap();
    let root = conn.setup().roots[n].root;
    Fixture {
        x,
        screen,
        events,
        suspended,
        conn,
        root,
    }
}

impl Fixture {
    pub(super) fn open(&self) -> wit::ScreenInfo {
        self.screen.open(PLUGIN, OPERATOR, 7).unwrap()
    }

    /// A mapped window at (x, y), w × h, filled with `rgb`, with `mask`.
    fn window(&self, (x, y, w, h): (i16, i16, u16, u16), rgb: u32, mask: EventMask) -> u32 {
        let c = &self.conn;
        let win = c.generate_id().unwrap();
        let aux = CreateWindowAux::new()
            .background_pixel(rgb)
            .override_redirect(1)
            .event_mask(mask);
        c.create_window(
            24,
            win,
            self.root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &aux,
        )
        .unwrap();
        c.map_window(win).unwrap();
        self.sync();
        win
    }

    fn fill(&self, win: u32, rect: Rectangle, rgb: u32) {
        let gc = self.conn.generate_id().unwrap();
        self.conn
            .create_gc(gc, win, &CreateGCAux::new().foreground(rgb))
            .unwrap();
        self.conn.poly_fill_rectangle(win, gc, &[rect]).unwrap();
        self.sync();
    }

    /// A round trip: the server has done everything sent before.
    pub(super) fn sync(&self) {
        self.conn.get_input_focus().unwrap().reply().unwrap();
    }

    /// The root's pixels of `a`, as GetImage returns them.
    fn get_image(&self, a: Area) -> Vec<u8> {
        let (x, y) = (a.x as i16, a.y as i16);
        let (w, h) = (a.width as u16, a.height as u16);
        self.conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)
            .unwrap()
            .reply()
            .unwrap()
            .data
    }

    /// A click of button 1 at (x, y), as the customer's mouse.
    fn click(&self, x: i16, y: i16) {
        let c = &self.conn;
        c.xtest_fake_input(6, 0, 0, self.root, x, y, 0).unwrap();
        c.xtest_fake_input(4, 1, 0, self.root, 0, 0, 0).unwrap();
        c.xtest_fake_input(5, 1, 0, self.root, 0, 0, 0).unwrap();
        self.sync();
    }

    /// The indicator window's geometry (x, y, width, height), if shown.
    fn indicator(&self) -> Option<(i16, i16, u16, u16)> {
        let tree = self.conn.query_tree(self.root).ok()?.reply().ok()?;
        for w in tree.children {
            let name = self
                .conn
                .get_property(false, w, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 64)
                .ok()?
                .reply()
                .ok()?;
            if name.value == INDICATOR_TITLE.as_bytes() {
                let attrs = self.conn.get_window_attributes(w).ok()?.reply().ok()?;
                if attrs.map_state != x11rb::protocol::xproto::MapState::VIEWABLE {
                    continue;
                }
                let g = self.conn.get_geometry(w).ok()?.reply().ok()?;
                return Some((g.x, g.y, g.width, g.height));
            }
        }
        None
    }
}

/// Waits (bounded) for `f` to hold.
pub(super) fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn covered(areas: &[wit::Rect], want: Area) -> bool {
    let areas: Vec<Area> = areas.iter().map(Area::from_wit).collect();
    (want.y..want.y + want.height).all(|y| {
        (want.x..want.x + want.width)
            .all(|x| areas.iter().any(|a| a.contains(&Area::new(x, y, 1, 1))))
    })
}

#[test]
fn no_display_means_not_supported() {
    let events = Arc::new(Recorded::default());
    let s = SessionScreen::new(
        Err(display::WAYLAND.into()),
        Arc::new(Suspended(Mutex::new(None))),
        events,
    );
    match s.open(PLUGIN, OPERATOR, 1) {
        Err(HostError::Failed(m)) => {
            assert!(m.starts_with(NOT_SUPPORTED), "{m}");
            assert!(m.contains("Wayland sessions are not supported"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.sharing(PLUGIN));
    assert!(matches!(s.changes(PLUGIN), Err(HostError::Denied(_))));
    assert!(matches!(s.input(PLUGIN, &[]), Err(HostError::Denied(_))));
}

#[test]
fn changes_start_with_the_whole_display_then_what_was_drawn() {
    let f = fixture();
    let info = f.open();
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    assert_eq!(info.display, f.x.display);
    assert!(!info.monitors.is_empty());
    let first = f.screen.changes(PLUGIN).unwrap();
    assert_eq!(first.areas.len(), 1);
    assert_eq!(
        Area::from_wit(&first.areas[0]),
        Area::new(0, 0, WIDTH, HEIGHT)
    );
    assert!(first.layout.is_none());
    let win = f.window((100, 100, 200, 150), 0x0000_0040, EventMask::NO_EVENT);
    let _ = f.screen.changes(PLUGIN).unwrap();
    f.fill(
        win,
        Rectangle {
            x: 10,
            y: 20,
            width: 50,
            height: 40,
        },
        0x0000_ff00,
    );
    let drawn = Area::new(110, 120, 50, 40);
    let changes = f.screen.changes(PLUGIN).unwrap();
    assert!(covered(&changes.areas, drawn), "{:?}", changes.areas);
    let whole = Area::new(0, 0, WIDTH, HEIGHT);
    for a in &changes.areas {
        assert!(whole.contains(&Area::from_wit(a)));
        assert_ne!(Area::from_wit(a), whole, "only what changed");
    }
    assert_eq!(
        f.events
            .reported("screen sharing started: plugin screen, operator Alice"),
        1
    );
    let line = &lock(&f.events.reports)[0];
    assert_eq!(line.0, 7);
    assert!(
        line.2
            .contains(&format!("display {}, 1280x800", f.x.display)),
        "{}",
        line.2
    );
}

#[test]
fn read_returns_exactly_what_get_image_returns() {
    let f = fixture();
    f.open();
    let win = f.window((200, 300, 256, 128), 0x0012_3456, EventMask::NO_EVENT);
    f.fill(
        win,
        Rectangle {
            x: 5,
            y: 7,
            width: 30,
            height: 20,
        },
        0x0000_ff00,
    );
    assert!(
        lock(&f.screen.inner.state).shares[PLUGIN]
            .capture
            .lock()
            .unwrap()
            .uses_shm(),
        "Xvfb offers MIT-SHM with descriptor passing"
    );
    // Sparse (one request each), dense tiles (their bounding box), and
    // an empty area.
    let sparse = [
        Area::new(205, 307, 30, 20),
        Area::new(0, 700, 17, 3),
        Area::new(9, 9, 0, 4),
    ];
    let tiles: Vec<Area> = (0..4)
        .map(|i| Area::new(200 + 64 * i, 300, 64, 64))
        .collect();
    for areas in [&sparse[..], &tiles[..]] {
        let rects: Vec<wit::Rect> = areas.iter().map(|a| a.to_wit()).collect();
        let mut out = Vec::new();
        f.screen.read(PLUGIN, &rects, &mut out).unwrap();
        let expected: Vec<u8> = areas
            .iter()
            .filter(|a| !a.is_empty())
            .flat_map(|a| f.get_image(*a))
            .collect();
        assert_eq!(out.len(), expected.len());
        assert!(out == expected, "the pixels differ from GetImage's");
    }
    // The drawn green, as BGRX.
    let mut out = Vec::new();
    f.screen
        .read(PLUGIN, &[Area::new(210, 310, 1, 1).to_wit()], &mut out)
        .unwrap();
    assert_eq!(&out[..3], &[0x00, 0xff, 0x00]);
    // Plain GetImage (a server without MIT-SHM) reads the same.
    let (conn, root) = lock(&f.screen.inner.state).shares[PLUGIN]
        .capture
        .lock()
        .unwrap()
        .connection();
    let mut plain = Vec::new();
    pixels::Pixels::Plain
        .read(&conn, root, &f.x.display, &tiles, &mut plain)
        .unwrap();
    let expected: Vec<u8> = tiles.iter().flat_map(|a| f.get_image(*a)).collect();
    assert!(plain == expected);
    // Off the display: refused, naming the area.
    let err = f
        .screen
        .read(PLUGIN, &[Area::new(1200, 700, 100, 10).to_wit()], &mut out);
    match err {
        Err(HostError::Failed(m)) => assert!(m.contains("1200,700 100x10"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_cursor_image_comes_once() {
    let f = fixture();
    f.open();
    f.click(40, 50);
    let first = f.screen.cursor(PLUGIN).unwrap();
    assert_eq!((first.x, first.y), (40, 50));
    let img = first.image.expect("the first call has the image");
    assert_eq!(img.rgba.len() as u32, img.width * img.height * 4);
    assert!(img.width > 0 && img.hot_x < img.width);
    let again = f.screen.cursor(PLUGIN).unwrap();
    assert!(
        again.image.is_none(),
        "no image while the cursor is the same"
    );
}

/// Events of `win` on the test connection until `done` says enough.
fn collect(f: &Fixture, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let mut events = Vec::new();
    eventually("input events", || {
        while let Ok(Some(e)) = f.conn.poll_for_event() {
            events.push(e);
        }
        done(&events)
    });
    events
}

fn key(keysym: u32, pressed: bool) -> wit::InputEvent {
    wit::InputEvent::Key(wit::KeyChange { keysym, pressed })
}

#[test]
fn input_arrives_as_keys_and_clicks_in_the_focused_window() {
    let f = fixture();
    f.open();
    let mask = EventMask::KEY_PRESS | EventMask::KEY_RELEASE | EventMask::BUTTON_PRESS;
    let win = f.window((300, 200, 400, 300), 0x0080_8080, mask);
    f.conn
        .set_input_focus(InputFocus::PARENT, win, 0u32)
        .unwrap();
    f.sync();
    let events = [
        key(0x61, true),
        key(0x61, false),
        key(0x41, true), // 'A': Shift is pressed around it
        key(0x41, false),
        key(0x20ac, true), // EuroSign: not on the US keyboard
        key(0x20ac, false),
        wit::InputEvent::PointerMove(wit::PointerPosition { x: 350, y: 260 }),
        wit::InputEvent::PointerButton(wit::ButtonChange {
            button: 1,
            pressed: true,
        }),
        wit::InputEvent::PointerButton(wit::ButtonChange {
            button: 1,
            pressed: false,
        }),
        key(0x62, true), // held when the share ends
    ];
    f.screen.input(PLUGIN, &events).unwrap();
    let got = collect(&f, |ev| {
        ev.iter().any(|e| matches!(e, Event::ButtonPress(_)))
    });
    let presses: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            Event::KeyPress(k) => Some(k),
            _ => None,
        })
        .collect();
    let mapping = |code: u8| {
        f.conn
            .get_keyboard_mapping(code, 1)
            .unwrap()
            .reply()
            .unwrap()
            .keysyms
    };
    let typed: Vec<(u32, bool)> = presses
        .iter()
        .map(|k| (mapping(k.detail)[0], k.state.contains(KeyButMask::SHIFT)))
        .collect();
    assert!(typed.contains(&(0x61, false)), "{typed:x?}");
    assert!(
        typed.contains(&(0x61, true)),
        "'A' is a with Shift: {typed:x?}"
    );
    assert!(
        typed.contains(&(0x20ac, false)),
        "the Euro on a borrowed key: {typed:x?}"
    );
    let click = got
        .iter()
        .find_map(|e| match e {
            Event::ButtonPress(b) => Some(b),
            _ => None,
        })
        .unwrap();
    assert_eq!((click.detail, click.event_x, click.event_y), (1, 50, 60));
    assert_eq!(
        f.events.reported("remote control started: Alice controls"),
        1
    );
    // 'b' was held: closing releases it, and gives the Euro key back.
    let euro = presses
        .iter()
        .find(|k| mapping(k.detail)[0] == 0x20ac)
        .unwrap()
        .detail;
    f.screen.close(PLUGIN);
    let got = collect(&f, |ev| {
        ev.iter()
            .any(|e| matches!(e, Event::KeyRelease(k) if mapping(k.detail)[0] == 0x62))
    });
    assert!(!got.is_empty());
    assert!(
        mapping(euro).iter().all(|s| *s == 0),
        "borrowed keycode restored"
    );
    assert_eq!(
        f.events.reported("screen sharing closed (plugin screen)"),
        1
    );
    assert!(matches!(
        f.screen.input(PLUGIN, &events),
        Err(HostError::Denied(_))
    ));
}

#[test]
fn input_is_refused_while_a_run_as_login_suspends_the_display() {
    let f = fixture();
    f.open();
    *lock(&f.suspended.0) = Some(format!("{}.0", f.x.display));
    let click = [wit::InputEvent::PointerButton(wit::ButtonChange {
        button: 1,
        pressed: true,
    })];
    for _ in 0..2 {
        match f.screen.input(PLUGIN, &click) {
            Err(HostError::Failed(m)) => assert!(m.contains("run-as login"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        f.events.reported("input refused: a run-as login"),
        1,
        "reported once"
    );
    *lock(&f.suspended.0) = Some(":9999".into());
    let bad = [wit::InputEvent::PointerButton(wit::ButtonChange {
        button: 9,
        pressed: true,
    })];
    match f.screen.input(PLUGIN, &bad) {
        Err(HostError::Failed(m)) => assert!(m.contains("button 9"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_indicator_shows_and_its_stop_button_withdraws_the_consent() {
    let f = fixture();
    let port = PortScreen::new(Arc::clone(&f.screen));
    f.open();
    let (x, y, w, h) = f.indicator().expect("the indicator is shown while sharing");
    assert_eq!((y, h), (0, INDICATOR_HEIGHT));
    let centre = i32::from(x) * 2 + i32::from(w);
    assert!((centre - WIDTH as i32).abs() <= 1, "centred: {x} + {w}");
    // Its background is the indicator's colour (BGRX).
    eventually("the indicator drawn", || {
        let px = f.get_image(Area::new(x as u32 + 2, 2, 1, 1));
        px[..3]
            == [
                INDICATOR_RGB as u8,
                (INDICATOR_RGB >> 8) as u8,
                (INDICATOR_RGB >> 16) as u8,
            ]
    });
    assert!(port.take_withdrawn(PLUGIN).is_empty());
    // The customer clicks Stop.
    let (bx, by, bw, bh) = indicator::stop_button(w);
    f.click(x + bx + bw as i16 / 2, by + bh as i16 / 2);
    eventually("the share to stop", || !f.screen.sharing(PLUGIN));
    for r in [
        f.screen.changes(PLUGIN).err(),
        f.screen.cursor(PLUGIN).err(),
        f.screen.read(PLUGIN, &[], &mut Vec::new()).err(),
    ] {
        assert_eq!(r, Some(HostError::Denied(STOPPED_BY_CUSTOMER.into())));
    }
    assert_eq!(port.take_withdrawn(PLUGIN), WITHDRAWN.to_vec());
    assert!(port.take_withdrawn(PLUGIN).is_empty(), "once");
    assert!(
        PortScreen::new(Arc::clone(&f.screen))
            .take_withdrawn(PLUGIN)
            .is_empty()
    );
    assert_eq!(
        *lock(&f.events.withdrawn),
        vec![(PLUGIN.to_string(), WITHDRAWN.to_vec())]
    );
    assert_eq!(f.events.reported(STOPPED_BY_CUSTOMER), 1);
    eventually("the indicator to go", || f.indicator().is_none());
    // Sharing again is a new share.
    f.open();
    assert!(f.screen.changes(PLUGIN).is_ok());
    assert!(f.indicator().is_some());
    f.screen.close_all();
    eventually("the indicator to go", || f.indicator().is_none());
    assert_eq!(
        f.events
            .reported("screen sharing ended with the session (plugin screen)"),
        1
    );
    // After the session's end nothing opens again.
    let again = f.screen.open(PLUGIN, OPERATOR, 8);
    assert!(
        matches!(&again, Err(HostError::Failed(m)) if m.contains("session has ended")),
        "{again:?}"
    );
    assert!(f.indicator().is_none());
}

#[test]
fn randr_monitors_make_the_layout() {
    let f = fixture();
    let atom = |n: &str| {
        f.conn
            .intern_atom(false, n.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom
    };
    f.conn.randr_query_version(1, 5).unwrap().reply().unwrap();
    let monitor = |name: &str, x: i16, primary: bool| randr::MonitorInfo {
        name: atom(name),
        primary,
        automatic: false,
        x,
        y: 0,
        width: 640,
        height: 800,
        width_in_millimeters: 160,
        height_in_millimeters: 200,
        outputs: vec![],
    };
    f.conn
        .randr_set_monitor(f.root, monitor("LEFT", 0, true))
        .unwrap()
        .check()
        .unwrap();
    f.conn
        .randr_set_monitor(f.root, monitor("RIGHT", 640, false))
        .unwrap()
        .check()
        .unwrap();
    let info = f.open();
    let find = |info: &wit::ScreenInfo, n: &str| {
        info.monitors
            .iter()
            .find(|m| m.name == n)
            .map(|m| (Area::from_wit(&m.area), m.primary))
    };
    assert_eq!(find(&info, "LEFT"), Some((Area::new(0, 0, 640, 800), true)));
    assert_eq!(
        find(&info, "RIGHT"),
        Some((Area::new(640, 0, 640, 800), false))
    );
    assert_eq!(info.monitors.len(), 2, "the output they split is left out");
    f.screen.changes(PLUGIN).unwrap();
    // A monitor goes: the next changes bring the new layout.
    f.conn
        .randr_delete_monitor(f.root, atom("RIGHT"))
        .unwrap()
        .check()
        .unwrap();
    let changes = f.screen.changes(PLUGIN).unwrap();
    let layout = changes.layout.expect("a new layout");
    assert_eq!(find(&layout, "RIGHT"), None);
    assert!(find(&layout, "LEFT").is_some());
    assert_eq!(changes.areas.len(), 1);
    assert_eq!(
        Area::from_wit(&changes.areas[0]),
        Area::new(0, 0, WIDTH, HEIGHT)
    );
}
