//! Tests of the operator's picture: tiles of every encoding applied in place,
//! bad tiles named, layouts, the pointer, PNG out.
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

/// Found by the `screen` fuzz target (fuzz/README.md): a zlib tile of
/// 44432 × 43771 made the inflater reserve 5.8 GB before inflating a
/// byte. The input is the target's: frames of `u16` length (big-endian)
/// then bytes.
#[test]
fn fuzz_zlib_tile_larger_than_the_picture_is_refused_before_inflating() {
    let input: &[u8] = include_bytes!("testdata/fuzz-screen-oom-zlib-tile.bin");
    let mut fb = Framebuffer::new();
    let mut rest = input;
    let mut errors = Vec::new();
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        if let Ok(msg) = lifeline_screen_format::decode_message(frame)
            && let Err(e) = fb.apply(&msg)
        {
            errors.push(e);
        }
    }
    assert!(!errors.is_empty(), "the update has bad tiles");
    // The huge zlib tile was refused unread: the zlib stream is broken.
    let after = update(vec![tile(0, 0, 8, 8, TileData::Zlib(vec![120, 156]))]);
    let err = fb.apply(&after).unwrap_err().to_string();
    assert!(
        err.contains("broke at an earlier tile (zlib tile at 16460,8266 of 44432×43771 lies outside the 128×64 picture)"),
        "{err}"
    );

    // The same tile alone, then a good zlib update: the stream is broken.
    let mut fb = Framebuffer::new();
    fb.apply(&layout(128, 64)).unwrap();
    let zlib = vec![
        120, 156, 212, 0, 83, 21, 102, 0, 0, 128, 160, 252, 169, 231, 56, 222, 2, 0, 0, 255, 255,
    ];
    let huge = tile(16460, 8266, 44432, 43771, TileData::Zlib(zlib.clone()));
    assert!(fb.apply(&update(vec![huge])).is_err());
    let err = fb
        .apply(&update(vec![tile(0, 0, 8, 8, TileData::Zlib(zlib))]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lies outside the 128×64 picture"), "{err}");
}

/// Zlib tiles inside the picture but with more pixels together than the
/// picture has (overlapping) are refused before any is inflated.
#[test]
fn zlib_tiles_with_more_pixels_than_the_picture_are_refused() {
    let mut fb = Framebuffer::new();
    fb.apply(&layout(64, 64)).unwrap();
    let whole = || tile(0, 0, 64, 64, TileData::Zlib(vec![120, 156]));
    let err = fb.apply(&update(vec![whole(), whole()])).unwrap_err();
    assert!(
        err.to_string()
            .contains("more than the 4096 of the picture"),
        "{err}"
    );
}

/// A pointer shape larger than the agent ever sends is refused before its
/// PNG is decoded.
#[test]
fn an_oversized_pointer_shape_is_refused() {
    let mut fb = Framebuffer::new();
    let side = MAX_CURSOR_SIDE + 1;
    let err = fb
        .apply(&Message::Cursor {
            x: 0,
            y: 0,
            shape: Some(lifeline_screen_format::CursorShape {
                width: side,
                height: 1,
                hot_x: 0,
                hot_y: 0,
                png: Vec::new(),
            }),
        })
        .unwrap_err();
    assert_eq!(
        err,
        PictureError::CursorShape {
            width: side,
            height: 1,
            problem: TileProblem::TooLarge {
                max: MAX_CURSOR_SIDE
            },
        }
    );
}
