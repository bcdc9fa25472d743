//! One screen sharing: the display, the shared area and its tiles, the
//! stream to the operator, the frame timer and the operator's input.
//!
//! A frame: damage from `screen-changes` → the tiles it touches (and those
//! left over) → their pixels in one `screen-read` per batch of runs →
//! unchanged tiles (same hash) dropped → the rest encoded (solid, zlib or
//! JPEG; a tile the operator holds lossless as only the rectangle around
//! its changed pixels, [`crate::picture`]) until the frame's byte budget
//! is spent → updates of at most
//! [`MAX_UPDATE_BYTES`] → the pointer → the clipboard's text, when it is
//! shared and changed ([`clipboard`]).

use lifeline_screen_format::{
    encode_message, CursorShape, Level, Message, MonitorChoice, Quality, Tile, TileData,
    CONTENT_TYPE, STREAM_NAME, TILE,
};

use crate::api::{error_text, Host, HostError, LogLevel, Rect, ScreenInfo, StreamMode};
use crate::batch::{self, MAX_UPDATE_BYTES};
use crate::encode::{self, Policy, TileEncoder};
use crate::pacing::{Frame, Pacer};
use crate::picture::{self, Picture};
use crate::pixels::{self, BYTES_PER_PIXEL};
use crate::tiles::{self, Area, Grid, Planned, Run, TileMemory};

pub mod clipboard;
mod input;
use clipboard::ClipboardSync;
use input::Held;

/// Most tiles held lossy (JPEG) by the operator that one frame re-sends
/// lossless, when bandwidth is not short.
pub const REFINE_TILES_PER_FRAME: usize = 64;
/// Bytes one `screen-read` asks for at first (128 full tiles); halved
/// whenever the host answers `limit` (its `MAX_SCREEN_READ_BYTES`).
pub const READ_BATCH_BYTES: usize = 2 << 20;
/// The smallest read: one full tile.
const MIN_READ_BYTES: usize = (TILE * TILE) as usize * BYTES_PER_PIXEL;
/// Most events one `input-send` carries (the host's `MAX_INPUT_EVENTS`).
pub const MAX_INPUT_EVENTS: usize = 1024;
/// The status line and report line when the customer refuses control.
pub const CONTROL_REFUSED: &str = "control was not allowed by the customer";
/// The report line when the customer stops sharing.
pub const STOPPED_BY_CUSTOMER: &str = "screen sharing stopped by the customer";

/// Why sharing ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The customer pressed Stop on the sharing indicator: a `screen-*`
    /// call was `denied`.
    Customer,
    /// The stream is gone: the operator side closed it, or nobody read it.
    Stream(String),
    /// Capturing failed (the display went away, a host error).
    Failed(String),
    /// The operator's `stop`, or the session's end (the reason).
    Ended(String),
}

impl Stop {
    /// A `screen-*` call failed.
    fn screen(e: HostError) -> Stop {
        match e {
            HostError::Denied(_) => Stop::Customer,
            other => Stop::Failed(error_text(&other).to_string()),
        }
    }

    /// A `stream-*` call failed.
    fn stream(e: HostError) -> Stop {
        Stop::Stream(error_text(&e).to_string())
    }

    /// The line for the session report.
    pub fn report(&self) -> String {
        match self {
            Stop::Customer => STOPPED_BY_CUSTOMER.to_string(),
            Stop::Stream(m) => {
                format!("screen sharing stopped: the stream to the operator is gone ({m})")
            }
            Stop::Failed(m) => format!("screen sharing stopped: {m}"),
            Stop::Ended(why) => format!("screen sharing stopped: {why}"),
        }
    }
}

/// Whether the operator's input reaches the display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// No input sent yet (the first one asks the customer).
    NotAsked,
    Allowed,
    /// The customer refused: input is dropped until the operator asks again.
    Refused,
}

/// What went through, for `status` and the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub updates: u64,
    pub tiles: u64,
    pub jpeg_tiles: u64,
    pub bytes: u64,
}

/// What the operator chose to share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub monitor: MonitorChoice,
    pub quality: Quality,
}

