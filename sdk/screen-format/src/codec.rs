//! Encoding and decoding of [`Message`] and [`Input`] (layouts in lib.rs).

use crate::{
    CursorShape, DecodeError, Input, Level, Message, Monitor, MonitorChoice, Quality, Tile,
    TileData, MAX_CLIPBOARD_BYTES, MAX_MONITORS, MAX_STATUS_BYTES, MAX_TILES_PER_UPDATE,
};

const LAYOUT: u8 = 1;
const UPDATE: u8 = 2;
const CURSOR: u8 = 3;
const SYNC: u8 = 4;
const STATUS: u8 = 5;
const CLIPBOARD: u8 = 6;

const POINTER_MOVE: u8 = 0x10;
const BUTTON: u8 = 0x11;
const KEY: u8 = 0x12;
const REFRESH: u8 = 0x13;
const INPUT_SYNC: u8 = 0x14;
const SETTINGS: u8 = 0x15;
const REQUEST_CONTROL: u8 = 0x16;
const INPUT_CLIPBOARD: u8 = 0x17;
const REQUEST_CLIPBOARD: u8 = 0x18;

/// Appends `msg` to `out` (one stream frame).
pub fn encode_message(msg: &Message, out: &mut Vec<u8>) {
    match msg {
        Message::Layout {
            width,
            height,
            monitors,
        } => {
            out.push(LAYOUT);
            out.extend_from_slice(&width.to_le_bytes());
            out.extend_from_slice(&height.to_le_bytes());
            let n = monitors.len().min(MAX_MONITORS);
            out.push(n as u8);
            for m in &monitors[..n] {
                out.extend_from_slice(&m.x.to_le_bytes());
                out.extend_from_slice(&m.y.to_le_bytes());
                out.extend_from_slice(&m.width.to_le_bytes());
                out.extend_from_slice(&m.height.to_le_bytes());
                out.push(u8::from(m.primary));
                let name = truncate(&m.name, 255);
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
            }
        }
        Message::Update {
            seq,
            captured_us,
            tiles,
        } => {
            out.push(UPDATE);
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&captured_us.to_le_bytes());
            let n = tiles.len().min(MAX_TILES_PER_UPDATE);
            out.extend_from_slice(&(n as u16).to_le_bytes());
            for t in &tiles[..n] {
                encode_tile(t, out);
            }
        }
        Message::Cursor { x, y, shape } => {
            out.push(CURSOR);
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
            match shape {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    for v in [s.width, s.height, s.hot_x, s.hot_y] {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                    out.extend_from_slice(&(s.png.len() as u32).to_le_bytes());
                    out.extend_from_slice(&s.png);
                }
            }
        }
        Message::Sync { token } => {
            out.push(SYNC);
            out.extend_from_slice(&token.to_le_bytes());
        }
        Message::Status { level, text } => {
            out.push(STATUS);
            out.push(*level as u8);
            let text = truncate(text, MAX_STATUS_BYTES);
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Message::Clipboard { text } => {
            out.push(CLIPBOARD);
            encode_clipboard(text, out);
        }
    }
}

