//! The X side: Xvfb, the source pictures, the tile driver, the click target and the scripted desktop.

use super::*;

/// Starts Xvfb on a display number it picks itself (`-displayfd`: free,
/// and ready once written).
pub(super) fn start_xvfb() -> Result<(Proc, String)> {
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

pub(super) fn connect(display: &str) -> Result<(RustConnection, Window)> {
    let (conn, screen) =
        x11rb::connect(Some(display)).with_context(|| format!("X display {display}"))?;
    let root = conn.setup().roots[screen].root;
    Ok((conn, root))
}

/// Waits until the server has handled everything sent so far.
pub(super) fn sync(conn: &RustConnection) -> Result<()> {
    conn.get_input_focus()?.reply()?;
    Ok(())
}

/// The desktop's background: one colour.
pub(super) fn set_desktop(display: &str) -> Result<()> {
    let (conn, root) = connect(display)?;
    let aux = ChangeWindowAttributesAux::new().background_pixel(DESKTOP_RGB);
    conn.change_window_attributes(root, &aux)?;
    conn.clear_area(false, root, 0, 0, 0, 0)?;
    sync(&conn)
}

/// BGRX pixels, `w` wide.
pub(super) struct Image {
    pub(super) w: usize,
    pub(super) h: usize,
    pub(super) px: Vec<u8>,
}

impl Image {
    pub(super) fn new(w: usize, h: usize, rgb: [u8; 3]) -> Image {
        let mut px = Vec::with_capacity(w * h * 4);
        for _ in 0..w * h {
            px.extend_from_slice(&[rgb[2], rgb[1], rgb[0], 0]);
        }
        Image { w, h, px }
    }

    pub(super) fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.w && y < self.h {
            let i = (y * self.w + x) * 4;
            self.px[i..i + 3].copy_from_slice(&[rgb[2], rgb[1], rgb[0]]);
        }
    }

    pub(super) fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, rgb);
            }
        }
    }

    /// Lines of "words" in a 64-glyph alphabet (5×9 glyphs in 7×14
    /// cells), like a terminal or a document: few colours, sharp edges,
    /// recurring shapes.
    pub(super) fn text(
        &mut self,
        area: (usize, usize, usize, usize),
        rng: &mut StdRng,
        ink: &[[u8; 3]],
    ) {
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
    pub(super) fn photo(&mut self, area: (usize, usize, usize, usize), rng: &mut StdRng) {
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
pub(super) fn upload(
    conn: &RustConnection,
    root: Window,
    img: &Image,
) -> Result<(Pixmap, Gcontext)> {
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
pub(super) fn picture_window(
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
pub(super) fn source_image() -> Image {
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
pub(super) fn tile_set(fraction: f64) -> Vec<(i16, i16)> {
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
/// `period` from random crops of [`source_image`]. Its count is the
/// redraws.
pub(super) fn start_driver(
    display: &str,
    tiles: Vec<(i16, i16)>,
    period: Duration,
) -> Result<XThread> {
    XThread::start("the X driver", display, move |d, stop, draws, ready| {
        drive(d, &tiles, period, stop, draws, ready)
    })
}

/// An X client on a thread of its own (the tile driver, the click
/// target): `start` returns once it says it is ready, and it is stopped
/// on every path (`halt`, or when dropped).
pub(super) struct XThread {
    what: &'static str,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<()>>>,
}

/// What an [`XThread`] runs: display, stop flag, its counter, and where it
/// says it is ready (or why it failed).
type XBody = dyn FnOnce(&str, &AtomicBool, &AtomicU64, &mpsc::Sender<Result<(), String>>) -> Result<()>
    + Send;

impl XThread {
    pub(super) fn start(
        what: &'static str,
        display: &str,
        body: impl FnOnce(
            &str,
            &AtomicBool,
            &AtomicU64,
            &mpsc::Sender<Result<(), String>>,
        ) -> Result<()>
        + Send
        + 'static,
    ) -> Result<XThread> {
        let body: Box<XBody> = Box::new(body);
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel::<Result<(), String>>();
        let display = display.to_string();
        let (s, c) = (Arc::clone(&stop), Arc::clone(&count));
        let thread = std::thread::spawn(move || {
            let r = body(&display, &s, &c, &tx);
            if let Err(e) = &r {
                let _ = tx.send(Err(format!("{e:#}")));
            }
            r
        });
        let mut t = XThread {
            what,
            stop,
            count,
            thread: Some(thread),
        };
        match rx.recv_timeout(STEP) {
            Ok(Ok(())) => Ok(t),
            Ok(Err(e)) => bail!("{what} failed: {e}"),
            Err(_) => {
                t.halt();
                bail!("{what} was not ready within {STEP:?}")
            }
        }
    }

    /// Its counter: redraws, or clicks seen.
    pub(super) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(super) fn halt(&mut self) -> Option<Result<()>> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take()?;
        let what = self.what;
        Some(t.join().unwrap_or_else(|_| Err(anyhow!("{what} panicked"))))
    }

    pub(super) fn finish(mut self) -> Result<()> {
        self.halt().unwrap_or(Ok(()))
    }
}

impl Drop for XThread {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

pub(super) fn drive(
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

/// A window that changes colour on each click (button press); its count
/// is the clicks seen.
pub(super) fn start_click_target(display: &str) -> Result<XThread> {
    XThread::start("the click target", display, serve_clicks)
}

pub(super) fn serve_clicks(
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
pub(super) struct DeskScript {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) thread: Option<JoinHandle<Result<()>>>,
    /// When the timeline began.
    pub(super) started: Instant,
}

pub(super) const XTERM_LOOP: &str = "n=0; while :; do n=$((n+1)); \
    echo \"[$n] Compiling module-$((n % 37)) v0.$((n % 9)).$((n % 5)) (/src/crate-$((n % 11))) ... ok in $((n % 97)).$((n % 10))s\"; \
    sleep 0.05; done";

impl DeskScript {
    pub(super) fn start(display: &str, length: Duration) -> Result<DeskScript> {
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

    pub(super) fn halt(&mut self) -> Option<Result<()>> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take()?;
        Some(
            t.join()
                .unwrap_or_else(|_| Err(anyhow!("the desktop script panicked"))),
        )
    }

    pub(super) fn finish(mut self) -> Result<()> {
        self.halt().unwrap_or(Ok(()))
    }
}

impl Drop for DeskScript {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

pub(super) fn desk(
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
