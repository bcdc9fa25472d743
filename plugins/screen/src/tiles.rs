//! The shared area's grid of tiles and what the plugin remembers of each:
//! which tiles a damaged rectangle touches, where a tile lies, which tiles
//! must be looked at in a frame and in what order, and how they are read
//! in runs (neighbouring tiles of a row read as one rectangle).

use lifeline_screen_format::TILE;

/// A rectangle in pixels: in display coordinates or in the shared area's,
/// as each use says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Area {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Area {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Area {
        Area {
            x,
            y,
            width,
            height,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Pixels covered.
    pub fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    fn right(&self) -> u64 {
        u64::from(self.x) + u64::from(self.width)
    }

    fn bottom(&self) -> u64 {
        u64::from(self.y) + u64::from(self.height)
    }

    /// The part both cover, if any.
    pub fn intersect(&self, other: &Area) -> Option<Area> {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        if right <= u64::from(x) || bottom <= u64::from(y) {
            return None;
        }
        Some(Area::new(
            x,
            y,
            (right - u64::from(x)) as u32,
            (bottom - u64::from(y)) as u32,
        ))
    }

    /// A point given in this area's coordinates, clamped inside the area,
    /// in the coordinates this area is given in (the display's).
    pub fn point_inside(&self, x: u32, y: u32) -> (u32, u32) {
        let x = x.min(self.width.saturating_sub(1));
        let y = y.min(self.height.saturating_sub(1));
        (self.x.saturating_add(x), self.y.saturating_add(y))
    }
}

/// The shared area cut into `TILE`×`TILE` tiles from its top left corner;
/// tiles at the right and bottom edges are smaller. Tiles are numbered
/// row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    /// The shared area, in display coordinates.
    area: Area,
    cols: u32,
    rows: u32,
}

impl Grid {
    pub fn new(area: Area) -> Grid {
        Grid {
            area,
            cols: area.width.div_ceil(TILE),
            rows: area.height.div_ceil(TILE),
        }
    }

    /// The shared area, in display coordinates.
    pub fn area(&self) -> Area {
        self.area
    }

    /// Number of tiles.
    pub fn len(&self) -> usize {
        self.cols as usize * self.rows as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tiles in a row.
    pub fn cols(&self) -> usize {
        self.cols as usize
    }

    /// Tile `index` in the shared area's coordinates.
    pub fn tile(&self, index: usize) -> Area {
        let col = (index % self.cols as usize) as u32;
        let row = (index / self.cols as usize) as u32;
        let (x, y) = (col * TILE, row * TILE);
        Area::new(
            x,
            y,
            TILE.min(self.area.width - x),
            TILE.min(self.area.height - y),
        )
    }

    /// Marks in `marks` (one entry per tile) every tile that `damage`, in
    /// display coordinates, touches. Damage outside the area is ignored.
    pub fn mark(&self, damage: &Area, marks: &mut [bool]) {
        let Some(hit) = damage.intersect(&self.area) else {
            return;
        };
        let (x, y) = (hit.x - self.area.x, hit.y - self.area.y);
        let (c0, c1) = (x / TILE, (x + hit.width - 1) / TILE);
        let (r0, r1) = (y / TILE, (y + hit.height - 1) / TILE);
        for row in r0..=r1 {
            let start = (row * self.cols) as usize;
            marks[start + c0 as usize..=start + c1 as usize].fill(true);
        }
    }
}

/// A tile to look at in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub index: usize,
    /// Send it even when its pixels did not change: the operator holds a
    /// lossy (JPEG) picture of it, and it is now sent lossless.
    pub refine: bool,
}

/// What the plugin remembers of each tile.
#[derive(Debug, Clone)]
pub struct TileMemory {
    /// Hash of the pixels last sent; `None` when the operator's picture of
    /// the tile is unknown (after a layout, a refresh): it is sent whatever
    /// it shows.
    hashes: Vec<Option<u64>>,
    /// Damaged but not looked at yet (the frame's byte budget ran out):
    /// looked at first in the next frame.
    pending: Vec<bool>,
    /// Last sent as JPEG.
    lossy: Vec<bool>,
    /// Scratch: tiles damaged in this frame.
    marks: Vec<bool>,
}

impl TileMemory {
    /// Memory of `tiles` tiles, all unknown.
    pub fn new(tiles: usize) -> TileMemory {
        TileMemory {
            hashes: vec![None; tiles],
            pending: vec![false; tiles],
            lossy: vec![false; tiles],
            marks: vec![false; tiles],
        }
    }

    /// Forget every tile: the next frame sends all of them.
    pub fn forget_all(&mut self) {
        self.hashes.fill(None);
        self.lossy.fill(false);
    }

    /// Forget the tiles held lossy: the next frame sends them as they are.
    pub fn forget_lossy(&mut self) {
        for (hash, lossy) in self.hashes.iter_mut().zip(&mut self.lossy) {
            if *lossy {
                *hash = None;
                *lossy = false;
            }
        }
    }

