//! Rectangle arithmetic of the shared display: clipping to the display,
//! merging the damage region's rectangles into fewer (still disjoint)
//! areas, and bounding boxes.

use lifeline_runtime::wit;
use x11rb::protocol::xproto;

/// Most areas one `screen-changes` reports; past it, the bounding box of
/// the changes is reported instead (one area, never overlapping).
///
/// Threat: a program drawing many scattered pixels would otherwise make
/// the agent send (and the plugin process) an unbounded list.
pub const MAX_CHANGED_AREAS: usize = 512;

/// A rectangle of the display in pixels from its top left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// One past the last column.
    pub fn right(&self) -> u64 {
        u64::from(self.x) + u64::from(self.width)
    }

    /// One past the last row.
    pub fn bottom(&self) -> u64 {
        u64::from(self.y) + u64::from(self.height)
    }

    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Bytes of the area as BGRX pixels.
    pub fn bytes(&self) -> u64 {
        self.pixels() * 4
    }

    /// Whether `other` lies wholly inside this area.
    pub fn contains(&self, other: &Area) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }

    /// The part of this area inside `bounds`, if any.
    pub fn clip(&self, bounds: &Area) -> Option<Area> {
        let x = self.x.max(bounds.x);
        let y = self.y.max(bounds.y);
        let right = self.right().min(bounds.right());
        let bottom = self.bottom().min(bounds.bottom());
        if right <= u64::from(x) || bottom <= u64::from(y) {
            return None;
        }
        // Both fit: they are at most the bounds' own right and bottom.
        let width = u32::try_from(right - u64::from(x)).unwrap_or(u32::MAX);
        let height = u32::try_from(bottom - u64::from(y)).unwrap_or(u32::MAX);
        Some(Area::new(x, y, width, height))
    }

    /// The smallest area holding both.
    pub fn union(&self, other: &Area) -> Area {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = self.right().max(other.right());
        let bottom = self.bottom().max(other.bottom());
        Area::new(
            x,
            y,
            u32::try_from(right - u64::from(x)).unwrap_or(u32::MAX),
            u32::try_from(bottom - u64::from(y)).unwrap_or(u32::MAX),
        )
    }

    /// An X rectangle (which may start left of or above the display) as
    /// an area of the display; `None` when nothing of it is on the display.
    pub fn from_x(r: &xproto::Rectangle, bounds: &Area) -> Option<Area> {
        let (x, y) = (i64::from(r.x), i64::from(r.y));
        let right = (x + i64::from(r.width)).max(0);
        let bottom = (y + i64::from(r.height)).max(0);
        let (x, y) = (x.max(0), y.max(0));
        let to_u32 = |v: i64| u32::try_from(v).unwrap_or(0);
        Area::new(to_u32(x), to_u32(y), to_u32(right - x), to_u32(bottom - y)).clip(bounds)
    }

    pub fn from_wit(r: &wit::Rect) -> Area {
        Area::new(r.x, r.y, r.width, r.height)
    }

    pub fn to_wit(self) -> wit::Rect {
        wit::Rect {
            x: self.x,
            y: self.y,
            width: self.width,
            height: self.height,
        }
    }
}

/// The bounding box of `areas` (`None` when there are none).
pub fn bounding_box<'a>(areas: impl IntoIterator<Item = &'a Area>) -> Option<Area> {
    areas
        .into_iter()
        .fold(None, |acc: Option<Area>, a| match acc {
            None => Some(*a),
            Some(b) => Some(b.union(a)),
        })
}

/// Disjoint `areas` (a damage region's rectangles) clipped to `bounds`,
/// with neighbours of the same rows, then of the same columns, joined:
/// still disjoint, covering exactly the same pixels. More than
/// [`MAX_CHANGED_AREAS`] become their bounding box. Sorted top to bottom,
/// left to right.
pub fn merge(areas: impl IntoIterator<Item = Area>, bounds: &Area) -> Vec<Area> {
    let mut v: Vec<Area> = areas.into_iter().filter_map(|a| a.clip(bounds)).collect();
    // Side by side in one band: same rows, touching.
    v.sort_by_key(|a| (a.y, a.height, a.x));
    v = join(v, |a, b| {
        a.y == b.y && a.height == b.height && a.right() == u64::from(b.x)
    });
    // One above the other: same columns, touching.
    v.sort_by_key(|a| (a.x, a.width, a.y));
    v = join(v, |a, b| {
        a.x == b.x && a.width == b.width && a.bottom() == u64::from(b.y)
    });
    if v.len() > MAX_CHANGED_AREAS {
        return bounding_box(&v).into_iter().collect();
    }
    v.sort_by_key(|a| (a.y, a.x));
    v
}

