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
                let mut inflated = self.zlib.update(&zlib).into_iter();
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

    /// Draws `t`; a zlib tile's pixels (or problem) come inflated in
    /// `zlib_pixels`.
    fn tile(
        &mut self,
        t: &Tile,
        zlib_pixels: Option<Result<Vec<u8>, TileProblem>>,
    ) -> Result<(), TileProblem> {
        let (x, y) = (u32::from(t.x), u32::from(t.y));
        let (w, h) = (u32::from(t.width), u32::from(t.height));
        if w == 0 || h == 0 || x + w > self.width || y + h > self.height {
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
mod tests {
    use super::*;
    use lifeline_screen_format::{Message, Tile, TileData};

    fn layout(width: u32, height: u32) -> Message {
        Message::Layout {
            width,
            height,
            monitors: vec![Monitor {
                name: "DP-1".into(),
                x: 0,
                y: 0,
                width,
                height,
                primary: true,
            }],
        }
    }

    fn update(tiles: Vec<Tile>) -> Message {
        Message::Update {
            seq: 5,
            captured_us: 0,
            tiles,
        }
    }

    fn tile(x: u16, y: u16, width: u16, height: u16, data: TileData) -> Tile {
        Tile {
            x,
            y,
            width,
            height,
            data,
        }
    }

    /// A gradient whose every pixel differs from its neighbours.
    fn pattern(w: u32, h: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&[(x * 7) as u8, (y * 11) as u8, ((x + y) * 3) as u8]);
            }
        }
        v
    }

    fn png_of(w: u32, h: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(data).unwrap();
        wr.finish().unwrap();
        out
    }

    fn jpeg_of(w: u16, h: u16, rgb: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let enc = jpeg_encoder::Encoder::new(&mut out, 95);
        enc.encode(rgb, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    fn region(fb: &Framebuffer, x: u32, y: u32, w: u32, h: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for yy in y..y + h {
            for xx in x..x + w {
                v.extend_from_slice(&fb.pixel(xx, yy).unwrap());
            }
        }
        v
    }

    #[test]
    fn tiles_land_where_their_header_says() {
        let mut fb = Framebuffer::new();
        fb.apply(&layout(200, 100)).unwrap();
        assert_eq!((fb.width(), fb.height()), (200, 100));
        assert!(fb.rgb().iter().all(|&b| b == 0), "a layout starts black");
        let pat = pattern(30, 20);
        let jpeg_pic = vec![200u8; 16 * 8 * 3];
        fb.apply(&update(vec![
            tile(0, 0, 64, 64, TileData::Solid([10, 20, 30])),
            tile(
                100,
                50,
                30,
                20,
                TileData::Png(png_of(30, 20, png::ColorType::Rgb, &pat)),
            ),
            tile(180, 90, 16, 8, TileData::Jpeg(jpeg_of(16, 8, &jpeg_pic))),
        ]))
        .unwrap();
        assert_eq!(fb.last_seq(), Some(5));
        assert_eq!(fb.updates(), 1);
        assert_eq!(fb.pixel(0, 0), Some([10, 20, 30]));
        assert_eq!(fb.pixel(63, 63), Some([10, 20, 30]));
        assert_eq!(fb.pixel(64, 63), Some([0, 0, 0]));
        assert_eq!(fb.pixel(63, 64), Some([0, 0, 0]));
        assert_eq!(region(&fb, 100, 50, 30, 20), pat, "the PNG is exact");
        assert_eq!(fb.pixel(99, 50), Some([0, 0, 0]));
        assert_eq!(fb.pixel(130, 50), Some([0, 0, 0]));
        // JPEG is lossy: close to the flat colour it encoded.
        for px in region(&fb, 180, 90, 16, 8).chunks(3) {
            for &c in px {
                assert!((i32::from(c) - 200).abs() <= 4, "{px:?}");
            }
        }
        assert_eq!(fb.pixel(179, 90), Some([0, 0, 0]));
        assert_eq!(fb.pixel(200, 0), None);
    }

    #[test]
    fn png_tiles_of_any_colour_type_become_rgb() {
        let mut fb = Framebuffer::new();
        fb.apply(&layout(4, 2)).unwrap();
        let gray = png_of(2, 2, png::ColorType::Grayscale, &[0, 50, 100, 255]);
        let rgba = png_of(
            2,
            2,
            png::ColorType::Rgba,
            &[1, 2, 3, 255, 4, 5, 6, 0, 7, 8, 9, 128, 10, 11, 12, 255],
        );
        fb.apply(&update(vec![
            tile(0, 0, 2, 2, TileData::Png(gray)),
            tile(2, 0, 2, 2, TileData::Png(rgba)),
        ]))
        .unwrap();
        assert_eq!(fb.pixel(1, 0), Some([50, 50, 50]));
        assert_eq!(fb.pixel(0, 1), Some([100, 100, 100]));
        assert_eq!(fb.pixel(3, 0), Some([4, 5, 6]));
        assert_eq!(fb.pixel(3, 1), Some([10, 11, 12]));
    }

    #[test]
    fn bad_tiles_are_named_and_good_ones_still_applied() {
        let mut fb = Framebuffer::new();
        fb.apply(&layout(128, 64)).unwrap();
        let e = fb
            .apply(&update(vec![
                tile(0, 0, 64, 64, TileData::Solid([9, 9, 9])),
                tile(100, 0, 64, 64, TileData::Solid([1, 1, 1])),
                tile(64, 0, 64, 64, TileData::Solid([7, 7, 7])),
            ]))
            .unwrap_err();
        assert!(matches!(
            e,
            PictureError::Tile {
                index: 1,
                problem: TileProblem::Outside {
                    width: 128,
                    height: 64
                },
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "update 5, tile 1 (at 100,0, 64×64): it lies outside the 128×64 picture"
        );
        assert_eq!(fb.pixel(0, 0), Some([9, 9, 9]));
        assert_eq!(fb.pixel(127, 63), Some([7, 7, 7]));

        let small = png_of(10, 10, png::ColorType::Rgb, &pattern(10, 10));
        let e = fb
            .apply(&update(vec![tile(0, 0, 16, 16, TileData::Png(small))]))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("tile 0 (at 0,0, 16×16): its PNG image is 10×10"),
            "{e}"
        );
        let jpeg = jpeg_of(8, 8, &[0; 8 * 8 * 3]);
        let e = fb
            .apply(&update(vec![
                tile(0, 0, 8, 8, TileData::Solid([0, 0, 0])),
                tile(8, 0, 8, 16, TileData::Jpeg(jpeg)),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("tile 1"), "{e}");
        assert!(e.to_string().contains("JPEG image is 8×8"), "{e}");
        let e = fb
            .apply(&update(vec![tile(
                0,
                0,
                8,
                8,
                TileData::Png(vec![1, 2, 3]),
            )]))
            .unwrap_err();
        assert!(
            e.to_string().contains("its PNG image cannot be decoded"),
            "{e}"
        );
        let e = fb
            .apply(&update(vec![tile(
                0,
                0,
                8,
                8,
                TileData::Jpeg(vec![0xff, 0xd8]),
            )]))
            .unwrap_err();
        assert!(
            e.to_string().contains("its JPEG image cannot be decoded"),
            "{e}"
        );
        // Before any layout every tile is outside the 0×0 picture.
        let e = Framebuffer::new()
            .apply(&update(vec![tile(0, 0, 1, 1, TileData::Solid([1, 1, 1]))]))
            .unwrap_err();
        assert!(e.to_string().contains("outside the 0×0 picture"), "{e}");
    }

    #[test]
    fn a_layout_resets_to_black_and_keeps_its_monitors() {
        let mut fb = Framebuffer::new();
        fb.apply(&layout(64, 64)).unwrap();
        fb.apply(&update(vec![tile(
            0,
            0,
            64,
            64,
            TileData::Solid([255, 0, 0]),
        )]))
        .unwrap();
        let two = Message::Layout {
            width: 100,
            height: 30,
            monitors: vec![
                Monitor {
                    name: "A".into(),
                    x: 0,
                    y: 0,
                    width: 50,
                    height: 30,
                    primary: true,
                },
                Monitor {
                    name: "B".into(),
                    x: 50,
                    y: 0,
                    width: 50,
                    height: 30,
                    primary: false,
                },
            ],
        };
        fb.apply(&two).unwrap();
        assert_eq!((fb.width(), fb.height()), (100, 30));
        assert_eq!(fb.rgb().len(), 100 * 30 * 3);
        assert!(fb.rgb().iter().all(|&b| b == 0));
        assert_eq!(fb.monitors().len(), 2);
        assert_eq!(fb.monitors()[1].name, "B");
        let huge = Message::Layout {
            width: 65535,
            height: 65535,
            monitors: vec![],
        };
        assert!(matches!(
            fb.apply(&huge),
            Err(PictureError::TooLarge { .. })
        ));
        assert_eq!(fb.width(), 100, "a refused layout changes nothing");
    }

    #[test]
    fn cursor_keeps_its_shape_and_is_drawn_only_when_asked() {
        let mut fb = Framebuffer::new();
        fb.apply(&layout(8, 8)).unwrap();
        // A 2×2 shape: opaque white, transparent, half-opaque white, opaque white.
        let shape = png_of(
            2,
            2,
            png::ColorType::Rgba,
            &[
                255, 255, 255, 255, 255, 255, 255, 0, 255, 255, 255, 128, 255, 255, 255, 255,
            ],
        );
        fb.apply(&Message::Cursor {
            x: 4,
            y: 4,
            shape: Some(CursorShape {
                width: 2,
                height: 2,
                hot_x: 1,
                hot_y: 1,
                png: shape,
            }),
        })
        .unwrap();
        fb.apply(&Message::Cursor {
            x: 5,
            y: 5,
            shape: None,
        })
        .unwrap();
        let c = fb.cursor().unwrap();
        assert_eq!((c.x, c.y), (5, 5));
        assert_eq!(c.shape.as_ref().unwrap().width, 2, "the shape is kept");
        assert!(
            fb.rgb().iter().all(|&b| b == 0),
            "never drawn into the picture"
        );
        let drawn = fb.composed(true);
        let at = |x: usize, y: usize| drawn[(y * 8 + x) * 3];
        assert_eq!(at(4, 4), 255);
        assert_eq!(at(5, 4), 0);
        assert_eq!(at(4, 5), 128);
        assert_eq!(at(5, 5), 255);
        assert_eq!(fb.composed(false), fb.rgb());

        let mut png = Vec::new();
        fb.to_png(&mut png, true).unwrap();
        let mut dec = png::Decoder::new(std::io::Cursor::new(png));
        dec.set_transformations(png::Transformations::normalize_to_color8());
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (8, 8));
        assert_eq!(&buf[..info.buffer_size()], &drawn[..]);

        let e = fb
            .apply(&Message::Cursor {
                x: 0,
                y: 0,
                shape: Some(CursorShape {
                    width: 3,
                    height: 3,
                    hot_x: 0,
                    hot_y: 0,
                    png: png_of(2, 2, png::ColorType::Rgba, &[0; 16]),
                }),
            })
            .unwrap_err();
        assert!(e.to_string().contains("pointer's shape (3×3)"), "{e}");
    }

    #[test]
    fn no_png_without_a_picture() {
        let e = Framebuffer::new().to_png(Vec::new(), false).unwrap_err();
        assert_eq!(e, PictureError::NoPicture);
    }
}