/// A sharing in progress.
pub struct Sharing {
    stream: u32,
    info: ScreenInfo,
    options: Options,
    grid: Grid,
    memory: TileMemory,
    /// Each tile's pixels as last sent (a change is sent as its part).
    picture: Picture,
    pacer: Pacer,
    encoder: TileEncoder,
    /// Bytes one `screen-read` may ask for.
    read_limit: usize,
    /// The next update's number.
    seq: u32,
    started_us: u64,
    /// Where the operator last saw the pointer (shared-area coordinates).
    cursor_at: Option<(i32, i32)>,
    /// The pointer's image, kept to send again after a layout or refresh.
    cursor_shape: Option<CursorShape>,
    resend_shape: bool,
    control: Control,
    /// The input problem last shown to the operator (shown once).
    input_problem: Option<String>,
    held: Held,
    clipboard: ClipboardSync,
    /// The frame timer this sharing waits for.
    timer: Option<u32>,
    /// Scratch: one tile's pixels, the part of it sent; one encoded message.
    tile_px: Vec<u8>,
    part_px: Vec<u8>,
    frame: Vec<u8>,
    stats: Stats,
}

/// The part of the display `choice` names, in display coordinates.
pub fn shared_area(info: &ScreenInfo, choice: MonitorChoice) -> Result<Area, String> {
    let display = Area::new(0, 0, info.width, info.height);
    let MonitorChoice::Index(i) = choice else {
        return if display.is_empty() {
            Err(format!("display {} has no pixels", info.display))
        } else {
            Ok(display)
        };
    };
    let m = info.monitors.get(usize::from(i)).ok_or_else(|| {
        format!(
            "there is no monitor {i}: display {} has {}",
            info.display,
            monitor_list(info)
        )
    })?;
    area_of(&m.area).intersect(&display).ok_or_else(|| {
        format!(
            "monitor {i} ({}) lies outside display {}",
            m.name, info.display
        )
    })
}

/// "2 monitors: 0 DP-1 1920×1080 at 0,0 (primary), 1 HDMI-1 1280×1024 at 1920,0".
pub fn monitor_list(info: &ScreenInfo) -> String {
    let each: Vec<String> = info
        .monitors
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let a = &m.area;
            let primary = if m.primary { " (primary)" } else { "" };
            format!(
                "{i} {} {}×{} at {},{}{primary}",
                m.name, a.width, a.height, a.x, a.y
            )
        })
        .collect();
    let n = info.monitors.len();
    let s = if n == 1 { "" } else { "s" };
    format!("{n} monitor{s}: {}", each.join(", "))
}

fn area_of(r: &Rect) -> Area {
    Area::new(r.x, r.y, r.width, r.height)
}

fn rect_of(a: &Area) -> Rect {
    Rect {
        x: a.x,
        y: a.y,
        width: a.width,
        height: a.height,
    }
}

/// A display coordinate relative to the shared area's origin.
fn relative(v: i64, origin: u32) -> i32 {
    (v - i64::from(origin)).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The layout the operator sees: the shared area's size and every
/// monitor of the display, in the host's order (so that the index of
/// `Settings` means the same), relative to the shared area's origin.
pub fn layout_message(info: &ScreenInfo, area: Area) -> Message {
    let monitors = info
        .monitors
        .iter()
        .map(|m| lifeline_screen_format::Monitor {
            name: m.name.clone(),
            x: relative(i64::from(m.area.x), area.x),
            y: relative(i64::from(m.area.y), area.y),
            width: m.area.width,
            height: m.area.height,
            primary: m.primary,
        })
        .collect();
    Message::Layout {
        width: area.width,
        height: area.height,
        monitors,
    }
}

/// The sentence the operator reads when `screen-open` fails.
/// Most tiles an update's part between two flushes of the zlib stream
/// may have (well below `MAX_TILES_PER_UPDATE`).
const MAX_TILES_BETWEEN_CUTS: usize = 1024;

/// Tiles of `cut` up to its last `true`.
fn last_cut(cut: &[bool]) -> usize {
    cut.iter().rposition(|&c| c).map_or(0, |i| i + 1)
}

/// Flushes the zlib stream onto the last zlib tile of `out`: an update
/// may then end after it or any later tile. The bytes added.
fn flush_into(encoder: &mut TileEncoder, out: &mut [Tile], cut: &mut [bool]) -> u64 {
    let bytes = encoder.flush();
    if bytes.is_empty() {
        return 0;
    }
    // Input is pending only after a zlib tile was encoded, and every tile
    // encoded is in `out`.
    let last = out
        .iter()
        .rposition(|t| matches!(t.data, TileData::Zlib(_)));
    if let Some(j) = last {
        if let TileData::Zlib(z) = &mut out[j].data {
            z.extend_from_slice(&bytes);
        }
        cut[j..].fill(true);
    }
    bytes.len() as u64
}

fn open_error(e: HostError) -> String {
    match e {
        HostError::Denied(m) => format!("the customer did not allow screen sharing ({m})"),
        HostError::Failed(m) => format!("screen sharing is not possible here: {m}"),
        HostError::NotDeclared(m) | HostError::Limit(m) => m,
    }
}

/// The pixels of a batch of runs, as one `screen-read` returned them.
struct Batch<'a> {
    px: &'a [u8],
    runs: &'a [Run],
}

