//! Benchmark 6: screen sharing. Lifeline's `screen` plugin (WASM, in the
//! agent process, on the agent's X11 capture) against x11vnc serving the
//! same Xvfb display (1920×1080×24) to a real VNC client
//! (`bench/screen/vnc_client.py`, vncdotool), both over loopback.
//!
//! Processes: Xvfb, `lifeline broker run`, `lifeline agent join` (policy:
//! `screen.capture` and `input.control` allowed), x11vnc (only during its
//! own phases), the Python VNC client; the operator client, the byte
//! counting TCP forwarders and the X drivers run in this process.
//!
//! 1. updates/s with 10 % (then 100 %) of the 64×64 tiles changing
//!    between frames: a driver thread keeps putting new content (text-like
//!    and photo-like crops of a source pixmap) into the same tile-aligned
//!    squares, faster than either sharer samples, so every frame a sharer
//!    takes has exactly that set changed. Figures: updates received by the
//!    client per second, and the sharer process's CPU time per update
//!    (utime + stime from /proc) → the updates one core could make.
//!    Lifeline at `max_fps` 60 (its default), lossless.
//! 2. bytes on the wire for a scripted desktop (an xterm printing and
//!    scrolling, a window dragged around, a photo shown and moved), counted
//!    by a TCP forwarder (both directions, TLS included for Lifeline)
//!    between the client and the broker / x11vnc, with the updates the
//!    client received in the same wall-clock window.
//! 3. click → changed pixels at the client: a window that changes colour on
//!    each click; Lifeline's operator sends the click with `send_input` and
//!    waits for an update that changes the window's pixels in its picture;
//!    the VNC client does the same (`vnc_client.py latency`).
//! 4. the sharer's CPU per update and resident memory (VmRSS) while sharing.
//!
//! Every wait is bounded; every child process is stopped on every path
//! (Xvfb and x11vnc with SIGTERM). The VNC client needs a venv, made in
//! `target/bench-venv` when missing. `LIFELINE_BENCH_QUICK=1`: shorter
//! windows and fewer clicks; `LIFELINE_BENCH_SCREEN_TILES=DIR`: the PNG
//! tiles of the lossless desktop run are written to DIR (for
//! `bench/screen/tile_sizes.py`). Figures: docs/benchmarks.md.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use lifeline_core::client::Endpoint;
use lifeline_core::tls::Fingerprint;
use lifeline_operator::Client;
use lifeline_operator::screen::{Input, Message, MonitorChoice, Quality, ScreenSession};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep_until, timeout_at};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConfigureWindowAux, ConnectionExt as _, CreateGCAux,
    CreateWindowAux, EventMask, Gcontext, ImageFormat, Pixmap, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

use crate::{Opts, PASSWORD, Row, STEP, USERNAME, row, step};

const WIDTH: u16 = 1920;
const HEIGHT: u16 = 1080;
const GEOMETRY: &str = "1920x1080x24";
/// The sharers' tile grid (Lifeline's `TILE`): 30 × 17 tiles at 1080p,
/// the bottom row 56 px high.
const TILE: u16 = 64;
const COLS: u16 = WIDTH.div_ceil(TILE);
const ROWS: u16 = HEIGHT.div_ceil(TILE);
/// Targets.
const TARGET_FPS_10: f64 = 60.0;
const TARGET_FPS_100: f64 = 15.0;
const TARGET_P50_MS: f64 = 50.0;
/// Lifeline's frame rate for the throughput phases (its default is 30).
const FAST_FPS: u8 = 60;
/// The plugin's default rate (`pacing::DEFAULT_FPS`).
const DEFAULT_FPS: u8 = 60;
/// The rate the desktop and the clicks are also measured at: the
/// plugin's default until 2026-12-07.
const OTHER_FPS: u8 = 30;
/// The source of the driver's tile contents.
const SOURCE_W: u16 = 2048;
const SOURCE_H: u16 = 1024;
/// The desktop's background colour.
const DESKTOP_RGB: u32 = 0x2d4f6c;
/// The click target: x, y, width, height (clear of the sharing indicator
/// at the top edge).
const CLICK: (i16, i16, u16, u16) = (860, 465, 200, 150);
/// How long the latency loop waits for one change (as vnc_client.py).
const CLICK_TIMEOUT: Duration = Duration::from_secs(5);
/// Beyond its planned duration, a measuring child process gets this long.
const GRACE: Duration = Duration::from_secs(30);