    /// True when tile `index` with pixels hashing to `hash` must be sent.
    pub fn changed(&self, index: usize, hash: u64) -> bool {
        self.hashes[index] != Some(hash)
    }

    /// Whether the operator holds tile `index` as last sent, lossless:
    /// a change may then be sent as the part that differs.
    pub fn holds_lossless(&self, index: usize) -> bool {
        self.hashes[index].is_some() && !self.lossy[index]
    }

    /// Tile `index` was looked at (and sent when it changed).
    pub fn remember(&mut self, index: usize, hash: u64, lossy: bool) {
        self.hashes[index] = Some(hash);
        self.lossy[index] = lossy;
        self.pending[index] = false;
    }

    /// Tile `index` was looked at and not sent (unchanged).
    pub fn seen(&mut self, index: usize) {
        self.pending[index] = false;
    }

    /// Tile `index` must still be looked at: the frame's budget ran out.
    pub fn defer(&mut self, index: usize) {
        self.pending[index] = true;
    }

    /// Tiles now held lossy by the operator.
    pub fn lossy_count(&self) -> usize {
        self.lossy.iter().filter(|l| **l).count()
    }

    /// The tiles to look at this frame, in order: those left over from
    /// earlier frames and unknown ones first (so that no part of the screen
    /// starves while the link is slow), then the ones `damage` (display
    /// coordinates) touches, then up to `refine_max` tiles held lossy, to
    /// be sent lossless.
    pub fn plan(&mut self, grid: &Grid, damage: &[Area], refine_max: usize) -> Vec<Planned> {
        self.marks.fill(false);
        for d in damage {
            grid.mark(d, &mut self.marks);
        }
        let overdue = |i: usize| self.pending[i] || self.hashes[i].is_none();
        let mut plan: Vec<Planned> = (0..grid.len())
            .filter(|&i| overdue(i))
            .map(|index| Planned {
                index,
                refine: false,
            })
            .collect();
        plan.extend(
            (0..grid.len())
                .filter(|&i| self.marks[i] && !overdue(i))
                .map(|index| Planned {
                    index,
                    refine: false,
                }),
        );
        plan.extend(
            (0..grid.len())
                .filter(|&i| self.lossy[i] && !self.marks[i] && !overdue(i))
                .take(refine_max)
                .map(|index| Planned {
                    index,
                    refine: true,
                }),
        );
        plan
    }
}

/// Neighbouring tiles of one row read as one rectangle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Positions in the plan of its tiles, left to right.
    pub first: usize,
    pub count: usize,
    /// What to read, in display coordinates.
    pub rect: Area,
}

impl Run {
    /// Bytes `screen-read` returns for it.
    pub fn bytes(&self) -> usize {
        self.rect.pixels() * crate::pixels::BYTES_PER_PIXEL
    }
}

/// Cuts `plan` into runs of consecutive entries that are neighbours in
/// one row, each at most `max_bytes` to read (at least one tile).
pub fn runs(grid: &Grid, plan: &[Planned], max_bytes: usize) -> Vec<Run> {
    let origin = grid.area();
    let mut out: Vec<Run> = Vec::new();
    for (pos, p) in plan.iter().enumerate() {
        let t = grid.tile(p.index);
        if let Some(last) = out.last_mut() {
            let prev = plan[pos - 1].index;
            let same_row = prev / grid.cols() == p.index / grid.cols();
            let grown = Area::new(0, 0, last.rect.width + t.width, t.height).pixels()
                * crate::pixels::BYTES_PER_PIXEL;
            if prev + 1 == p.index && same_row && grown <= max_bytes {
                last.count += 1;
                last.rect.width += t.width;
                continue;
            }
        }
        out.push(Run {
            first: pos,
            count: 1,
            rect: Area::new(origin.x + t.x, origin.y + t.y, t.width, t.height),
        });
    }
    out
}