/// `u32 len, text`, cut at [`MAX_CLIPBOARD_BYTES`] (see `clipboard_fits`).
fn encode_clipboard(text: &str, out: &mut Vec<u8>) {
    let text = truncate(text, MAX_CLIPBOARD_BYTES);
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn encode_tile(t: &Tile, out: &mut Vec<u8>) {
    for v in [t.x, t.y, t.width, t.height] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    match &t.data {
        TileData::Solid(rgb) => {
            out.push(0);
            out.extend_from_slice(rgb);
        }
        TileData::Png(b) | TileData::Jpeg(b) | TileData::Zlib(b) => {
            out.push(match t.data {
                TileData::Png(_) => 1,
                TileData::Jpeg(_) => 2,
                _ => 3,
            });
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes ending on a character.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends `input` to `out`; several inputs may share one frame.
pub fn encode_input(input: &Input, out: &mut Vec<u8>) {
    match input {
        Input::PointerMove { x, y } => {
            out.push(POINTER_MOVE);
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
        }
        Input::Button { button, pressed } => {
            out.extend_from_slice(&[BUTTON, *button, u8::from(*pressed)]);
        }
        Input::Key { keysym, pressed } => {
            out.push(KEY);
            out.extend_from_slice(&keysym.to_le_bytes());
            out.push(u8::from(*pressed));
        }
        Input::Refresh => out.push(REFRESH),
        Input::Sync { token } => {
            out.push(INPUT_SYNC);
            out.extend_from_slice(&token.to_le_bytes());
        }
        Input::Settings {
            quality,
            monitor,
            max_fps,
        } => {
            let m = match monitor {
                MonitorChoice::All => 255,
                MonitorChoice::Index(i) => *i,
            };
            out.extend_from_slice(&[SETTINGS, *quality as u8, m, *max_fps]);
        }
        Input::RequestControl => out.push(REQUEST_CONTROL),
        Input::Clipboard { text } => {
            out.push(INPUT_CLIPBOARD);
            encode_clipboard(text, out);
        }
        Input::RequestClipboard => out.push(REQUEST_CLIPBOARD),
    }
}

/// A cursor over one frame that names what it was reading when short.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn err(&self, field: impl Into<String>, problem: &'static str) -> DecodeError {
        DecodeError {
            what: self.what,
            field: field.into(),
            offset: self.pos,
            problem,
        }
    }
    fn bytes(&mut self, n: usize, field: &dyn Fn() -> String) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(field(), "the frame ends early"));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }
    fn array<const N: usize>(
        &mut self,
        field: &dyn Fn() -> String,
    ) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, field)?;
        Ok(b.try_into().expect("bytes() returned exactly N bytes"))
    }
    fn u8(&mut self, field: &dyn Fn() -> String) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u16(&mut self, field: &dyn Fn() -> String) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    fn i32(&mut self, field: &dyn Fn() -> String) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    fn bool(&mut self, field: &dyn Fn() -> String) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => {
                self.pos -= 1;
                Err(self.err(field(), "is neither 0 nor 1"))
            }
        }
    }
    fn text(&mut self, len: usize, field: &dyn Fn() -> String) -> Result<String, DecodeError> {
        let start = self.pos;
        let b = self.bytes(len, field)?;
        String::from_utf8(b.to_vec()).map_err(|_| {
            self.pos = start;
            self.err(field(), "is not UTF-8")
        })
    }
    /// `u32 len, text (UTF-8)` of at most [`MAX_CLIPBOARD_BYTES`].
    fn clipboard(&mut self, field: &dyn Fn(&'static str) -> String) -> Result<String, DecodeError> {
        let len = self.u32(&|| field("text length"))? as usize;
        if len > MAX_CLIPBOARD_BYTES {
            self.pos -= 4;
            return Err(self.err(
                field("text length"),
                "is more than MAX_CLIPBOARD_BYTES (262144)",
            ));
        }
        self.text(len, &|| field("text"))
    }
    fn done(&self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return Err(self.err("end", "bytes follow the message"));
        }
        Ok(())
    }
}

fn f(s: &'static str) -> impl Fn() -> String {
    move || s.to_string()
}

