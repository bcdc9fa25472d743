//! Reading pixels of the root window: MIT-SHM (`shm::GetImage` into a
//! shared segment, no copy through the X socket) when the server offers it
//! with descriptor passing (SHM 1.2), else plain `GetImage` through the
//! socket (a remote display, or a server without MIT-SHM).
//!
//! Strategy: the areas of one read are requested together (pipelined: one
//! round trip for all). When they cover at least
//! [`DENSE_COVERAGE_PERCENT`] of their bounding box, the bounding box is
//! requested once instead and each area copied out of it (fewer requests
//! for the many small tiles of a busy screen, few wasted pixels).

use std::sync::Arc;

use lifeline_runtime::screen::MAX_SCREEN_READ_BYTES;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use super::error::{ScreenError, XContext};
use super::rects::{Area, bounding_box};
use super::shm::SharedMemory;

/// Areas covering at least this percentage of their bounding box are read
/// as that one box.
pub const DENSE_COVERAGE_PERCENT: u64 = 50;

/// How pixels are fetched from the server.
pub enum Pixels {
    /// Through a shared segment attached to the server as `seg`.
    Shm { mem: SharedMemory, seg: shm::Seg },
    /// Through the X connection (no MIT-SHM, or it could not be attached).
    Plain,
}

impl Pixels {
    /// MIT-SHM with a segment of `len` bytes when the server offers it,
    /// else plain reads (logged: they are slower).
    pub fn new(conn: &RustConnection, display: &str, len: usize) -> Pixels {
        match attach(conn, len) {
            Ok((mem, seg)) => Pixels::Shm { mem, seg },
            Err(why) => {
                let shown = display.to_string();
                tracing::info!("X display {shown}: {why}; reading pixels without MIT-SHM");
                Pixels::Plain
            }
        }
    }

    /// Whether reads go through shared memory.
    pub fn is_shm(&self) -> bool {
        matches!(self, Pixels::Shm { .. })
    }

    /// Appends the pixels of `areas` (on the display, checked by the
    /// caller) to `out`, BGRX rows without padding.
    pub fn read(
        &mut self,
        conn: &Arc<RustConnection>,
        root: Window,
        display: &str,
        areas: &[Area],
        out: &mut Vec<u8>,
    ) -> Result<(), ScreenError> {
        let plan = Plan::new(areas);
        let needed: u64 = plan.requests.iter().map(Area::bytes).sum();
        if needed == 0 {
            return Ok(());
        }
        let fetched = match self {
            Pixels::Shm { .. } => self.fetch_shm(conn, root, display, &plan.requests, needed)?,
            Pixels::Plain => fetch_plain(conn, root, display, &plan.requests)?,
        };
        for (area, source) in areas.iter().zip(&plan.source) {
            let Some(i) = *source else { continue };
            let bytes = match &fetched {
                Fetched::Shm(offsets) => {
                    let len = usize::try_from(plan.requests[i].bytes()).unwrap_or(usize::MAX);
                    match self {
                        Pixels::Shm { mem, .. } => mem.bytes(offsets[i], len),
                        Pixels::Plain => None,
                    }
                }
                Fetched::Plain(data) => Some(data[i].as_slice()),
            };
            let bytes = bytes.ok_or_else(|| ScreenError::X {
                what: "the captured image is shorter than asked",
                display: display.to_string(),
                reason: format!("{area:?}"),
            })?;
            copy_area(bytes, &plan.requests[i], area, out);
        }
        Ok(())
    }