/// Copies tile `k` (0 = leftmost) of a run's pixels `run_px` (as
/// `screen-read` returned them, `run_width` pixels a row) into `out`, so
/// that its rows follow each other without gaps.
pub fn tile_of_run(run_px: &[u8], run_width: u32, tile: &Area, k: usize, out: &mut Vec<u8>) {
    let bpp = crate::pixels::BYTES_PER_PIXEL;
    let (stride, row) = (run_width as usize * bpp, tile.width as usize * bpp);
    let left = k * TILE as usize * bpp;
    out.clear();
    for y in 0..tile.height as usize {
        let start = y * stride + left;
        out.extend_from_slice(&run_px[start..start + row]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_1080p() -> Grid {
        Grid::new(Area::new(0, 0, 1920, 1080))
    }

    #[test]
    fn grid_counts_edge_tiles() {
        let g = grid_1080p();
        assert_eq!(g.cols(), 30);
        assert_eq!(g.len(), 30 * 17);
        assert_eq!(g.tile(0), Area::new(0, 0, 64, 64));
        assert_eq!(g.tile(29), Area::new(1856, 0, 64, 64));
        assert_eq!(g.tile(30 * 16), Area::new(0, 1024, 64, 56));
        let odd = Grid::new(Area::new(0, 0, 100, 10));
        assert_eq!(odd.tile(1), Area::new(64, 0, 36, 10));
    }

    fn marked(g: &Grid, damage: Area) -> Vec<usize> {
        let mut marks = vec![false; g.len()];
        g.mark(&damage, &mut marks);
        (0..g.len()).filter(|&i| marks[i]).collect()
    }

    #[test]
    fn damage_marks_the_tiles_it_touches() {
        let g = grid_1080p();
        assert_eq!(marked(&g, Area::new(0, 0, 1, 1)), vec![0]);
        assert_eq!(marked(&g, Area::new(63, 63, 2, 2)), vec![0, 1, 30, 31]);
        assert_eq!(marked(&g, Area::new(64, 0, 64, 64)), vec![1]);
        assert_eq!(
            marked(&g, Area::new(1900, 1070, 500, 500)),
            vec![30 * 17 - 1]
        );
        assert!(marked(&g, Area::new(1920, 0, 10, 10)).is_empty());
        assert!(marked(&g, Area::new(5, 5, 0, 10)).is_empty());
    }

    #[test]
    fn damage_is_aligned_to_the_shared_areas_origin() {
        // A second monitor to the right of the first: its tile grid
        // starts at x = 1920.
        let g = Grid::new(Area::new(1920, 0, 1280, 1024));
        assert_eq!(marked(&g, Area::new(1920, 0, 64, 64)), vec![0]);
        assert_eq!(marked(&g, Area::new(1900, 0, 30, 1)), vec![0]);
        assert!(marked(&g, Area::new(0, 0, 1920, 1080)).is_empty());
        assert_eq!(marked(&g, Area::new(1984, 64, 1, 1)), vec![20 + 1]);
    }

    #[test]
    fn plan_puts_overdue_tiles_first_and_refines_last() {
        let g = Grid::new(Area::new(0, 0, 256, 64));
        let mut m = TileMemory::new(g.len());
        let all: Vec<usize> = m.plan(&g, &[], 0).iter().map(|p| p.index).collect();
        assert_eq!(all, vec![0, 1, 2, 3], "unknown tiles are always sent");
        for i in 0..4 {
            m.remember(i, 7, i == 0);
        }
        assert!(m.plan(&g, &[], 0).is_empty());
        m.defer(3);
        let plan = m.plan(&g, &[Area::new(64, 0, 10, 10)], 8);
        let want = vec![
            Planned {
                index: 3,
                refine: false,
            },
            Planned {
                index: 1,
                refine: false,
            },
            Planned {
                index: 0,
                refine: true,
            },
        ];
        assert_eq!(plan, want);
        m.forget_all();
        assert_eq!(m.plan(&g, &[], 8).len(), 4);
        assert_eq!(m.lossy_count(), 0);
    }

    #[test]
    fn runs_join_neighbours_of_a_row_within_the_read_limit() {
        let g = Grid::new(Area::new(100, 50, 256, 128));
        let plan: Vec<Planned> = [0, 1, 2, 4, 5, 7]
            .into_iter()
            .map(|index| Planned {
                index,
                refine: false,
            })
            .collect();
        let r = runs(&g, &plan, usize::MAX);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(r[0].rect, Area::new(100, 50, 192, 64));
        assert_eq!((r[1].first, r[1].count), (3, 2));
        assert_eq!(r[1].rect, Area::new(100, 114, 128, 64));
        let tile_bytes = 64 * 64 * 4;
        let small = runs(&g, &plan, 2 * tile_bytes);
        assert_eq!(
            small.iter().map(|r| r.count).collect::<Vec<_>>(),
            vec![2, 1, 2, 1]
        );
    }

    #[test]
    fn a_tile_is_cut_out_of_its_run() {
        let run_width = 64 + 10;
        let px: Vec<u8> = (0..run_width * 3 * 4).map(|i| i as u8).collect();
        let mut out = Vec::new();
        tile_of_run(&px, run_width, &Area::new(64, 0, 10, 3), 1, &mut out);
        assert_eq!(out.len(), 10 * 3 * 4);
        assert_eq!(&out[..4], &px[64 * 4..64 * 4 + 4]);
        let row2 = 2 * run_width as usize * 4 + 64 * 4;
        assert_eq!(&out[2 * 40..2 * 40 + 40], &px[row2..row2 + 40]);
    }

    #[test]
    fn points_are_clamped_inside_the_area() {
        let a = Area::new(1920, 0, 1280, 1024);
        assert_eq!(a.point_inside(0, 0), (1920, 0));
        assert_eq!(a.point_inside(5000, 5000), (1920 + 1279, 1023));
    }
}
