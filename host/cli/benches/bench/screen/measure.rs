//! The measurements: frames/s, the scripted desktop, click → pixels, for each sharer.

use super::*;

/// Lifeline, throughput: the driver redraws `tiles` every `period`.
pub(super) async fn lifeline_fps(
    ll: &mut Lifeline,
    x: &Xvfb,
    plan: &Plan,
    tiles: &[(i16, i16)],
    period: Duration,
    quality: Quality,
) -> Result<Run> {
    let driver = start_driver(&x.display, tiles.to_vec(), period)?;
    let mut share = ll.share(quality, FAST_FPS).await?;
    let pids = ll.pids(x.pid);
    let a = Instant::now() + plan.warm;
    let b = a + plan.window;
    let mut got = Vec::new();
    let sample = async {
        sleep_until(tokio::time::Instant::from_std(a)).await;
        let s0 = snap(&pids, &ll.fwd)?;
        let d0 = driver.count();
        let rss = rss_until(pids[0], b).await;
        let s1 = snap(&pids, &ll.fwd)?;
        Ok::<_, anyhow::Error>((s0, s1, rss, driver.count() - d0))
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
pub(super) async fn vnc_fps(
    x: &Xvfb,
    py: &Path,
    dir: &Path,
    plan: &Plan,
    tiles: &[(i16, i16)],
    period: Duration,
) -> Result<Run> {
    let driver = start_driver(&x.display, tiles.to_vec(), period)?;
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
    let d0 = driver.count();
    let rss = rss_until(pids[0], b).await;
    let s1 = snap(&pids, &vnc.fwd)?;
    let draws = driver.count() - d0;
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
pub(super) async fn lifeline_desk(
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
pub(super) async fn vnc_desk(x: &Xvfb, py: &Path, dir: &Path, plan: &Plan) -> Result<Run> {
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
pub(super) struct Clicks {
    pub(super) ms: Vec<f64>,
    pub(super) timeouts: usize,
    pub(super) load: String,
}

impl Clicks {
    pub(super) fn pct(&self, q: f64) -> f64 {
        let mut s: Vec<Duration> = self
            .ms
            .iter()
            .map(|&m| Duration::from_secs_f64(m / 1e3))
            .collect();
        s.sort();
        crate::percentile(&s, q).as_secs_f64() * 1e3
    }

    pub(super) fn max(&self) -> f64 {
        self.ms.iter().copied().fold(0.0, f64::max)
    }

    pub(super) fn text(&self) -> String {
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

pub(super) fn click_area(fb: &lifeline_operator::screen::Framebuffer) -> Vec<u8> {
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
pub(super) async fn lifeline_clicks(
    ll: &mut Lifeline,
    x: &Xvfb,
    plan: &Plan,
    quality: Quality,
    fps: u8,
) -> Result<Clicks> {
    let target = start_click_target(&x.display)?;
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
    let clicks = target.count();
    if clicks != plan.clicks as u64 {
        bail!("the target saw {clicks} clicks of {}", plan.clicks);
    }
    Ok(out)
}

/// x11vnc, the same with `vnc_client.py latency`.
pub(super) async fn vnc_clicks(x: &Xvfb, py: &Path, dir: &Path, plan: &Plan) -> Result<Clicks> {
    let target = start_click_target(&x.display)?;
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
    let clicks = target.count();
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