/// Durations of one run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Updates before the throughput window (pacing and credit settle).
    warm: Duration,
    /// The throughput window.
    window: Duration,
    /// The scripted desktop, and the tail after it (late updates).
    desk: Duration,
    tail: Duration,
    /// Latency samples and the pause before each.
    clicks: usize,
    gap: Duration,
    /// Plus a random pause of up to this.
    jitter: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                warm: Duration::from_secs(1),
                window: Duration::from_secs(4),
                desk: Duration::from_secs(8),
                tail: Duration::from_secs(1),
                clicks: 12,
                gap: Duration::from_millis(500),
                jitter: Duration::from_millis(100),
            }
        } else {
            Plan {
                warm: Duration::from_secs(2),
                window: Duration::from_secs(10),
                desk: Duration::from_secs(20),
                tail: Duration::from_secs(1),
                clicks: 40,
                gap: Duration::from_millis(500),
                jitter: Duration::from_millis(100),
            }
        }
    }
}

mod measure;
mod procs;
mod report;
mod runs;
mod sides;
mod wire;
mod xdisplay;
use measure::*;
use procs::*;
use report::*;
use runs::*;
use sides::*;
use wire::*;
use xdisplay::*;

/// Xvfb's pid and display (the process is held by `run`).
struct Xvfb {
    pid: u32,
    display: String,
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let plan = Plan::new(opts.quick);
    println!(
        "\n[6] screen sharing: Lifeline's screen plugin against x11vnc, Xvfb {GEOMETRY}, loopback \
         ({:.0} s windows, {:.0} s desktop script, {} clicks)",
        plan.window.as_secs_f64(),
        plan.desk.as_secs_f64(),
        plan.clicks
    );
    let py = python()?;
    let dir = tempfile::tempdir()?;
    let (xvfb, display) = start_xvfb()?;
    let x = Xvfb {
        pid: xvfb.pid(),
        display,
    };
    set_desktop(&x.display)?;
    let mut ll = Lifeline::start(&x.display).await?;
    println!(
        "  Xvfb {} ({GEOMETRY}); broker and agent up ({})",
        x.display,
        load()
    );
    let result = phases(&mut ll, &x, &py, dir.path(), &plan).await;
    if result.is_err() {
        let log = ll.dir.path().join("agent.log");
        println!("  the agent's log ends: {}", tail_of(&log));
    }
    ll.shutdown().await;
    drop(xvfb);
    result
}

