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
//!    Lifeline at `max_fps` 60 (its default pacing is 30), lossless.
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
const DEFAULT_FPS: u8 = 30;
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

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The 1, 5 and 15 minute load averages, "load 1.23 0.98 0.70".
fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let avg: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load {}", avg.join(" "))
}

// ---------------------------------------------------------------------
// Processes and /proc

/// A child process, stopped when dropped: SIGTERM first when `term` (Xvfb,
/// x11vnc), then SIGKILL if it is still there after 5 s; reaped.
struct Proc {
    child: Child,
    name: String,
    term: bool,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, term: bool) -> Result<Proc> {
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            child,
            name: name.to_string(),
            term,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error when the process has exited.
    fn alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} exited ({status})", self.name),
            None => Ok(()),
        }
    }

    /// [`Proc::alive`], the error quoting the end of the process's `log`.
    fn alive_or(&mut self, log: &Path) -> Result<()> {
        self.alive()
            .map_err(|e| anyhow!("{e}; the end of its log: {}", tail_of(log)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if self.term {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end within `limit` (killed when it overstays).
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<std::process::ExitStatus> {
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn clock_ticks() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// CPU seconds (user + system, all threads) a process has used.
fn cpu_secs(pid: u32) -> Result<f64> {
    cpu_secs_of(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds from a /proc `stat` file.
fn cpu_secs_of(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command's closing parenthesis: state is field 3,
    // utime 14 and stime 15.
    let rest = &stat[stat.rfind(')').context("/proc stat without a command")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field =
        |i: usize| -> Result<u64> { Ok(f.get(i - 3).context("short /proc stat")?.parse::<u64>()?) };
    Ok((field(14)? + field(15)?) as f64 / clock_ticks())
}

/// CPU seconds of each thread of `pid`, summed by thread name.
fn thread_cpu(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(secs) = cpu_secs_of(&format!("/proc/{pid}/task/{tid}/stat")) {
            *out.entry(name.trim().to_string()).or_insert(0.0) += secs;
        }
    }
    out
}

/// Resident set size in bytes (VmRSS).
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    let kb = kb.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    Ok(kb.context("no VmRSS in /proc status")? * 1024)
}

fn tail_of(p: &Path) -> String {
    let log = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = log.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// Polls `f` every 20 ms until it gives a value, for at most [`STEP`].
fn poll_for<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {STEP:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------
// Xvfb and X drawing

/// Starts Xvfb on a display number it picks itself (`-displayfd`: free,
/// and ready once written).
fn start_xvfb() -> Result<(Proc, String)> {
    let mut cmd = Command::new("Xvfb");
    cmd.args([
        "-displayfd",
        "1",
        "-nolisten",
        "tcp",
        "-noreset",
        "-screen",
        "0",
        GEOMETRY,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut xvfb = Proc::spawn("Xvfb", &mut cmd, true)?;
    let out = xvfb.child.stdout.take().context("Xvfb stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
        // Read on to the end: a closed pipe must not bother the server.
        for _ in lines {}
    });
    let n = rx
        .recv_timeout(STEP)
        .map_err(|_| anyhow!("Xvfb gave no display number within {STEP:?}"))?;
    let display = format!(":{}", n.trim());
    Ok((xvfb, display))
}

fn connect(display: &str) -> Result<(RustConnection, Window)> {
    let (conn, screen) =
        x11rb::connect(Some(display)).with_context(|| format!("X display {display}"))?;
    let root = conn.setup().roots[screen].root;
    Ok((conn, root))
}

/// Waits until the server has handled everything sent so far.
fn sync(conn: &RustConnection) -> Result<()> {
    conn.get_input_focus()?.reply()?;
    Ok(())
}

/// The desktop's background: one colour.
fn set_desktop(display: &str) -> Result<()> {
    let (conn, root) = connect(display)?;
    let aux = ChangeWindowAttributesAux::new().background_pixel(DESKTOP_RGB);
    conn.change_window_attributes(root, &aux)?;
    conn.clear_area(false, root, 0, 0, 0, 0)?;
    sync(&conn)
}

/// BGRX pixels, `w` wide.
struct Image {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Image {
    fn new(w: usize, h: usize, rgb: [u8; 3]) -> Image {
        let mut px = Vec::with_capacity(w * h * 4);
        for _ in 0..w * h {
            px.extend_from_slice(&[rgb[2], rgb[1], rgb[0], 0]);
        }
        Image { w, h, px }
    }

    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.w && y < self.h {
            let i = (y * self.w + x) * 4;
            self.px[i..i + 3].copy_from_slice(&[rgb[2], rgb[1], rgb[0]]);
        }
    }

    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, rgb);
            }
        }
    }

    /// Lines of "words" in a 64-glyph alphabet (5×9 glyphs in 7×14
    /// cells), like a terminal or a document: few colours, sharp edges,
    /// recurring shapes.
    fn text(&mut self, area: (usize, usize, usize, usize), rng: &mut StdRng, ink: &[[u8; 3]]) {
        let glyphs: Vec<u64> = (0..64)
            .map(|_| rng.r#gen::<u64>() & rng.r#gen::<u64>())
            .collect();
        let (x0, y0, w, h) = area;
        let (cw, ch) = (7, 14);
        for row in 0..h / ch {
            let len = rng.gen_range(0..w / cw);
            let mut col = 0;
            while col < len {
                let word = rng.gen_range(2..10);
                let colour = ink[rng.gen_range(0..ink.len())];
                for c in col..(col + word).min(len) {
                    let g = glyphs[rng.gen_range(0..glyphs.len())];
                    for bit in 0..45 {
                        if (g >> bit) & 1 == 1 {
                            let (gx, gy) = (bit % 5, bit / 5);
                            self.set(x0 + c * cw + 1 + gx, y0 + row * ch + 3 + gy, colour);
                        }
                    }
                }
                col += word + 1;
            }
        }
    }

    /// Photo-like: smooth colour fields with grain.
    fn photo(&mut self, area: (usize, usize, usize, usize), rng: &mut StdRng) {
        let (x0, y0, w, h) = area;
        let f: [f32; 6] = std::array::from_fn(|_| rng.gen_range(0.004..0.03));
        let ph: [f32; 3] = std::array::from_fn(|_| rng.gen_range(0.0..std::f32::consts::TAU));
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32, y as f32);
                let mut c = |i: usize| {
                    let v = 128.0
                        + 70.0 * (xf * f[2 * i] + ph[i]).sin() * (yf * f[2 * i + 1]).cos()
                        + 40.0 * ((xf + yf) * f[(2 * i + 3) % 6]).sin();
                    let n: f32 = rng.gen_range(-14.0..14.0);
                    (v + n).clamp(0.0, 255.0) as u8
                };
                let rgb = [c(0), c(1), c(2)];
                self.set(x0 + x, y0 + y, rgb);
            }
        }
    }
}

/// A pixmap holding `img` (uploaded in strips within the core request
/// size).
fn upload(conn: &RustConnection, root: Window, img: &Image) -> Result<(Pixmap, Gcontext)> {
    let pm = conn.generate_id()?;
    conn.create_pixmap(24, pm, root, img.w as u16, img.h as u16)?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, pm, &CreateGCAux::new().graphics_exposures(0))?;
    let rows = (128 * 1024 / (img.w * 4)).max(1);
    for y in (0..img.h).step_by(rows) {
        let n = rows.min(img.h - y);
        let data = &img.px[y * img.w * 4..(y + n) * img.w * 4];
        conn.put_image(
            ImageFormat::Z_PIXMAP,
            pm,
            gc,
            img.w as u16,
            n as u16,
            0,
            y as i16,
            0,
            24,
            data,
        )?;
    }
    Ok((pm, gc))
}

/// An unmanaged window showing `pm` as its background (the server
/// repaints it itself when exposed).
fn picture_window(
    conn: &RustConnection,
    root: Window,
    pm: Pixmap,
    at: (i16, i16, u16, u16),
) -> Result<Window> {
    let w = conn.generate_id()?;
    let aux = CreateWindowAux::new()
        .background_pixmap(pm)
        .override_redirect(1);
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        w,
        root,
        at.0,
        at.1,
        at.2,
        at.3,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )?;
    Ok(w)
}

/// The driver's source: the top half text-like (dark terminal, light
/// document), the bottom half photo-like. Crops of it at random offsets
/// are new content every time.
fn source_image() -> Image {
    let (w, h) = (usize::from(SOURCE_W), usize::from(SOURCE_H));
    let mut rng = StdRng::seed_from_u64(6);
    let mut img = Image::new(w, h, [0x1e, 0x1e, 0x1e]);
    let term_ink = [
        [0xd0, 0xd0, 0xd0],
        [0x6a, 0xc0, 0x6a],
        [0xe0, 0xb0, 0x50],
        [0x70, 0xa0, 0xe0],
    ];
    img.text((0, 0, w / 2, h / 2), &mut rng, &term_ink);
    img.fill(w / 2, 0, w / 2, h / 2, [0xfa, 0xfa, 0xf7]);
    let doc_ink = [[0x20, 0x20, 0x20], [0x30, 0x50, 0xa0], [0xa0, 0x30, 0x30]];
    img.text((w / 2, 0, w / 2, h / 2), &mut rng, &doc_ink);
    img.photo((0, h / 2, w, h / 2), &mut rng);
    img
}

/// Tile origins: `fraction` of the grid, spread at random (fixed seed).
fn tile_set(fraction: f64) -> Vec<(i16, i16)> {
    let mut all: Vec<(i16, i16)> = (0..ROWS)
        .flat_map(|r| (0..COLS).map(move |c| ((c * TILE) as i16, (r * TILE) as i16)))
        .collect();
    let n = ((all.len() as f64 * fraction).round() as usize).clamp(1, all.len());
    let mut rng = StdRng::seed_from_u64(10);
    for i in 0..n {
        let j = rng.gen_range(i..all.len());
        all.swap(i, j);
    }
    all.truncate(n);
    all.sort_unstable();
    all
}

/// A thread putting new content into the same tiles again and again: a
/// full-screen window, first filled whole, then `tiles` redrawn every
/// `period` from random crops of [`source_image`].
struct Driver {
    stop: Arc<AtomicBool>,
    draws: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Driver {
    fn start(display: &str, tiles: Vec<(i16, i16)>, period: Duration) -> Result<Driver> {
        let stop = Arc::new(AtomicBool::new(false));
        let draws = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel::<Result<(), String>>();
        let display = display.to_string();
        let (s, d) = (Arc::clone(&stop), Arc::clone(&draws));
        let thread = std::thread::spawn(move || {
            let r = drive(&display, &tiles, period, &s, &d, &tx);
            if let Err(e) = &r {
                let _ = tx.send(Err(format!("{e:#}")));
            }
            r
        });
        let mut driver = Driver {
            stop,
            draws,
            thread: Some(thread),
        };
        match rx.recv_timeout(STEP) {
            Ok(Ok(())) => Ok(driver),
            Ok(Err(e)) => bail!("the X driver failed: {e}"),
            Err(_) => {
                driver.halt();
                bail!("the X driver was not ready within {STEP:?}")
            }
        }
    }

    fn draws(&self) -> u64 {
        self.draws.load(Ordering::Relaxed)
    }

    fn halt(&mut self) -> Option<Result<()>> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take()?;
        Some(
            t.join()
                .unwrap_or_else(|_| Err(anyhow!("the X driver panicked"))),
        )
    }

    fn finish(mut self) -> Result<()> {
        self.halt().unwrap_or(Ok(()))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn drive(
    display: &str,
    tiles: &[(i16, i16)],
    period: Duration,
    stop: &AtomicBool,
    draws: &AtomicU64,
    ready: &mpsc::Sender<Result<(), String>>,
) -> Result<()> {
    let (conn, root) = connect(display)?;
    let (src, gc) = upload(&conn, root, &source_image())?;
    let canvas = conn.generate_id()?;
    let aux = CreateWindowAux::new().override_redirect(1);
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        canvas,
        root,
        0,
        0,
        WIDTH,
        HEIGHT,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )?;
    conn.map_window(canvas)?;
    let mut rng = StdRng::seed_from_u64(60);
    let mut paint = |set: &[(i16, i16)]| -> Result<()> {
        for &(x, y) in set {
            let sx = rng.gen_range(0..SOURCE_W - TILE) as i16;
            let sy = rng.gen_range(0..SOURCE_H - TILE) as i16;
            conn.copy_area(src, canvas, gc, sx, sy, x, y, TILE, TILE)?;
        }
        sync(&conn)
    };
    paint(&tile_set(1.0))?;
    let _ = ready.send(Ok(()));
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        paint(tiles)?;
        draws.fetch_add(1, Ordering::Relaxed);
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    conn.destroy_window(canvas)?;
    conn.free_pixmap(src)?;
    conn.free_gc(gc)?;
    sync(&conn)
}

/// A window that changes colour on each click (button press).
struct ClickTarget {
    stop: Arc<AtomicBool>,
    clicks: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl ClickTarget {
    fn start(display: &str) -> Result<ClickTarget> {
        let stop = Arc::new(AtomicBool::new(false));
        let clicks = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel::<Result<(), String>>();
        let display = display.to_string();
        let (s, c) = (Arc::clone(&stop), Arc::clone(&clicks));
        let thread = std::thread::spawn(move || {
            let r = serve_clicks(&display, &s, &c, &tx);
            if let Err(e) = &r {
                let _ = tx.send(Err(format!("{e:#}")));
            }
            r
        });
        let mut t = ClickTarget {
            stop,
            clicks,
            thread: Some(thread),
        };
        match rx.recv_timeout(STEP) {
            Ok(Ok(())) => Ok(t),
            Ok(Err(e)) => bail!("the click target failed: {e}"),
            Err(_) => {
                t.halt();
                bail!("the click target was not ready within {STEP:?}")
            }
        }
    }

    fn clicks(&self) -> u64 {
        self.clicks.load(Ordering::Relaxed)
    }

    fn halt(&mut self) -> Option<Result<()>> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take()?;
        Some(
            t.join()
                .unwrap_or_else(|_| Err(anyhow!("the click target panicked"))),
        )
    }
}

impl Drop for ClickTarget {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn serve_clicks(
    display: &str,
    stop: &AtomicBool,
    clicks: &AtomicU64,
    ready: &mpsc::Sender<Result<(), String>>,
) -> Result<()> {
    const COLOURS: [u32; 4] = [0x20a040, 0xc03030, 0x3050d0, 0xe0c020];
    let (conn, root) = connect(display)?;
    let w = conn.generate_id()?;
    let aux = CreateWindowAux::new()
        .background_pixel(COLOURS[0])
        .override_redirect(1)
        .event_mask(EventMask::BUTTON_PRESS);
    let (x, y, width, height) = CLICK;
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        w,
        root,
        x,
        y,
        width,
        height,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )?;
    conn.map_window(w)?;
    sync(&conn)?;
    let _ = ready.send(Ok(()));
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match conn.poll_for_event()? {
            Some(Event::ButtonPress(_)) => {
                n += 1;
                let aux = ChangeWindowAttributesAux::new().background_pixel(COLOURS[n % 4]);
                conn.change_window_attributes(w, &aux)?;
                conn.clear_area(false, w, 0, 0, 0, 0)?;
                conn.flush()?;
                clicks.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    conn.destroy_window(w)?;
    sync(&conn)
}

/// The scripted desktop, the same for every run: an xterm printing
/// (and scrolling) 20 lines a second; a 360×240 window dragged along a
/// path from 10 % to 40 % of the time and back and forth from 60 % to
/// 80 %; a 480×320 photo shown at 25 %, moved at 55 %, closed at 80 %.
/// The windows stay until [`DeskScript::finish`].
struct DeskScript {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
    /// When the timeline began.
    started: Instant,
}

const XTERM_LOOP: &str = "n=0; while :; do n=$((n+1)); \
    echo \"[$n] Compiling module-$((n % 37)) v0.$((n % 9)).$((n % 5)) (/src/crate-$((n % 11))) ... ok in $((n % 97)).$((n % 10))s\"; \
    sleep 0.05; done";

impl DeskScript {
    fn start(display: &str, length: Duration) -> Result<DeskScript> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Result<Instant, String>>();
        let display = display.to_string();
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let r = desk(&display, length, &s, &tx);
            if let Err(e) = &r {
                let _ = tx.send(Err(format!("{e:#}")));
            }
            r
        });
        let mut d = DeskScript {
            stop,
            thread: Some(thread),
            started: Instant::now(),
        };
        match rx.recv_timeout(STEP) {
            Ok(Ok(at)) => {
                d.started = at;
                Ok(d)
            }
            Ok(Err(e)) => bail!("the desktop script failed: {e}"),
            Err(_) => {
                d.halt();
                bail!("the desktop script did not start within {STEP:?}")
            }
        }
    }

    fn halt(&mut self) -> Option<Result<()>> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take()?;
        Some(
            t.join()
                .unwrap_or_else(|_| Err(anyhow!("the desktop script panicked"))),
        )
    }

    fn finish(mut self) -> Result<()> {
        self.halt().unwrap_or(Ok(()))
    }
}