impl Sharing {
    /// Opens the screen (the host asks the customer) and the stream, sends
    /// the layout and sets the first tick. `options` picks what to share
    /// once the display is known.
    pub fn start(
        host: &mut dyn Host,
        options: impl FnOnce(&ScreenInfo) -> Result<Options, String>,
    ) -> Result<Sharing, String> {
        let info = host.screen_open().map_err(open_error)?;
        let chosen = options(&info).and_then(|o| Ok((o, shared_area(&info, o.monitor)?)));
        let (options, area) = chosen.inspect_err(|_| {
            let _ = host.screen_close();
        })?;
        let stream = host
            .stream_open(STREAM_NAME, CONTENT_TYPE, StreamMode::Queued)
            .map_err(|e| {
                let _ = host.screen_close();
                format!("cannot open the screen stream: {}", error_text(&e))
            })?;
        let grid = Grid::new(area);
        let mut s = Sharing {
            stream,
            info,
            options,
            memory: TileMemory::new(grid.len()),
            picture: Picture::new(grid.len()),
            grid,
            pacer: Pacer::default(),
            encoder: TileEncoder::default(),
            read_limit: READ_BATCH_BYTES,
            seq: 0,
            started_us: host.now_us(),
            cursor_at: None,
            cursor_shape: None,
            resend_shape: false,
            control: Control::NotAsked,
            input_problem: None,
            held: Held::default(),
            clipboard: ClipboardSync::default(),
            timer: None,
            tile_px: Vec::new(),
            part_px: Vec::new(),
            frame: Vec::new(),
            stats: Stats::default(),
        };
        let first = s.apply_layout(host).and_then(|()| {
            let id = host.timer_set(0).map_err(timer_error)?;
            s.timer = Some(id);
            Ok(())
        });
        if let Err(stop) = first {
            s.finish(host, &stop);
            return Err(stop.report());
        }
        let _ = host.report_line(&format!("screen sharing started: {}", s.summary()));
        Ok(s)
    }

    pub fn info(&self) -> &ScreenInfo {
        &self.info
    }

    pub fn options(&self) -> Options {
        self.options
    }

