//! Encoding one tile: a single colour as [`TileData::Solid`], otherwise
//! the next bytes of the share's zlib stream ([`TileData::Zlib`]: palette
//! or RGB, lossless), a PNG for a photo-like tile without a palette
//! (lossless), or baseline JPEG for a photo-like tile when the operator
//! asked for `auto` quality and the link is short of bandwidth. Also the
//! pointer's image (PNG, RGBA).

use std::fmt;

use lifeline_screen_format::{Quality, TileData};

use crate::pixels::{self, BYTES_PER_PIXEL};
use crate::zlib::{self, ZlibEncoder};

/// How hard the zlib stream compresses ([`crate::zlib`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// zlib level [`zlib::LEVEL_FAST`]: the default, where CPU time limits.
    Fast,
    /// zlib level [`zlib::LEVEL_SMALL`]: for frames whose bandwidth is
    /// short, where CPU time is not what limits.
    Small,
}

impl Effort {
    fn level(self) -> u8 {
        match self {
            Effort::Fast => zlib::LEVEL_FAST,
            Effort::Small => zlib::LEVEL_SMALL,
        }
    }
}

/// Highest JPEG quality the plugin uses.
pub const JPEG_QUALITY_MAX: u8 = 85;
/// Lowest JPEG quality the plugin goes down to when bandwidth stays short.
pub const JPEG_QUALITY_MIN: u8 = 40;

/// How this frame may encode a tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// JPEG quality for photo-like tiles; `None`: every tile lossless.
    pub jpeg: Option<u8>,
    pub effort: Effort,
}

impl Policy {
    /// Every tile lossless (solid or zlib), fast.
    pub const LOSSLESS: Policy = Policy {
        jpeg: None,
        effort: Effort::Fast,
    };

    /// JPEG is allowed only with `auto` quality while bandwidth is short;
    /// zlib then works harder too.
    pub fn new(quality: Quality, short: bool, jpeg_quality: u8) -> Policy {
        let lossy = quality == Quality::Auto && short;
        Policy {
            jpeg: lossy.then(|| jpeg_quality.clamp(JPEG_QUALITY_MIN, JPEG_QUALITY_MAX)),
            effort: if short { Effort::Small } else { Effort::Fast },
        }
    }

    /// The same, but while the CPU limits the frame rate (`cpu_bound`)
    /// zlib keeps its fast level: the smaller level took 2.5 times as long
    /// on text, so it would lower the frame rate more than it saves.
    pub fn cpu_bound(self, cpu_bound: bool) -> Policy {
        Policy {
            effort: if cpu_bound { Effort::Fast } else { self.effort },
            ..self
        }
    }
}

/// Why a tile or pointer image could not be encoded (a mismatch of size
/// and bytes: a bug, not a condition of the screen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Encodes the tiles of one screen stream: one per share, since it holds
/// the stream's zlib compressor (a new stream needs a new encoder).
#[derive(Debug, Default)]
pub struct TileEncoder {
    zlib: ZlibEncoder,
    /// Scratch: a photo-like tile's RGB rows for PNG.
    rgb: Vec<u8>,
}

impl TileEncoder {
    /// Encodes a `width`×`height` tile of BGRX pixels. A
    /// [`TileData::Zlib`] it returns must be sent, in the order returned.
    ///
    /// A tile of one colour is solid; a photo-like one JPEG when the
    /// policy allows; one of at most [`zlib::MAX_PALETTE`] colours a
    /// palette tile of the zlib stream; a photo-like one otherwise a PNG
    /// (RGB, rows filtered with [`TILE_FILTER`], fdeflate: on photo-like
    /// tiles 2.5 times as fast as the zlib stream's RGB rows at level 1,
    /// and 10 % smaller, since the history the stream shares does not
    /// help noise); any other tile RGB rows in the zlib stream.
    pub fn encode(
        &mut self,
        bgrx: &[u8],
        width: u32,
        height: u32,
        policy: Policy,
    ) -> Result<TileData, EncodeError> {
        let want = width as usize * height as usize * BYTES_PER_PIXEL;
        if bgrx.len() != want || want == 0 {
            return Err(EncodeError(format!(
                "a {width}×{height} tile needs {want} bytes of pixels, not {}",
                bgrx.len()
            )));
        }
        if let Some(rgb) = pixels::solid_colour(bgrx) {
            return Ok(TileData::Solid(rgb));
        }
        if let Some(q) = policy.jpeg {
            if pixels::is_photo_like(bgrx, width) {
                return jpeg(bgrx, width, height, q).map(TileData::Jpeg);
            }
        }
        let level = policy.effort.level();
        if let Some(data) = self.zlib.palette(bgrx, width, height, level) {
            return Ok(data);
        }
        if pixels::is_photo_like(bgrx, width) {
            self.rgb.clear();
            pixels::bgrx_to_rgb(bgrx, &mut self.rgb);
            return png_image(&self.rgb, width, height, png::ColorType::Rgb, TILE_FILTER)
                .map(TileData::Png);
        }
        Ok(self.zlib.rgb(bgrx))
    }