    fn fetch_shm(
        &mut self,
        conn: &Arc<RustConnection>,
        root: Window,
        display: &str,
        requests: &[Area],
        needed: u64,
    ) -> Result<Fetched, ScreenError> {
        self.reserve(conn, display, needed)?;
        let Pixels::Shm { seg, .. } = self else {
            return fetch_plain(conn, root, display, requests);
        };
        let mut offsets = Vec::with_capacity(requests.len());
        let mut cookies = Vec::with_capacity(requests.len());
        let mut offset: u64 = 0;
        for r in requests {
            let (x, y, w, h) = x_rect(r);
            let off = u32::try_from(offset).unwrap_or(u32::MAX);
            let c = conn
                .shm_get_image(
                    root,
                    x,
                    y,
                    w,
                    h,
                    !0,
                    ImageFormat::Z_PIXMAP.into(),
                    *seg,
                    off,
                )
                .x("cannot capture the screen (MIT-SHM)", display)?;
            cookies.push((c, r.bytes()));
            offsets.push(usize::try_from(offset).unwrap_or(usize::MAX));
            offset += r.bytes();
        }
        // Every reply waited for: the server has written all the areas.
        for (c, bytes) in cookies {
            let reply = c
                .reply()
                .x("cannot capture the screen (MIT-SHM)", display)?;
            if u64::from(reply.size) != bytes {
                return Err(ScreenError::X {
                    what: "unexpected image size",
                    display: display.to_string(),
                    reason: format!("{} bytes where {bytes} were expected", reply.size),
                });
            }
        }
        Ok(Fetched::Shm(offsets))
    }

    /// Makes the segment hold `needed` bytes (a new, larger one).
    fn reserve(
        &mut self,
        conn: &RustConnection,
        display: &str,
        needed: u64,
    ) -> Result<(), ScreenError> {
        let Pixels::Shm { mem, .. } = self else {
            return Ok(());
        };
        if needed <= mem.len() as u64 {
            return Ok(());
        }
        self.detach(conn);
        let len = usize::try_from(needed.min(MAX_SCREEN_READ_BYTES as u64)).unwrap_or(0);
        *self = match attach(conn, len) {
            Ok((mem, seg)) => Pixels::Shm { mem, seg },
            Err(why) => {
                let shown = display.to_string();
                tracing::warn!("X display {shown}: {why}; reading pixels without MIT-SHM");
                Pixels::Plain
            }
        };
        Ok(())
    }

    /// Lets the server forget the segment.
    pub fn detach(&self, conn: &RustConnection) {
        if let Pixels::Shm { seg, .. } = self {
            let _ = conn.shm_detach(*seg);
            let _ = conn.flush();
        }
    }
}

/// Which requests one read makes, and for each area the request it is
/// copied from (`None`: an empty area).
struct Plan {
    requests: Vec<Area>,
    source: Vec<Option<usize>>,
}

impl Plan {
    fn new(areas: &[Area]) -> Plan {
        let nonempty: Vec<&Area> = areas.iter().filter(|a| !a.is_empty()).collect();
        let total: u64 = nonempty.iter().map(|a| a.bytes()).sum();
        if let Some(bbox) = bounding_box(nonempty.iter().copied())
            && nonempty.len() > 1
            && bbox.bytes() <= MAX_SCREEN_READ_BYTES as u64
            && total * 100 >= bbox.bytes() * DENSE_COVERAGE_PERCENT
        {
            let source = areas.iter().map(|a| (!a.is_empty()).then_some(0)).collect();
            return Plan {
                requests: vec![bbox],
                source,
            };
        }
        let mut requests = Vec::with_capacity(nonempty.len());
        let source = areas
            .iter()
            .map(|a| {
                (!a.is_empty()).then(|| {
                    requests.push(*a);
                    requests.len() - 1
                })
            })
            .collect();
        Plan { requests, source }
    }
}

/// Where each request's pixels ended up.
enum Fetched {
    /// At these offsets of the shared segment.
    Shm(Vec<usize>),
    /// In these replies.
    Plain(Vec<Vec<u8>>),
}

fn fetch_plain(
    conn: &RustConnection,
    root: Window,
    display: &str,
    requests: &[Area],
) -> Result<Fetched, ScreenError> {
    let cookies: Vec<Cookie<'_, RustConnection, _>> = requests
        .iter()
        .map(|r| {
            let (x, y, w, h) = x_rect(r);
            conn.get_image(ImageFormat::Z_PIXMAP, root, x, y, w, h, !0)
                .x("cannot capture the screen", display)
        })
        .collect::<Result<_, _>>()?;
    let mut data = Vec::with_capacity(cookies.len());
    for (c, r) in cookies.into_iter().zip(requests) {
        let reply = c.reply().x("cannot capture the screen", display)?;
        if reply.data.len() as u64 != r.bytes() {
            return Err(ScreenError::X {
                what: "unexpected image size",
                display: display.to_string(),
                reason: format!(
                    "{} bytes where {} were expected",
                    reply.data.len(),
                    r.bytes()
                ),
            });
        }
        data.push(reply.data);
    }
    Ok(Fetched::Plain(data))
}

