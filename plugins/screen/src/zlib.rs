//! Tiles in the share's one zlib stream ([`TileData::Zlib`], tag 3): a
//! palette (up to 255 colours, indices packed at 1, 2, 4 or 8 bits) or
//! RGB8 rows, deflated by one streaming compressor that lives as long as
//! the screen stream. The dictionary carries from tile to tile and frame
//! to frame, which is what makes text and scrolled content cheap (ZRLE in
//! VNC works the same way). A sync flush ends every update's zlib bytes
//! (not every tile's: a flush ends the deflate block, and a block per tile
//! cost a Huffman table per tile, ≈ 60 % of the bytes on the desktop
//! benchmark); [`ZlibEncoder::flush`] is called by the frame's encoder
//! where an update may end.
//!
//! The content layout is specified at [`TileData::Zlib`].

use lifeline_screen_format::TileData;
use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

use crate::pixels::{self, BYTES_PER_PIXEL};

/// Most colours a palette holds (the count is one byte, 0 meaning none).
pub const MAX_PALETTE: usize = 255;
/// zlib level of palette tiles while bandwidth is plentiful: CPU time
/// limits the frame rate. Measured on the 1080p bench (native), 100 % text
/// tiles changed: level 1 8.9 ms and 165 KiB a frame, 3 11.3 ms and
/// 114 KiB, 6 27 ms and 119 KiB.
pub const LEVEL_FAST: u8 = 3;
/// zlib level of palette tiles while bandwidth is short: bytes limit, the
/// CPU has time.
pub const LEVEL_SMALL: u8 = 6;
/// zlib level of tiles without a palette (photo-like), always: 100 % photo
/// tiles took 46 ms a frame at level 1 (3895 KiB), 118 ms at 3 (3667 KiB),
/// 150 ms at 6 (3599 KiB).
pub const LEVEL_RGB: u8 = 1;

/// Input bytes after which a tile ends with a sync flush of its own, so
/// the bytes waiting in the compressor (and an update's part that cannot
/// be cut) stay small.
pub const FLUSH_INPUT_BYTES: usize = 64 << 10;

/// Slots of the colour table: a power of two, well above 255 colours.
const SLOTS: usize = 1024;
const EMPTY: u32 = 0;

/// The share's compressor and scratch buffers.
pub struct ZlibEncoder {
    comp: Box<CompressorOxide>,
    level: u8,
    /// Colour (BGRX as u32 with the X byte set to 0xff, so never 0) per
    /// slot, and its palette index.
    keys: Box<[u32; SLOTS]>,
    index: Box<[u8; SLOTS]>,
    /// The palette, as BGRX words: in order of first appearance while
    /// found, then of value ([`ZlibEncoder::sort_palette`]).
    palette: Vec<u32>,
    /// Each pixel's palette index.
    indices: Vec<u8>,
    content: Vec<u8>,
    /// Input bytes given to the compressor since its last sync flush.
    unflushed: usize,
    /// Input bytes since the last sync flush at the end of a tile (a
    /// flush for a change of level, before a tile, does not count).
    since_cut: usize,
}

impl std::fmt::Debug for ZlibEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZlibEncoder")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Default for ZlibEncoder {
    fn default() -> Self {
        ZlibEncoder {
            comp: Box::new(CompressorOxide::new(flags(LEVEL_FAST))),
            level: LEVEL_FAST,
            keys: Box::new([EMPTY; SLOTS]),
            index: Box::new([0; SLOTS]),
            palette: Vec::with_capacity(MAX_PALETTE),
            indices: Vec::new(),
            content: Vec::new(),
            unflushed: 0,
            since_cut: 0,
        }
    }
}

/// zlib-wrapped (window bits 15), default strategy.
fn flags(level: u8) -> u32 {
    create_comp_flags_from_zip_params(i32::from(level), 15, 0)
}