    /// Whether the zlib stream has input not yet flushed: an update may
    /// not end here.
    pub fn pending(&self) -> bool {
        self.zlib.pending()
    }

    /// Input bytes the zlib stream holds unflushed (a bound on their size
    /// once flushed).
    pub fn unflushed(&self) -> usize {
        self.zlib.unflushed()
    }

    /// A sync flush of the zlib stream: bytes to append to the last zlib
    /// tile encoded (empty when nothing is pending).
    pub fn flush(&mut self) -> Vec<u8> {
        self.zlib.flush()
    }
}

/// A baseline JPEG of BGRX pixels (4:2:0 below quality 90).
fn jpeg(bgrx: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, EncodeError> {
    let (w, h) = dims16(width, height)?;
    let mut out = Vec::with_capacity(bgrx.len() / 8);
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(bgrx, w, h, jpeg_encoder::ColorType::Bgra)
        .map_err(|e| EncodeError(format!("JPEG of a {width}×{height} tile: {e}")))?;
    Ok(out)
}

fn dims16(width: u32, height: u32) -> Result<(u16, u16), EncodeError> {
    match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(EncodeError(format!(
            "{width}×{height} is too large for an image"
        ))),
    }
}

/// Row filter of photo-like PNG tiles: Avg alone was as fast as Up or
/// Sub and within 1 % of the adaptive choice (which tries all five on
/// every row) on the benchmark's photo tiles, natively 4.2 against
/// 6.4–10 ms for 255 tiles, 0.84 against 0.835 of the RGB bytes.
const TILE_FILTER: png::Filter = png::Filter::Avg;

