//! The receiving end of a screen stream's zlib stream: tag-3 tiles
//! ([`lifeline_screen_format::TileData::Zlib`], specified there), inflated
//! one after the other by one inflater that lives as long as the stream's
//! [`super::Framebuffer`]. A `Layout` does not reset it (nor does it on
//! the plugin's side); only a new stream, that is a new `Framebuffer`,
//! starts a new zlib stream.

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZFlush};

use super::TileProblem;

const KIND: &str = "zlib";
/// Most colours of a tile's palette.
const MAX_PALETTE: usize = 255;

/// The zlib stream's state and scratch buffer.
#[derive(Clone)]
pub(super) struct TileInflater {
    state: Box<InflateState>,
    out: Vec<u8>,
    /// Why the stream cannot be followed any more (an earlier tile's bytes
    /// did not inflate).
    broken: Option<String>,
}

impl Default for TileInflater {
    fn default() -> Self {
        TileInflater {
            state: InflateState::new_boxed(DataFormat::Zlib),
            out: Vec::new(),
            broken: None,
        }
    }
}

impl std::fmt::Debug for TileInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileInflater")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

fn undecodable(why: String) -> TileProblem {
    TileProblem::Undecodable { kind: KIND, why }
}

/// Bits of one palette index for `colours` colours.
fn bits_per_index(colours: usize) -> usize {
    match colours {
        0..=2 => 1,
        3..=4 => 2,
        5..=16 => 4,
        _ => 8,
    }
}

/// Bytes of a tile's content, once its first byte (the palette size) is
/// known.
fn content_len(n: usize, w: usize, h: usize) -> usize {
    let row_bytes = if n == 0 {
        w * 3
    } else {
        (w * bits_per_index(n)).div_ceil(8)
    };
    1 + 3 * n + row_bytes * h
}

impl TileInflater {
    /// Inflates one update's zlib tiles, given as (bytes, width, height)
    /// in the update's order: each one's `w`×`h` pixels, RGB, or what is
    /// wrong with it. The update's bytes end at a sync flush, so every
    /// content must be complete at its end.
    pub(super) fn update(
        &mut self,
        tiles: &[(&[u8], u32, u32)],
    ) -> Vec<Result<Vec<u8>, TileProblem>> {
        let mut results: Vec<Result<Vec<u8>, TileProblem>> = Vec::with_capacity(tiles.len());
        if let Some(why) = &self.broken {
            let why = format!("the stream's zlib stream broke at an earlier tile ({why})");
            return tiles
                .iter()
                .map(|_| Err(undecodable(why.clone())))
                .collect();
        }
        let size = |&(_, w, h): &(&[u8], u32, u32)| (w as usize, h as usize);
        self.out.clear();
        // Where the next content starts in `out`.
        let mut pos = 0;
        for (k, &(z, _, _)) in tiles.iter().enumerate() {
            // Room for every content not yet complete, plus one byte.
            let room: usize = tiles[results.len()..]
                .iter()
                .map(|t| {
                    let (w, h) = size(t);
                    1 + 3 * MAX_PALETTE + w * h * 3
                })
                .sum::<usize>()
                + 1;
            let start = self.out.len();
            let keep = start - pos;
            self.out.resize(start + room.saturating_sub(keep).max(1), 0);
            let (status, consumed) = self.inflate_all(z, start);
            let failed = match status {
                // No output for these bytes yet: it comes with later ones.
                Err(miniz_oxide::MZError::Buf) if consumed == z.len() => None,
                Err(e) => Some(format!(
                    "zlib tile {k} of the update does not inflate: {e:?}"
                )),
                Ok(_) if consumed < z.len() => Some(format!(
                    "zlib tile {k} of the update inflates to more than the update's tiles"
                )),
                Ok(_) => None,
            };
            if let Some(why) = failed {
                return self.fail(results, tiles.len(), why);
            }
            // The contents now complete.
            while results.len() < tiles.len() && pos < self.out.len() {
                let (w, h) = size(&tiles[results.len()]);
                let len = content_len(usize::from(self.out[pos]), w, h);
                if self.out.len() - pos < len {
                    break;
                }
                let c = &self.out[pos..pos + len];
                results.push(content_to_rgb(c, w, h).map_err(undecodable));
                pos += len;
            }
        }
        if results.len() < tiles.len() {
            let why = format!(
                "the update's zlib bytes end before its content ({} of {} zlib tiles complete)",
                results.len(),
                tiles.len()
            );
            return self.fail(results, tiles.len(), why);
        }
        if pos < self.out.len() {
            let why = format!(
                "the update's zlib bytes inflate to {} bytes past its tiles",
                self.out.len() - pos
            );
            if let Some(last) = results.last_mut() {
                *last = Err(undecodable(why.clone()));
            }
            self.broken = Some(why);
        }
        results
    }