impl ZlibEncoder {
    /// A tile of BGRX pixels (size checked by the caller) as the next
    /// bytes of the stream, a palette tile at zlib `level` (an RGB one at
    /// [`LEVEL_RGB`]). Every tile this returns must be sent, in order, and
    /// an update may end after it only once [`ZlibEncoder::pending`] is
    /// false (else [`ZlibEncoder::flush`] first).
    #[cfg(test)]
    pub fn encode(&mut self, bgrx: &[u8], width: u32, height: u32, level: u8) -> TileData {
        match self.palette(bgrx, width, height, level) {
            Some(data) => data,
            None => self.rgb(bgrx),
        }
    }

    /// The tile as a palette tile at zlib `level`, the next bytes of the
    /// stream (as [`ZlibEncoder::encode`]); `None`, and nothing added to
    /// the stream, when it has more than [`MAX_PALETTE`] colours.
    pub fn palette(&mut self, bgrx: &[u8], width: u32, height: u32, level: u8) -> Option<TileData> {
        if !self.find_palette(bgrx) {
            return None;
        }
        self.content.clear();
        self.pack(width as usize, height as usize);
        Some(self.deflate_tile(level))
    }

    /// The tile as RGB rows at [`LEVEL_RGB`], the next bytes of the stream
    /// (as [`ZlibEncoder::encode`]).
    pub fn rgb(&mut self, bgrx: &[u8]) -> TileData {
        self.content.clear();
        self.content.push(0);
        pixels::bgrx_to_rgb(bgrx, &mut self.content);
        self.deflate_tile(LEVEL_RGB)
    }

    /// Deflates `content`, one tile's, at `level`.
    fn deflate_tile(&mut self, level: u8) -> TileData {
        let mut out = Vec::new();
        if level != self.level {
            // miniz_oxide changes level only cleanly after a flush: level 1
            // is a different matcher, which holds back up to 4 KiB of input
            // where the others hold 258 bytes. The stream stays one stream.
            if self.pending() {
                let content = std::mem::take(&mut self.content);
                out = self.deflate(TDEFLFlush::Sync);
                self.content = content;
            }
            self.comp.set_compression_level_raw(level);
            self.level = level;
        }
        self.unflushed += self.content.len();
        self.since_cut += self.content.len();
        let flush = if self.since_cut >= FLUSH_INPUT_BYTES {
            self.since_cut = 0;
            TDEFLFlush::Sync
        } else {
            TDEFLFlush::None
        };
        let bytes = self.deflate(flush);
        if out.is_empty() {
            out = bytes;
        } else {
            out.extend_from_slice(&bytes);
        }
        TileData::Zlib(out)
    }

    /// Whether input went in since the last sync flush: the receiver
    /// cannot yet inflate all of it.
    pub fn pending(&self) -> bool {
        self.unflushed > 0
    }

    /// Input bytes since the last sync flush: a bound on the bytes the
    /// next flush brings out (deflate adds a few bytes per 16 KiB at worst).
    pub fn unflushed(&self) -> usize {
        self.unflushed
    }

    /// A sync flush: the bytes to append to the last zlib tile sent (empty
    /// when nothing is pending).
    pub fn flush(&mut self) -> Vec<u8> {
        self.since_cut = 0;
        if !self.pending() {
            return Vec::new();
        }
        self.content.clear();
        self.deflate(TDEFLFlush::Sync)
    }

    /// Fills `palette` and `indices`; false when the tile has more than
    /// [`MAX_PALETTE`] colours (counting stops there).
    fn find_palette(&mut self, bgrx: &[u8]) -> bool {
        self.keys.fill(EMPTY);
        self.palette.clear();
        self.indices.clear();
        self.indices.reserve(bgrx.len() / BYTES_PER_PIXEL);
        let mut last = EMPTY;
        let mut last_index = 0u8;
        for px in bgrx.chunks_exact(BYTES_PER_PIXEL) {
            let key = u32::from_le_bytes([px[0], px[1], px[2], 0xff]);
            if key != last {
                let mut slot = (key.wrapping_mul(0x9e37_79b1) >> 22) as usize;
                loop {
                    let k = self.keys[slot];
                    if k == key {
                        last_index = self.index[slot];
                        break;
                    }
                    if k == EMPTY {
                        if self.palette.len() == MAX_PALETTE {
                            return false;
                        }
                        last_index = self.palette.len() as u8;
                        self.keys[slot] = key;
                        self.index[slot] = last_index;
                        self.palette.push(key);
                        break;
                    }
                    slot = (slot + 1) & (SLOTS - 1);
                }
                last = key;
            }
            self.indices.push(last_index);
        }
        true
    }

