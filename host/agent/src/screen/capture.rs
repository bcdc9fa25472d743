//! One plugin's view of the X display: its own connection, the layout
//! (root size, RandR monitors), what changed (XDamage), pixels (see
//! [`super::pixels`]) and the pointer (XFixes).
//!
//! Damage: one damage object on the root window, level `NonEmpty` (the
//! server sends one event when the damage becomes non-empty, not one per
//! drawing, so nothing piles up between calls); each `changes` moves the
//! accumulated damage into a region (`damage::Subtract`), fetches its
//! rectangles (`xfixes::FetchRegion`), clips them to the display and merges
//! them (see [`super::rects`]). The layout is compared on every call (two
//! requests in the same round trip): a new one is reported with the whole
//! display as changed.

use std::collections::HashMap;
use std::sync::Arc;

use lifeline_runtime::screen::MAX_SCREEN_READ_BYTES;
use lifeline_runtime::wit;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, Atom, ConnectionExt as _, ImageOrder, Window};
use x11rb::rust_connection::RustConnection;

use super::cursor::CursorTracker;
use super::error::{ScreenError, XContext};
use super::pixels::Pixels;
use super::rects::{Area, merge};

/// Name of the one monitor of a display without RandR monitors.
pub const WHOLE_SCREEN_MONITOR: &str = "screen";

/// A monitor of the display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorArea {
    pub name: String,
    pub area: Area,
    pub primary: bool,
}

/// The display's size and monitors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub monitors: Vec<MonitorArea>,
}

impl Layout {
    pub fn bounds(&self) -> Area {
        Area::new(0, 0, self.width, self.height)
    }

    pub fn to_wit(&self, display: &str) -> wit::ScreenInfo {
        wit::ScreenInfo {
            display: display.to_string(),
            width: self.width,
            height: self.height,
            monitors: self
                .monitors
                .iter()
                .map(|m| wit::Monitor {
                    name: m.name.clone(),
                    area: m.area.to_wit(),
                    primary: m.primary,
                })
                .collect(),
        }
    }
}

/// An open capture of one display.
pub struct Capture {
    conn: Arc<RustConnection>,
    display: String,
    root: Window,
    damage: damage::Damage,
    region: xfixes::Region,
    randr: bool,
    layout: Layout,
    /// The next `changes` reports the whole display.
    first: bool,
    pixels: Pixels,
    cursor: CursorTracker,
    atom_names: HashMap<Atom, String>,
}

impl Capture {
    /// Connects to `display` and starts tracking its changes.
    pub fn open(display: &str) -> Result<Capture, ScreenError> {
        let (conn, screen_num) = x11rb::connect(Some(display)).x("cannot connect", display)?;
        let conn = Arc::new(conn);
        let root = conn.setup().roots[screen_num].root;
        check_pixel_format(&conn, screen_num, display)?;
        require_extensions(&conn, display)?;
        let randr = randr_monitors(&conn);
        let damage = conn.generate_id().x("no damage id", display)?;
        conn.damage_create(damage, root, damage::ReportLevel::NON_EMPTY)
            .x("cannot track changes (DAMAGE)", display)?;
        let region = conn.generate_id().x("no region id", display)?;
        conn.xfixes_create_region(region, &[])
            .x("cannot track changes (XFIXES)", display)?;
        let mut c = Capture {
            conn,
            display: display.to_string(),
            root,
            damage,
            region,
            randr,
            layout: Layout {
                width: 0,
                height: 0,
                monitors: Vec::new(),
            },
            first: true,
            pixels: Pixels::Plain,
            cursor: CursorTracker::default(),
            atom_names: HashMap::new(),
        };
        c.layout = c.query_layout()?;
        let whole = usize::try_from(c.layout.bounds().bytes()).unwrap_or(usize::MAX);
        c.pixels = Pixels::new(&c.conn, display, whole.min(MAX_SCREEN_READ_BYTES));
        Ok(c)
    }

