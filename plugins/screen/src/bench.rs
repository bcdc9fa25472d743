//! Micro benchmark of a frame on the build machine: tile planning, reading
//! (from the simulated host: a copy), hashing, encoding and splitting of a
//! 1920×1080 display, with 10 % and 100 % of its tiles changed. Prints
//! milliseconds per frame; asserts nothing about time.
//!
//! `cargo test --release -- --ignored --nocapture bench`

use std::time::Instant;

use lifeline_screen_format::{MonitorChoice, Quality};

use crate::api::Rect;
use crate::pacing::Frame;
use crate::pixels::BYTES_PER_PIXEL;
use crate::share::{Options, Sharing};
use crate::testutil::FakeHost;

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FRAMES: u32 = 30;
/// The whole display.
const WHOLE: Rect = Rect {
    x: 0,
    y: 0,
    width: WIDTH,
    height: HEIGHT,
};
/// The JPEG quality the short-bandwidth case uses.
const JPEG_QUALITY: u8 = 70;

fn mix(a: u32, b: u32, seed: u32) -> u32 {
    let h =
        a.wrapping_mul(0x9e37_79b1) ^ b.wrapping_mul(0x85eb_ca6b) ^ seed.wrapping_mul(0x27d4_eb2f);
    (h ^ (h >> 15)).wrapping_mul(0xc2b2_ae35)
}

/// Lines of dark glyphs on a light background, with an anti-aliasing shade.
fn text(x: u32, y: u32, seed: u32) -> [u8; 3] {
    const PAPER: [u8; 3] = [250, 250, 248];
    let (row, cell) = (y % 16, x % 8);
    if !(3..12).contains(&row) || cell > 5 {
        return PAPER;
    }
    let glyph = mix(x / 8, y / 16, seed);
    match (glyph >> ((row - 3) * 3 + cell % 3)) & 3 {
        0 => [30, 30, 40],
        1 => [150, 150, 160],
        _ => PAPER,
    }
}

/// A smooth picture with grain.
fn photo(x: u32, y: u32, seed: u32) -> [u8; 3] {
    let grain = (mix(x, y, seed) >> 28) as u8;
    let s = seed as u8;
    [
        ((x / 4) as u8).wrapping_add(grain).wrapping_add(s),
        ((y / 3) as u8) ^ grain,
        ((x + y) / 11) as u8,
    ]
}

/// A smooth picture with strong grain (±14 in each channel, as the end to
/// end benchmark's photo-like source): little for deflate to find.
fn grainy(x: u32, y: u32, seed: u32) -> [u8; 3] {
    let n = mix(x, y, seed);
    let g = |shift: u32, base: u32| {
        let v = base as i32 + ((n >> shift) % 29) as i32 - 14;
        v.clamp(0, 255) as u8
    };
    [
        g(0, 96 + (x / 16) % 64),
        g(10, 64 + (y / 12) % 96),
        g(20, 100 + ((x + y) / 24) % 80),
    ]
}

/// Text and grainy photo tiles in a checkerboard that moves with `seed`.
fn mixed_grainy(x: u32, y: u32, seed: u32) -> [u8; 3] {
    if (x / 64 + y / 64 + seed).is_multiple_of(2) {
        text(x, y, seed)
    } else {
        grainy(x, y, seed)
    }
}

/// Text and photo tiles in a checkerboard that moves with `seed`.
fn mixed(x: u32, y: u32, seed: u32) -> [u8; 3] {
    if (x / 64 + y / 64 + seed).is_multiple_of(2) {
        text(x, y, seed)
    } else {
        photo(x, y, seed)
    }
}

fn fill(host: &mut FakeHost, r: Rect, f: impl Fn(u32, u32) -> [u8; 3]) {
    for y in r.y..r.y + r.height {
        for x in r.x..r.x + r.width {
            let i = (y * WIDTH + x) as usize * BYTES_PER_PIXEL;
            let [red, green, blue] = f(x, y);
            host.fb[i..i + 3].copy_from_slice(&[blue, green, red]);
        }
    }
    host.damage.push(r);
}