impl Drop for DeskScript {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn desk(
    display: &str,
    length: Duration,
    stop: &AtomicBool,
    started: &mpsc::Sender<Result<Instant, String>>,
) -> Result<()> {
    let (conn, root) = connect(display)?;
    let mut rng = StdRng::seed_from_u64(20);
    // The panel: a title bar and lines of text on light grey.
    let (pw, ph) = (360u16, 240u16);
    let mut panel = Image::new(usize::from(pw), usize::from(ph), [0xee, 0xee, 0xec]);
    panel.fill(0, 0, usize::from(pw), 26, [0x3a, 0x6e, 0xa5]);
    panel.text((8, 4, 200, 18), &mut rng, &[[0xff, 0xff, 0xff]]);
    panel.text((8, 34, 340, 150), &mut rng, &[[0x22, 0x22, 0x22]]);
    panel.fill(250, 200, 90, 28, [0x3a, 0x6e, 0xa5]);
    let (ppm, pgc) = upload(&conn, root, &panel)?;
    let (fw, fh) = (480u16, 320u16);
    let mut photo = Image::new(usize::from(fw), usize::from(fh), [0, 0, 0]);
    photo.photo((0, 0, usize::from(fw), usize::from(fh)), &mut rng);
    let (fpm, fgc) = upload(&conn, root, &photo)?;
    let pwin = picture_window(&conn, root, ppm, (1000, 140, pw, ph))?;
    let fwin = picture_window(&conn, root, fpm, (1250, 640, fw, fh))?;
    conn.map_window(pwin)?;
    sync(&conn)?;
    let mut xterm = Command::new("xterm");
    xterm
        .args(["-display", display, "-geometry", "110x36+40+60"])
        .args(["-e", "sh", "-c", XTERM_LOOP])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _xterm = Proc::spawn("xterm", &mut xterm, false)?;
    let t0 = Instant::now();
    let _ = started.send(Ok(t0));
    let total = length.as_secs_f64();
    let mut at = (1000i32, 140i32);
    let mut photo_state = 0; // 0 hidden, 1 shown, 2 moved, 3 closed
    while !stop.load(Ordering::Relaxed) {
        let f = t0.elapsed().as_secs_f64() / total;
        let pos = if (0.1..0.4).contains(&f) {
            let a = (f - 0.1) / 0.3 * std::f64::consts::TAU;
            (
                1000 + (300.0 * a.sin()) as i32,
                340 - (200.0 * a.cos()) as i32,
            )
        } else if (0.6..0.8).contains(&f) {
            let s = ((f - 0.6) / 0.2 * 2.0 * std::f64::consts::PI).sin();
            (700 + (500.0 * s) as i32, 300)
        } else {
            at
        };
        if pos != at {
            at = pos;
            conn.configure_window(pwin, &ConfigureWindowAux::new().x(at.0).y(at.1))?;
        }
        let want = match f {
            f if f >= 0.8 => 3,
            f if f >= 0.55 => 2,
            f if f >= 0.25 => 1,
            _ => 0,
        };
        while photo_state < want {
            photo_state += 1;
            match photo_state {
                1 => conn.map_window(fwin)?,
                2 => conn.configure_window(fwin, &ConfigureWindowAux::new().x(650).y(620))?,
                _ => conn.unmap_window(fwin)?,
            };
        }
        conn.flush()?;
        // A drag at 50 Hz.
        std::thread::sleep(Duration::from_millis(20));
    }
    conn.destroy_window(pwin)?;
    conn.destroy_window(fwin)?;
    for pm in [ppm, fpm] {
        conn.free_pixmap(pm)?;
    }
    for gc in [pgc, fgc] {
        conn.free_gc(gc)?;
    }
    sync(&conn)
}

// ---------------------------------------------------------------------
// The byte-counting forwarder

/// A stream counting the bytes read from it.
struct Counted {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        this.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A loopback TCP forwarder to `target` counting the bytes each way
/// (`copy_bidirectional`, TCP_NODELAY on both legs), live.
struct Forwarder {
    addr: SocketAddr,
    /// Client → server, server → client.
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    accepted: Arc<Mutex<Vec<Instant>>>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Forwarder {
    async fn start(target: SocketAddr) -> Result<Forwarder> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let f = Forwarder {
            addr,
            up: Arc::default(),
            down: Arc::default(),
            accepted: Arc::default(),
            tasks: Arc::default(),
        };
        let (up, down) = (Arc::clone(&f.up), Arc::clone(&f.down));
        let (accepted, tasks) = (Arc::clone(&f.accepted), Arc::clone(&f.tasks));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if let Ok(mut a) = accepted.lock() {
                    a.push(Instant::now());
                }
                let (up, down) = (Arc::clone(&up), Arc::clone(&down));
                let conn = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let mut a = Counted {
                        inner: client,
                        read: up,
                    };
                    let mut b = Counted {
                        inner: server,
                        read: down,
                    };
                    let _ =
                        tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, 1 << 16, 1 << 16)
                            .await;
                });
                if let Ok(mut t) = tasks.lock() {
                    t.push(conn.abort_handle());
                }
            }
        });
        if let Ok(mut t) = f.tasks.lock() {
            t.push(accept.abort_handle());
        }
        Ok(f)
    }

    /// Bytes so far, both directions together.
    fn bytes(&self) -> u64 {
        self.up.load(Ordering::Relaxed) + self.down.load(Ordering::Relaxed)
    }

    fn connections(&self) -> usize {
        self.accepted.lock().map_or(0, |a| a.len())
    }

    /// Waits for connection number `n` (0-based); when it was accepted.
    async fn accepted(&self, n: usize) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if let Some(at) = self.accepted.lock().ok().and_then(|a| a.get(n).copied()) {
                return Ok(at);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no connection to the forwarder within {STEP:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Ok(t) = self.tasks.lock() {
            t.iter().for_each(|h| h.abort());
        }
    }
}