async fn phases(
    ll: &mut Lifeline,
    x: &Xvfb,
    py: &Path,
    dir: &Path,
    plan: &Plan,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut loads = Vec::new();
    let agent_idle = rss(ll.agent.pid())?;

    // 1. Throughput.
    println!(
        "  throughput: the same tiles get new content (text- and photo-like) faster than \
         either sharer samples; Lifeline lossless at max_fps {FAST_FPS} (its default is {DEFAULT_FPS})"
    );
    let cases = [
        ("10 %", 0.10, Duration::from_millis(5), TARGET_FPS_10),
        ("100 %", 1.0, Duration::from_millis(10), TARGET_FPS_100),
    ];
    for (name, fraction, period, target) in cases {
        let tiles = tile_set(fraction);
        println!(
            "  {name} of the tiles ({} of {}) changing:",
            tiles.len(),
            COLS * ROWS
        );
        let l = lifeline_fps(ll, x, plan, &tiles, period, Quality::Lossless).await?;
        println!("{}", describe("agent", &l, "broker"));
        let v = vnc_fps(x, py, dir, plan, &tiles, period).await?;
        println!("{}", describe("x11vnc", &v, "client"));
        loads.extend([l.load.clone(), v.load.clone()]);
        let what = format!(
            "frames/s, {name} of the 64×64 tiles changing (lossless; Lifeline max_fps {FAST_FPS})"
        );
        rows.push(fps_row(&what, target, &l, &v));
        if fraction >= 1.0 {
            let a = lifeline_fps(ll, x, plan, &tiles, period, Quality::Auto).await?;
            println!("    the same, quality auto:");
            println!("{}", describe("agent", &a, "broker"));
            loads.push(a.load.clone());
            rows.push(row(
                "6 screen",
                "the same, quality auto (JPEG for photo-like tiles while credit is short)",
                format!(
                    "{:.1} complete frames/s received; one core: {:.0}/s ({} agent CPU/frame); {}/update",
                    a.frame_rate(),
                    a.per_core(),
                    ms(a.cpu_per_frame()),
                    kib(a.bytes as f64 / a.updates.max(1) as f64)
                ),
                "",
                None,
            ));
        }
    }

    // 2. Bytes on the wire for the scripted desktop.
    println!(
        "  scripted desktop, {:.0} s (+{:.0} s tail): xterm printing 20 lines/s, a window dragged, a photo shown and moved",
        plan.desk.as_secs_f64(),
        plan.tail.as_secs_f64()
    );
    let l = lifeline_desk(ll, x, plan, Quality::Lossless, DEFAULT_FPS).await?;
    println!(
        "{}",
        describe("agent", &l, "broker").replacen(
            "agent",
            &format!("agent (lossless, {DEFAULT_FPS} fps)"),
            1
        )
    );
    let v = vnc_desk(x, py, dir, plan).await?;
    println!("{}", describe("x11vnc", &v, "client"));
    let other = lifeline_desk(ll, x, plan, Quality::Lossless, OTHER_FPS).await?;
    println!(
        "{}",
        describe("agent", &other, "broker").replacen(
            "agent",
            &format!("agent (lossless, {OTHER_FPS} fps)"),
            1
        )
    );
    let auto = lifeline_desk(ll, x, plan, Quality::Auto, DEFAULT_FPS).await?;
    println!(
        "{}",
        describe("agent", &auto, "broker").replacen(
            "agent",
            &format!("agent (auto, {DEFAULT_FPS} fps)"),
            1
        )
    );
    loads.extend([&l, &v, &other, &auto].map(|r| r.load.clone()));
    let met = l.bytes <= v.bytes && l.updates >= v.updates;
    rows.push(row(
        "6 screen",
        &format!(
            "bytes on the wire (both ways, TLS incl.), {:.0} s scripted desktop + {:.0} s; lossless, default {DEFAULT_FPS} fps",
            plan.desk.as_secs_f64(),
            plan.tail.as_secs_f64()
        ),
        bytes_text(&l),
        &format!("x11vnc (ZRLE, lossless) {}", bytes_text(&v)),
        Some(("≤ x11vnc's bytes with ≥ its updates", met)),
    ));
    rows.push(row(
        "6 screen",
        &format!("the same, lossless at max_fps {OTHER_FPS}"),
        bytes_text(&other),
        "",
        None,
    ));
    rows.push(row(
        "6 screen",
        &format!("the same, quality auto (the default), {DEFAULT_FPS} fps"),
        bytes_text(&auto),
        "",
        None,
    ));

    // 3. Click → pixels.
    println!(
        "  click → changed pixels at the client ({} samples, {:.1} s + up to {:.1} s apart):",
        plan.clicks,
        plan.gap.as_secs_f64(),
        plan.jitter.as_secs_f64()
    );
    let lc = lifeline_clicks(ll, x, plan, Quality::Auto, DEFAULT_FPS).await?;
    println!(
        "    Lifeline (defaults: auto, {DEFAULT_FPS} fps): {}; {}",
        lc.text(),
        lc.load
    );
    let vc = vnc_clicks(x, py, dir, plan).await?;
    println!("    x11vnc: {}; {}", vc.text(), vc.load);
    let lc_other = lifeline_clicks(ll, x, plan, Quality::Auto, OTHER_FPS).await?;
    println!(
        "    Lifeline (max_fps {OTHER_FPS}): {}; {}",
        lc_other.text(),
        lc_other.load
    );
    loads.extend([&lc, &vc, &lc_other].map(|c| c.load.clone()));
    let p50 = lc.pct(0.5);
    rows.push(row(
        "6 screen",
        &format!("click → changed pixels at the client (Lifeline's defaults: {DEFAULT_FPS} fps)"),
        lc.text(),
        &format!("x11vnc {}", vc.text()),
        Some((
            &format!("p50 ≤ {TARGET_P50_MS:.0} ms"),
            p50 <= TARGET_P50_MS && lc.timeouts == 0,
        )),
    ));
    rows.push(row(
        "6 screen",
        &format!("the same, max_fps {OTHER_FPS}"),
        lc_other.text(),
        "",
        None,
    ));

    // 4. CPU per update and memory while sharing (the desktop runs).
    rows.push(row(
        "6 screen",
        "sharer CPU per update and VmRSS while sharing (scripted desktop, lossless)",
        format!(
            "agent {} CPU/update, VmRSS {} (joined, not sharing: {})",
            ms(l.cpu_per_update(0)),
            mib(l.rss),
            mib(agent_idle)
        ),
        &format!(
            "x11vnc {} CPU/update, VmRSS {}",
            ms(v.cpu_per_update(0)),
            mib(v.rss)
        ),
        None,
    ));
    let one: Vec<f64> = loads
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    let (lo, hi) = one
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    rows.push(row(
        "6 screen",
        "machine load (1-minute average) at the end of each measurement",
        format!("{lo:.2} to {hi:.2}"),
        "",
        None,
    ));
    Ok(rows)
}
