//! The operator's picture of the customer's shared screen: the messages of
//! the screen stream applied in order (layout, tile updates, the pointer).
//! One `Framebuffer` follows one stream: its zlib tiles depend on every
//! earlier one.

use std::io::Write;
use std::path::Path;

use lifeline_screen_format::{CursorShape, Message, Monitor, Tile, TileData};

use super::zlib_tiles::TileInflater;

/// Most pixels an operator's picture may have (64 Mi: eight 4K monitors).
///
/// Threat: a layout of 65535 × 65535 from a misbehaving agent would make
/// the operator allocate 12 GiB; past this the layout is refused.
pub const MAX_PICTURE_PIXELS: u64 = 1 << 26;
/// Longest side of a pointer image accepted: what the agent sends at most
/// (`MAX_CURSOR_SIDE` in host/agent/src/screen/cursor.rs).
///
/// Threat: a pointer shape of 65535 × 65535 from a misbehaving agent would
/// make the operator allocate and fill up to 16 GiB decoding its PNG.
pub const MAX_CURSOR_SIDE: u16 = 512;
/// Bytes of one pixel of the picture (R, G, B).
const RGB: usize = 3;
/// Bytes of one pixel of the pointer's image (R, G, B, A).
const RGBA: usize = 4;

/// The pointer as the operator knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Position in the shared area's coordinates (may be outside it).
    pub x: i32,
    pub y: i32,
    /// The last shape the plugin sent (kept while only the position
    /// changes); `None` before the first.
    pub shape: Option<CursorImage>,
}

/// A decoded pointer shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorImage {
    pub width: u32,
    pub height: u32,
    /// The pixel of the image that is at the pointer's position.
    pub hot_x: u32,
    pub hot_y: u32,
    /// RGBA, rows top to bottom.
    pub rgba: Vec<u8>,
}

/// What is wrong with one tile of an update.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileProblem {
    #[error("it lies outside the {width}×{height} picture")]
    Outside { width: u32, height: u32 },
    #[error("its {kind} image is {width}×{height}, not the tile's size")]
    SizeDiffers {
        kind: &'static str,
        width: u32,
        height: u32,
    },
    #[error("its {kind} image cannot be decoded: {why}")]
    Undecodable { kind: &'static str, why: String },
    #[error("it is larger than {max}×{max} pixels")]
    TooLarge { max: u16 },
}

/// Why a message could not be applied to the picture. Nothing panics:
/// the picture keeps what could be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PictureError {
    #[error(
        "the screen layout of {width}×{height} pixels is larger than an operator's picture may be ({MAX_PICTURE_PIXELS} pixels)"
    )]
    TooLarge { width: u32, height: u32 },
    #[error("update {seq}, tile {index} (at {x},{y}, {width}×{height}): {problem}")]
    Tile {
        seq: u32,
        /// The tile's index in the update, from 0.
        index: usize,
        x: u16,
        y: u16,
        width: u16,
        height: u16,
        problem: TileProblem,
    },
    #[error("the pointer's shape ({width}×{height}): {problem}")]
    CursorShape {
        width: u16,
        height: u16,
        problem: TileProblem,
    },
    #[error("there is no picture yet: no screen layout has arrived")]
    NoPicture,
    #[error("writing the picture as PNG: {0}")]
    Png(String),
}

/// The operator's picture of the shared screen.
#[derive(Debug, Clone, Default)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    /// RGB, rows top to bottom.
    rgb: Vec<u8>,
    monitors: Vec<Monitor>,
    has_layout: bool,
    last_seq: Option<u32>,
    last_sync: Option<u32>,
    updates: u64,
    cursor: Option<Cursor>,
    /// The stream's zlib stream (tag-3 tiles): one per stream, so one per
    /// `Framebuffer`; a layout does not reset it.
    zlib: TileInflater,
}

