//! The operator's picture as the plugin last sent it: each tile's pixels,
//! so that a tile that changed in part is sent as the rectangle around
//! the pixels that differ (typing in a terminal changes a few rows of a
//! tile). The wire format carries each tile's position and size, and the
//! operator side draws any rectangle inside the picture, so a part of a
//! tile is sent like an edge tile. Memory: four bytes a pixel of the
//! shared area (8 MiB at 1920×1080).

use crate::pixels::BYTES_PER_PIXEL;
use crate::tiles::Area;

/// Each tile's BGRX pixels as last sent; empty when never sent.
#[derive(Debug, Clone, Default)]
pub struct Picture {
    tiles: Vec<Vec<u8>>,
}

impl Picture {
    /// A picture of `tiles` tiles, none sent yet.
    pub fn new(tiles: usize) -> Picture {
        Picture {
            tiles: vec![Vec::new(); tiles],
        }
    }

    /// Tile `index` was sent with pixels `bgrx` (its whole tile).
    #[cfg(test)]
    pub fn store(&mut self, index: usize, bgrx: &[u8]) {
        let kept = &mut self.tiles[index];
        kept.clear();
        kept.extend_from_slice(bgrx);
    }

    /// Tile `index` was sent with the pixels in `bgrx` (its whole tile):
    /// they are kept without a copy, and `bgrx` gets the buffer of the
    /// pixels kept before (to be overwritten; its content is stale).
    pub fn keep(&mut self, index: usize, bgrx: &mut Vec<u8>) {
        std::mem::swap(&mut self.tiles[index], bgrx);
    }

    /// The rectangle, in the tile's coordinates, around the pixels of
    /// `bgrx` (tile `index`, `width` pixels a row) that differ from those
    /// last sent; `None` when the tile was not sent at that size or no
    /// pixel differs.
    pub fn changed_part(&self, index: usize, bgrx: &[u8], width: u32) -> Option<Area> {
        let old = &self.tiles[index];
        let row = width as usize * BYTES_PER_PIXEL;
        if old.len() != bgrx.len() || row == 0 {
            return None;
        }
        let mut rows: Option<(usize, usize)> = None;
        let (mut left, mut right) = (usize::MAX, 0);
        for (y, (a, b)) in old
            .chunks_exact(row)
            .zip(bgrx.chunks_exact(row))
            .enumerate()
        {
            if a == b {
                continue;
            }
            rows = Some(rows.map_or((y, y), |(top, _)| (top, y)));
            let pixels = || {
                a.chunks_exact(BYTES_PER_PIXEL)
                    .zip(b.chunks_exact(BYTES_PER_PIXEL))
            };
            if let Some(first) = pixels().position(|(p, q)| p != q) {
                left = left.min(first);
            }
            if let Some(last) = pixels().rposition(|(p, q)| p != q) {
                right = right.max(last);
            }
        }
        let (top, bottom) = rows?;
        Some(Area::new(
            left as u32,
            top as u32,
            (right + 1 - left) as u32,
            (bottom + 1 - top) as u32,
        ))
    }
}

/// Copies rectangle `part` (in the tile's coordinates) of a tile's pixels
/// `bgrx` (`width` pixels a row) into `out`, rows without gaps.
pub fn crop(bgrx: &[u8], width: u32, part: &Area, out: &mut Vec<u8>) {
    let stride = width as usize * BYTES_PER_PIXEL;
    let row = part.width as usize * BYTES_PER_PIXEL;
    let left = part.x as usize * BYTES_PER_PIXEL;
    out.clear();
    for y in part.y as usize..(part.y + part.height) as usize {
        let start = y * stride + left;
        out.extend_from_slice(&bgrx[start..start + row]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::tile_bgrx;

    fn grey(w: u32, h: u32) -> Vec<u8> {
        tile_bgrx(w, h, |x, y| [(x * 3) as u8, (y * 5) as u8, 7])
    }

    fn set(px: &mut [u8], w: u32, x: u32, y: u32) {
        let at = (y * w + x) as usize * BYTES_PER_PIXEL;
        px[at] ^= 0xff;
    }

    #[test]
    fn the_part_is_the_box_around_the_changed_pixels() {
        let mut p = Picture::new(2);
        let old = grey(64, 40);
        p.store(1, &old);
        let mut new = old.clone();
        assert_eq!(p.changed_part(1, &new, 64), None);
        let mut swapped = old.clone();
        p.keep(1, &mut swapped);
        assert_eq!(swapped, old, "the buffer kept before comes back");
        set(&mut new, 64, 10, 5);
        assert_eq!(p.changed_part(1, &new, 64), Some(Area::new(10, 5, 1, 1)));
        set(&mut new, 64, 3, 9);
        set(&mut new, 64, 63, 7);
        assert_eq!(p.changed_part(1, &new, 64), Some(Area::new(3, 5, 61, 5)));
    }

    #[test]
    fn no_part_without_pixels_of_the_same_size() {
        let mut p = Picture::new(1);
        assert_eq!(p.changed_part(0, &grey(8, 8), 8), None);
        p.store(0, &grey(8, 4));
        assert_eq!(p.changed_part(0, &grey(8, 8), 8), None);
    }

    #[test]
    fn crop_copies_the_rows_of_the_part() {
        let px = grey(16, 8);
        let mut out = Vec::new();
        crop(&px, 16, &Area::new(2, 3, 4, 2), &mut out);
        let want = tile_bgrx(4, 2, |x, y| [((x + 2) * 3) as u8, ((y + 3) * 5) as u8, 7]);
        assert_eq!(out, want);
    }
}