    pub fn control(&self) -> Control {
        self.control
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Ticks skipped for want of credit.
    pub fn skipped(&self) -> u64 {
        self.pacer.skipped()
    }

    /// Microseconds since sharing began.
    pub fn elapsed_us(&self, host: &mut dyn Host) -> u64 {
        host.now_us().saturating_sub(self.started_us)
    }

    /// One line: the display, what is shared, quality, rate, stream.
    pub fn summary(&self) -> String {
        let a = self.grid.area();
        let what = match self.options.monitor {
            MonitorChoice::All => "the whole display".to_string(),
            MonitorChoice::Index(i) => {
                let name = self
                    .info
                    .monitors
                    .get(usize::from(i))
                    .map_or("?", |m| m.name.as_str());
                format!(
                    "monitor {i} ({name}, {}×{} at {},{})",
                    a.width, a.height, a.x, a.y
                )
            }
        };
        let quality = match self.options.quality {
            Quality::Auto => "auto",
            Quality::Lossless => "lossless",
        };
        format!(
            "display {} ({}×{}, {}), sharing {what}, quality {quality}, up to {} fps, on stream \"{STREAM_NAME}\" ({CONTENT_TYPE})",
            self.info.display,
            self.info.width,
            self.info.height,
            monitor_list(&self.info),
            self.pacer.fps()
        )
    }

    /// The operator's settings (a `share` while sharing, or [`Input::Settings`]).
    pub fn apply(&mut self, host: &mut dyn Host, options: Options) -> Result<(), Stop> {
        if options.quality != self.options.quality {
            self.options.quality = options.quality;
            if options.quality == Quality::Lossless {
                // Lossy tiles are refined at once, whatever the bandwidth.
                self.memory.forget_lossy();
            }
        }
        if options.monitor != self.options.monitor {
            match shared_area(&self.info, options.monitor) {
                Ok(_) => {
                    self.options.monitor = options.monitor;
                    self.apply_layout(host)?;
                }
                Err(why) => self.status(host, Level::Warning, &why)?,
            }
        }
        Ok(())
    }

    /// Sends the layout of the shared area; every tile is sent again.
    fn apply_layout(&mut self, host: &mut dyn Host) -> Result<(), Stop> {
        let area = shared_area(&self.info, self.options.monitor).map_err(Stop::Failed)?;
        self.grid = Grid::new(area);
        self.memory = TileMemory::new(self.grid.len());
        self.picture = Picture::new(self.grid.len());
        self.cursor_at = None;
        self.resend_shape = true;
        self.send(host, &layout_message(&self.info, area)).map(drop)
    }

    /// The display's size or monitors changed.
    fn new_layout(&mut self, host: &mut dyn Host, info: ScreenInfo) -> Result<(), Stop> {
        self.info = info;
        if shared_area(&self.info, self.options.monitor).is_err() {
            self.options.monitor = MonitorChoice::All;
            let text = "the shared monitor is gone; sharing the whole display";
            self.status(host, Level::Warning, text)?;
        }
        self.apply_layout(host)
    }

    /// A frame timer fired.
    pub fn on_timer(&mut self, host: &mut dyn Host, id: u32) -> Result<(), Stop> {
        if self.timer != Some(id) {
            return Ok(());
        }
        self.timer = None;
        let t0 = host.now_us();
        let credit = host.stream_credit(self.stream).map_err(Stop::stream)?;
        match self.pacer.begin(credit) {
            Some(frame) => {
                self.capture(host, frame)?;
                self.cursor(host)?;
            }
            // The pointer is a few bytes and what the operator watches most.
            None if credit > 0 => self.cursor(host)?,
            None => {}
        }
        self.clipboard_tick(host)?;
        let spent = host.now_us().saturating_sub(t0);
        self.pacer.took(spent);
        let id = host
            .timer_set(self.pacer.delay_ms(spent))
            .map_err(timer_error)?;
        self.timer = Some(id);
        Ok(())
    }

    /// Captures and sends one frame within `frame`'s budget.
    pub(crate) fn capture(&mut self, host: &mut dyn Host, frame: Frame) -> Result<(), Stop> {
        let captured_us = host.now_us().saturating_sub(self.started_us);
        let changes = host.screen_changes().map_err(Stop::screen)?;
        if let Some(info) = changes.layout {
            self.new_layout(host, info)?;
        }
        let damage: Vec<Area> = changes.areas.iter().map(area_of).collect();
        let refine = if frame.short {
            0
        } else {
            REFINE_TILES_PER_FRAME
        };
        let plan = self.memory.plan(&self.grid, &damage, refine);
        let policy = Policy::new(self.options.quality, frame.short, frame.jpeg_quality)
            .cpu_bound(frame.cpu_bound);
        let (tiles, cut, deferred) = self.encode_plan(host, &plan, policy, frame.budget)?;
        let bytes = self.send_tiles(host, tiles, &cut, captured_us)?;
        self.pacer.end(bytes as u64, deferred);
        Ok(())
    }

    /// Reads and encodes the planned tiles that changed, until `budget`
    /// bytes are encoded; the tiles not looked at wait for the next frame
    /// (then the second value is true).
    fn encode_plan(
        &mut self,
        host: &mut dyn Host,
        plan: &[Planned],
        policy: Policy,
        budget: u64,
    ) -> Result<(Vec<Tile>, Vec<bool>, bool), Stop> {
        let mut out = Vec::new();
        // Whether an update may end after each tile of `out`.
        let mut cut = Vec::new();
        let mut bytes = 0u64;
        // Position in `plan` of the next tile to look at.
        let mut next = 0;
        'plan: while next < plan.len() && bytes < budget {
            let runs = tiles::runs(&self.grid, &plan[next..], self.read_limit);
            let base = next;
            let mut r = 0;
            while r < runs.len() {
                let end = batch_end(&runs, r, self.read_limit);
                let px = match self.read(host, &runs[r..end])? {
                    Some(px) => px,
                    None => continue 'plan, // the read limit was halved
                };
                let batch = Batch {
                    px: &px,
                    runs: &runs[r..end],
                };
                for (run, run_px) in batch.split() {
                    for k in 0..run.count {
                        let p = plan[base + run.first + k];
                        next = base + run.first + k + 1;
                        if let Some(t) = self.examine(host, p, run, run_px, k, policy) {
                            bytes += batch::tile_bytes(&t) as u64;
                            out.push(t);
                            cut.push(!self.encoder.pending());
                            if cut.len() - last_cut(&cut) >= MAX_TILES_BETWEEN_CUTS {
                                bytes += flush_into(&mut self.encoder, &mut out, &mut cut);
                            }
                        }
                        // Held-back zlib bytes count at their bound; near
                        // the budget they are flushed to count exactly.
                        if bytes + self.encoder.unflushed() as u64 >= budget {
                            bytes += flush_into(&mut self.encoder, &mut out, &mut cut);
                            if bytes >= budget {
                                break 'plan;
                            }
                        }
                    }
                }
                r = end;
            }
        }
        for p in &plan[next..] {
            self.memory.defer(p.index);
        }
        flush_into(&mut self.encoder, &mut out, &mut cut);
        Ok((out, cut, next < plan.len()))
    }