impl Framebuffer {
    /// An empty picture (0 × 0) until a layout arrives.
    pub fn new() -> Framebuffer {
        Framebuffer::default()
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, RGB, rows top to bottom (`width * height * 3` bytes).
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// The pixel at (`x`, `y`), or `None` outside the picture.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * RGB;
        Some([self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]])
    }

    /// The monitors of the last layout.
    pub fn monitors(&self) -> &[Monitor] {
        &self.monitors
    }

    /// Whether a layout has arrived (the picture has a size).
    pub fn has_layout(&self) -> bool {
        self.has_layout
    }

    /// The `seq` of the last update applied.
    pub fn last_seq(&self) -> Option<u32> {
        self.last_seq
    }

    /// The token of the last sync message seen.
    pub fn last_sync(&self) -> Option<u32> {
        self.last_sync
    }

    /// Updates applied since the picture began.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The pointer, once a cursor message arrived.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.cursor.as_ref()
    }

    /// Applies one message of the screen stream. An update's good tiles
    /// are applied even when another of its tiles is bad; the error names
    /// the first bad tile. Sync, status and clipboard messages change
    /// nothing but [`Framebuffer::last_sync`].
    pub fn apply(&mut self, msg: &Message) -> Result<(), PictureError> {
        match msg {
            Message::Layout {
                width,
                height,
                monitors,
            } => self.layout(*width, *height, monitors),
            Message::Update { seq, tiles, .. } => {
                self.last_seq = Some(*seq);
                self.updates += 1;
                let mut first_error = None;
                // The update's zlib tiles inflate together, in order.
                let zlib: Vec<(&[u8], u32, u32)> = tiles
                    .iter()
                    .filter_map(|t| match &t.data {
                        TileData::Zlib(z) => {
                            Some((&z[..], u32::from(t.width), u32::from(t.height)))
                        }
                        _ => None,
                    })
                    .collect();
                // Threat: the inflater reserves room for a zlib tile's
                // pixels (w × h × 3 bytes, 12 GiB for 65535 × 65535) before
                // inflating a byte; a tile outside the picture, or more
                // zlib pixels than the picture has, is refused first, and
                // the zlib stream cannot be followed past it.
                let mut inflated = match self.zlib_fits(tiles) {
                    Ok(()) => self.zlib.update(&zlib),
                    Err(why) => self.zlib.refuse(zlib.len(), why),
                }
                .into_iter();
                for (index, tile) in tiles.iter().enumerate() {
                    let zlib_pixels = match tile.data {
                        TileData::Zlib(_) => inflated.next(),
                        _ => None,
                    };
                    if let Err(problem) = self.tile(tile, zlib_pixels) {
                        first_error.get_or_insert(PictureError::Tile {
                            seq: *seq,
                            index,
                            x: tile.x,
                            y: tile.y,
                            width: tile.width,
                            height: tile.height,
                            problem,
                        });
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
            Message::Cursor { x, y, shape } => {
                let cursor = self.cursor.get_or_insert_with(Cursor::default);
                cursor.x = *x;
                cursor.y = *y;
                if let Some(s) = shape {
                    cursor.shape = Some(decode_cursor(s)?);
                }
                Ok(())
            }
            Message::Sync { token } => {
                self.last_sync = Some(*token);
                Ok(())
            }
            Message::Status { .. } | Message::Clipboard { .. } => Ok(()),
        }
    }

    fn layout(
        &mut self,
        width: u32,
        height: u32,
        monitors: &[Monitor],
    ) -> Result<(), PictureError> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > MAX_PICTURE_PIXELS {
            return Err(PictureError::TooLarge { width, height });
        }
        self.width = width;
        self.height = height;
        self.rgb.clear();
        self.rgb.resize(pixels as usize * RGB, 0);
        self.monitors = monitors.to_vec();
        self.has_layout = true;
        Ok(())
    }

    /// Whether `t` lies inside the picture (and is not empty).
    fn inside(&self, t: &Tile) -> bool {
        let (x, y) = (u32::from(t.x), u32::from(t.y));
        let (w, h) = (u32::from(t.width), u32::from(t.height));
        w != 0 && h != 0 && x + w <= self.width && y + h <= self.height
    }

    /// Checks an update's zlib tiles before any is inflated: each inside
    /// the picture, together no more pixels than the picture has.
    fn zlib_fits(&self, tiles: &[Tile]) -> Result<(), String> {
        let mut pixels = 0u64;
        for t in tiles.iter().filter(|t| matches!(t.data, TileData::Zlib(_))) {
            if !self.inside(t) {
                return Err(format!(
                    "zlib tile at {},{} of {}×{} lies outside the {}×{} picture",
                    t.x, t.y, t.width, t.height, self.width, self.height
                ));
            }
            pixels += u64::from(t.width) * u64::from(t.height);
        }
        let picture = u64::from(self.width) * u64::from(self.height);
        if pixels > picture {
            return Err(format!(
                "the update's zlib tiles have {pixels} pixels, more than the {picture} of the picture"
            ));
        }
        Ok(())
    }

    /// Draws `t`; a zlib tile's pixels (or problem) come inflated in
    /// `zlib_pixels`.
    fn tile(
        &mut self,
        t: &Tile,
        zlib_pixels: Option<Result<Vec<u8>, TileProblem>>,
    ) -> Result<(), TileProblem> {
        let (x, y) = (u32::from(t.x), u32::from(t.y));
        let (w, h) = (u32::from(t.width), u32::from(t.height));
        if !self.inside(t) {
            return Err(TileProblem::Outside {
                width: self.width,
                height: self.height,
            });
        }
        let pixels = match &t.data {
            TileData::Solid(rgb) => {
                for row in y..y + h {
                    let start = self.offset(x, row);
                    for px in self.rgb[start..start + w as usize * RGB].chunks_exact_mut(RGB) {
                        px.copy_from_slice(rgb);
                    }
                }
                return Ok(());
            }
            TileData::Png(png) => decode_png(png, w, h, false)?,
            TileData::Jpeg(jpeg) => decode_jpeg(jpeg, w, h)?,
            TileData::Zlib(_) => zlib_pixels.unwrap_or_else(|| {
                Err(TileProblem::Undecodable {
                    kind: "zlib",
                    why: "it was not inflated".into(),
                })
            })?,
        };
        let row_bytes = w as usize * RGB;
        for (i, src) in pixels.chunks_exact(row_bytes).enumerate() {
            let start = self.offset(x, y + i as u32);
            self.rgb[start..start + row_bytes].copy_from_slice(src);
        }
        Ok(())
    }

    fn offset(&self, x: u32, y: u32) -> usize {
        (y as usize * self.width as usize + x as usize) * RGB
    }

    /// The picture as RGB, with the pointer drawn over it when
    /// `with_cursor` (and its shape is known).
    pub fn composed(&self, with_cursor: bool) -> Vec<u8> {
        let mut out = self.rgb.clone();
        if with_cursor && let Some(c) = &self.cursor {
            self.draw_cursor(c, &mut out);
        }
        out
    }

    /// Blends the pointer's image into `out` (clipped to the picture).
    fn draw_cursor(&self, c: &Cursor, out: &mut [u8]) {
        let Some(img) = &c.shape else { return };
        let left = i64::from(c.x) - i64::from(img.hot_x);
        let top = i64::from(c.y) - i64::from(img.hot_y);
        for cy in 0..img.height {
            let py = top + i64::from(cy);
            if py < 0 || py >= i64::from(self.height) {
                continue;
            }
            for cx in 0..img.width {
                let px = left + i64::from(cx);
                if px < 0 || px >= i64::from(self.width) {
                    continue;
                }
                let src = (cy as usize * img.width as usize + cx as usize) * RGBA;
                let alpha = u32::from(img.rgba[src + 3]);
                let dst = self.offset(px as u32, py as u32);
                for k in 0..RGB {
                    let over = u32::from(img.rgba[src + k]);
                    let under = u32::from(out[dst + k]);
                    out[dst + k] = ((over * alpha + under * (255 - alpha) + 127) / 255) as u8;
                }
            }
        }
    }

    /// Writes the picture as a PNG (RGB, 8 bits) to `w`; `with_cursor`
    /// draws the pointer over it.
    pub fn to_png(&self, w: impl Write, with_cursor: bool) -> Result<(), PictureError> {
        if !self.has_layout || self.width == 0 || self.height == 0 {
            return Err(PictureError::NoPicture);
        }
        let pixels = self.composed(with_cursor);
        let mut enc = png::Encoder::new(w, self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let png_err = |e: png::EncodingError| PictureError::Png(e.to_string());
        let mut writer = enc.write_header().map_err(png_err)?;
        writer.write_image_data(&pixels).map_err(png_err)?;
        writer.finish().map_err(png_err)
    }

    /// Writes the picture as a PNG file at `path` (see [`Framebuffer::to_png`]).
    pub fn save_png(&self, path: &Path, with_cursor: bool) -> Result<(), PictureError> {
        let file = std::fs::File::create(path)
            .map_err(|e| PictureError::Png(format!("cannot create {}: {e}", path.display())))?;
        let mut out = std::io::BufWriter::new(file);
        self.to_png(&mut out, with_cursor)?;
        out.flush()
            .map_err(|e| PictureError::Png(format!("writing {}: {e}", path.display())))
    }
}

fn decode_cursor(s: &CursorShape) -> Result<CursorImage, PictureError> {
    let (w, h) = (u32::from(s.width), u32::from(s.height));
    let problem = |problem| PictureError::CursorShape {
        width: s.width,
        height: s.height,
        problem,
    };
    if s.width > MAX_CURSOR_SIDE || s.height > MAX_CURSOR_SIDE {
        return Err(problem(TileProblem::TooLarge {
            max: MAX_CURSOR_SIDE,
        }));
    }
    let rgba = decode_png(&s.png, w, h, true).map_err(problem)?;
    Ok(CursorImage {
        width: w,
        height: h,
        hot_x: u32::from(s.hot_x),
        hot_y: u32::from(s.hot_y),
        rgba,
    })
}

/// Decodes a PNG of exactly `w` × `h` pixels into RGB (or RGBA with
/// `alpha`), whatever its colour type and depth.
fn decode_png(bytes: &[u8], w: u32, h: u32, alpha: bool) -> Result<Vec<u8>, TileProblem> {
    const KIND: &str = "PNG";
    let bad = |e: png::DecodingError| TileProblem::Undecodable {
        kind: KIND,
        why: e.to_string(),
    };
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    // The size is checked before the image's buffers are allocated.
    let (iw, ih) = dec.read_header_info().map_err(bad)?.size();
    if (iw, ih) != (w, h) {
        return Err(TileProblem::SizeDiffers {
            kind: KIND,
            width: iw,
            height: ih,
        });
    }
    let mut reader = dec.read_info().map_err(bad)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| TileProblem::Undecodable {
            kind: KIND,
            why: "the image does not fit in memory".into(),
        })?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    buf.truncate(info.buffer_size());
    let (ch, out_ch) = (info.color_type.samples(), if alpha { RGBA } else { RGB });
    let mut out = Vec::with_capacity(w as usize * h as usize * out_ch);
    for row in buf.chunks_exact(info.line_size).take(h as usize) {
        for px in row[..w as usize * ch].chunks_exact(ch) {
            let (rgb, a) = match *px {
                [g] => ([g, g, g], 255),
                [g, a] => ([g, g, g], a),
                [r, g, b] => ([r, g, b], 255),
                [r, g, b, a] => ([r, g, b], a),
                _ => {
                    return Err(TileProblem::Undecodable {
                        kind: KIND,
                        why: format!("{ch} samples a pixel"),
                    });
                }
            };
            out.extend_from_slice(&rgb);
            if alpha {
                out.push(a);
            }
        }
    }
    if out.len() != w as usize * h as usize * out_ch {
        return Err(TileProblem::Undecodable {
            kind: KIND,
            why: "the image has fewer rows than its header says".into(),
        });
    }
    Ok(out)
}

/// Decodes a baseline JPEG of exactly `w` × `h` pixels into RGB.
fn decode_jpeg(bytes: &[u8], w: u32, h: u32) -> Result<Vec<u8>, TileProblem> {
    use zune_jpeg::zune_core::{
        bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions,
    };
    const KIND: &str = "JPEG";
    let bad = |why: String| TileProblem::Undecodable { kind: KIND, why };
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    // The size is checked before the image's buffers are allocated.
    dec.decode_headers().map_err(|e| bad(format!("{e:?}")))?;
    let (iw, ih) = dec
        .dimensions()
        .ok_or_else(|| bad("the header has no size".into()))?;
    if (iw, ih) != (w as usize, h as usize) {
        return Err(TileProblem::SizeDiffers {
            kind: KIND,
            width: iw as u32,
            height: ih as u32,
        });
    }
    let size = dec
        .output_buffer_size()
        .ok_or_else(|| bad("the image does not fit in memory".into()))?;
    if size != w as usize * h as usize * RGB {
        return Err(bad(format!("{size} bytes of pixels for {w}×{h} RGB")));
    }
    let mut out = vec![0; size];
    dec.decode_into(&mut out)
        .map_err(|e| bad(format!("{e:?}")))?;
    Ok(out)
}

#[cfg(test)]
#[path = "framebuffer_tests.rs"]
mod tests;