    /// The connection (input injection shares it) and the root window.
    pub fn connection(&self) -> (Arc<RustConnection>, Window) {
        (Arc::clone(&self.conn), self.root)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether pixels are read through MIT-SHM.
    pub fn uses_shm(&self) -> bool {
        self.pixels.is_shm()
    }

    pub fn info(&self) -> wit::ScreenInfo {
        self.layout.to_wit(&self.display)
    }

    /// What changed since the previous call (the first: everything).
    pub fn changes(&mut self) -> Result<wit::ScreenChanges, ScreenError> {
        self.drain_events();
        let d = self.display.clone();
        let conn = Arc::clone(&self.conn);
        conn.damage_subtract(self.damage, x11rb::NONE, self.region)
            .x("cannot read the changes (DAMAGE)", &d)?;
        let fetched = conn
            .xfixes_fetch_region(self.region)
            .x("cannot read the changes (XFIXES)", &d)?;
        let layout = self.query_layout()?;
        let fetched = fetched.reply().x("cannot read the changes (XFIXES)", &d)?;
        let whole = layout.bounds();
        if layout != self.layout {
            self.layout = layout;
            self.first = false;
            return Ok(wit::ScreenChanges {
                areas: vec![whole.to_wit()],
                layout: Some(self.info()),
            });
        }
        let areas = if std::mem::take(&mut self.first) {
            vec![whole]
        } else {
            let rects = fetched
                .rectangles
                .iter()
                .filter_map(|r| Area::from_x(r, &whole));
            merge(rects, &whole)
        };
        Ok(wit::ScreenChanges {
            areas: areas.into_iter().map(Area::to_wit).collect(),
            layout: None,
        })
    }

    /// Appends the pixels of `areas` to `out` (BGRX, rows top to bottom).
    pub fn read(&mut self, areas: &[Area], out: &mut Vec<u8>) -> Result<(), ScreenError> {
        let bounds = self.layout.bounds();
        if let Some(a) = areas.iter().find(|a| !a.is_empty() && !bounds.contains(a)) {
            return Err(ScreenError::Outside {
                x: a.x,
                y: a.y,
                width: a.width,
                height: a.height,
                display_width: bounds.width,
                display_height: bounds.height,
            });
        }
        self.pixels
            .read(&self.conn, self.root, &self.display, areas, out)
    }

    /// The pointer, with its image when it changed.
    pub fn cursor(&mut self) -> Result<wit::CursorState, ScreenError> {
        let reply = self
            .conn
            .xfixes_get_cursor_image()
            .x("cannot read the pointer (XFIXES)", &self.display)?
            .reply()
            .x("cannot read the pointer (XFIXES)", &self.display)?;
        Ok(self.cursor.state(&reply))
    }

    /// Discards queued events (damage notifications; errors of requests
    /// sent without waiting, logged).
    fn drain_events(&self) {
        while let Ok(Some(ev)) = self.conn.poll_for_event() {
            if let x11rb::protocol::Event::Error(e) = ev {
                tracing::debug!("X display {}: {e:?}", self.display);
            }
        }
    }

    /// The root's size and the RandR monitors (one whole-screen monitor
    /// when RandR names none).
    fn query_layout(&mut self) -> Result<Layout, ScreenError> {
        let d = self.display.clone();
        let conn = Arc::clone(&self.conn);
        let geometry = conn
            .get_geometry(self.root)
            .x("cannot read the display size", &d)?;
        let monitors = if self.randr {
            Some(
                conn.randr_get_monitors(self.root, true)
                    .x("cannot read the monitors (RANDR)", &d)?,
            )
        } else {
            None
        };
        let g = geometry.reply().x("cannot read the display size", &d)?;
        let bounds = Area::new(0, 0, u32::from(g.width), u32::from(g.height));
        let mut list = Vec::new();
        if let Some(m) = monitors {
            let reply = m.reply().x("cannot read the monitors (RANDR)", &d)?;
            let monitors = without_split_outputs(reply.monitors);
            for m in monitors {
                list.extend(self.monitor(&m, &bounds)?);
            }
        }
        if list.is_empty() {
            list.push(MonitorArea {
                name: WHOLE_SCREEN_MONITOR.to_string(),
                area: bounds,
                primary: true,
            });
        }
        Ok(Layout {
            width: bounds.width,
            height: bounds.height,
            monitors: list,
        })
    }

    /// A RandR monitor clipped to the display (`None`: not on it).
    fn monitor(
        &mut self,
        m: &randr::MonitorInfo,
        bounds: &Area,
    ) -> Result<Option<MonitorArea>, ScreenError> {
        let r = xproto::Rectangle {
            x: m.x,
            y: m.y,
            width: m.width,
            height: m.height,
        };
        let Some(area) = Area::from_x(&r, bounds) else {
            return Ok(None);
        };
        Ok(Some(MonitorArea {
            name: self.atom_name(m.name)?,
            area,
            primary: m.primary,
        }))
    }

    fn atom_name(&mut self, atom: Atom) -> Result<String, ScreenError> {
        if let Some(n) = self.atom_names.get(&atom) {
            return Ok(n.clone());
        }
        let d = &self.display;
        let reply = self
            .conn
            .get_atom_name(atom)
            .x("cannot read a monitor's name", d)?
            .reply()
            .x("cannot read a monitor's name", d)?;
        let name = String::from_utf8_lossy(&reply.name).into_owned();
        self.atom_names.insert(atom, name.clone());
        Ok(name)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.conn.damage_destroy(self.damage);
        let _ = self.conn.xfixes_destroy_region(self.region);
        self.pixels.detach(&self.conn);
        let _ = self.conn.flush();
    }
}

/// RandR's monitors less the automatic ones (one per output) that a
/// monitor the user defined overlaps: the user's monitors split or replace
/// that output (`xrandr --setmonitor`, also without naming the output).
fn without_split_outputs(monitors: Vec<randr::MonitorInfo>) -> Vec<randr::MonitorInfo> {
    let area = |m: &randr::MonitorInfo| {
        let r = xproto::Rectangle {
            x: m.x,
            y: m.y,
            width: m.width,
            height: m.height,
        };
        Area::from_x(&r, &Area::new(0, 0, u32::MAX, u32::MAX))
    };
    let defined: Vec<Area> = monitors
        .iter()
        .filter(|m| !m.automatic)
        .filter_map(area)
        .collect();
    monitors
        .into_iter()
        .filter(|m| {
            !m.automatic || area(m).is_none_or(|a| !defined.iter().any(|d| d.clip(&a).is_some()))
        })
        .collect()
}

/// Pixels must be 32-bit BGRX as the plugin expects them (depth 24 or 32,
/// 32 bits per pixel, least significant byte first, 8-bit channels).
fn check_pixel_format(
    conn: &RustConnection,
    screen_num: usize,
    display: &str,
) -> Result<(), ScreenError> {
    let setup = conn.setup();
    let screen = &setup.roots[screen_num];
    let depth = screen.root_depth;
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map(|f| f.bits_per_pixel);
    let visual = screen
        .allowed_depths
        .iter()
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == screen.root_visual);
    let masks = visual.map(|v| (v.red_mask, v.green_mask, v.blue_mask));
    let ok = matches!(depth, 24 | 32)
        && bpp == Some(32)
        && setup.image_byte_order == ImageOrder::LSB_FIRST
        && masks == Some((0x00ff_0000, 0x0000_ff00, 0x0000_00ff));
    if ok {
        return Ok(());
    }
    Err(ScreenError::NotSupported(format!(
        "X display {display} has depth {depth} with {bpp:?} bits per pixel and colour masks {masks:x?}; only 24-bit colour as 32-bit BGRX is supported"
    )))
}

/// DAMAGE and XFIXES are needed (and their versions negotiated before use).
fn require_extensions(conn: &RustConnection, display: &str) -> Result<(), ScreenError> {
    for name in [damage::X11_EXTENSION_NAME, xfixes::X11_EXTENSION_NAME] {
        let present = conn
            .extension_information(name)
            .x("cannot list the X extensions", display)?
            .is_some();
        if !present {
            return Err(ScreenError::NotSupported(format!(
                "X display {display} has no {name} extension"
            )));
        }
    }
    conn.xfixes_query_version(5, 0)
        .x("cannot use XFIXES", display)?
        .reply()
        .x("cannot use XFIXES", display)?;
    conn.damage_query_version(1, 1)
        .x("cannot use DAMAGE", display)?
        .reply()
        .x("cannot use DAMAGE", display)?;
    Ok(())
}

/// Whether RandR 1.5 (monitors) is there.
fn randr_monitors(conn: &RustConnection) -> bool {
    let present = conn
        .extension_information(randr::X11_EXTENSION_NAME)
        .ok()
        .flatten()
        .is_some();
    present
        && conn
            .randr_query_version(1, 5)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|v| (v.major_version, v.minor_version) >= (1, 5))
}