// ---------------------------------------------------------------------
// Measuring

/// CPU seconds of some processes and forwarded bytes at one instant.
#[derive(Debug, Clone)]
struct Snap {
    at: Instant,
    cpu: Vec<f64>,
    bytes: u64,
    /// The sharer's threads (by name).
    threads: std::collections::BTreeMap<String, f64>,
}

fn snap(pids: &[u32], fwd: &Forwarder) -> Result<Snap> {
    let cpu = pids.iter().map(|&p| cpu_secs(p)).collect::<Result<_>>()?;
    Ok(Snap {
        at: Instant::now(),
        cpu,
        bytes: fwd.bytes(),
        threads: pids.first().map(|&p| thread_cpu(p)).unwrap_or_default(),
    })
}

/// What one sharer did in one window.
#[derive(Debug, Clone, Default)]
struct Run {
    secs: f64,
    /// Updates (Lifeline: frames, i.e. captures that sent tiles; VNC:
    /// FramebufferUpdates) the client applied in the window.
    updates: u64,
    /// Lifeline: tiles in them.
    tiles: u64,
    /// Pixels they carried (Lifeline: tiles; VNC: pixel rectangles).
    px: u64,
    /// Throughput runs: the updates as complete frames (each update
    /// counts as the share of the changing tiles' area it carried, at
    /// most 1).
    eq: Option<f64>,
    /// Desktop runs: KiB/s in each part of the script ([`SEGMENTS`]).
    segments: Vec<f64>,
    /// Lifeline: tiles and their bytes by encoding (solid, PNG, JPEG, zlib).
    kinds: [(u64, u64); 4],
    /// CPU seconds of the sharer's threads, by name, most first.
    threads: Vec<(String, f64)>,
    /// VNC: the rectangles by encoding the client saw (whole run).
    encodings: String,
    /// Bytes through the forwarder in the window, both directions.
    bytes: u64,
    /// CPU seconds in the window: the sharer (agent / x11vnc), Xvfb, the
    /// relay or client (broker / Python), this process (operator client,
    /// forwarder, X drivers).
    cpu: [f64; 4],
    /// Most VmRSS of the sharer seen in the window.
    rss: u64,
    /// Driver: redraws per second in the window.
    draws: f64,
    /// Lifeline: updates sent as more than one message.
    split: u64,
    /// How loaded the machine was.
    load: String,
}