    /// The pixels of `runs` in one `screen-read`; `None` when the host
    /// refused the size and the limit was halved.
    fn read(&mut self, host: &mut dyn Host, runs: &[Run]) -> Result<Option<Vec<u8>>, Stop> {
        let rects: Vec<Rect> = runs.iter().map(|r| rect_of(&r.rect)).collect();
        let want: usize = runs.iter().map(Run::bytes).sum();
        match host.screen_read(&rects) {
            Ok(px) if px.len() == want => Ok(Some(px)),
            Ok(px) => Err(Stop::Failed(format!(
                "screen-read returned {} bytes for {want} bytes of pixels",
                px.len()
            ))),
            Err(HostError::Limit(m)) if self.read_limit > MIN_READ_BYTES => {
                self.read_limit = (self.read_limit / 2).max(MIN_READ_BYTES);
                host.log(
                    LogLevel::Debug,
                    &format!(
                        "screen-read limit ({m}): reading {} bytes at most",
                        self.read_limit
                    ),
                );
                Ok(None)
            }
            Err(e) => Err(Stop::screen(e)),
        }
    }

    /// Looks at tile `k` of `run`: `None` when it did not change (and is
    /// not to be refined), else the encoded tile.
    fn examine(
        &mut self,
        host: &mut dyn Host,
        p: Planned,
        run: &Run,
        run_px: &[u8],
        k: usize,
        policy: Policy,
    ) -> Option<Tile> {
        let t = self.grid.tile(p.index);
        tiles::tile_of_run(run_px, run.rect.width, &t, k, &mut self.tile_px);
        let hash = pixels::hash(&self.tile_px);
        if !p.refine && !self.memory.changed(p.index, hash) {
            self.memory.seen(p.index);
            return None;
        }
        let policy = if p.refine { Policy::LOSSLESS } else { policy };
        // A tile the operator holds lossless is sent as the part that
        // changed, when that is smaller.
        let part = (!p.refine && self.memory.holds_lossless(p.index))
            .then(|| self.picture.changed_part(p.index, &self.tile_px, t.width))
            .flatten()
            .filter(|part| part.pixels() < t.pixels());
        let (sent, px) = match part {
            Some(part) => {
                picture::crop(&self.tile_px, t.width, &part, &mut self.part_px);
                let at = Area::new(t.x + part.x, t.y + part.y, part.width, part.height);
                (at, &self.part_px)
            }
            None => (t, &self.tile_px),
        };
        match self.encoder.encode(px, sent.width, sent.height, policy) {
            Ok(data) => {
                self.memory
                    .remember(p.index, hash, matches!(data, TileData::Jpeg(_)));
                self.picture.keep(p.index, &mut self.tile_px);
                Some(Tile {
                    x: sent.x as u16,
                    y: sent.y as u16,
                    width: sent.width as u16,
                    height: sent.height as u16,
                    data,
                })
            }
            Err(e) => {
                self.memory.seen(p.index);
                host.log(LogLevel::Error, &format!("tile {}: {e}", p.index));
                None
            }
        }
    }

    /// Sends the frame's tiles in updates; the bytes sent.
    fn send_tiles(
        &mut self,
        host: &mut dyn Host,
        tiles: Vec<Tile>,
        cut: &[bool],
        captured_us: u64,
    ) -> Result<usize, Stop> {
        self.stats.tiles += tiles.len() as u64;
        self.stats.jpeg_tiles += tiles
            .iter()
            .filter(|t| matches!(t.data, TileData::Jpeg(_)))
            .count() as u64;
        let updates = batch::updates(tiles, cut, MAX_UPDATE_BYTES, self.seq, captured_us);
        self.seq = self.seq.wrapping_add(updates.len() as u32);
        self.stats.updates += updates.len() as u64;
        let mut bytes = 0;
        for u in &updates {
            bytes += self.send(host, u)?;
        }
        Ok(bytes)
    }