    /// Puts the palette in the order of its colours' values and numbers
    /// the indices anew: tiles of the same colours then have the same
    /// palette and the same indices for the same pixels, whichever pixel
    /// comes first, so that text scrolled into another tile is found again
    /// in the zlib window.
    fn sort_palette(&mut self) {
        let n = self.palette.len();
        if n < 2 {
            return;
        }
        let mut order = [0u8; MAX_PALETTE];
        for (k, o) in order[..n].iter_mut().enumerate() {
            *o = k as u8;
        }
        let palette = &self.palette;
        order[..n].sort_unstable_by_key(|&i| palette[usize::from(i)]);
        let mut renumber = [0u8; MAX_PALETTE];
        let mut sorted = [0u32; MAX_PALETTE];
        for (new, &old) in order[..n].iter().enumerate() {
            renumber[usize::from(old)] = new as u8;
            sorted[new] = self.palette[usize::from(old)];
        }
        self.palette.copy_from_slice(&sorted[..n]);
        for i in &mut self.indices {
            *i = renumber[usize::from(*i)];
        }
    }

    /// The palette and the packed indices into `content`.
    fn pack(&mut self, width: usize, height: usize) {
        self.sort_palette();
        let n = self.palette.len();
        self.content.push(n as u8);
        for c in &self.palette {
            let [b, g, r, _] = c.to_le_bytes();
            self.content.extend_from_slice(&[r, g, b]);
        }
        let bits = bits_per_index(n);
        if bits == 8 {
            self.content.extend_from_slice(&self.indices);
            return;
        }
        let per_byte = 8 / bits;
        let row_bytes = (width * bits).div_ceil(8);
        self.content.reserve(row_bytes * height);
        for row in self.indices.chunks_exact(width) {
            for group in row.chunks(per_byte) {
                let mut byte = 0u8;
                for (k, &i) in group.iter().enumerate() {
                    byte |= i << (8 - bits * (k + 1));
                }
                self.content.push(byte);
            }
        }
    }

    /// Deflates `content` (and flushes with `flush`): the bytes out.
    ///
    /// The compressor hands every block it ends to a callback, whole.
    /// (With an output buffer instead, `deflate` of `miniz_oxide::deflate::
    /// stream` stops once a block that ends inside a sync flush, while the
    /// compressor works through the input it held back, does not fit; the
    /// next call only drains that block and returns, so the flush itself,
    /// and the rest of the held-back input, never came: an update's bytes
    /// ended before its last tiles' content.)
    fn deflate(&mut self, flush: TDEFLFlush) -> Vec<u8> {
        let mut out = Vec::new();
        let (status, consumed) = compress_to_output(&mut self.comp, &self.content, flush, |b| {
            out.extend_from_slice(b);
            true
        });
        // A callback that takes every byte leaves the compressor nothing
        // to wait for: it takes all input, and only a bad state fails.
        assert!(
            status == TDEFLStatus::Okay && consumed == self.content.len(),
            "the zlib stream's compressor failed ({status:?}, {consumed} of {} bytes taken)",
            self.content.len()
        );
        if flush == TDEFLFlush::Sync {
            self.unflushed = 0;
        }
        out
    }
}