impl Run {
    fn from(s0: &Snap, s1: &Snap) -> Run {
        let d = |i: usize| s1.cpu.get(i).unwrap_or(&0.0) - s0.cpu.get(i).unwrap_or(&0.0);
        let mut threads: Vec<(String, f64)> = s1
            .threads
            .iter()
            .map(|(n, c)| (n.clone(), c - s0.threads.get(n).unwrap_or(&0.0)))
            .filter(|(_, c)| *c > 0.0)
            .collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        Run {
            threads,
            secs: (s1.at - s0.at).as_secs_f64(),
            bytes: s1.bytes - s0.bytes,
            cpu: [d(0), d(1), d(2), d(3)],
            load: load(),
            ..Run::default()
        }
    }

    fn rate(&self) -> f64 {
        self.updates as f64 / self.secs.max(1e-9)
    }

    /// Complete frames (throughput runs), else updates.
    fn frames(&self) -> f64 {
        self.eq.unwrap_or(self.updates as f64)
    }

    fn frame_rate(&self) -> f64 {
        self.frames() / self.secs.max(1e-9)
    }

    /// CPU seconds of process `i` per update.
    fn cpu_per_update(&self, i: usize) -> f64 {
        self.cpu[i] / (self.updates.max(1) as f64)
    }

    /// Sharer CPU seconds per complete frame (throughput runs).
    fn cpu_per_frame(&self) -> f64 {
        self.cpu[0] / self.frames().max(1e-9)
    }

    /// Frames one core of sharer CPU makes.
    fn per_core(&self) -> f64 {
        1.0 / self.cpu_per_frame().max(1e-9)
    }
}

/// An update as the operator client received it.
#[derive(Debug, Clone, Copy)]
struct Got {
    at: Instant,
    captured_us: u64,
    tiles: usize,
    px: u64,
    /// Tiles and bytes by encoding: solid, PNG, JPEG, zlib.
    kinds: [(u64, u64); 4],
}

/// Reads the share's messages (applied to its picture) until `until`,
/// noting the updates.
async fn follow(
    share: &mut ScreenSession<Client>,
    until: Instant,
    got: &mut Vec<Got>,
    dump: Option<&Path>,
) -> Result<()> {
    let until = tokio::time::Instant::from_std(until);
    loop {
        match timeout_at(until, share.next()).await {
            Err(_) => return Ok(()),
            Ok(msg) => match msg? {
                None => bail!(
                    "the screen stream closed: {:?}",
                    share.closed().map(|e| e.reason.clone())
                ),
                Some(Message::Update {
                    captured_us, tiles, ..
                }) => {
                    if let Some(dir) = dump {
                        dump_tiles(dir, got.len(), &tiles)?;
                    }
                    got.push(Got {
                        at: Instant::now(),
                        captured_us,
                        tiles: tiles.len(),
                        px: tiles
                            .iter()
                            .map(|t| u64::from(t.width) * u64::from(t.height))
                            .sum(),
                        kinds: kinds(&tiles),
                    })
                }
                Some(_) => {}
            },
        }
    }
}

/// Writes the PNG tiles of update number `n` to `dir`, `NNNNNN-TTTT.png`
/// (for bench/screen/tile_sizes.py).
fn dump_tiles(
    dir: &Path,
    n: usize,
    tiles: &[lifeline_operator::screen::format::Tile],
) -> Result<()> {
    use lifeline_operator::screen::format::TileData;
    for (i, t) in tiles.iter().enumerate() {
        if let TileData::Png(png) = &t.data {
            std::fs::write(dir.join(format!("{n:06}-{i:04}.png")), png)?;
        }
    }
    Ok(())
}

/// Tiles and their image bytes by encoding: solid, PNG, JPEG, zlib.
fn kinds(tiles: &[lifeline_operator::screen::format::Tile]) -> [(u64, u64); 4] {
    use lifeline_operator::screen::format::TileData;
    let mut k = [(0, 0); 4];
    for t in tiles {
        let (i, n) = match &t.data {
            TileData::Solid(_) => (0, 3),
            TileData::Png(b) => (1, b.len()),
            TileData::Jpeg(b) => (2, b.len()),
            TileData::Zlib(b) => (3, b.len()),
        };
        k[i].0 += 1;
        k[i].1 += n as u64;
    }
    k
}

/// Counts the Lifeline updates received in `[a, b)` into `run`: a frame
/// (one capture, the messages with the same capture time) is an update;
/// also its tiles and pixels, and the frames cut in more than one message.
/// With `set` (the changing area), the complete-frame count.
fn count_frames(run: &mut Run, got: &[Got], a: Instant, b: Instant, set: Option<u64>) {
    let mut px = Vec::new();
    let mut last = None;
    let mut parts = 0;
    for g in got.iter().filter(|g| g.at >= a && g.at < b) {
        if last != Some(g.captured_us) {
            px.push(0);
            parts = 0;
            last = Some(g.captured_us);
        }
        parts += 1;
        if parts == 2 {
            run.split += 1;
        }
        run.tiles += g.tiles as u64;
        for (k, g) in run.kinds.iter_mut().zip(g.kinds) {
            k.0 += g.0;
            k.1 += g.1;
        }
        if let Some(p) = px.last_mut() {
            *p += g.px;
        }
    }
    count_updates(run, &px, set);
}

/// Counts updates carrying `px` pixels each into `run`.
fn count_updates(run: &mut Run, px: &[u64], set: Option<u64>) {
    run.updates = px.len() as u64;
    run.px = px.iter().sum();
    run.eq = set.map(|s| px.iter().map(|&p| p.min(s) as f64 / s as f64).sum());
}

/// Pixels of the tiles at `tiles` (clipped to the display).
fn set_area(tiles: &[(i16, i16)]) -> u64 {
    tiles
        .iter()
        .map(|&(x, y)| {
            let w = (WIDTH - x as u16).min(TILE);
            let h = (HEIGHT - y as u16).min(TILE);
            u64::from(w) * u64::from(h)
        })
        .sum()
}

