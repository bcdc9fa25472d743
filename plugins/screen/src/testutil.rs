//! For the tests: tiles of known pixels, image decoding, a simulated host
//! (a display in memory, a stream, timers, input) and a simulated operator
//! that paints what the stream says onto its own picture.

use std::collections::VecDeque;

use lifeline_screen_format::{decode_message, Level, Message, TileData};

use crate::api::{
    CursorImage, CursorState, Host, HostError, InputEvent, LogLevel, Monitor, Rect, ScreenChanges,
    ScreenInfo, StreamMode, StreamSent,
};
use crate::pixels::BYTES_PER_PIXEL;

/// A `w`×`h` tile of BGRX pixels whose colour is `f(x, y)` (R, G, B).
pub fn tile_bgrx(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h) as usize * BYTES_PER_PIXEL);
    for y in 0..h {
        for x in 0..w {
            let [r, g, b] = f(x, y);
            v.extend_from_slice(&[b, g, r, 0xaa]);
        }
    }
    v
}

/// BGRX → RGB.
pub fn to_rgb(bgrx: &[u8]) -> Vec<u8> {
    bgrx.chunks_exact(BYTES_PER_PIXEL)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect()
}

/// Width, height and RGB pixels of a PNG (RGB, 8 bits).
pub fn decode_png(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut r = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .expect("PNG header");
    let mut buf = vec![0; r.output_buffer_size().expect("PNG size")];
    let info = r.next_frame(&mut buf).expect("PNG image");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Width, height and RGB pixels of a baseline JPEG.
pub fn decode_jpeg(jpeg: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let px = d.decode().expect("JPEG image");
    let info = d.info().expect("JPEG info");
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    (u32::from(info.width), u32::from(info.height), px)
}

/// A display in memory with everything else the host offers.
pub struct FakeHost {
    pub clock_us: u64,
    pub info: ScreenInfo,
    /// The display's pixels, BGRX.
    pub fb: Vec<u8>,
    /// Damage since the last `screen-changes`.
    pub damage: Vec<Rect>,
    /// A layout the next `screen-changes` reports.
    pub layout: Option<ScreenInfo>,
    /// `u64::MAX`: unlimited.
    pub credit: u64,
    /// Frames sent on the stream, not yet read by [`Operator::read`].
    pub sent: Vec<Vec<u8>>,
    pub inbox: VecDeque<Vec<u8>>,
    pub injected: Vec<Vec<InputEvent>>,
    pub screen_denied: bool,
    pub open_error: Option<HostError>,
    pub input_error: Option<HostError>,
    pub stream_gone: bool,
    /// Largest `screen-read` answered; more is `limit`.
    pub read_limit: usize,
    /// Rectangles asked by each `screen-read`.
    pub reads: Vec<usize>,
    pub reports: Vec<String>,
    pub logs: Vec<String>,
    /// (id, after_ms) of each timer set.
    pub timers: Vec<(u32, u32)>,
    pub screen_is_open: bool,
    pub stream: Option<u32>,
    pub cursor: (i32, i32),
    pub cursor_image: Option<CursorImage>,
    /// The customer's clipboard text.
    pub clipboard: Option<String>,
    /// The answer to every `clipboard-*` call while set.
    pub clipboard_error: Option<HostError>,
    /// `clipboard-read` calls so far.
    pub clipboard_reads: usize,
    /// Texts `clipboard-write` put on the clipboard.
    pub clipboard_writes: Vec<String>,
}

impl FakeHost {
    /// A `width`×`height` display of one colour with `monitors`.
    pub fn new(width: u32, height: u32, monitors: &[(&str, Rect)]) -> FakeHost {
        let monitors = monitors
            .iter()
            .enumerate()
            .map(|(i, (name, area))| Monitor {
                name: name.to_string(),
                area: *area,
                primary: i == 0,
            })
            .collect();
        FakeHost {
            clock_us: 1_000,
            info: ScreenInfo {
                display: ":0".into(),
                width,
                height,
                monitors,
            },
            fb: tile_bgrx(width, height, |_, _| [40, 90, 160]),
            damage: Vec::new(),
            layout: None,
            credit: u64::MAX,
            sent: Vec::new(),
            inbox: VecDeque::new(),
            injected: Vec::new(),
            screen_denied: false,
            open_error: None,
            input_error: None,
            stream_gone: false,
            read_limit: usize::MAX,
            reads: Vec::new(),
            reports: Vec::new(),
            logs: Vec::new(),
            timers: Vec::new(),
            screen_is_open: false,
            stream: None,
            cursor: (10, 20),
            cursor_image: None,
            clipboard: None,
            clipboard_error: None,
            clipboard_reads: 0,
            clipboard_writes: Vec::new(),
        }
    }

    /// Paints `r` with `f(x, y)` (display coordinates) and records damage.
    pub fn paint(&mut self, r: Rect, f: impl Fn(u32, u32) -> [u8; 3]) {
        let w = self.info.width;
        for y in r.y..r.y + r.height {
            for x in r.x..r.x + r.width {
                let i = (y * w + x) as usize * BYTES_PER_PIXEL;
                let [red, green, blue] = f(x, y);
                self.fb[i..i + 3].copy_from_slice(&[blue, green, red]);
            }
        }
        self.damage.push(r);
    }

    /// The display as RGB.
    pub fn rgb(&self, area: Rect) -> Vec<u8> {
        to_rgb(&self.read_rect(&area))
    }

    fn read_rect(&self, r: &Rect) -> Vec<u8> {
        let mut out = Vec::with_capacity(r.width as usize * r.height as usize * BYTES_PER_PIXEL);
        for y in r.y..r.y + r.height {
            let start = (y * self.info.width + r.x) as usize * BYTES_PER_PIXEL;
            out.extend_from_slice(&self.fb[start..start + r.width as usize * BYTES_PER_PIXEL]);
        }
        out
    }

    /// The id of the timer set last.
    pub fn last_timer(&self) -> u32 {
        self.timers.last().expect("a timer was set").0
    }

    /// An operator frame of `inputs` waiting on the stream.
    pub fn operator_sends(&mut self, inputs: &[lifeline_screen_format::Input]) {
        let mut frame = Vec::new();
        for i in inputs {
            lifeline_screen_format::encode_input(i, &mut frame);
        }
        self.inbox.push_back(frame);
    }

    fn screen(&self) -> Result<(), HostError> {
        if self.screen_denied {
            return Err(HostError::Denied("the customer stopped sharing".into()));
        }
        if !self.screen_is_open {
            return Err(HostError::Failed("the screen is not open".into()));
        }
        Ok(())
    }

    /// As the host: only during an open share, else the error set.
    fn clipboard_allowed(&self) -> Result<(), HostError> {
        if self.screen_denied || !self.screen_is_open {
            return Err(HostError::Denied(
                "the clipboard needs an open screen share".into(),
            ));
        }
        match self.clipboard_error.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn open_stream(&self, id: u32) -> Result<(), HostError> {
        if self.stream_gone || self.stream != Some(id) {
            return Err(HostError::Failed(format!(
                "no open stream {id} of this plugin"
            )));
        }
        Ok(())
    }
}

impl Host for FakeHost {
    fn now_us(&mut self) -> u64 {
        self.clock_us += 1;
        self.clock_us
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push(format!("{level:?}: {message}"));
    }
    fn report_line(&mut self, text: &str) -> Result<(), HostError> {
        self.reports.push(text.to_string());
        Ok(())
    }
    fn screen_open(&mut self) -> Result<ScreenInfo, HostError> {
        if let Some(e) = self.open_error.clone() {
            return Err(e);
        }
        self.screen_is_open = true;
        self.screen_denied = false;
        self.damage = vec![Rect {
            x: 0,
            y: 0,
            width: self.info.width,
            height: self.info.height,
        }];
        Ok(self.info.clone())
    }
    fn screen_changes(&mut self) -> Result<ScreenChanges, HostError> {
        self.screen()?;
        Ok(ScreenChanges {
            areas: std::mem::take(&mut self.damage),
            layout: self.layout.take(),
        })
    }
    fn screen_read(&mut self, areas: &[Rect]) -> Result<Vec<u8>, HostError> {
        self.screen()?;
        let bytes: usize = areas
            .iter()
            .map(|r| (r.width * r.height) as usize * BYTES_PER_PIXEL)
            .sum();
        if bytes > self.read_limit {
            return Err(HostError::Limit(format!(
                "at most {} bytes in one call",
                self.read_limit
            )));
        }
        self.reads.push(areas.len());
        let mut out = Vec::with_capacity(bytes);
        for r in areas {
            out.extend_from_slice(&self.read_rect(r));
        }
        Ok(out)
    }
    fn screen_cursor(&mut self) -> Result<CursorState, HostError> {
        self.screen()?;
        Ok(CursorState {
            x: self.cursor.0,
            y: self.cursor.1,
            image: self.cursor_image.take(),
        })
    }
    fn screen_close(&mut self) -> Result<(), HostError> {
        self.screen_is_open = false;
        Ok(())
    }
    fn input_send(&mut self, events: &[InputEvent]) -> Result<(), HostError> {
        if self.screen_denied {
            return Err(HostError::Denied("the customer stopped sharing".into()));
        }
        if let Some(e) = self.input_error.clone() {
            return Err(e);
        }
        self.injected.push(events.to_vec());
        Ok(())
    }
    fn clipboard_read(&mut self) -> Result<Option<String>, HostError> {
        self.clipboard_allowed()?;
        self.clipboard_reads += 1;
        Ok(self.clipboard.clone())
    }
    fn clipboard_write(&mut self, text: &str) -> Result<(), HostError> {
        self.clipboard_allowed()?;
        self.clipboard_writes.push(text.to_string());
        self.clipboard = Some(text.to_string());
        Ok(())
    }
    fn stream_open(
        &mut self,
        name: &str,
        content_type: &str,
        mode: StreamMode,
    ) -> Result<u32, HostError> {
        assert_eq!(name, lifeline_screen_format::STREAM_NAME);
        assert_eq!(content_type, lifeline_screen_format::CONTENT_TYPE);
        assert!(matches!(mode, StreamMode::Queued));
        self.stream = Some(7);
        self.stream_gone = false;
        Ok(7)
    }
    fn stream_credit(&mut self, stream: u32) -> Result<u64, HostError> {
        self.open_stream(stream)?;
        Ok(self.credit)
    }
    fn stream_send(&mut self, stream: u32, frame: &[u8]) -> Result<StreamSent, HostError> {
        self.open_stream(stream)?;
        assert!(
            frame.len() <= 1 << 20,
            "a stream frame of {} bytes",
            frame.len()
        );
        if self.credit != u64::MAX {
            self.credit = self.credit.saturating_sub(frame.len() as u64);
        }
        self.sent.push(frame.to_vec());
        Ok(StreamSent {
            credit: self.credit,
            dropped: 0,
        })
    }
    fn stream_recv(&mut self, stream: u32, _timeout_ms: u32) -> Result<Option<Vec<u8>>, HostError> {
        self.open_stream(stream)?;
        Ok(self.inbox.pop_front())
    }
    fn stream_close(&mut self, stream: u32) -> Result<(), HostError> {
        self.open_stream(stream)?;
        self.stream = None;
        Ok(())
    }
    fn timer_set(&mut self, after_ms: u32) -> Result<u32, HostError> {
        let id = self.timers.len() as u32 + 100;
        self.timers.push((id, after_ms));
        Ok(id)
    }
}

/// The operator side: paints updates onto its picture.
#[derive(Debug, Default)]
pub struct Operator {
    pub width: u32,
    pub height: u32,
    /// RGB.
    pub picture: Vec<u8>,
    pub layouts: Vec<Message>,
    pub updates: Vec<u32>,
    /// (x, y, kind) of each tile: "solid", "zlib", "png", "jpeg".
    pub tiles: Vec<(u16, u16, &'static str)>,
    /// The stream's zlib stream (kept by `clear_counts`).
    pub inflater: Inflater,
    pub cursors: Vec<(i32, i32, bool)>,
    pub syncs: Vec<u32>,
    pub statuses: Vec<(Level, String)>,
    /// The customer's clipboard texts received.
    pub clipboards: Vec<String>,
    /// The kind of each message in order.
    pub order: Vec<&'static str>,
}

impl Operator {
    /// Reads (and removes) what the plugin sent.
    pub fn read(&mut self, host: &mut FakeHost) {
        for frame in std::mem::take(&mut host.sent) {
            let msg = decode_message(&frame).expect("the plugin sends valid messages");
            self.apply(msg);
        }
    }

    fn apply(&mut self, msg: Message) {
        match msg {
            Message::Layout { width, height, .. } => {
                self.order.push("layout");
                self.width = width;
                self.height = height;
                self.picture = vec![0; (width * height * 3) as usize];
                self.layouts.push(msg);
            }
            Message::Update { seq, tiles, .. } => {
                self.order.push("update");
                self.updates.push(seq);
                let (bytes, sizes): (Vec<Vec<u8>>, Vec<(u32, u32)>) = tiles
                    .iter()
                    .filter_map(|t| match &t.data {
                        TileData::Zlib(z) => {
                            Some((z.clone(), (u32::from(t.width), u32::from(t.height))))
                        }
                        _ => None,
                    })
                    .unzip();
                let mut inflated = self.inflater.update(&bytes, &sizes).into_iter();
                for t in tiles {
                    let (kind, w, h, rgb) = match t.data {
                        TileData::Solid(c) => {
                            let n = usize::from(t.width) * usize::from(t.height);
                            (
                                "solid",
                                u32::from(t.width),
                                u32::from(t.height),
                                c.repeat(n),
                            )
                        }
                        TileData::Png(p) => {
                            let (w, h, rgb) = decode_png(&p);
                            ("png", w, h, rgb)
                        }
                        TileData::Zlib(_) => {
                            let (w, h) = (u32::from(t.width), u32::from(t.height));
                            ("zlib", w, h, inflated.next().expect("inflated"))
                        }
                        TileData::Jpeg(j) => {
                            let (w, h, rgb) = decode_jpeg(&j);
                            ("jpeg", w, h, rgb)
                        }
                    };
                    assert_eq!((w, h), (u32::from(t.width), u32::from(t.height)));
                    self.paint(u32::from(t.x), u32::from(t.y), w, h, &rgb);
                    self.tiles.push((t.x, t.y, kind));
                }
            }
            Message::Cursor { x, y, shape } => {
                self.order.push("cursor");
                self.cursors.push((x, y, shape.is_some()));
            }
            Message::Sync { token } => {
                self.order.push("sync");
                self.syncs.push(token);
            }
            Message::Status { level, text } => {
                self.order.push("status");
                self.statuses.push((level, text));
            }
            Message::Clipboard { text } => {
                self.order.push("clipboard");
                self.clipboards.push(text);
            }
        }
    }

    fn paint(&mut self, x: u32, y: u32, w: u32, h: u32, rgb: &[u8]) {
        assert!(
            x + w <= self.width && y + h <= self.height,
            "a tile outside the picture"
        );
        for row in 0..h {
            let dst = (((y + row) * self.width + x) * 3) as usize;
            let src = (row * w * 3) as usize;
            self.picture[dst..dst + (w * 3) as usize]
                .copy_from_slice(&rgb[src..src + (w * 3) as usize]);
        }
    }

    /// Forgets what was counted (the picture stays).
    pub fn clear_counts(&mut self) {
        let picture = std::mem::take(&mut self.picture);
        let inflater = std::mem::take(&mut self.inflater);
        *self = Operator {
            width: self.width,
            height: self.height,
            picture,
            inflater,
            ..Operator::default()
        };
    }
}

/// The receiving end of the share's zlib stream ([`TileData::Zlib`]).
pub struct Inflater(Box<miniz_oxide::inflate::stream::InflateState>);

impl Default for Inflater {
    fn default() -> Self {
        Inflater(miniz_oxide::inflate::stream::InflateState::new_boxed(
            miniz_oxide::DataFormat::Zlib,
        ))
    }
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Inflater {
    /// Inflates one update's zlib tiles (their bytes, their sizes, in
    /// order): each tile's RGB pixels. Panics unless the bytes inflate to
    /// exactly these tiles.
    pub fn update(&mut self, bytes: &[Vec<u8>], sizes: &[(u32, u32)]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for z in bytes {
            let max: usize = sizes
                .iter()
                .map(|(w, h)| 1 + 3 * 255 + (w * h * 3) as usize)
                .sum();
            let start = out.len();
            out.resize(start + max + 1, 0);
            let r = miniz_oxide::inflate::stream::inflate(
                &mut self.0,
                z,
                &mut out[start..],
                miniz_oxide::MZFlush::None,
            );
            // Buf: no output yet for these bytes (held until a later flush).
            if r.status != Err(miniz_oxide::MZError::Buf) {
                r.status.expect("the tile inflates");
            }
            assert_eq!(r.bytes_consumed, z.len(), "the tile's bytes are used up");
            // miniz_oxide returns once the input is used up: drain it.
            let mut at = start + r.bytes_written;
            loop {
                let more = miniz_oxide::inflate::stream::inflate(
                    &mut self.0,
                    &[],
                    &mut out[at..],
                    miniz_oxide::MZFlush::None,
                );
                if more.bytes_written == 0 {
                    break;
                }
                at += more.bytes_written;
            }
            out.truncate(at);
        }
        let mut rest = &out[..];
        let tiles = sizes
            .iter()
            .enumerate()
            .map(|(k, &(w, h))| {
                assert!(
                    !rest.is_empty() && rest.len() >= content_len(rest[0], w, h),
                    "the update's zlib bytes end before the content of tile {k} of {}",
                    sizes.len()
                );
                let (n, rgb, used) = content(rest, w as usize, h as usize);
                let _ = n;
                rest = &rest[used..];
                rgb
            })
            .collect();
        assert!(
            rest.is_empty(),
            "{} bytes past the update's tiles",
            rest.len()
        );
        tiles
    }

    /// Inflates one tile's bytes that end with a flush: its palette size
    /// and RGB pixels.
    pub fn tile(&mut self, z: &[u8], w: u32, h: u32) -> (usize, Vec<u8>) {
        let mut out = vec![0; 1 + 3 * 255 + (w * h * 3) as usize + 1];
        let r = miniz_oxide::inflate::stream::inflate(
            &mut self.0,
            z,
            &mut out,
            miniz_oxide::MZFlush::Sync,
        );
        r.status.expect("the tile inflates");
        assert_eq!(r.bytes_consumed, z.len(), "the tile's bytes are used up");
        out.truncate(r.bytes_written);
        let (n, rgb, used) = content(&out, w as usize, h as usize);
        assert_eq!(used, out.len(), "the tile's content");
        (n, rgb)
    }
}

/// Bytes of a `w`×`h` tile's content whose palette size is `n`.
fn content_len(n: u8, w: u32, h: u32) -> usize {
    let (n, w, h) = (usize::from(n), w as usize, h as usize);
    let row_bytes = match n {
        0 => w * 3,
        _ => (w * crate::zlib::bits_per_index(n)).div_ceil(8),
    };
    1 + 3 * n + row_bytes * h
}

/// The first tile content of `c`: palette size, RGB pixels, bytes used.
fn content(c: &[u8], w: usize, h: usize) -> (usize, Vec<u8>, usize) {
    let n = usize::from(c[0]);
    let palette = &c[1..1 + 3 * n];
    let px = &c[1 + 3 * n..];
    if n == 0 {
        return (0, px[..w * h * 3].to_vec(), 1 + w * h * 3);
    }
    let bits = crate::zlib::bits_per_index(n);
    let row_bytes = (w * bits).div_ceil(8);
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in px[..row_bytes * h].chunks_exact(row_bytes) {
        for x in 0..w {
            let bit = x * bits;
            let i = (row[bit / 8] >> (8 - bits - bit % 8)) & ((1u16 << bits) - 1) as u8;
            let i = usize::from(i);
            assert!(i < n, "index {i} past a palette of {n}");
            rgb.extend_from_slice(&palette[3 * i..3 * i + 3]);
        }
    }
    (n, rgb, 1 + 3 * n + row_bytes * h)
}
