//! Looking at a tile's pixels as `screen-read` returns them (4 bytes per
//! pixel: blue, green, red, unused; rows one after another): its hash, a
//! single colour, how many colours, and the RGB bytes PNG wants.

/// Bytes per pixel of what `screen-read` returns.
pub const BYTES_PER_PIXEL: usize = 4;

/// The bits of a little-endian pixel word that carry colour (the fourth
/// byte is unused and may hold anything).
const COLOUR_BITS: u32 = 0x00ff_ffff;

/// A tile with more distinct colours than this in its sample is
/// "photo-like": PNG compresses it badly and JPEG looks right.
pub const PHOTO_MIN_COLOURS: usize = 256;

/// Every `SAMPLE_STEP`-th pixel of every `SAMPLE_STEP`-th row is counted
/// (a quarter of a tile's pixels: 1024 of a full tile).
const SAMPLE_STEP: usize = 2;

/// Slots of the table that counts colours: a power of two, at least
/// twice [`PHOTO_MIN_COLOURS`] so that probing stays short.
const COLOUR_SLOTS: usize = 1024;
/// Shift that turns a multiplicative hash into a slot number.
const SLOT_SHIFT: u32 = 32 - COLOUR_SLOTS.trailing_zeros();

/// Hash of a tile's pixels (XXH3, 64 bits): equal pixels, equal hash.
pub fn hash(bgrx: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bgrx)
}

fn word(px: &[u8]) -> u32 {
    u32::from_le_bytes([px[0], px[1], px[2], px[3]]) & COLOUR_BITS
}

/// The tile's colour (R, G, B) when every pixel has it.
pub fn solid_colour(bgrx: &[u8]) -> Option<[u8; 3]> {
    let mut px = bgrx.chunks_exact(BYTES_PER_PIXEL);
    let first = px.next()?;
    let want = word(first);
    // Compared as whole words: the loop vectorises.
    if px.all(|p| word(p) == want) {
        Some([first[2], first[1], first[0]])
    } else {
        None
    }
}

/// Appends the pixels as RGB, 3 bytes each, to `out`.
pub fn bgrx_to_rgb(bgrx: &[u8], out: &mut Vec<u8>) {
    let n = bgrx.len() / BYTES_PER_PIXEL;
    let start = out.len();
    out.resize(start + n * 3, 0);
    for (o, i) in out[start..]
        .chunks_exact_mut(3)
        .zip(bgrx.chunks_exact(BYTES_PER_PIXEL))
    {
        o[0] = i[2];
        o[1] = i[1];
        o[2] = i[0];
    }
}

/// True when a sample of the tile (`width` pixels a row) has more than
/// [`PHOTO_MIN_COLOURS`] distinct colours: a photo, a video, a rendered
/// gradient with noise — not text or flat UI.
pub fn is_photo_like(bgrx: &[u8], width: u32) -> bool {
    let stride = width as usize * BYTES_PER_PIXEL;
    if stride == 0 {
        return false;
    }
    // 0 marks an empty slot; a colour is stored with its top bit set.
    let mut slots = [0u32; COLOUR_SLOTS];
    let mut distinct = 0;
    for row in bgrx.chunks_exact(stride).step_by(SAMPLE_STEP) {
        for px in row.chunks_exact(BYTES_PER_PIXEL).step_by(SAMPLE_STEP) {
            let key = word(px) | 0x8000_0000;
            let mut slot = (key.wrapping_mul(0x9e37_79b1) >> SLOT_SHIFT) as usize;
            loop {
                match slots[slot] {
                    0 => {
                        slots[slot] = key;
                        distinct += 1;
                        if distinct > PHOTO_MIN_COLOURS {
                            return true;
                        }
                        break;
                    }
                    k if k == key => break,
                    _ => slot = (slot + 1) % COLOUR_SLOTS,
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tile of `w`×`h` pixels whose colour is `f(x, y)` (R, G, B).
    pub fn tile(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let [r, g, b] = f(x, y);
                v.extend_from_slice(&[b, g, r, 0xaa]);
            }
        }
        v
    }

    #[test]
    fn solid_ignores_the_unused_byte() {
        let mut t = tile(64, 64, |_, _| [10, 20, 30]);
        t[7] = 0; // the unused byte of pixel 1
        assert_eq!(solid_colour(&t), Some([10, 20, 30]));
        t[4] = 11; // blue of pixel 1
        assert_eq!(solid_colour(&t), None);
        assert_eq!(solid_colour(&[]), None);
        let last = tile(3, 2, |x, y| {
            if (x, y) == (2, 1) {
                [0, 0, 1]
            } else {
                [0, 0, 0]
            }
        });
        assert_eq!(solid_colour(&last), None);
    }

    #[test]
    fn rgb_swaps_blue_and_red_and_drops_the_fourth_byte() {
        let mut out = vec![9];
        bgrx_to_rgb(&[1, 2, 3, 4, 5, 6, 7, 8], &mut out);
        assert_eq!(out, vec![9, 3, 2, 1, 7, 6, 5]);
    }

    #[test]
    fn photo_like_needs_many_colours() {
        let text = tile(64, 64, |x, y| {
            if (x * 7 + y * 3) % 5 == 0 {
                [0, 0, 0]
            } else {
                [255, 255, 255]
            }
        });
        assert!(!is_photo_like(&text, 64));
        let gradient = tile(64, 64, |x, y| [(x * 4) as u8, (y * 4) as u8, 128]);
        // 32 × 32 samples of a smooth two-way gradient: 1024 colours.
        assert!(is_photo_like(&gradient, 64));
        let few = tile(64, 64, |x, _| [(x % 16) as u8, 0, 0]);
        assert!(!is_photo_like(&few, 64));
        assert!(!is_photo_like(&[], 0));
    }

    #[test]
    fn hash_tells_pixels_apart() {
        let a = tile(64, 64, |x, y| [x as u8, y as u8, 0]);
        let mut b = a.clone();
        assert_eq!(hash(&a), hash(&b));
        b[4000] ^= 1;
        assert_ne!(hash(&a), hash(&b));
    }
}