/// Samples `pid`'s VmRSS every 250 ms until `until`; the most seen.
async fn rss_until(pid: u32, until: Instant) -> u64 {
    let mut most = 0;
    while Instant::now() < until {
        most = most.max(rss(pid).unwrap_or(0));
        let next = (Instant::now() + Duration::from_millis(250)).min(until);
        sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    most.max(rss(pid).unwrap_or(0))
}

/// Samples `pid`'s VmRSS and the forwarded bytes every 100 ms until
/// `until`: the most RSS seen, and the bytes over time.
async fn watch(pid: u32, fwd: &Forwarder, until: Instant) -> (u64, Vec<(Instant, u64)>) {
    let mut most = 0;
    let mut bytes = Vec::new();
    loop {
        most = most.max(rss(pid).unwrap_or(0));
        bytes.push((Instant::now(), fwd.bytes()));
        if Instant::now() >= until {
            return (most, bytes);
        }
        let next = (Instant::now() + Duration::from_millis(100)).min(until);
        sleep_until(tokio::time::Instant::from_std(next)).await;
    }
}

/// The parts of the desktop script (fractions of its length) and the tail.
const SEGMENTS: [(f64, f64, &str); 8] = [
    (0.0, 0.1, "xterm"),
    (0.1, 0.25, "+drag"),
    (0.25, 0.4, "+drag, photo shown"),
    (0.4, 0.55, "xterm"),
    (0.55, 0.6, "photo moved"),
    (0.6, 0.8, "+drag"),
    (0.8, 1.0, "photo closed, xterm"),
    (1.0, f64::INFINITY, "tail"),
];

/// KiB/s through the forwarder in each of [`SEGMENTS`].
fn segments(bytes: &[(Instant, u64)], started: Instant, plan: &Plan) -> Vec<f64> {
    let length = plan.desk.as_secs_f64();
    let at = |f: f64| {
        let secs = if f.is_finite() {
            f * length
        } else {
            length + plan.tail.as_secs_f64()
        };
        started + Duration::from_secs_f64(secs)
    };
    // The bytes counted by the sample nearest to `t`.
    let count = |t: Instant| {
        bytes
            .iter()
            .min_by_key(|(s, _)| if *s > t { *s - t } else { t - *s })
            .map_or(0, |&(_, b)| b)
    };
    SEGMENTS
        .iter()
        .map(|&(f0, f1, _)| {
            let (t0, t1) = (at(f0), at(f1));
            let secs = (t1 - t0).as_secs_f64().max(1e-9);
            count(t1).saturating_sub(count(t0)) as f64 / 1024.0 / secs
        })
        .collect()
}

fn segments_text(r: &Run) -> String {
    let parts: Vec<String> = SEGMENTS
        .iter()
        .zip(&r.segments)
        .map(|((_, _, name), kib)| format!("{name} {kib:.0}"))
        .collect();
    format!("      KiB/s by part of the script: {}", parts.join(" | "))
}

// ---------------------------------------------------------------------
// Lifeline: broker and agent processes, the operator through a forwarder

struct Lifeline {
    // Dropped in this order: the agent before the broker.
    agent: Proc,
    broker: Proc,
    ctl: Arc<Client>,
    sid: String,
    fwd: Forwarder,
    fwd_ep: Endpoint,
    dir: tempfile::TempDir,
}

fn lifeline(args: &[&str], config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.args(args).arg("--config").arg(config);
    c.env_remove("LIFELINE_CONFIG").env("RUST_LOG", "warn");
    c
}

/// Starts `lifeline broker run` with the bench operator; its process, its
/// address and certificate fingerprint.
fn start_broker(dir: &Path) -> Result<(Proc, String, String)> {
    let config = dir.join("broker.toml");
    let toml = "[broker]\nlisten = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\n\
                data_dir = \"broker-data\"\n";
    std::fs::write(&config, toml)?;
    let args = [
        "broker",
        "add-operator",
        "--username",
        USERNAME,
        "--name",
        "Bench",
    ];
    let mut add = lifeline(&args, &config);
    add.arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut add = add.spawn()?;
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().context("add-operator stdin")?;
        stdin.write_all(format!("{PASSWORD}\n").as_bytes())?;
    }
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(s) = add.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = add.kill();
            let _ = add.wait();
            bail!("lifeline broker add-operator took longer than {STEP:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("lifeline broker add-operator failed ({status})");
    }
    let (out, log) = (dir.join("broker.out"), dir.join("broker.log"));
    let mut cmd = lifeline(&["broker", "run"], &config);
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&log)?);
    let mut broker = Proc::spawn("the broker", &mut cmd, false)?;
    let (addr, fp) = poll_for("the broker's banner", || {
        let text = std::fs::read_to_string(&out)?;
        let addr = text
            .lines()
            .find_map(|l| l.strip_prefix("Broker listening on ")?.split(' ').next());
        let fp = text
            .lines()
            .find_map(|l| l.strip_prefix("Certificate fingerprint: "));
        if let (Some(a), Some(f)) = (addr, fp) {
            return Ok(Some((a.to_string(), f.trim().to_string())));
        }
        broker.alive_or(&log).map(|()| None)
    })?;
    Ok((broker, addr, fp))
}

