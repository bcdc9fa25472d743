//! The wire format of Lifeline's screen stream, content type
//! [`CONTENT_TYPE`]: what the screen plugin sends the operator side (the
//! display's layout, tile updates, the pointer, sync markers, status
//! lines, the customer's clipboard text) and what the operator side sends
//! back (input, refresh, sync, settings, a request for control, clipboard
//! text, a request for clipboard access).
//!
//! One stream frame carries one [`Message`] towards the operator, or one
//! or more [`Input`]s towards the plugin (concatenated). Integers are
//! little-endian. Tiles are lossless palette or RGB pixels in the stream's
//! one zlib stream ([`TileData::Zlib`]), PNG (lossless) or baseline JPEG
//! (lossy), which browsers decode natively; a flat tile is one colour.
//!
//! The layout of every message is documented at its variant; decoding
//! never panics and names the message and field that is short or wrong.

#![forbid(unsafe_code)]

use std::fmt;

/// The stream's content type (the `stream-open` argument).
pub const CONTENT_TYPE: &str = "application/vnd.lifeline.screen.v1";
/// The stream's name.
pub const STREAM_NAME: &str = "screen";
/// Edge of a full tile in pixels; tiles at the right and bottom edges are
/// smaller.
pub const TILE: u32 = 64;
/// Most monitors a layout may name.
pub const MAX_MONITORS: usize = 16;
/// Most tiles one update may carry.
pub const MAX_TILES_PER_UPDATE: usize = 4096;
/// Longest status text, in bytes.
pub const MAX_STATUS_BYTES: usize = 1024;
/// Longest clipboard text ([`Message::Clipboard`], [`Input::Clipboard`]),
/// in bytes of UTF-8: 256 KiB. A stream frame carries at most 1 MiB, and
/// the plugin keeps at most 1 MiB of the operator's frames waiting; a
/// quarter leaves room for the pictures and the input around it. (The
/// host's own `clipboard-read` limit is larger: a longer text is not sent,
/// and the operator is told.)
pub const MAX_CLIPBOARD_BYTES: usize = 256 << 10;

/// Whether `text` fits a clipboard message ([`MAX_CLIPBOARD_BYTES`]).
/// Senders check: the encoder cuts a longer text at a character boundary
/// (the frame stays valid, the text does not).
pub fn clipboard_fits(text: &str) -> bool {
    text.len() <= MAX_CLIPBOARD_BYTES
}

/// A monitor, in the coordinates of the shared area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    pub name: String,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub primary: bool,
}

/// How a tile's pixels are carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TileData {
    /// Every pixel is this colour (R, G, B). Tag 0.
    Solid([u8; 3]),
    /// A PNG image of the tile (RGB, 8 bits), lossless. Tag 1.
    Png(Vec<u8>),
    /// A baseline JPEG image of the tile, lossy. Tag 2.
    Jpeg(Vec<u8>),
    /// Tag 3: the tile's bytes of the stream's single zlib stream
    /// (RFC 1950: a 2-byte zlib header, then RFC 1951 deflate; browsers
    /// inflate it with `DecompressionStream('deflate')`), lossless.
    ///
    /// **The zlib stream.** One per screen stream: the first bytes of its
    /// tag-3 tiles are the zlib header, and it runs until the stream
    /// closes; it is never finished
    /// (no Adler-32 trailer). A [`Message::Layout`] does **not** reset it:
    /// only a new stream (a new share) starts a new one. The dictionary
    /// (32 KiB window) carries from tile to tile and update to update: a
    /// receiver that misses one tag-3 tile cannot decode the later ones.
    ///
    /// **Where it is flushed.** The bytes of an update's tag-3 tiles, taken
    /// in order and joined, end with a sync flush (an empty stored block,
    /// `00 00 ff ff`): they inflate, on top of everything before them, to
    /// exactly the contents of those tiles, one after the other, in order.
    /// A tile's own bytes need not end at a flush and may be empty: its
    /// content may come out only with a later tile's bytes of the same
    /// update. (A flush per tile would start a new deflate block, with its
    /// Huffman tables, per tile.) So the receiver feeds the inflater each
    /// tag-3 tile's bytes in order and cuts the output into contents by
    /// their sizes; an update's zlib bytes never leave a content half done
    /// for the next update.
    ///
    /// **A tile's content** (inflated), for a `width`×`height` tile:
    ///
    /// - `u8 palette_size`: 0 for no palette, else the number of colours,
    ///   1 to 255 (a tile of more colours is sent without a palette);
    /// - `palette_size × 3` bytes: the colours, R, G, B;
    /// - the pixels, row by row, top to bottom, left to right:
    ///   - with a palette, each pixel is its colour's index, packed
    ///     most significant bits first in 1 bit per pixel (1 or 2
    ///     colours), 2 bits (3 or 4), 4 bits (5 to 16) or 8 bits (17 to
    ///     255); every row starts on a byte boundary (a row takes
    ///     `ceil(width × bits / 8)` bytes; the unused low bits of its last
    ///     byte are 0, and an index past the palette is an error);
    ///   - without a palette, `width × 3` bytes per row: R, G, B.
    ///
    /// So a tile's content is `1 + 3 × palette_size + height × row_bytes`
    /// bytes, which a receiver knows from its first byte.
    Zlib(Vec<u8>),
}

