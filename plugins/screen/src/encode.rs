//! Encoding one tile: a single colour as [`TileData::Solid`], otherwise
//! PNG (RGB, 8 bits, lossless), or baseline JPEG for a photo-like tile
//! when the operator asked for `auto` quality and the link is short of
//! bandwidth. Also the pointer's image (PNG, RGBA).

use std::fmt;

use lifeline_screen_format::{Quality, TileData};

use crate::pixels::{self, BYTES_PER_PIXEL};

/// How hard PNG compresses. Both use fdeflate's single-pass compressor
/// (hundreds of MB/s; zlib levels cost many times more for a few per
/// cent); they differ in the row filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PngEffort {
    /// The Up filter only: about three times faster than adaptive
    /// filtering in WASM, 5 to 15 % larger on screen content. The default.
    Fast,
    /// Adaptive filters (the best of five per row): smaller, for frames
    /// whose bandwidth is short, where CPU time is not what limits.
    Small,
}

impl PngEffort {
    fn compression(self) -> png::Compression {
        match self {
            PngEffort::Fast => png::Compression::Fastest,
            PngEffort::Small => png::Compression::Fast,
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
    pub png: PngEffort,
}

impl Policy {
    /// Every tile lossless (solid or PNG), fast.
    pub const LOSSLESS: Policy = Policy {
        jpeg: None,
        png: PngEffort::Fast,
    };

    /// JPEG is allowed only with `auto` quality while bandwidth is short;
    /// PNG then works harder too.
    pub fn new(quality: Quality, short: bool, jpeg_quality: u8) -> Policy {
        let lossy = quality == Quality::Auto && short;
        Policy {
            jpeg: lossy.then(|| jpeg_quality.clamp(JPEG_QUALITY_MIN, JPEG_QUALITY_MAX)),
            png: if short {
                PngEffort::Small
            } else {
                PngEffort::Fast
            },
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

/// Encodes tiles, keeping its scratch buffer between them.
#[derive(Debug, Default)]
pub struct TileEncoder {
    rgb: Vec<u8>,
}

impl TileEncoder {
    /// Encodes a `width`×`height` tile of BGRX pixels.
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
        pixels::bgrx_to_rgb(bgrx, &mut self.rgb);
        png_image(&self.rgb, width, height, png::ColorType::Rgb, policy.png).map(TileData::Png)
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

/// A PNG of 8-bit `color` pixels.
fn png_image(
    data: &[u8],
    width: u32,
    height: u32,
    color: png::ColorType,
    effort: PngEffort,
) -> Result<Vec<u8>, EncodeError> {
    let fail = |e: png::EncodingError| EncodeError(format!("PNG of a {width}×{height} image: {e}"));
    let mut out = Vec::with_capacity(data.len() / 4 + 64);
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(effort.compression());
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
    png_image(rgba, width, height, png::ColorType::Rgba, PngEffort::Small)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{decode_jpeg, decode_png, tile_bgrx, to_rgb};

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
    fn png_decodes_back_to_identical_pixels() {
        let mut enc = TileEncoder::default();
        let small = Policy::new(Quality::Lossless, SHORT, 70);
        assert_eq!(small.png, PngEffort::Small);
        let cases = [(text_tile(), 64, 64), (photo_tile(36, 10), 36, 10)];
        for (policy, (t, w, h)) in [Policy::LOSSLESS, small]
            .into_iter()
            .flat_map(|p| cases.clone().map(|c| (p, c)))
        {
            let TileData::Png(png) = enc.encode(&t, w, h, policy).expect("encodes") else {
                panic!("not a PNG");
            };
            let (dw, dh, rgb) = decode_png(&png);
            assert_eq!((dw, dh), (w, h));
            assert_eq!(rgb, to_rgb(&t));
        }
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