/// Decodes one frame from the plugin.
pub fn decode_message(frame: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader {
        buf: frame,
        pos: 0,
        what: "screen",
    };
    let tag = r.u8(&f("tag"))?;
    let msg = match tag {
        LAYOUT => {
            r.what = "layout";
            let width = r.u32(&f("width"))?;
            let height = r.u32(&f("height"))?;
            let n = usize::from(r.u8(&f("monitor count"))?);
            if n > MAX_MONITORS {
                r.pos -= 1;
                return Err(r.err("monitor count", "is more than MAX_MONITORS (16)"));
            }
            let mut monitors = Vec::with_capacity(n);
            for i in 0..n {
                let at = move |s: &'static str| move || format!("monitor {i} {s}");
                let x = r.i32(&at("x"))?;
                let y = r.i32(&at("y"))?;
                let width = r.u32(&at("width"))?;
                let height = r.u32(&at("height"))?;
                let primary = r.bool(&at("primary"))?;
                let len = usize::from(r.u8(&at("name length"))?);
                let name = r.text(len, &at("name"))?;
                monitors.push(Monitor {
                    name,
                    x,
                    y,
                    width,
                    height,
                    primary,
                });
            }
            Message::Layout {
                width,
                height,
                monitors,
            }
        }
        UPDATE => {
            r.what = "update";
            let seq = r.u32(&f("seq"))?;
            let captured_us = r.u64(&f("captured_us"))?;
            let n = usize::from(r.u16(&f("tile count"))?);
            if n > MAX_TILES_PER_UPDATE {
                r.pos -= 2;
                return Err(r.err("tile count", "is more than MAX_TILES_PER_UPDATE (4096)"));
            }
            let mut tiles = Vec::with_capacity(n);
            for i in 0..n {
                tiles.push(decode_tile(&mut r, i)?);
            }
            Message::Update {
                seq,
                captured_us,
                tiles,
            }
        }
        CURSOR => {
            r.what = "cursor";
            let x = r.i32(&f("x"))?;
            let y = r.i32(&f("y"))?;
            let shape = if r.bool(&f("has_shape"))? {
                let width = r.u16(&f("shape width"))?;
                let height = r.u16(&f("shape height"))?;
                let hot_x = r.u16(&f("hot_x"))?;
                let hot_y = r.u16(&f("hot_y"))?;
                let len = r.u32(&f("png length"))? as usize;
                let png = r.bytes(len, &f("png"))?.to_vec();
                Some(CursorShape {
                    width,
                    height,
                    hot_x,
                    hot_y,
                    png,
                })
            } else {
                None
            };
            Message::Cursor { x, y, shape }
        }
        SYNC => {
            r.what = "sync";
            Message::Sync {
                token: r.u32(&f("token"))?,
            }
        }
        STATUS => {
            r.what = "status";
            let level = match r.u8(&f("level"))? {
                0 => Level::Info,
                1 => Level::Warning,
                2 => Level::Error,
                _ => {
                    r.pos -= 1;
                    return Err(r.err("level", "is not 0, 1 or 2"));
                }
            };
            let len = usize::from(r.u16(&f("text length"))?);
            if len > MAX_STATUS_BYTES {
                r.pos -= 2;
                return Err(r.err("text length", "is more than MAX_STATUS_BYTES (1024)"));
            }
            let text = r.text(len, &f("text"))?;
            Message::Status { level, text }
        }
        CLIPBOARD => {
            r.what = "clipboard";
            Message::Clipboard {
                text: r.clipboard(&|s| s.to_string())?,
            }
        }
        _ => {
            r.pos = 0;
            return Err(r.err("tag", "is not a screen message (1 to 6)"));
        }
    };
    r.done()?;
    Ok(msg)
}

fn decode_tile(r: &mut Reader<'_>, i: usize) -> Result<Tile, DecodeError> {
    let at = move |s: &'static str| move || format!("tile {i} {s}");
    let x = r.u16(&at("x"))?;
    let y = r.u16(&at("y"))?;
    let width = r.u16(&at("width"))?;
    let height = r.u16(&at("height"))?;
    if width == 0 || height == 0 {
        return Err(r.err(at("size")(), "is empty"));
    }
    let data = match r.u8(&at("encoding"))? {
        0 => TileData::Solid(r.array(&at("colour"))?),
        e @ (1..=3) => {
            let len = r.u32(&at("image length"))? as usize;
            let img = r.bytes(len, &at("image"))?.to_vec();
            match e {
                1 => TileData::Png(img),
                2 => TileData::Jpeg(img),
                _ => TileData::Zlib(img),
            }
        }
        _ => {
            r.pos -= 1;
            return Err(r.err(
                at("encoding")(),
                "is not 0 (solid), 1 (PNG), 2 (JPEG) or 3 (zlib)",
            ));
        }
    };
    Ok(Tile {
        x,
        y,
        width,
        height,
        data,
    })
}