/// Bits of one palette index for `colours` colours.
pub fn bits_per_index(colours: usize) -> usize {
    match colours {
        0..=2 => 1,
        3..=4 => 2,
        5..=16 => 4,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{tile_bgrx, to_rgb, Inflater};

    /// A tile of `colours` colours (an `n`-step pattern).
    fn tile(w: u32, h: u32, colours: u32) -> Vec<u8> {
        tile_bgrx(w, h, |x, y| {
            let i = (y * w + x) % colours;
            [(i * 37) as u8, (i * 91 + 5) as u8, (i / 3) as u8]
        })
    }

    #[test]
    fn tiles_inflate_in_order_to_their_pixels() {
        let mut enc = ZlibEncoder::default();
        let mut inf = Inflater::default();
        let cases = [
            (64, 64, 1),
            (64, 64, 2),
            (17, 5, 3),
            (33, 9, 4),
            (7, 64, 16),
            (64, 3, 17),
            (64, 64, 255),
            (64, 64, 256),
            (64, 64, 301),
            (64, 5, 256),
            (1, 1, 1),
            (64, 64, 4096),
        ];
        for round in 0..2 {
            for &(w, h, colours) in &cases {
                let t = tile(w, h, colours);
                let level = if round == 0 { LEVEL_FAST } else { LEVEL_SMALL };
                let TileData::Zlib(mut z) = enc.encode(&t, w, h, level) else {
                    panic!("not zlib");
                };
                z.extend(enc.flush());
                assert!(!enc.pending());
                assert!(z.ends_with(&[0, 0, 0xff, 0xff]), "sync flush");
                let (palette, rgb) = inf.tile(&z, w, h);
                assert_eq!(rgb, to_rgb(&t), "{w}×{h} with {colours} colours");
                let rgb = to_rgb(&t);
                let distinct: std::collections::HashSet<&[u8]> = rgb.chunks(3).collect();
                let want = if distinct.len() > MAX_PALETTE {
                    0
                } else {
                    distinct.len()
                };
                assert_eq!(palette, want, "{w}×{h} with {colours} colours");
            }
        }
    }

    #[test]
    fn tiles_without_a_flush_between_inflate_once_flushed() {
        let mut enc = ZlibEncoder::default();
        let mut inf = Inflater::default();
        let tiles: Vec<(u32, u32, Vec<u8>)> = [(64, 64, 2), (5, 3, 300), (64, 64, 4)]
            .into_iter()
            .map(|(w, h, c)| (w, h, tile(w, h, c)))
            .collect();
        let mut bytes: Vec<Vec<u8>> = tiles
            .iter()
            .map(|(w, h, t)| match enc.encode(t, *w, *h, LEVEL_FAST) {
                TileData::Zlib(z) => z,
                _ => unreachable!(),
            })
            .collect();
        assert!(enc.pending());
        bytes[2].extend(enc.flush());
        assert!(!enc.pending() && enc.flush().is_empty());
        let sizes: Vec<(u32, u32)> = tiles.iter().map(|(w, h, _)| (*w, *h)).collect();
        let got = inf.update(&bytes, &sizes);
        for ((_, _, t), rgb) in tiles.iter().zip(got) {
            assert_eq!(rgb, to_rgb(t));
        }
    }

    #[test]
    fn a_long_run_flushes_itself() {
        let mut enc = ZlibEncoder::default();
        let t = tile(64, 64, 4096);
        let mut flushed = 0;
        for _ in 0..12 {
            if let TileData::Zlib(z) = enc.encode(&t, 64, 64, LEVEL_FAST) {
                flushed += usize::from(z.ends_with(&[0, 0, 0xff, 0xff]) && !enc.pending());
            }
        }
        // 12 RGB tiles of 12 KiB: a flush after the sixth (64 KiB).
        assert_eq!(flushed, 2);
    }

    #[test]
    fn alternating_levels_still_flush_at_the_bound() {
        let mut enc = ZlibEncoder::default();
        let photo = tile(64, 64, 4096);
        let text = tile(64, 64, 2);
        let mut cuts = 0;
        for i in 0..40 {
            let t = if i % 2 == 0 { &photo } else { &text };
            enc.encode(t, 64, 64, LEVEL_FAST);
            cuts += usize::from(!enc.pending());
        }
        // 20 RGB tiles of 12 KiB and 20 palette tiles of 0.5 KiB.
        assert!(cuts >= 3, "{cuts} cuts");
    }

    #[test]
    fn repeated_content_costs_little() {
        let mut enc = ZlibEncoder::default();
        let t = tile(64, 64, 4096);
        let first = match enc.encode(&t, 64, 64, LEVEL_FAST) {
            TileData::Zlib(z) => z.len() + enc.flush().len(),
            _ => unreachable!(),
        };
        let again = match enc.encode(&t, 64, 64, LEVEL_FAST) {
            TileData::Zlib(z) => z.len() + enc.flush().len(),
            _ => unreachable!(),
        };
        assert!(again * 4 < first, "{again} vs {first}");
    }

    #[test]
    fn tiles_of_the_same_colours_get_the_same_palette() {
        let ink = |at: u32| {
            tile_bgrx(
                8,
                2,
                move |x, _| {
                    if x == at {
                        [0, 0, 0]
                    } else {
                        [250, 250, 240]
                    }
                },
            )
        };
        let content = |t: &[u8]| {
            let mut e = ZlibEncoder::default();
            assert!(e.find_palette(t));
            e.pack(8, 2);
            e.content.clone()
        };
        // Ink first in one, paper first in the other: the same palette
        // (2 colours, darker first), so paper is index 1 in both.
        let (a, b) = (content(&ink(0)), content(&ink(7)));
        assert_eq!(a[..7], [2, 0, 0, 0, 250, 250, 240]);
        assert_eq!(a[..7], b[..7]);
        assert_eq!((a[7], b[7]), (0b0111_1111, 0b1111_1110));
    }

    #[test]
    fn bits_per_index_follow_the_palette() {
        assert_eq!(
            [1, 2, 3, 4, 5, 16, 17, 255].map(bits_per_index),
            [1, 1, 2, 2, 4, 4, 8, 8]
        );
    }
}

#[cfg(test)]
mod mix_tests {
    use super::*;
    use crate::testutil::{tile_bgrx, to_rgb, Inflater};

    #[test]
    fn mixed_palette_and_rgb_tiles_with_flushes_between() {
        let mut enc = ZlibEncoder::default();
        let mut inf = Inflater::default();
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            seed >> 8
        };
        for _update in 0..40 {
            let n = 1 + next() as usize % 30;
            let mut tiles = Vec::new();
            let mut bytes = Vec::new();
            for _ in 0..n {
                let (w, h) = (1 + next() % 64, 1 + next() % 64);
                let k = next();
                let t = if k % 2 == 0 {
                    tile_bgrx(w, h, |x, y| {
                        let v = (x * 31 + y * 17 + k).wrapping_mul(2_654_435_761);
                        [(v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8]
                    })
                } else {
                    tile_bgrx(w, h, |x, y| {
                        if (x + y + k) % 3 == 0 {
                            [0; 3]
                        } else {
                            [200, 200, 190]
                        }
                    })
                };
                let level = if next() % 4 == 0 {
                    LEVEL_SMALL
                } else {
                    LEVEL_FAST
                };
                match enc.encode(&t, w, h, level) {
                    TileData::Zlib(z) => bytes.push(z),
                    _ => unreachable!(),
                }
                tiles.push((w, h, t));
            }
            bytes.last_mut().unwrap().extend(enc.flush());
            let sizes: Vec<(u32, u32)> = tiles.iter().map(|(w, h, _)| (*w, *h)).collect();
            for ((_, _, t), got) in tiles.iter().zip(inf.update(&bytes, &sizes)) {
                assert_eq!(got, to_rgb(t));
            }
        }
    }

    /// A `w`×`h` tile of one of four kinds, picked by `kind`: noise of 255
    /// colours (a palette, 8-bit indices that do not compress), noise of
    /// all colours (RGB, level 1), two-colour text, a 16-colour pattern.
    fn desktop_tile(w: u32, h: u32, kind: u32, mut seed: u32) -> Vec<u8> {
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let px: Vec<[u8; 3]> = (0..w * h)
            .map(|i| match kind % 4 {
                0 => {
                    let c = noise() % 255;
                    [c as u8, (c * 7) as u8, 3]
                }
                1 => {
                    let v = noise();
                    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
                }
                2 if (i * 7 + i / w * 3 + kind).is_multiple_of(5) => [0, 0, 0],
                2 => [250, 250, 240],
                _ => [(i % 16 * 15) as u8, 40, (i / w % 3) as u8],
            })
            .collect();
        tile_bgrx(w, h, |x, y| px[(y * w + x) as usize])
    }

    /// Many updates of many tiles, the level changing with the kind of
    /// tile, one flush per update: deflate blocks end inside the
    /// compressor (64 KiB of codes, or 31 KiB of poor matches) also while
    /// a flush works through the input it held back, and every update must
    /// still inflate to exactly its tiles.
    #[test]
    fn every_update_inflates_to_its_tiles_whatever_blocks_end_inside_it() {
        let mut enc = ZlibEncoder::default();
        let mut inf = Inflater::default();
        let mut seed = 0x2545_f491u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            seed >> 8
        };
        for update in 0..120 {
            let n = 1 + next() as usize % 40;
            // One level a frame (its policy). Half the updates a photo
            // moving (RGB tiles only), the others kinds in runs.
            let level = [LEVEL_FAST, LEVEL_SMALL][next() as usize % 2];
            let photo = next().is_multiple_of(2);
            let mut kind = if photo { 1 } else { next() };
            let mut tiles = Vec::new();
            let mut bytes = Vec::new();
            for _ in 0..n {
                if !photo && next().is_multiple_of(8) {
                    kind = next();
                }
                // Mostly full tiles; edge tiles are smaller.
                let (w, h) = match next() % 4 {
                    0 => (1 + next() % 64, 1 + next() % 64),
                    _ => (64, 64),
                };
                let t = desktop_tile(w, h, kind, next() | 1);
                match enc.encode(&t, w, h, level) {
                    TileData::Zlib(z) => bytes.push(z),
                    _ => unreachable!(),
                }
                tiles.push((w, h, t));
            }
            bytes.last_mut().expect("a tile").extend(enc.flush());
            assert!(!enc.pending());
            let sizes: Vec<(u32, u32)> = tiles.iter().map(|(w, h, _)| (*w, *h)).collect();
            for ((_, _, t), got) in tiles.iter().zip(inf.update(&bytes, &sizes)) {
                assert_eq!(got, to_rgb(t), "update {update}");
            }
        }
    }

    /// The case above that broke the desktop benchmark, alone: RGB noise
    /// (literals only, level 1) of 58 757 bytes since the last flush. The
    /// compressor has taken in all but the last 1413 bytes (it works in
    /// steps of 4 KiB), and its 64 KiB of codes run out inside those, so
    /// the flush must first end a block and then still flush the rest.
    #[test]
    fn a_flush_that_ends_a_block_still_flushes_all_input() {
        let mut enc = ZlibEncoder::default();
        let mut inf = Inflater::default();
        let sizes = [(64, 64), (64, 64), (64, 64), (64, 64), (64, 50)];
        let tiles: Vec<Vec<u8>> = sizes
            .iter()
            .zip(1u32..)
            .map(|(&(w, h), seed)| desktop_tile(w, h, 1, seed))
            .collect();
        let mut bytes: Vec<Vec<u8>> = tiles
            .iter()
            .zip(&sizes)
            .map(|(t, &(w, h))| match enc.encode(t, w, h, LEVEL_FAST) {
                TileData::Zlib(z) => z,
                _ => unreachable!(),
            })
            .collect();
        bytes[4].extend(enc.flush());
        assert!(bytes[4].ends_with(&[0, 0, 0xff, 0xff]), "a sync flush");
        for (t, got) in tiles.iter().zip(inf.update(&bytes, &sizes)) {
            assert_eq!(&got, &to_rgb(t));
        }
    }
}