/// One changed rectangle of the shared area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
    pub data: TileData,
}

/// The pointer's image: a PNG (RGBA) with its hot spot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorShape {
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    pub png: Vec<u8>,
}

/// Severity of a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info = 0,
    Warning = 1,
    Error = 2,
}

/// A message from the screen plugin to the operator side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Tag 1: `u32 width, u32 height, u8 count`, then per monitor
    /// `i32 x, i32 y, u32 width, u32 height, u8 primary, u8 name_len,
    /// name (UTF-8)`. The operator's picture is reset to black at this
    /// size; updates follow.
    Layout {
        width: u32,
        height: u32,
        monitors: Vec<Monitor>,
    },
    /// Tag 2: `u32 seq, u64 captured_us, u16 count`, then per tile
    /// `u16 x, u16 y, u16 width, u16 height, u8 encoding`, and for
    /// encoding 0 `u8 r, u8 g, u8 b`, for 1 (PNG), 2 (JPEG) and 3 (zlib,
    /// [`TileData::Zlib`]) `u32 len` and the bytes. `captured_us`: microseconds since sharing began.
    Update {
        seq: u32,
        captured_us: u64,
        tiles: Vec<Tile>,
    },
    /// Tag 3: `i32 x, i32 y, u8 has_shape`, and with a shape `u16 width,
    /// u16 height, u16 hot_x, u16 hot_y, u32 len, PNG`.
    Cursor {
        x: i32,
        y: i32,
        shape: Option<CursorShape>,
    },
    /// Tag 4: `u32 token`. Everything the display showed when the plugin
    /// read the operator's [`Input::Sync`] with this token has been sent
    /// before this message.
    Sync { token: u32 },
    /// Tag 5: `u8 level, u16 len, text (UTF-8)`: a line for the operator
    /// ("control was not allowed by the customer").
    Status { level: Level, text: String },
    /// Tag 6: `u32 len, text (UTF-8)`, at most [`MAX_CLIPBOARD_BYTES`]:
    /// the customer's clipboard text, sent once the customer allowed
    /// `clipboard.text` ([`Input::RequestClipboard`]) and again whenever it
    /// changes while the screen is shared.
    Clipboard { text: String },
}

/// Quality the operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// Lossless for text and UI, JPEG for photo-like tiles when the
    /// stream's credit runs short. Wire 0.
    Auto = 0,
    /// Every tile lossless (solid, zlib or PNG). Wire 1.
    Lossless = 1,
}

/// Which part of the display is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorChoice {
    /// The whole display. Wire 255.
    All,
    /// One monitor, by its index in the layout the host reported.
    Index(u8),
}

/// An input from the operator side to the screen plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Tag 0x10: `u32 x, u32 y` in the shared area's coordinates.
    PointerMove { x: u32, y: u32 },
    /// Tag 0x11: `u8 button, u8 pressed` (1 left, 2 middle, 3 right,
    /// 4/5 wheel).
    Button { button: u8, pressed: bool },
    /// Tag 0x12: `u32 keysym, u8 pressed` (X keysyms).
    Key { keysym: u32, pressed: bool },
    /// Tag 0x13: send the whole shared area again.
    Refresh,
    /// Tag 0x14: `u32 token`; answered by [`Message::Sync`].
    Sync { token: u32 },
    /// Tag 0x15: `u8 quality, u8 monitor (255 all), u8 max_fps (0 keep)`.
    Settings {
        quality: Quality,
        monitor: MonitorChoice,
        max_fps: u8,
    },
    /// Tag 0x16: ask for control (the customer is asked for `input.control`).
    RequestControl,
    /// Tag 0x17: `u32 len, text (UTF-8)`, at most [`MAX_CLIPBOARD_BYTES`]:
    /// put this text on the customer's clipboard (the first one asks the
    /// customer for `clipboard.text`, unless [`Input::RequestClipboard`]
    /// did).
    Clipboard { text: String },
    /// Tag 0x18: ask for the clipboard (the customer is asked for
    /// `clipboard.text`); answered with a [`Message::Status`], and once
    /// allowed with the clipboard's text ([`Message::Clipboard`]).
    RequestClipboard,
}

/// Why bytes are not a valid message or input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The message being read ("update", "input").
    pub what: &'static str,
    /// The field ("tile 3 png length").
    pub field: String,
    /// Byte offset in the frame.
    pub offset: usize,
    pub problem: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "screen stream {} message, {} at byte {}: {}",
            self.what, self.field, self.offset, self.problem
        )
    }
}

impl std::error::Error for DecodeError {}

mod codec;
pub use codec::{decode_inputs, decode_message, encode_input, encode_message};
