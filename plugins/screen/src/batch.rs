//! Cutting a frame's tiles into [`Message::Update`]s that each fit in one
//! stream frame.

use lifeline_screen_format::{Message, Tile, TileData, MAX_TILES_PER_UPDATE};

/// Largest encoded update: stream frames are capped at 1 MiB
/// (`MAX_STREAM_FRAME_BYTES`); the margin keeps well clear of it.
pub const MAX_UPDATE_BYTES: usize = 900 << 10;
/// Bytes of an update before its tiles: tag, seq, captured_us, count.
const UPDATE_HEADER_BYTES: usize = 1 + 4 + 8 + 2;
/// Bytes of a tile before its data: x, y, width, height, encoding.
const TILE_HEADER_BYTES: usize = 2 * 4 + 1;

/// Bytes `t` takes in an update.
pub fn tile_bytes(t: &Tile) -> usize {
    TILE_HEADER_BYTES
        + match &t.data {
            TileData::Solid(_) => 3,
            TileData::Png(b) | TileData::Jpeg(b) | TileData::Zlib(b) => 4 + b.len(),
        }
}

/// Bytes of the update that carries `tiles`.
pub fn update_bytes(tiles: &[Tile]) -> usize {
    UPDATE_HEADER_BYTES + tiles.iter().map(tile_bytes).sum::<usize>()
}

/// Cuts `tiles` into updates of at most `max_bytes` encoded and at most
/// [`MAX_TILES_PER_UPDATE`] tiles, in order, ending an update only after a
/// tile `i` with `cut[i]` (where the zlib stream was flushed): a part
/// between two cuts larger than that goes whole. `seq` numbers them from
/// `first_seq`; all carry `captured_us`.
pub fn updates(
    tiles: Vec<Tile>,
    cut: &[bool],
    max_bytes: usize,
    first_seq: u32,
    captured_us: u64,
) -> Vec<Message> {
    let mut groups: Vec<Vec<Tile>> = Vec::new();
    let mut cur: Vec<Tile> = Vec::new();
    let mut size = UPDATE_HEADER_BYTES;
    // Tiles of `cur` up to its last cut, and their size.
    let (mut at_cut, mut size_at_cut) = (0, UPDATE_HEADER_BYTES);
    for (i, t) in tiles.into_iter().enumerate() {
        let n = tile_bytes(&t);
        let full = cur.len() >= MAX_TILES_PER_UPDATE || size + n > max_bytes;
        if full && at_cut > 0 {
            let rest = cur.split_off(at_cut);
            groups.push(std::mem::replace(&mut cur, rest));
            size = size - size_at_cut + UPDATE_HEADER_BYTES;
            (at_cut, size_at_cut) = (0, UPDATE_HEADER_BYTES);
        }
        size += n;
        cur.push(t);
        if cut.get(i).copied().unwrap_or(true) {
            (at_cut, size_at_cut) = (cur.len(), size);
        }
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    groups
        .into_iter()
        .zip(first_seq..)
        .map(|(tiles, seq)| Message::Update {
            seq,
            captured_us,
            tiles,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_screen_format::encode_message;

    fn png_tile(i: u16, len: usize) -> Tile {
        Tile {
            x: i * 64,
            y: 0,
            width: 64,
            height: 64,
            data: TileData::Png(vec![7; len]),
        }
    }

    fn encoded(m: &Message) -> usize {
        let mut b = Vec::new();
        encode_message(m, &mut b);
        b.len()
    }

    #[test]
    fn sizes_match_the_encoding() {
        let tiles = vec![
            png_tile(0, 100),
            Tile {
                data: TileData::Solid([1, 2, 3]),
                ..png_tile(1, 0)
            },
        ];
        let m = updates(tiles.clone(), &[], MAX_UPDATE_BYTES, 5, 9);
        assert_eq!(m.len(), 1);
        assert_eq!(encoded(&m[0]), update_bytes(&tiles));
    }

    #[test]
    fn large_frames_are_split_below_the_limit_in_order() {
        // 100 tiles of 12 KiB: about 1.2 MiB.
        let tiles: Vec<Tile> = (0..100).map(|i| png_tile(i, 12 << 10)).collect();
        let m = updates(tiles, &[], MAX_UPDATE_BYTES, 7, 42);
        assert_eq!(m.len(), 2);
        let mut next_x = 0;
        for (k, msg) in m.iter().enumerate() {
            assert!(encoded(msg) <= MAX_UPDATE_BYTES);
            let Message::Update {
                seq,
                captured_us,
                tiles,
            } = msg
            else {
                panic!("not an update");
            };
            assert_eq!((*seq, *captured_us), (7 + k as u32, 42));
            for t in tiles {
                assert_eq!(t.x, next_x);
                next_x += 64;
            }
        }
        assert_eq!(next_x, 6400);
    }

    #[test]
    fn the_tile_count_is_capped() {
        let tiles: Vec<Tile> = (0..MAX_TILES_PER_UPDATE + 1)
            .map(|i| Tile {
                data: TileData::Solid([i as u8; 3]),
                ..png_tile(0, 0)
            })
            .collect();
        let m = updates(tiles, &[], MAX_UPDATE_BYTES, 0, 0);
        assert_eq!(m.len(), 2);
        assert!(updates(Vec::new(), &[], MAX_UPDATE_BYTES, 0, 0).is_empty());
    }

    #[test]
    fn updates_end_only_where_the_zlib_stream_was_flushed() {
        // 10 tiles of 300 KiB; cuts after tiles 1, 5 and 9 only.
        let tiles: Vec<Tile> = (0..10).map(|i| png_tile(i, 300 << 10)).collect();
        let cut: Vec<bool> = (0..10).map(|i| [1, 5, 9].contains(&i)).collect();
        let m = updates(tiles, &cut, MAX_UPDATE_BYTES, 0, 0);
        let counts: Vec<usize> = m
            .iter()
            .map(|u| match u {
                Message::Update { tiles, .. } => tiles.len(),
                _ => unreachable!(),
            })
            .collect();
        // A part between cuts larger than the limit goes whole.
        assert_eq!(counts, [2, 4, 4]);
    }
}