/// Decodes a frame from the operator side: one or more inputs.
pub fn decode_inputs(frame: &[u8]) -> Result<Vec<Input>, DecodeError> {
    let mut r = Reader {
        buf: frame,
        pos: 0,
        what: "input",
    };
    let mut out = Vec::new();
    while r.pos < frame.len() {
        let i = out.len();
        let at = move |s: &'static str| move || format!("input {i} {s}");
        let input = match r.u8(&at("tag"))? {
            POINTER_MOVE => Input::PointerMove {
                x: r.u32(&at("x"))?,
                y: r.u32(&at("y"))?,
            },
            BUTTON => Input::Button {
                button: r.u8(&at("button"))?,
                pressed: r.bool(&at("pressed"))?,
            },
            KEY => Input::Key {
                keysym: r.u32(&at("keysym"))?,
                pressed: r.bool(&at("pressed"))?,
            },
            REFRESH => Input::Refresh,
            INPUT_SYNC => Input::Sync {
                token: r.u32(&at("token"))?,
            },
            SETTINGS => {
                let quality = match r.u8(&at("quality"))? {
                    0 => Quality::Auto,
                    1 => Quality::Lossless,
                    _ => {
                        r.pos -= 1;
                        return Err(r.err(at("quality")(), "is not 0 (auto) or 1 (lossless)"));
                    }
                };
                let monitor = match r.u8(&at("monitor"))? {
                    255 => MonitorChoice::All,
                    m => MonitorChoice::Index(m),
                };
                let max_fps = r.u8(&at("max_fps"))?;
                Input::Settings {
                    quality,
                    monitor,
                    max_fps,
                }
            }
            REQUEST_CONTROL => Input::RequestControl,
            INPUT_CLIPBOARD => Input::Clipboard {
                text: r.clipboard(&|s| format!("input {i} clipboard {s}"))?,
            },
            REQUEST_CLIPBOARD => Input::RequestClipboard,
            _ => {
                r.pos -= 1;
                return Err(r.err(at("tag")(), "is not a screen input (0x10 to 0x18)"));
            }
        };
        out.push(input);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(msg: Message) {
        let mut b = Vec::new();
        encode_message(&msg, &mut b);
        assert_eq!(decode_message(&b).expect("decodes"), msg);
        for cut in 0..b.len() {
            let e = decode_message(&b[..cut]).expect_err("a cut frame is refused");
            assert!(e.to_string().contains("screen stream"), "{e}");
        }
    }

    #[test]
    fn messages_round_trip_and_cut_frames_are_named() {
        round(Message::Layout {
            width: 1920,
            height: 1080,
            monitors: vec![Monitor {
                name: "DP-1".into(),
                x: 0,
                y: 0,
                width: 1920,
                height: 1080,
                primary: true,
            }],
        });
        round(Message::Update {
            seq: 7,
            captured_us: 123_456,
            tiles: vec![
                Tile {
                    x: 0,
                    y: 64,
                    width: 64,
                    height: 64,
                    data: TileData::Solid([1, 2, 3]),
                },
                Tile {
                    x: 64,
                    y: 64,
                    width: 10,
                    height: 64,
                    data: TileData::Png(vec![9; 20]),
                },
                Tile {
                    x: 128,
                    y: 0,
                    width: 64,
                    height: 5,
                    data: TileData::Jpeg(vec![8; 3]),
                },
                Tile {
                    x: 192,
                    y: 0,
                    width: 3,
                    height: 7,
                    data: TileData::Zlib(vec![0, 0, 0xff, 0xff]),
                },
                Tile {
                    x: 0,
                    y: 0,
                    width: 1,
                    height: 1,
                    data: TileData::Zlib(Vec::new()),
                },
            ],
        });
        round(Message::Cursor {
            x: -3,
            y: 40,
            shape: Some(CursorShape {
                width: 16,
                height: 16,
                hot_x: 1,
                hot_y: 2,
                png: vec![1, 2, 3],
            }),
        });
        round(Message::Cursor {
            x: 1,
            y: 2,
            shape: None,
        });
        round(Message::Sync { token: 42 });
        round(Message::Status {
            level: Level::Warning,
            text: "control was not allowed".into(),
        });
        round(Message::Clipboard {
            text: "kopiert: grüße\n".into(),
        });
        round(Message::Clipboard {
            text: String::new(),
        });
    }

    #[test]
    fn clipboard_texts_round_trip_and_are_bounded() {
        let most = "é".repeat(MAX_CLIPBOARD_BYTES / 2);
        assert!(crate::clipboard_fits(&most));
        let mut b = Vec::new();
        encode_message(&Message::Clipboard { text: most.clone() }, &mut b);
        assert_eq!(b.len(), 1 + 4 + MAX_CLIPBOARD_BYTES);
        assert_eq!(
            decode_message(&b).expect("the largest text"),
            Message::Clipboard { text: most }
        );
        // Too long: the encoder cuts at a character boundary, the decoder
        // refuses a length above the limit.
        let long = format!("a{}", "é".repeat(MAX_CLIPBOARD_BYTES / 2));
        assert!(!crate::clipboard_fits(&long));
        b.clear();
        encode_input(&Input::Clipboard { text: long }, &mut b);
        match decode_inputs(&b).expect("cut to fit").as_slice() {
            [Input::Clipboard { text }] => {
                assert_eq!(text.len(), MAX_CLIPBOARD_BYTES - 1, "no half character");
            }
            other => panic!("{other:?}"),
        }
        let mut huge = vec![CLIPBOARD];
        huge.extend_from_slice(&(MAX_CLIPBOARD_BYTES as u32 + 1).to_le_bytes());
        let e = decode_message(&huge).expect_err("over the limit");
        assert_eq!((e.field.as_str(), e.offset), ("text length", 1));
        let mut cut = vec![INPUT_CLIPBOARD];
        cut.extend_from_slice(&5u32.to_le_bytes());
        cut.extend_from_slice(b"abc");
        let e = decode_inputs(&cut).expect_err("cut text");
        assert_eq!(e.field, "input 0 clipboard text");
        assert!(e.to_string().contains("ends early"), "{e}");
        let e = decode_inputs(&[REQUEST_CLIPBOARD, INPUT_CLIPBOARD, 1, 0]).expect_err("cut length");
        assert_eq!(e.field, "input 1 clipboard text length");
        let bad = [CLIPBOARD, 2, 0, 0, 0, 0xc3, 0x28];
        let e = decode_message(&bad).expect_err("not UTF-8");
        assert_eq!((e.field.as_str(), e.offset), ("text", 5));
    }

    #[test]
    fn inputs_round_trip_batched() {
        let inputs = vec![
            Input::PointerMove { x: 10, y: 20 },
            Input::Button {
                button: 1,
                pressed: true,
            },
            Input::Key {
                keysym: 0xff0d,
                pressed: false,
            },
            Input::Refresh,
            Input::Sync { token: 9 },
            Input::Settings {
                quality: Quality::Lossless,
                monitor: MonitorChoice::Index(1),
                max_fps: 30,
            },
            Input::RequestControl,
            Input::Clipboard {
                text: "from the operator".into(),
            },
            Input::RequestClipboard,
        ];
        let mut b = Vec::new();
        for i in &inputs {
            encode_input(i, &mut b);
        }
        assert_eq!(decode_inputs(&b).expect("decodes"), inputs);
    }

    #[test]
    fn bad_bytes_name_the_field() {
        let e = decode_message(&[9]).expect_err("unknown tag");
        assert_eq!(e.field, "tag");
        let mut b = Vec::new();
        encode_message(&Message::Sync { token: 1 }, &mut b);
        b.push(0);
        assert_eq!(decode_message(&b).expect_err("trailing").field, "end");
        let e = decode_inputs(&[0x11, 1, 7]).expect_err("pressed 7");
        assert_eq!(e.field, "input 0 pressed");
        assert_eq!(e.offset, 2);
        let mut u = vec![UPDATE];
        u.extend_from_slice(&1u32.to_le_bytes());
        u.extend_from_slice(&0u64.to_le_bytes());
        u.extend_from_slice(&1u16.to_le_bytes());
        u.extend_from_slice(&[0, 0, 0, 0, 8, 0, 8, 0, 1, 255, 255, 255, 255]);
        let e = decode_message(&u).expect_err("huge png length");
        assert_eq!(e.field, "tile 0 image");
        let n = u.len();
        u[n - 5] = 3;
        u[n - 4..].copy_from_slice(&3u32.to_le_bytes());
        let e = decode_message(&u).expect_err("cut zlib tile");
        assert_eq!(e.field, "tile 0 image");
        u[n - 5] = 4;
        let e = decode_message(&u).expect_err("encoding 4");
        assert_eq!((e.field.as_str(), e.offset), ("tile 0 encoding", n - 5));
    }
}