/// An area as X request fields (the caller checked it is on the display,
/// whose size X keeps within `i16`).
fn x_rect(a: &Area) -> (i16, i16, u16, u16) {
    (
        i16::try_from(a.x).unwrap_or(i16::MAX),
        i16::try_from(a.y).unwrap_or(i16::MAX),
        u16::try_from(a.width).unwrap_or(u16::MAX),
        u16::try_from(a.height).unwrap_or(u16::MAX),
    )
}

/// Copies the rows of `want` out of `src`, which holds the pixels of
/// `from` (containing `want`), 4 bytes a pixel, no padding.
pub fn copy_area(src: &[u8], from: &Area, want: &Area, out: &mut Vec<u8>) {
    if from == want {
        out.extend_from_slice(src);
        return;
    }
    let stride = from.width as usize * 4;
    let row_len = want.width as usize * 4;
    let left = (want.x - from.x) as usize * 4;
    for row in 0..want.height as usize {
        let start = (want.y - from.y) as usize * stride + row * stride + left;
        if let Some(bytes) = src.get(start..start + row_len) {
            out.extend_from_slice(bytes);
        }
    }
}

/// Attaches a new segment of `len` bytes to the server (SHM 1.2:
/// descriptor passing), or why not.
fn attach(conn: &RustConnection, len: usize) -> Result<(SharedMemory, shm::Seg), String> {
    if conn
        .extension_information(shm::X11_EXTENSION_NAME)
        .ok()
        .flatten()
        .is_none()
    {
        return Err("the X server has no MIT-SHM extension".into());
    }
    let v = conn
        .shm_query_version()
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| e.to_string())?;
    if (v.major_version, v.minor_version) < (1, 2) {
        return Err(format!(
            "MIT-SHM {}.{} cannot pass a descriptor (1.2 can)",
            v.major_version, v.minor_version
        ));
    }
    let mem = SharedMemory::new(len).map_err(|e| format!("no shared memory: {e}"))?;
    let fd = mem
        .server_fd()
        .map_err(|e| format!("no shared memory: {e}"))?;
    let seg = conn.generate_id().map_err(|e| e.to_string())?;
    conn.shm_attach_fd(seg, fd, false)
        .map_err(|e| format!("cannot attach shared memory: {e}"))?
        .check()
        .map_err(|e| format!("cannot attach shared memory: {e}"))?;
    Ok((mem, seg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_areas_are_read_as_their_bounding_box() {
        let tiles = [
            Area::new(0, 0, 64, 64),
            Area::new(64, 0, 64, 64),
            Area::new(0, 64, 64, 64),
        ];
        let p = Plan::new(&tiles);
        assert_eq!(p.requests, vec![Area::new(0, 0, 128, 128)]);
        assert_eq!(p.source, vec![Some(0); 3]);
        let sparse = [
            Area::new(0, 0, 8, 8),
            Area::new(1000, 700, 8, 8),
            Area::new(5, 5, 0, 3),
        ];
        let p = Plan::new(&sparse);
        assert_eq!(p.requests, sparse[..2].to_vec());
        assert_eq!(p.source, vec![Some(0), Some(1), None]);
    }

    #[test]
    fn copy_area_takes_rows_without_padding() {
        // A 4x3 box; pixel (x, y) is bytes [x, y, 0, 0].
        let from = Area::new(10, 20, 4, 3);
        let src: Vec<u8> = (0..3u8)
            .flat_map(|y| (0..4u8).flat_map(move |x| [x, y, 0, 0]))
            .collect();
        let mut out = Vec::new();
        copy_area(&src, &from, &Area::new(11, 21, 2, 2), &mut out);
        assert_eq!(out, vec![1, 1, 0, 0, 2, 1, 0, 0, 1, 2, 0, 0, 2, 2, 0, 0]);
        out.clear();
        copy_area(&src, &from, &from, &mut out);
        assert_eq!(out, src);
    }
}