    /// Refuses an update's `n` zlib tiles unread (see
    /// `Framebuffer::zlib_fits`): the stream breaks, each tile gets `why`.
    pub(super) fn refuse(&mut self, n: usize, why: String) -> Vec<Result<Vec<u8>, TileProblem>> {
        self.fail(Vec::with_capacity(n), n, why)
    }

    /// Feeds `z`, writing from `out[start..]` (then cut to what was
    /// written), and drains what the inflater still holds (miniz_oxide
    /// returns once its input is used up, even with output left): the
    /// status and the bytes of `z` consumed.
    fn inflate_all(&mut self, z: &[u8], start: usize) -> (miniz_oxide::MZResult, usize) {
        let mut at = start;
        let r = inflate(&mut self.state, z, &mut self.out[at..], MZFlush::None);
        at += r.bytes_written;
        let (mut status, consumed) = (r.status, r.bytes_consumed);
        while status.is_ok() && consumed == z.len() && at < self.out.len() {
            let more = inflate(&mut self.state, &[], &mut self.out[at..], MZFlush::None);
            if more.bytes_written == 0 {
                break;
            }
            at += more.bytes_written;
            status = more.status;
        }
        self.out.truncate(at);
        (status, consumed)
    }

    /// The stream breaks: the tiles without a result get `why`.
    fn fail(
        &mut self,
        mut results: Vec<Result<Vec<u8>, TileProblem>>,
        n: usize,
        why: String,
    ) -> Vec<Result<Vec<u8>, TileProblem>> {
        self.broken = Some(why.clone());
        results.resize_with(n, || Err(undecodable(why.clone())));
        results
    }
}

/// A tile's inflated content as RGB rows.
fn content_to_rgb(c: &[u8], w: usize, h: usize) -> Result<Vec<u8>, String> {
    let Some((&n, rest)) = c.split_first() else {
        return Err("it inflates to nothing (no palette size)".into());
    };
    let n = usize::from(n);
    if rest.len() < 3 * n {
        return Err(format!(
            "its palette of {n} colours is cut short ({} bytes)",
            rest.len()
        ));
    }
    let (palette, px) = rest.split_at(3 * n);
    let row_bytes = if n == 0 {
        w * 3
    } else {
        (w * bits_per_index(n)).div_ceil(8)
    };
    if px.len() != row_bytes * h {
        return Err(format!(
            "its pixels take {} bytes, not {} ({h} rows of {row_bytes}{})",
            px.len(),
            row_bytes * h,
            if n == 0 {
                String::new()
            } else {
                format!(", a palette of {n}")
            }
        ));
    }
    if n == 0 {
        return Ok(px.to_vec());
    }
    let bits = bits_per_index(n);
    let mask = ((1u16 << bits) - 1) as u8;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for (y, row) in px.chunks_exact(row_bytes).enumerate() {
        for x in 0..w {
            let bit = x * bits;
            let i = usize::from((row[bit / 8] >> (8 - bits - bit % 8)) & mask);
            let Some(colour) = palette.get(3 * i..3 * i + 3) else {
                return Err(format!("pixel ({x},{y}) is colour {i} of a palette of {n}"));
            };
            rgb.extend_from_slice(colour);
        }
    }
    Ok(rgb)
}