/// A PNG of 8-bit `color` pixels, rows filtered with `filter`, deflated
/// by fdeflate's fast mode.
fn png_image(
    data: &[u8],
    width: u32,
    height: u32,
    color: png::ColorType,
    filter: png::Filter,
) -> Result<Vec<u8>, EncodeError> {
    let fail = |e: png::EncodingError| EncodeError(format!("PNG of a {width}×{height} image: {e}"));
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_deflate_compression(png::DeflateCompression::FdeflateUltraFast);
    enc.set_filter(filter);
    let mut writer = enc.write_header().map_err(fail)?;
    writer.write_image_data(data).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

/// The pointer's image (RGBA, not premultiplied) as PNG.
pub fn cursor_png(rgba: &[u8], width: u32, height: u32) -> Result<Vec<u8>, EncodeError> {
    let want = width as usize * height as usize * 4;
    if rgba.len() != want || want == 0 {
        return Err(EncodeError(format!(
            "a {width}×{height} pointer image needs {want} bytes, not {}",
            rgba.len()
        )));
    }
    dims16(width, height)?;
    png_image(
        rgba,
        width,
        height,
        png::ColorType::Rgba,
        png::Filter::Adaptive,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{decode_jpeg, decode_png, tile_bgrx, to_rgb, Inflater};

    const SHORT: bool = true;

    fn text_tile() -> Vec<u8> {
        tile_bgrx(64, 64, |x, y| {
            if (x * 7 + y * 3) % 5 == 0 {
                [0, 0, 0]
            } else {
                [250, 250, 240]
            }
        })
    }

    fn photo_tile(w: u32, h: u32) -> Vec<u8> {
        tile_bgrx(w, h, |x, y| {
            [
                (x * 3 + y) as u8,
                (y * 3 + x / 2) as u8,
                ((x ^ y) * 2) as u8,
            ]
        })
    }

    #[test]
    fn a_flat_tile_is_solid() {
        let t = tile_bgrx(17, 5, |_, _| [1, 2, 3]);
        let data = TileEncoder::default()
            .encode(&t, 17, 5, Policy::LOSSLESS)
            .expect("encodes");
        assert_eq!(data, TileData::Solid([1, 2, 3]));
    }

    #[test]
    fn zlib_tiles_inflate_back_to_identical_pixels() {
        let mut enc = TileEncoder::default();
        let mut inf = Inflater::default();
        let small = Policy::new(Quality::Lossless, SHORT, 70);
        assert_eq!(small.effort, Effort::Small);
        assert_eq!(small.cpu_bound(true).effort, Effort::Fast);
        assert_eq!(small.cpu_bound(false).effort, Effort::Small);
        let cases = [(text_tile(), 64, 64), (photo_tile(36, 10), 36, 10)];
        for (policy, (t, w, h)) in [Policy::LOSSLESS, small]
            .into_iter()
            .flat_map(|p| cases.clone().map(|c| (p, c)))
        {
            let TileData::Zlib(mut z) = enc.encode(&t, w, h, policy).expect("encodes") else {
                panic!("not zlib");
            };
            z.extend(enc.flush());
            assert_eq!(inf.tile(&z, w, h).1, to_rgb(&t));
        }
    }

    #[test]
    fn lossless_photo_like_tiles_are_png_of_identical_pixels() {
        let mut enc = TileEncoder::default();
        let photo = photo_tile(64, 48);
        for policy in [Policy::LOSSLESS, Policy::new(Quality::Auto, !SHORT, 70)] {
            let TileData::Png(png) = enc.encode(&photo, 64, 48, policy).expect("encodes") else {
                panic!("not a PNG");
            };
            assert_eq!(decode_png(&png), (64, 48, to_rgb(&photo)));
        }
        assert!(!enc.pending(), "nothing went into the zlib stream");
        // Many colours but not photo-like (a smooth ramp of 64 × 48
        // shades is, a 5-row strip of 300 is not): RGB in the zlib stream.
        let strip = tile_bgrx(60, 5, |x, y| [(x * 4) as u8, y as u8, (x / 2) as u8]);
        let data = enc
            .encode(&strip, 60, 5, Policy::LOSSLESS)
            .expect("encodes");
        assert!(matches!(data, TileData::Zlib(_)), "{data:?}");
    }

    #[test]
    fn jpeg_only_for_photo_like_tiles_in_auto_mode_when_short() {
        let mut enc = TileEncoder::default();
        let photo = photo_tile(64, 64);
        let jpeg_of = |enc: &mut TileEncoder, t: &[u8], p: Policy| {
            matches!(
                enc.encode(t, 64, 64, p).expect("encodes"),
                TileData::Jpeg(_)
            )
        };
        assert!(jpeg_of(
            &mut enc,
            &photo,
            Policy::new(Quality::Auto, SHORT, 70)
        ));
        assert!(!jpeg_of(
            &mut enc,
            &photo,
            Policy::new(Quality::Auto, !SHORT, 70)
        ));
        assert!(!jpeg_of(
            &mut enc,
            &photo,
            Policy::new(Quality::Lossless, SHORT, 70)
        ));
        assert!(!jpeg_of(
            &mut enc,
            &text_tile(),
            Policy::new(Quality::Auto, SHORT, 70)
        ));
    }

    #[test]
    fn jpeg_is_close_to_the_pixels() {
        let photo = photo_tile(64, 48);
        let policy = Policy::new(Quality::Auto, SHORT, JPEG_QUALITY_MAX);
        let TileData::Jpeg(j) = TileEncoder::default()
            .encode(&photo, 64, 48, policy)
            .expect("encodes")
        else {
            panic!("not a JPEG");
        };
        let (w, h, rgb) = decode_jpeg(&j);
        assert_eq!((w, h), (64, 48));
        let want = to_rgb(&photo);
        let err: u64 = rgb
            .iter()
            .zip(&want)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = err as f64 / want.len() as f64;
        assert!(mean < 12.0, "mean error {mean}");
    }

    #[test]
    fn policy_clamps_the_jpeg_quality() {
        assert_eq!(
            Policy::new(Quality::Auto, SHORT, 5).jpeg,
            Some(JPEG_QUALITY_MIN)
        );
        assert_eq!(
            Policy::new(Quality::Auto, SHORT, 100).jpeg,
            Some(JPEG_QUALITY_MAX)
        );
    }

    #[test]
    fn wrong_sizes_are_errors_not_panics() {
        let mut enc = TileEncoder::default();
        assert!(enc.encode(&[0; 12], 2, 2, Policy::LOSSLESS).is_err());
        assert!(enc.encode(&[], 0, 0, Policy::LOSSLESS).is_err());
        assert!(cursor_png(&[0; 3], 1, 1).is_err());
    }

    #[test]
    fn cursor_png_keeps_alpha() {
        let rgba: Vec<u8> = (0..16 * 16)
            .flat_map(|i| [i as u8, 0, 255, (i % 2 * 255) as u8])
            .collect();
        let png = cursor_png(&rgba, 16, 16).expect("encodes");
        let mut d = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .expect("header");
        let mut buf = vec![0; d.output_buffer_size().expect("size")];
        let info = d.next_frame(&mut buf).expect("frame");
        assert_eq!(info.color_type, png::ColorType::Rgba);
        assert_eq!(&buf[..info.buffer_size()], &rgba[..]);
    }
}