impl Lifeline {
    async fn start(display: &str) -> Result<Lifeline> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let wasm = repo().join("plugins/screen/plugin.wasm");
        if !wasm.exists() {
            bail!("{} is missing: run scripts/build-plugins", wasm.display());
        }
        let plugin = d.join("plugins/screen");
        std::fs::create_dir_all(&plugin)?;
        for f in ["plugin.toml", "plugin.wasm"] {
            std::fs::copy(repo().join("plugins/screen").join(f), plugin.join(f))?;
        }
        let (broker, addr, fp) = start_broker(d)?;
        let ep = crate::endpoint(addr.clone(), Fingerprint::parse(&fp)?);
        let ctl = crate::login(&ep).await?;
        let inv = step("invite", ctl.invite("SCREEN-BENCH", "Customer", None)).await?;
        std::fs::write(
            d.join("policy.toml"),
            "[policy]\n[policy.capabilities]\n\"screen.capture\" = \"allow\"\n\"input.control\" = \"allow\"\n",
        )?;
        let agent_toml = d.join("agent.toml");
        std::fs::write(
            &agent_toml,
            format!(
                "[agent]\ndata_dir = \"agent-data\"\nconsent_timeout_secs = 30\npolicy = \"policy.toml\"\n\
                 [connection]\nbroker = \"{addr}\"\nserver_name = \"localhost\"\nfingerprint = \"{fp}\"\n\
                 [plugins]\ndirs = [\"plugins\"]\nallow_unsigned = true\nhot_reload = false\n\
                 [screen]\ndisplay = \"{display}\"\n"
            ),
        )?;
        let mut cmd = lifeline(&["agent", "join"], &agent_toml);
        cmd.arg(&inv.connection_id)
            // The customer's terminal: kept open, never typed into.
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(d.join("agent.out"))?)
            .stderr(std::fs::File::create(d.join("agent.log"))?);
        let mut agent = Proc::spawn("the agent", &mut cmd, false)?;
        if let Err(e) = step("the agent to join", ctl.wait_ready(&inv.session_id, STEP)).await {
            let _ = agent.alive();
            bail!("{e:#}; agent: {}", tail_of(&d.join("agent.log")));
        }
        let broker_addr: SocketAddr = addr.parse()?;
        let fwd = Forwarder::start(broker_addr).await?;
        let fwd_ep = crate::endpoint(fwd.addr.to_string(), Fingerprint::parse(&fp)?);
        Ok(Lifeline {
            agent,
            broker,
            ctl,
            sid: inv.session_id,
            fwd,
            fwd_ep,
            dir,
        })
    }

    /// A new operator connection through the forwarder, logged in and
    /// attached, sharing the whole display at `quality` and `fps`, with
    /// its first picture.
    async fn share(&mut self, quality: Quality, fps: u8) -> Result<ScreenSession<Client>> {
        let log = self.dir.path().join("agent.log");
        self.agent.alive_or(&log)?;
        let mut c = step("operator connect", Client::connect(&self.fwd_ep)).await?;
        step("operator login", c.login(USERNAME, PASSWORD)).await?;
        step("attach", c.attach(&self.sid)).await?;
        let all = MonitorChoice::All;
        let mut s = step(
            "screen share",
            ScreenSession::share(c, &self.sid, all, quality),
        )
        .await?;
        step("the first picture", s.first_picture()).await?;
        if fps != DEFAULT_FPS {
            let set = Input::Settings {
                quality,
                monitor: all,
                max_fps: fps,
            };
            step("settings", s.send_input(&[set])).await?;
        }
        Ok(s)
    }

    async fn stop(&self, share: ScreenSession<Client>) -> Result<()> {
        let end = step("screen stop", share.stop()).await?;
        if end.dropped > 0 {
            println!("      (the agent dropped {} frames)", end.dropped);
        }
        Ok(())
    }

    fn pids(&self, xvfb: u32) -> [u32; 4] {
        [
            self.agent.pid(),
            xvfb,
            self.broker.pid(),
            std::process::id(),
        ]
    }

    async fn shutdown(self) {
        let _ = step("end", self.ctl.end(&self.sid, "benchmark over")).await;
        // The agent leaves when the session ends; Proc's drop reaps it.
        let mut agent = self.agent;
        let deadline = Instant::now() + Duration::from_secs(5);
        while agent.alive().is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------
// x11vnc and the VNC client

/// The Python with vncdotool: `target/bench-venv`, made when missing.
fn python() -> Result<PathBuf> {
    let venv = repo().join("target/bench-venv");
    let py = venv.join("bin/python");
    let works = |py: &Path| {
        let mut c = Command::new(py);
        c.args(["-c", "import vncdotool, twisted, PIL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        run_bounded(&mut c, STEP).is_ok_and(|s| s.success())
    };
    if py.exists() && works(&py) {
        return Ok(py);
    }
    println!(
        "  making the VNC client's venv in {} (once; pip needs the network)",
        venv.display()
    );
    if !py.exists() {
        let mut c = Command::new("python3");
        c.arg("-m").arg("venv").arg(&venv);
        let s = run_bounded(&mut c, Duration::from_secs(120))?;
        if !s.success() {
            bail!("python3 -m venv {} failed ({s})", venv.display());
        }
    }
    let mut c = Command::new(&py);
    c.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
    ])
    .arg(repo().join("bench/screen/requirements.txt"));
    let s = run_bounded(&mut c, Duration::from_secs(600))?;
    if !s.success() || !works(&py) {
        bail!(
            "pip install -r bench/screen/requirements.txt into {} failed",
            venv.display()
        );
    }
    Ok(py)
}

struct Vnc {
    fwd: Forwarder,
    proc: Proc,
    py: PathBuf,
}

impl Vnc {
    /// x11vnc on `display` as bench/screen/README.md starts it (defaults
    /// for everything that shapes performance), with a forwarder before it.
    async fn start(display: &str, py: &Path, dir: &Path) -> Result<Vnc> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join(format!("x11vnc-{port}.log"));
        let file = std::fs::File::create(&log)?;
        let mut cmd = Command::new("x11vnc");
        cmd.args(["-display", display, "-rfbport", &port.to_string()])
            .args([
                "-localhost",
                "-nopw",
                "-forever",
                "-shared",
                "-norc",
                "-quiet",
            ])
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let mut proc = Proc::spawn("x11vnc", &mut cmd, true)?;
        let wanted = format!("PORT={port}");
        poll_for("x11vnc to listen", || {
            if std::fs::read_to_string(&log)?.contains(&wanted) {
                return Ok(Some(()));
            }
            proc.alive_or(&log).map(|()| None)
        })?;
        let fwd = Forwarder::start(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        Ok(Vnc {
            fwd,
            proc,
            py: py.to_path_buf(),
        })
    }

    fn client(&self, args: &[String]) -> Result<tokio::process::Child> {
        let mut c = tokio::process::Command::new(&self.py);
        c.arg(repo().join("bench/screen/vnc_client.py"))
            .args(args)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.fwd.addr.port().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(c.spawn()?)
    }
}

/// The client's JSON line, once it exits (within `limit`).
async fn client_result(child: tokio::process::Child, limit: Duration) -> Result<serde_json::Value> {
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("the VNC client did not finish within {limit:?}"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).with_context(|| {
        format!(
            "the VNC client's output {line:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = v.get("error") {
        bail!("the VNC client: {e}");
    }
    Ok(v)
}

/// The pixels of each of the client's updates applied within `[from,
/// to)` seconds of its connect.
fn updates_between(v: &serde_json::Value, from: f64, to: f64) -> Result<Vec<u64>> {
    let times = v["update_ms"]
        .as_array()
        .context("no update_ms from the VNC client")?;
    let px = v["update_px"]
        .as_array()
        .context("no update_px from the VNC client")?;
    Ok(times
        .iter()
        .zip(px)
        .filter_map(|(t, p)| Some((t.as_f64()?, p.as_u64()?)))
        .filter(|&(ms, _)| ms >= from * 1e3 && ms < to * 1e3)
        .map(|(_, p)| p)
        .collect())
}

// ---------------------------------------------------------------------
// The phases

/// Lifeline, throughput: the driver redraws `tiles` every `period`.
async fn lifeline_fps(
    ll: &mut Lifeline,
    x: &Xvfb,
    plan: &Plan,
    tiles: &[(i16, i16)],
    period: Duration,
    quality: Quality,
) -> Result<Run> {
    let driver = Driver::start(&x.display, tiles.to_vec(), period)?;
    let mut share = ll.share(quality, FAST_FPS).await?;
    let pids = ll.pids(x.pid);
    let a = Instant::now() + plan.warm;
    let b = a + plan.window;
    let mut got = Vec::new();
    let sample = async {
        sleep_until(tokio::time::Instant::from_std(a)).await;
        let s0 = snap(&pids, &ll.fwd)?;
        let d0 = driver.draws();
        let rss = rss_until(pids[0], b).await;
        let s1 = snap(&pids, &ll.fwd)?;
        Ok::<_, anyhow::Error>((s0, s1, rss, driver.draws() - d0))
    };
    let (followed, sampled) = tokio::join!(follow(&mut share, b, &mut got, None), sample);
    followed?;
    let (s0, s1, rss, draws) = sampled?;
    driver.finish()?;
    ll.stop(share).await?;
    let mut run = Run::from(&s0, &s1);
    count_frames(&mut run, &got, s0.at, s1.at, Some(set_area(tiles)));
    run.rss = rss;
    run.draws = draws as f64 / run.secs;
    Ok(run)
}

/// x11vnc, throughput, with the same driver.
async fn vnc_fps(
    x: &Xvfb,
    py: &Path,
    dir: &Path,
    plan: &Plan,
    tiles: &[(i16, i16)],
    period: Duration,
) -> Result<Run> {
    let driver = Driver::start(&x.display, tiles.to_vec(), period)?;
    let vnc = Vnc::start(&x.display, py, dir).await?;
    let n = vnc.fwd.connections();
    let total = plan.warm + plan.window + Duration::from_millis(500);
    let child = vnc.client(&[
        "updates".into(),
        "--seconds".into(),
        format!("{:.3}", total.as_secs_f64()),
    ])?;
    let pids = [
        vnc.proc.pid(),
        x.pid,
        child.id().unwrap_or_default(),
        std::process::id(),
    ];
    let t0 = vnc.fwd.accepted(n).await?;
    let a = t0 + plan.warm;
    let b = a + plan.window;
    sleep_until(tokio::time::Instant::from_std(a)).await;
    let s0 = snap(&pids, &vnc.fwd)?;
    let d0 = driver.draws();
    let rss = rss_until(pids[0], b).await;
    let s1 = snap(&pids, &vnc.fwd)?;
    let draws = driver.draws() - d0;
    let v = client_result(child, total + GRACE).await?;
    driver.finish()?;
    let mut run = Run::from(&s0, &s1);
    let from = (s0.at - t0).as_secs_f64();
    let px = updates_between(&v, from, from + run.secs)?;
    count_updates(&mut run, &px, Some(set_area(tiles)));
    run.encodings = v["rects_by_encoding"].to_string();
    run.rss = rss;
    run.draws = draws as f64 / run.secs;
    Ok(run)
}

/// Lifeline, the scripted desktop.
async fn lifeline_desk(
    ll: &mut Lifeline,
    x: &Xvfb,
    plan: &Plan,
    quality: Quality,
    fps: u8,
) -> Result<Run> {
    let mut share = ll.share(quality, fps).await?;
    follow(
        &mut share,
        Instant::now() + Duration::from_millis(500),
        &mut Vec::new(),
        None,
    )
    .await?;
    let pids = ll.pids(x.pid);
    let mut got = Vec::new();
    let s0 = snap(&pids, &ll.fwd)?;
    let script = DeskScript::start(&x.display, plan.desk)?;
    let b = script.started + plan.desk + plan.tail;
    let sample = async {
        let (rss, bytes) = watch(pids[0], &ll.fwd, b).await;
        Ok::<_, anyhow::Error>((snap(&pids, &ll.fwd)?, rss, bytes))
    };
    // LIFELINE_BENCH_SCREEN_TILES=DIR: the PNG tiles of the lossless run
    // at the default rate go to DIR (bench/screen/tile_sizes.py).
    let dump = std::env::var_os("LIFELINE_BENCH_SCREEN_TILES")
        .map(PathBuf::from)
        .filter(|_| quality == Quality::Lossless && fps == DEFAULT_FPS);
    if let Some(d) = &dump {
        std::fs::create_dir_all(d)?;
    }
    let followed = follow(&mut share, b, &mut got, dump.as_deref());
    let (followed, sampled) = tokio::join!(followed, sample);
    followed?;
    let (s1, rss, bytes) = sampled?;
    let started = script.started;
    script.finish()?;
    ll.stop(share).await?;
    let mut run = Run::from(&s0, &s1);
    count_frames(&mut run, &got, s0.at, s1.at, None);
    run.rss = rss;
    run.segments = segments(&bytes, started, plan);
    Ok(run)
}

/// x11vnc, the scripted desktop.
async fn vnc_desk(x: &Xvfb, py: &Path, dir: &Path, plan: &Plan) -> Result<Run> {
    let vnc = Vnc::start(&x.display, py, dir).await?;
    let n = vnc.fwd.connections();
    // The client connects, takes the whole screen, and settles before
    // the script starts, as Lifeline's operator does.
    let lead = Duration::from_millis(1500);
    let total = lead + plan.desk + plan.tail + Duration::from_millis(500);
    let child = vnc.client(&[
        "updates".into(),
        "--seconds".into(),
        format!("{:.3}", total.as_secs_f64()),
    ])?;
    let pids = [
        vnc.proc.pid(),
        x.pid,
        child.id().unwrap_or_default(),
        std::process::id(),
    ];
    let t0 = vnc.fwd.accepted(n).await?;
    sleep_until(tokio::time::Instant::from_std(t0 + lead)).await;
    let s0 = snap(&pids, &vnc.fwd)?;
    let script = DeskScript::start(&x.display, plan.desk)?;
    let b = script.started + plan.desk + plan.tail;
    let (rss, bytes) = watch(pids[0], &vnc.fwd, b).await;
    let s1 = snap(&pids, &vnc.fwd)?;
    let v = client_result(child, total + GRACE).await?;
    let started = script.started;
    script.finish()?;
    let mut run = Run::from(&s0, &s1);
    let from = (s0.at - t0).as_secs_f64();
    let px = updates_between(&v, from, from + run.secs)?;
    count_updates(&mut run, &px, None);
    run.encodings = v["rects_by_encoding"].to_string();
    run.rss = rss;
    run.segments = segments(&bytes, started, plan);
    Ok(run)
}

/// Click-to-pixels samples in ms, and the clicks that timed out.
#[derive(Debug, Default)]
struct Clicks {
    ms: Vec<f64>,
    timeouts: usize,
    load: String,
}

impl Clicks {
    fn pct(&self, q: f64) -> f64 {
        let mut s: Vec<Duration> = self
            .ms
            .iter()
            .map(|&m| Duration::from_secs_f64(m / 1e3))
            .collect();
        s.sort();
        crate::percentile(&s, q).as_secs_f64() * 1e3
    }

    fn max(&self) -> f64 {
        self.ms.iter().copied().fold(0.0, f64::max)
    }

    fn text(&self) -> String {
        format!(
            "p50 {:.1} / p90 {:.1} / max {:.1} ms ({} samples{})",
            self.pct(0.5),
            self.pct(0.9),
            self.max(),
            self.ms.len(),
            if self.timeouts > 0 {
                format!(", {} timed out", self.timeouts)
            } else {
                String::new()
            }
        )
    }
}

fn click_area(fb: &lifeline_operator::screen::Framebuffer) -> Vec<u8> {
    let (x, y, w, h) = CLICK;
    let width = fb.width() as usize;
    let rgb = fb.rgb();
    let mut out = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    for row in y as usize..y as usize + usize::from(h) {
        let start = (row * width + x as usize) * 3;
        out.extend_from_slice(
            rgb.get(start..start + usize::from(w) * 3)
                .unwrap_or_default(),
        );
    }
    out
}

/// Lifeline, click → changed pixels in the operator's picture.
async fn lifeline_clicks(
    ll: &mut Lifeline,
    x: &Xvfb,
    plan: &Plan,
    quality: Quality,
    fps: u8,
) -> Result<Clicks> {
    let target = ClickTarget::start(&x.display)?;
    let mut share = ll.share(quality, fps).await?;
    let (cx, cy) = (
        (CLICK.0 + CLICK.2 as i16 / 2) as u32,
        (CLICK.1 + CLICK.3 as i16 / 2) as u32,
    );
    let at = Input::PointerMove { x: cx, y: cy };
    step("pointer", share.send_input(std::slice::from_ref(&at))).await?;
    let mut out = Clicks::default();
    let mut rng = StdRng::seed_from_u64(30);
    for _ in 0..plan.clicks {
        // At a random phase of the frame timer (a fixed gap would be in
        // step with it).
        let jitter = Duration::from_secs_f64(rng.gen_range(0.0..plan.jitter.as_secs_f64()));
        follow(
            &mut share,
            Instant::now() + plan.gap + jitter,
            &mut Vec::new(),
            None,
        )
        .await?;
        let before = click_area(share.framebuffer());
        let t0 = Instant::now();
        let click = [
            at.clone(),
            Input::Button {
                button: 1,
                pressed: true,
            },
            Input::Button {
                button: 1,
                pressed: false,
            },
        ];
        step("click", share.send_input(&click)).await?;
        let deadline = tokio::time::Instant::from_std(t0 + CLICK_TIMEOUT);
        loop {
            match timeout_at(deadline, share.next()).await {
                Err(_) => {
                    out.timeouts += 1;
                    break;
                }
                Ok(msg) => {
                    msg?.context("the screen stream closed")?;
                    if click_area(share.framebuffer()) != before {
                        out.ms.push(t0.elapsed().as_secs_f64() * 1e3);
                        break;
                    }
                }
            }
        }
    }
    out.load = load();
    ll.stop(share).await?;
    let clicks = target.clicks();
    if clicks != plan.clicks as u64 {
        bail!("the target saw {clicks} clicks of {}", plan.clicks);
    }
    Ok(out)
}

/// x11vnc, the same with `vnc_client.py latency`.
async fn vnc_clicks(x: &Xvfb, py: &Path, dir: &Path, plan: &Plan) -> Result<Clicks> {
    let target = ClickTarget::start(&x.display)?;
    let vnc = Vnc::start(&x.display, py, dir).await?;
    let (cx, cy, w, h) = CLICK;
    let args: Vec<String> = [
        "latency".to_string(),
        "--count".into(),
        plan.clicks.to_string(),
        "--gap".into(),
        format!("{}", plan.gap.as_secs_f64()),
        "--jitter".into(),
        format!("{}", plan.jitter.as_secs_f64()),
        "--x".into(),
        cx.to_string(),
        "--y".into(),
        cy.to_string(),
        "--w".into(),
        w.to_string(),
        "--h".into(),
        h.to_string(),
    ]
    .into();
    let child = vnc.client(&args)?;
    let limit = (plan.gap + plan.jitter + CLICK_TIMEOUT) * plan.clicks as u32 + GRACE;
    let v = client_result(child, limit).await?;
    let ms: Vec<f64> = v["samples"]
        .as_array()
        .context("no samples from the VNC client")?
        .iter()
        .filter_map(|s| s.as_f64())
        .collect();
    let timeouts = v["timeouts"].as_u64().unwrap_or(0) as usize;
    let clicks = target.clicks();
    if clicks != plan.clicks as u64 {
        bail!("the target saw {clicks} clicks of {}", plan.clicks);
    }
    Ok(Clicks {
        ms,
        timeouts,
        load: load(),
    })
}

// ---------------------------------------------------------------------
// Report

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / 1048576.0)
}

fn kib(b: f64) -> String {
    format!("{:.1} KiB", b / 1024.0)
}

fn ms(secs: f64) -> String {
    format!("{:.2} ms", secs * 1e3)
}

/// Two lines on a throughput or desktop run.
fn describe(who: &str, r: &Run, relay: &str) -> String {
    let per = |v: f64| v / r.updates.max(1) as f64;
    let mut head = format!(
        "{} updates in {:.1} s = {:.1}/s",
        r.updates,
        r.secs,
        r.rate()
    );
    if r.eq.is_some() {
        head += &format!(" = {:.1} complete frames/s", r.frame_rate());
    }
    if r.split > 0 {
        head += &format!(" ({} cut in several messages)", r.split);
    }
    head += &format!("; {:.2} Mpx/update", per(r.px as f64) / 1e6);
    if r.tiles > 0 {
        head += &format!(" ({:.0} tiles)", per(r.tiles as f64));
    }
    head += &format!("; {} ({}/update)", mib(r.bytes), kib(per(r.bytes as f64)));
    let mut cpu = format!("CPU per update: {who} {}", ms(r.cpu_per_update(0)));
    if r.eq.is_some() {
        cpu += &format!(", {} per complete frame", ms(r.cpu_per_frame()));
    }
    cpu += &format!(
        " → {:.0}/s on one core; Xvfb {}, {relay} {}, bench {}; {who} VmRSS {}",
        r.per_core(),
        ms(r.cpu_per_update(1)),
        ms(r.cpu_per_update(2)),
        ms(r.cpu_per_update(3)),
        mib(r.rss)
    );
    if r.draws > 0.0 {
        cpu += &format!("; screen redrawn {:.0}/s", r.draws);
    }
    let mut out = format!("    {who}: {head}; {}\n      {cpu}", r.load);
    if r.threads.len() > 1 {
        let t: Vec<String> = r
            .threads
            .iter()
            .take(4)
            .map(|(n, c)| format!("{n} {}", ms(c / r.frames().max(1e-9))))
            .collect();
        out += &format!("\n      {who} threads per frame: {}", t.join(", "));
    }
    if r.tiles > 0 {
        let [solid, png, jpeg, zlib] = r.kinds;
        let avg = |k: (u64, u64)| k.1 as f64 / k.0.max(1) as f64;
        out += &format!(
            "\n      tiles: {} solid, {} zlib (avg {:.0} B), {} PNG (avg {:.0} B), {} JPEG (avg {:.0} B)",
            solid.0,
            zlib.0,
            avg(zlib),
            png.0,
            avg(png),
            jpeg.0,
            avg(jpeg)
        );
    }
    if !r.encodings.is_empty() {
        out += &format!("\n      rectangles (whole connection): {}", r.encodings);
    }
    if !r.segments.is_empty() {
        out += &format!("\n{}", segments_text(r));
    }
    out
}

fn fps_row(what: &str, target: f64, l: &Run, v: &Run) -> Row {
    let met = l.per_core() >= target && l.frame_rate() >= 0.95 * target;
    row(
        "6 screen",
        what,
        format!(
            "{:.1} complete frames/s received ({:.1} updates/s); one core: {:.0}/s ({} agent CPU/frame)",
            l.frame_rate(),
            l.rate(),
            l.per_core(),
            ms(l.cpu_per_frame())
        ),
        &format!(
            "x11vnc {:.1}/s ({:.1} updates/s); one core: {:.0}/s ({})",
            v.frame_rate(),
            v.rate(),
            v.per_core(),
            ms(v.cpu_per_frame())
        ),
        Some((&format!("≥ {target:.0} fps"), met)),
    )
}

fn bytes_text(r: &Run) -> String {
    format!(
        "{} for {} updates ({}/update)",
        mib(r.bytes),
        r.updates,
        kib(r.bytes as f64 / r.updates.max(1) as f64)
    )
}

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
        describe("agent", &l, "broker").replacen("agent", "agent (lossless, 30 fps)", 1)
    );
    let v = vnc_desk(x, py, dir, plan).await?;
    println!("{}", describe("x11vnc", &v, "client"));
    let l60 = lifeline_desk(ll, x, plan, Quality::Lossless, FAST_FPS).await?;
    println!(
        "{}",
        describe("agent", &l60, "broker").replacen("agent", "agent (lossless, 60 fps)", 1)
    );
    let auto = lifeline_desk(ll, x, plan, Quality::Auto, DEFAULT_FPS).await?;
    println!(
        "{}",
        describe("agent", &auto, "broker").replacen("agent", "agent (auto, 30 fps)", 1)
    );
    loads.extend([&l, &v, &l60, &auto].map(|r| r.load.clone()));
    let met = l.bytes <= v.bytes && l.updates >= v.updates;
    rows.push(row(
        "6 screen",
        &format!(
            "bytes on the wire (both ways, TLS incl.), {:.0} s scripted desktop + {:.0} s; lossless, default 30 fps",
            plan.desk.as_secs_f64(),
            plan.tail.as_secs_f64()
        ),
        bytes_text(&l),
        &format!("x11vnc (ZRLE, lossless) {}", bytes_text(&v)),
        Some(("≤ x11vnc's bytes with ≥ its updates", met)),
    ));
    rows.push(row(
        "6 screen",
        "the same, lossless at max_fps 60",
        bytes_text(&l60),
        "",
        None,
    ));
    rows.push(row(
        "6 screen",
        "the same, quality auto (the default), 30 fps",
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
        "    Lifeline (defaults: auto, 30 fps): {}; {}",
        lc.text(),
        lc.load
    );
    let vc = vnc_clicks(x, py, dir, plan).await?;
    println!("    x11vnc: {}; {}", vc.text(), vc.load);
    let lc60 = lifeline_clicks(ll, x, plan, Quality::Auto, FAST_FPS).await?;
    println!("    Lifeline (max_fps 60): {}; {}", lc60.text(), lc60.load);
    loads.extend([&lc, &vc, &lc60].map(|c| c.load.clone()));
    let p50 = lc.pct(0.5);
    rows.push(row(
        "6 screen",
        "click → changed pixels at the client (Lifeline's defaults: 30 fps)",
        lc.text(),
        &format!("x11vnc {}", vc.text()),
        Some((
            &format!("p50 ≤ {TARGET_P50_MS:.0} ms"),
            p50 <= TARGET_P50_MS && lc.timeouts == 0,
        )),
    ));
    rows.push(row(
        "6 screen",
        "the same, max_fps 60",
        lc60.text(),
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