    /// Sends the pointer when it moved or its image changed.
    fn cursor(&mut self, host: &mut dyn Host) -> Result<(), Stop> {
        let c = host.screen_cursor().map_err(Stop::screen)?;
        if let Some(img) = c.image {
            match encode::cursor_png(&img.rgba, img.width, img.height) {
                Ok(png) => {
                    self.cursor_shape = Some(CursorShape {
                        width: img.width as u16,
                        height: img.height as u16,
                        hot_x: img.hot_x.min(u32::from(u16::MAX)) as u16,
                        hot_y: img.hot_y.min(u32::from(u16::MAX)) as u16,
                        png,
                    });
                    self.resend_shape = true;
                }
                Err(e) => host.log(LogLevel::Warn, &format!("pointer image: {e}")),
            }
        }
        let area = self.grid.area();
        let at = (
            relative(i64::from(c.x), area.x),
            relative(i64::from(c.y), area.y),
        );
        let shape = if self.resend_shape {
            self.cursor_shape.clone()
        } else {
            None
        };
        if shape.is_none() && self.cursor_at == Some(at) {
            return Ok(());
        }
        if shape.is_some() {
            self.resend_shape = false;
        }
        self.cursor_at = Some(at);
        let (x, y) = at;
        self.send(host, &Message::Cursor { x, y, shape }).map(drop)
    }

    /// Encodes and sends one message; its size.
    fn send(&mut self, host: &mut dyn Host, msg: &Message) -> Result<usize, Stop> {
        self.frame.clear();
        encode_message(msg, &mut self.frame);
        host.stream_send(self.stream, &self.frame)
            .map_err(Stop::stream)?;
        self.stats.bytes += self.frame.len() as u64;
        Ok(self.frame.len())
    }

    fn status(&mut self, host: &mut dyn Host, level: Level, text: &str) -> Result<(), Stop> {
        let text = text.to_string();
        self.send(host, &Message::Status { level, text }).map(drop)
    }

    /// Ends sharing: releases what the operator held down, tells the
    /// operator why (when that cannot block), closes the screen and the
    /// stream and writes the report line.
    pub fn finish(&mut self, host: &mut dyn Host, why: &Stop) {
        let releases = self.held.releases();
        if self.control == Control::Allowed && !releases.is_empty() {
            let _ = host.input_send(&releases);
        }
        let status = match why {
            Stop::Customer => Some((Level::Warning, STOPPED_BY_CUSTOMER.to_string())),
            Stop::Failed(m) => Some((Level::Error, format!("screen sharing stopped: {m}"))),
            Stop::Ended(_) | Stop::Stream(_) => None,
        };
        if let Some((level, text)) = status {
            if host.stream_credit(self.stream).is_ok_and(|c| c > 0) {
                let _ = self.status(host, level, &text);
            }
        }
        let _ = host.screen_close();
        let _ = host.stream_close(self.stream);
        self.timer = None;
        let secs = self.elapsed_us(host) / 1_000_000;
        let line = format!(
            "{} (after {secs} s: {} updates, {:.1} MiB)",
            why.report(),
            self.stats.updates,
            self.stats.bytes as f64 / f64::from(1 << 20)
        );
        let _ = host.report_line(&line);
        host.log(LogLevel::Info, &line);
    }
}

fn timer_error(e: HostError) -> Stop {
    Stop::Failed(format!("cannot set the frame timer: {}", error_text(&e)))
}

/// The end of the batch of runs from `start` that one read of at most
/// `max_bytes` covers (at least one run).
fn batch_end(runs: &[Run], start: usize, max_bytes: usize) -> usize {
    let mut bytes = 0;
    let mut end = start;
    while end < runs.len() && (end == start || bytes + runs[end].bytes() <= max_bytes) {
        bytes += runs[end].bytes();
        end += 1;
    }
    end
}

impl<'a> Batch<'a> {
    /// Each run with its pixels.
    fn split(&self) -> impl Iterator<Item = (&'a Run, &'a [u8])> {
        let px = self.px;
        self.runs.iter().scan(0usize, move |offset, run| {
            let start = *offset;
            *offset += run.bytes();
            Some((run, &px[start..*offset]))
        })
    }
}
