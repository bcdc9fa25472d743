//! What one measured window saw (`Run`), and counting frames, updates and bytes by phase.

use super::*;

/// What one sharer did in one window.
#[derive(Debug, Clone, Default)]
pub(super) struct Run {
    pub(super) secs: f64,
    /// Updates (Lifeline: frames, i.e. captures that sent tiles; VNC:
    /// FramebufferUpdates) the client applied in the window.
    pub(super) updates: u64,
    /// Lifeline: tiles in them.
    pub(super) tiles: u64,
    /// Pixels they carried (Lifeline: tiles; VNC: pixel rectangles).
    pub(super) px: u64,
    /// Throughput runs: the updates as complete frames (each update
    /// counts as the share of the changing tiles' area it carried, at
    /// most 1).
    pub(super) eq: Option<f64>,
    /// Desktop runs: KiB/s in each part of the script ([`SEGMENTS`]).
    pub(super) segments: Vec<f64>,
    /// Lifeline: tiles and their bytes by encoding (solid, PNG, JPEG, zlib).
    pub(super) kinds: [(u64, u64); 4],
    /// CPU seconds of the sharer's threads, by name, most first.
    pub(super) threads: Vec<(String, f64)>,
    /// VNC: the rectangles by encoding the client saw (whole run).
    pub(super) encodings: String,
    /// Bytes through the forwarder in the window, both directions.
    pub(super) bytes: u64,
    /// CPU seconds in the window: the sharer (agent / x11vnc), Xvfb, the
    /// relay or client (broker / Python), this process (operator client,
    /// forwarder, X drivers).
    pub(super) cpu: [f64; 4],
    /// Most VmRSS of the sharer seen in the window.
    pub(super) rss: u64,
    /// Driver: redraws per second in the window.
    pub(super) draws: f64,
    /// Lifeline: updates sent as more than one message.
    pub(super) split: u64,
    /// How loaded the machine was.
    pub(super) load: String,
}

impl Run {
    pub(super) fn from(s0: &Snap, s1: &Snap) -> Run {
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

    pub(super) fn rate(&self) -> f64 {
        self.updates as f64 / self.secs.max(1e-9)
    }

    /// Complete frames (throughput runs), else updates.
    pub(super) fn frames(&self) -> f64 {
        self.eq.unwrap_or(self.updates as f64)
    }

    pub(super) fn frame_rate(&self) -> f64 {
        self.frames() / self.secs.max(1e-9)
    }

    /// CPU seconds of process `i` per update.
    pub(super) fn cpu_per_update(&self, i: usize) -> f64 {
        self.cpu[i] / (self.updates.max(1) as f64)
    }

    /// Sharer CPU seconds per complete frame (throughput runs).
    pub(super) fn cpu_per_frame(&self) -> f64 {
        self.cpu[0] / self.frames().max(1e-9)
    }

    /// Frames one core of sharer CPU makes.
    pub(super) fn per_core(&self) -> f64 {
        1.0 / self.cpu_per_frame().max(1e-9)
    }
}

/// An update as the operator client received it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Got {
    pub(super) at: Instant,
    pub(super) captured_us: u64,
    pub(super) tiles: usize,
    pub(super) px: u64,
    /// Tiles and bytes by encoding: solid, PNG, JPEG, zlib.
    pub(super) kinds: [(u64, u64); 4],
}

/// Reads the share's messages (applied to its picture) until `until`,
/// noting the updates.
pub(super) async fn follow(
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
                Some(Message::Status { level, text }) => {
                    println!("      (the plugin's status, {level:?}: {text})");
                }
                Some(_) => {}
            },
        }
    }
}

/// Writes the PNG tiles of update number `n` to `dir`, `NNNNNN-TTTT.png`
/// (for bench/screen/tile_sizes.py).
pub(super) fn dump_tiles(
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
pub(super) fn kinds(tiles: &[lifeline_operator::screen::format::Tile]) -> [(u64, u64); 4] {
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
pub(super) fn count_frames(run: &mut Run, got: &[Got], a: Instant, b: Instant, set: Option<u64>) {
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
pub(super) fn count_updates(run: &mut Run, px: &[u64], set: Option<u64>) {
    run.updates = px.len() as u64;
    run.px = px.iter().sum();
    run.eq = set.map(|s| px.iter().map(|&p| p.min(s) as f64 / s as f64).sum());
}

/// Pixels of the tiles at `tiles` (clipped to the display).
pub(super) fn set_area(tiles: &[(i16, i16)]) -> u64 {
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
pub(super) async fn rss_until(pid: u32, until: Instant) -> u64 {
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
pub(super) async fn watch(pid: u32, fwd: &Forwarder, until: Instant) -> (u64, Vec<(Instant, u64)>) {
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
pub(super) const SEGMENTS: [(f64, f64, &str); 8] = [
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
pub(super) fn segments(bytes: &[(Instant, u64)], started: Instant, plan: &Plan) -> Vec<f64> {
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

pub(super) fn segments_text(r: &Run) -> String {
    let parts: Vec<String> = SEGMENTS
        .iter()
        .zip(&r.segments)
        .map(|((_, _, name), kib)| format!("{name} {kib:.0}"))
        .collect();
    format!("      KiB/s by part of the script: {}", parts.join(" | "))
}

// ---------------------------------------------------------------------
// Lifeline: broker and agent processes, the operator through a forwarder