#[cfg(test)]
mod tests {
    use super::super::{Framebuffer, PictureError};
    use super::*;
    use lifeline_screen_format::{Message, Tile, TileData};
    use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
    use miniz_oxide::deflate::stream::deflate;

    /// The plugin's encoding, minimally: palette (first appearance) or
    /// RGB, packed MSB first, one zlib stream with a sync flush per tile.
    struct Encoder(Box<CompressorOxide>);

    impl Encoder {
        fn new() -> Encoder {
            let flags = create_comp_flags_from_zip_params(3, 15, 0);
            Encoder(Box::new(CompressorOxide::new(flags)))
        }

        fn content(rgb: &[u8], w: usize) -> Vec<u8> {
            let mut palette: Vec<&[u8]> = Vec::new();
            let mut idx = Vec::new();
            for px in rgb.chunks(3) {
                let i = palette.iter().position(|c| *c == px).unwrap_or_else(|| {
                    palette.push(px);
                    palette.len() - 1
                });
                idx.push(i as u8);
            }
            if palette.len() > MAX_PALETTE {
                let mut c = vec![0];
                c.extend_from_slice(rgb);
                return c;
            }
            let mut c = vec![palette.len() as u8];
            palette.iter().for_each(|p| c.extend_from_slice(p));
            let bits = bits_per_index(palette.len());
            for row in idx.chunks(w) {
                let mut acc = vec![0u8; (w * bits).div_ceil(8)];
                for (x, &i) in row.iter().enumerate() {
                    acc[x * bits / 8] |= i << (8 - bits - x * bits % 8);
                }
                c.extend_from_slice(&acc);
            }
            c
        }

        fn raw_with(&mut self, content: &[u8], flush: MZFlush) -> Vec<u8> {
            // Room for everything held back so far, too.
            let mut out = vec![0; content.len() * 2 + (1 << 20)];
            let r = deflate(&mut self.0, content, &mut out, flush);
            assert_eq!(r.bytes_consumed, content.len());
            assert!(r.bytes_written < out.len());
            out.truncate(r.bytes_written);
            out
        }

        /// One tile's content, flushed.
        fn raw(&mut self, content: &[u8]) -> Vec<u8> {
            self.raw_with(content, MZFlush::Sync)
        }

        fn tile(&mut self, rgb: &[u8], w: usize) -> Vec<u8> {
            self.raw(&Self::content(rgb, w))
        }

        /// An update's tiles, flushed once after the last.
        fn update(&mut self, tiles: &[(Vec<u8>, usize)]) -> Vec<Vec<u8>> {
            let mut out: Vec<Vec<u8>> = tiles
                .iter()
                .map(|(rgb, w)| self.raw_with(&Self::content(rgb, *w), MZFlush::None))
                .collect();
            let flush = self.raw_with(&[], MZFlush::Sync);
            out.last_mut().expect("a tile").extend(flush);
            out
        }
    }

    /// `w`×`h` RGB of `colours` colours.
    fn picture(w: usize, h: usize, colours: usize) -> Vec<u8> {
        (0..w * h)
            .flat_map(|p| {
                let i = (p + p / w) % colours;
                [(i * 37) as u8, (i * 91 + 5) as u8, (i / 5) as u8]
            })
            .collect()
    }

    /// Inflates one tile alone.
    fn one(inf: &mut TileInflater, z: &[u8], w: u32, h: u32) -> Result<Vec<u8>, TileProblem> {
        inf.update(&[(z, w, h)]).remove(0)
    }