/// Every `1 / share`-th tile, spread over the display.
fn some_tiles(share: u32, seed: u32) -> Vec<Rect> {
    let (cols, rows) = (WIDTH.div_ceil(64), HEIGHT.div_ceil(64));
    (0..cols * rows)
        .filter(|i| (i + seed).is_multiple_of(share))
        .map(|i| {
            let (x, y) = (i % cols * 64, i / cols * 64);
            Rect {
                x,
                y,
                width: 64.min(WIDTH - x),
                height: 64.min(HEIGHT - y),
            }
        })
        .collect()
}

/// Runs `FRAMES` frames, each after `change(host, frame)`; prints the time.
fn run(name: &str, quality: Quality, short: bool, change: impl Fn(&mut FakeHost, u32)) {
    let mut host = FakeHost::new(WIDTH, HEIGHT, &[("screen", WHOLE)]);
    fill(&mut host, WHOLE, |x, y| text(x, y, 0));
    let options = Options {
        monitor: MonitorChoice::All,
        quality,
    };
    let mut s = Sharing::start(&mut host, |_| Ok(options)).expect("starts");
    let frame = Frame {
        budget: u64::MAX,
        short,
        cpu_bound: false,
        jpeg_quality: JPEG_QUALITY,
    };
    s.capture(&mut host, frame).expect("first frame");
    host.sent.clear();
    let (mut spent, mut bytes) = (0.0, 0);
    for n in 1..=FRAMES {
        change(&mut host, n);
        let t0 = Instant::now();
        s.capture(&mut host, frame).expect("frame");
        spent += t0.elapsed().as_secs_f64();
        bytes += host.sent.iter().map(Vec::len).sum::<usize>();
        host.sent.clear();
    }
    let ms = spent * 1000.0 / f64::from(FRAMES);
    let kib = bytes as f64 / 1024.0 / f64::from(FRAMES);
    println!(
        "{name:<44} {ms:7.2} ms/frame ({:5.0} fps) {kib:8.0} KiB/frame",
        1000.0 / ms
    );
}

#[test]
#[ignore = "a benchmark: cargo test --release -- --ignored --nocapture bench"]
fn bench_frames_1080p() {
    println!("1920×1080, {FRAMES} frames each, build machine (not WASM):");
    let tenth = |f: fn(u32, u32, u32) -> [u8; 3]| {
        move |h: &mut FakeHost, n: u32| {
            for r in some_tiles(10, n) {
                fill(h, r, |x, y| f(x, y, n));
            }
        }
    };
    let all = |f: fn(u32, u32, u32) -> [u8; 3]| {
        move |h: &mut FakeHost, n: u32| fill(h, WHOLE, |x, y| f(x, y, n))
    };
    run(
        "10 % of tiles changed, text",
        Quality::Auto,
        false,
        tenth(text),
    );
    run("100 % changed, text", Quality::Auto, false, all(text));
    run(
        "100 % changed, text, short (zlib 6)",
        Quality::Auto,
        true,
        all(text),
    );
    run(
        "10 % changed, photo, lossless",
        Quality::Lossless,
        false,
        tenth(photo),
    );
    run(
        "100 % changed, photo, lossless",
        Quality::Lossless,
        false,
        all(photo),
    );
    run(
        "100 % changed, photo, auto, short (JPEG)",
        Quality::Auto,
        true,
        all(photo),
    );
    run(
        "100 % changed, text and photo tiles mixed, lossless",
        Quality::Lossless,
        false,
        all(mixed),
    );
    run(
        "100 % changed, text and grainy photo mixed, lossless",
        Quality::Lossless,
        false,
        all(mixed_grainy),
    );
    run(
        "the same, short bandwidth",
        Quality::Lossless,
        true,
        all(mixed_grainy),
    );
    run(
        "damage without change (hash only), 100 %",
        Quality::Auto,
        false,
        |h, _| h.damage.push(WHOLE),
    );
}