/// Joins each area with the next while `touching` says they form one
/// rectangle (the list is sorted so such pairs are neighbours).
fn join(sorted: Vec<Area>, touching: impl Fn(&Area, &Area) -> bool) -> Vec<Area> {
    let mut out: Vec<Area> = Vec::with_capacity(sorted.len());
    for a in sorted {
        match out.last_mut() {
            Some(last) if touching(last, &a) => *last = last.union(&a),
            _ => out.push(a),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Area = Area::new(0, 0, 100, 50);

    fn pixels(areas: &[Area]) -> std::collections::HashSet<(u32, u32)> {
        let mut set = std::collections::HashSet::new();
        for a in areas {
            for y in a.y..a.y + a.height {
                for x in a.x..a.x + a.width {
                    assert!(set.insert((x, y)), "{a:?} overlaps another area");
                }
            }
        }
        set
    }

    #[test]
    fn clip_keeps_what_is_on_the_display() {
        assert_eq!(
            Area::new(90, 40, 20, 20).clip(&SCREEN),
            Some(Area::new(90, 40, 10, 10))
        );
        assert_eq!(Area::new(100, 0, 5, 5).clip(&SCREEN), None);
        assert_eq!(Area::new(10, 10, 0, 5).clip(&SCREEN), None);
        let r = xproto::Rectangle {
            x: -5,
            y: -10,
            width: 10,
            height: 20,
        };
        assert_eq!(Area::from_x(&r, &SCREEN), Some(Area::new(0, 0, 5, 10)));
        let off = xproto::Rectangle {
            x: -50,
            y: 0,
            width: 10,
            height: 10,
        };
        assert_eq!(Area::from_x(&off, &SCREEN), None);
    }

    #[test]
    fn merge_joins_bands_and_keeps_the_same_pixels() {
        // A 20x3 block as a region returns it: three one-row bands, each
        // split in two, plus a separate area and one off the display.
        let mut input = Vec::new();
        for y in 10..13 {
            input.push(Area::new(10, y, 8, 1));
            input.push(Area::new(18, y, 12, 1));
        }
        input.push(Area::new(50, 20, 5, 5));
        input.push(Area::new(98, 48, 10, 10));
        let merged = merge(input.clone(), &SCREEN);
        assert_eq!(
            merged,
            vec![
                Area::new(10, 10, 20, 3),
                Area::new(50, 20, 5, 5),
                Area::new(98, 48, 2, 2)
            ]
        );
        let clipped: Vec<Area> = input.iter().filter_map(|a| a.clip(&SCREEN)).collect();
        assert_eq!(pixels(&merged), pixels(&clipped));
    }

    #[test]
    fn too_many_areas_become_their_bounding_box() {
        let big = Area::new(0, 0, 4000, 4000);
        let scattered: Vec<Area> = (0..(MAX_CHANGED_AREAS as u32 + 1))
            .map(|i| Area::new((i % 100) * 3, (i / 100) * 3, 1, 1))
            .collect();
        let merged = merge(scattered, &big);
        assert_eq!(merged, vec![Area::new(0, 0, 298, 16)]);
        assert!(merge(Vec::new(), &big).is_empty());
    }

    #[test]
    fn bounding_box_and_contains() {
        let a = Area::new(5, 5, 10, 10);
        let b = Area::new(20, 0, 5, 30);
        let bb = bounding_box(&[a, b]).unwrap();
        assert_eq!(bb, Area::new(5, 0, 20, 30));
        assert!(bb.contains(&a) && bb.contains(&b));
        assert!(!a.contains(&b));
        assert_eq!(bounding_box(&[]), None);
    }
}