    #[test]
    fn every_palette_size_and_odd_tile_sizes_round_trip_in_one_stream() {
        let mut enc = Encoder::new();
        let mut inf = TileInflater::default();
        let cases = [
            (64, 64, 1),
            (64, 64, 2),
            (3, 7, 2),
            (13, 5, 4),
            (64, 64, 16),
            (9, 11, 16),
            (64, 64, 17),
            (64, 64, 255),
            (64, 64, 256),
            (17, 3, 5000),
            (1, 1, 1),
        ];
        for _ in 0..2 {
            for (w, h, colours) in cases {
                let rgb = picture(w, h, colours);
                let z = enc.tile(&rgb, w);
                let got = one(&mut inf, &z, w as u32, h as u32).expect("inflates");
                assert_eq!(got, rgb, "{w}×{h}, {colours} colours");
            }
            // All of them in one update, flushed once: most tiles' own
            // bytes do not complete their content.
            let tiles: Vec<(Vec<u8>, usize)> = cases
                .iter()
                .map(|&(w, h, c)| (picture(w, h, c), w))
                .collect();
            let zs = enc.update(&tiles);
            assert!(zs.iter().any(|z| z.is_empty()), "bytes held back");
            let args: Vec<(&[u8], u32, u32)> = zs
                .iter()
                .zip(&cases)
                .map(|(z, &(w, h, _))| (&z[..], w as u32, h as u32))
                .collect();
            for (got, (rgb, _)) in inf.update(&args).into_iter().zip(&tiles) {
                assert_eq!(&got.expect("inflates"), rgb);
            }
        }
    }

    #[test]
    fn bad_content_is_named_and_a_broken_stream_stays_broken() {
        let mut enc = Encoder::new();
        let mut inf = TileInflater::default();
        // Index 3 of a palette of 3 (2 bits a pixel).
        let z = enc.raw(&[3, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0b1100_0000]);
        let e = one(&mut inf, &z, 1, 1).expect_err("index past the palette");
        assert!(e.to_string().contains("colour 3 of a palette of 3"), "{e}");
        // The stream is still in step: a good tile follows. A content too
        // long for its tile is caught too (and breaks the stream).
        let z = enc.tile(&[9, 8, 7, 9, 8, 7], 2);
        assert_eq!(
            one(&mut inf, &z, 2, 1).expect("inflates"),
            [9, 8, 7, 9, 8, 7]
        );
        let z = enc.raw(&[0, 1, 2, 3, 4]);
        let e = one(&mut inf, &z, 2, 1).expect_err("short RGB");
        assert!(e.to_string().contains("end before its content"), "{e}");
        let e = one(&mut inf, &[0xff; 9], 2, 1).expect_err("not deflate");
        assert!(
            e.to_string().contains("zlib image cannot be decoded"),
            "{e}"
        );
        let z = enc.tile(&[1, 2, 3], 1);
        let e = one(&mut inf, &z, 1, 1).expect_err("broken before");
        assert!(e.to_string().contains("broke at an earlier tile"), "{e}");
    }

    #[test]
    fn the_framebuffer_follows_the_stream_across_a_layout() {
        let mut enc = Encoder::new();
        let mut fb = Framebuffer::new();
        let layout = |w| Message::Layout {
            width: w,
            height: 64,
            monitors: Vec::new(),
        };
        let update = |seq, x, z| Message::Update {
            seq,
            captured_us: 0,
            tiles: vec![Tile {
                x,
                y: 0,
                width: 5,
                height: 3,
                data: TileData::Zlib(z),
            }],
        };
        let rgb = picture(5, 3, 4);
        fb.apply(&layout(64)).expect("layout");
        fb.apply(&update(1, 0, enc.tile(&rgb, 5))).expect("tile");
        // A new layout keeps the zlib stream going.
        fb.apply(&layout(32)).expect("layout");
        fb.apply(&update(2, 10, enc.tile(&rgb, 5))).expect("tile");
        assert_eq!(fb.pixel(10, 0), Some([rgb[0], rgb[1], rgb[2]]));
        assert_eq!(fb.pixel(14, 2), Some([rgb[42], rgb[43], rgb[44]]));
        let err = fb
            .apply(&update(3, 0, vec![0xff, 0xff]))
            .expect_err("garbage");
        assert!(
            matches!(
                err,
                PictureError::Tile {
                    seq: 3,
                    index: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("update 3, tile 0"), "{err}");
    }
}
