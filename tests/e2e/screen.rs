//! Screen sharing end to end: the broker and the agent as `lifeline`
//! processes, the agent sharing a real Xvfb through the `screen` plugin,
//! the operator's side through the client library (as the web console
//! will). The picture the operator reassembles is compared pixel for pixel
//! with what GetImage reads from the display, after each step of a
//! scripted desktop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lifeline_core::config::OperatorConfig;
use lifeline_operator::Client;
use lifeline_operator::screen::{Input, Level, Message, MonitorChoice, Quality, ScreenSession};
use x11rb::protocol::Event;

use crate::machine::Xvfb;
use crate::processes::*;
use crate::screen_desk::{Area, Desk, crop, diff};

mod clipboard;

/// Bound on every wait for the stream in these tests.
const WAIT: Duration = Duration::from_secs(60);
/// The indicator's colour (`lifeline_agent::screen::indicator::INDICATOR_RGB`).
const INDICATOR_RGB: [u8; 3] = [0xff, 0xb0, 0x00];
const INDICATOR_TITLE: &str = "Lifeline: your screen is shared";
/// Its height (`lifeline_agent::screen::indicator::INDICATOR_HEIGHT`): a
/// picture taken while sharing shows it, the display read after does not.
const INDICATOR_HEIGHT: u16 = 28;

/// Below the indicator, of an 800×600 picture.
fn below_indicator(rgb: &[u8]) -> Vec<u8> {
    let a = Area {
        x: 0,
        y: INDICATOR_HEIGHT as i16,
        w: 800,
        h: 600 - INDICATOR_HEIGHT,
    };
    crop(rgb, 800, a)
}

/// Fields drop in order: the agent and the broker stop before their
/// folder goes.
struct Setup {
    agent: Proc,
    _broker: Proc,
    op: String,
    sid: String,
    _dir: tempfile::TempDir,
}

/// A session whose agent shares `display`; `policy` (TOML rules) decides
/// consent, or the customer answers at the agent's terminal when empty.
fn setup(display: &str, policy: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (broker, addr, fp) = start_broker(d);
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    crate::plugins::install_plugins(&d.join("agent-plugins"), &["plugins/screen"]);
    let mut cfg = std::fs::read_to_string(&agent_cfg).unwrap();
    if !policy.is_empty() {
        let path = d.join("policy.toml");
        write(&path, &format!("[policy]\n[policy.capabilities]\n{policy}"));
        cfg = cfg.replace(
            "[agent]\n",
            &format!("[agent]\npolicy = \"{}\"\n", path.display()),
        );
    }
    cfg += &format!(
        "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n[screen]\ndisplay = \"{display}\"\n"
    );
    write(Path::new(&agent_cfg), &cfg);
    login(&op);
    let (sid, inv) = invite(&op, "T-SCREEN");
    let agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );
    Setup {
        _dir: dir,
        _broker: broker,
        agent,
        op,
        sid,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn operator(s: &Setup) -> Client {
    let cfg = OperatorConfig::load(Path::new(&s.op)).unwrap();
    let c = Client::connect_logged_in(&cfg).await.unwrap();
    c.attach(&s.sid).await.unwrap();
    c
}

/// A new operator connection sharing the session's screen, with its first
/// picture.
fn shared(
    rt: &tokio::runtime::Runtime,
    s: &Setup,
    monitor: MonitorChoice,
    quality: Quality,
) -> ScreenSession<Client> {
    rt.block_on(async {
        let client = operator(s).await;
        let mut share = ScreenSession::share(client, &s.sid, monitor, quality)
            .await
            .unwrap();
        share.first_picture().await.unwrap();
        share
    })
}

/// The operator's picture equals the display (`area` of it) once both
/// have settled: the desktop is left to settle, the plugin is asked to
/// send everything up to now, and the display read again must not have
/// changed meanwhile.
fn assert_pixels_match(
    rt: &tokio::runtime::Runtime,
    share: &mut ScreenSession<Client>,
    desk: &Desk,
    area: Area,
    step: &str,
) {
    let settled = desk.settle();
    rt.block_on(async { tokio::time::timeout(WAIT, share.sync()).await })
        .unwrap_or_else(|_| panic!("{step}: no sync within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("{step}: {e}"));
    assert_eq!(
        desk.settle(),
        settled,
        "{step}: the desktop moved under the test"
    );
    let expected = crop(&settled, usize::from(desk.width), area);
    let fb = share.framebuffer();
    assert_eq!(
        (fb.width(), fb.height()),
        (u32::from(area.w), u32::from(area.h)),
        "{step}: picture size"
    );
    if let Some((count, (x, y))) = diff(fb.rgb(), &expected, usize::from(area.w)) {
        panic!("{step}: {count} pixels differ, the first at ({x}, {y})");
    }
}

/// An xterm at (x, y) that prints `lines` lines (scrolling) and then
/// copies what is typed into `typed`.
fn xterm(display: &str, x: i32, y: i32, lines: u32, typed: &Path) -> Child {
    let script = format!(
        "i=0; while [ $i -lt {lines} ]; do echo \"line $i of a scrolling terminal\"; i=$((i+1)); done; exec cat > '{}'",
        typed.display()
    );
    Command::new("xterm")
        .args([
            "-display",
            display,
            "-geometry",
            &format!("60x12+{x}+{y}"),
            "-e",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xterm is installed by scripts/setup")
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_operators_picture_equals_the_display_through_a_scripted_desktop() {
    let x = Xvfb::start_with("1280x720x24");
    let desk = Desk::open(&x.display);
    let left = Area {
        x: 0,
        y: 0,
        w: 640,
        h: 720,
    };
    let right = Area { x: 640, ..left };
    desk.set_monitors(&[("LEFT", left), ("RIGHT", right)]);
    let s = setup(&x.display, "\"screen.capture\" = \"allow\"\n");
    let rt = runtime();
    let mut share = shared(&rt, &s, MonitorChoice::All, Quality::Lossless);
    let names: Vec<&str> = share
        .framebuffer()
        .monitors()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["LEFT", "RIGHT"]);
    assert_pixels_match(&rt, &mut share, &desk, desk.all(), "first picture");

    let dir = tempfile::tempdir().unwrap();
    let _term = Killed(xterm(&x.display, 40, 80, 40, &dir.path().join("typed")));
    assert_pixels_match(&rt, &mut share, &desk, desk.all(), "xterm scrolled");

    let a = Area {
        x: 500,
        y: 300,
        w: 200,
        h: 120,
    };
    let panel = desk.window(a, 0x3060c0);
    assert_pixels_match(&rt, &mut share, &desk, desk.all(), "window shown");
    desk.move_window(panel, 700, 420);
    assert_pixels_match(&rt, &mut share, &desk, desk.all(), "window moved");
    let photo = desk.photo(Area {
        x: 900,
        y: 60,
        w: 300,
        h: 220,
    });
    assert_pixels_match(&rt, &mut share, &desk, desk.all(), "image shown");
    desk.destroy(photo);
    desk.destroy(panel);
    let end = rt.block_on(share.stop()).unwrap();
    assert!(end.frames > 0, "{end:?}");

    // One monitor: coordinates and size are the monitor's own.
    let mut share = shared(&rt, &s, MonitorChoice::Index(1), Quality::Lossless);
    assert_pixels_match(&rt, &mut share, &desk, right, "the right monitor");
    rt.block_on(share.stop()).unwrap();
}

/// The next status line of the share, reading past pictures.
fn next_status(rt: &tokio::runtime::Runtime, share: &mut ScreenSession<Client>) -> (Level, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = rt
            .block_on(async { tokio::time::timeout(left, share.next()).await })
            .expect("a status line in time")
            .unwrap()
            .expect("the stream stays open");
        if let Message::Status { level, text } = msg {
            return (level, text);
        }
    }
}

/// Key presses and releases typing `text` (lower-case letters, digits,
/// spaces), then Return.
fn typing(text: &str) -> Vec<Input> {
    let mut out = Vec::new();
    let syms = text.chars().map(|c| c as u32).chain([0xff0d]);
    for keysym in syms {
        out.push(Input::Key {
            keysym,
            pressed: true,
        });
        out.push(Input::Key {
            keysym,
            pressed: false,
        });
    }
    out
}

#[test]
fn control_is_asked_separately_and_what_the_operator_types_reaches_the_xterm() {
    let x = Xvfb::start_with("1024x600x24");
    let desk = Desk::open(&x.display);
    let dir = tempfile::tempdir().unwrap();
    let typed = dir.path().join("typed");
    let _term = Killed(xterm(&x.display, 20, 20, 3, &typed));
    desk.settle();
    let target = desk.window(
        Area {
            x: 700,
            y: 400,
            w: 120,
            h: 80,
        },
        0x20a040,
    );
    // Viewing is allowed by policy; control is the customer's to answer.
    let mut s = setup(&x.display, "\"screen.capture\" = \"allow\"\n");
    let rt = runtime();
    let mut share = shared(&rt, &s, MonitorChoice::All, Quality::Lossless);

    // Refused: nothing reaches the display, the operator and the report
    // are told.
    rt.block_on(share.send_input(&[Input::RequestControl]))
        .unwrap();
    s.agent.wait_line("Type /allow");
    s.agent.type_line("/deny");
    let (level, text) = next_status(&rt, &mut share);
    assert_eq!(level, Level::Warning, "{text}");
    assert!(text.contains("not allowed"), "{text}");
    let mut refused = vec![Input::PointerMove { x: 40, y: 40 }];
    refused.extend(typing("refused"));
    rt.block_on(share.send_input(&refused)).unwrap();

    // Allowed: a line typed into the xterm, a click into the window.
    rt.block_on(share.send_input(&[Input::RequestControl]))
        .unwrap();
    s.agent.wait_line("Type /allow");
    s.agent.type_line("/allow");
    let (level, text) = next_status(&rt, &mut share);
    assert_eq!(level, Level::Info, "{text}");
    let mut inputs = vec![Input::PointerMove { x: 60, y: 60 }];
    inputs.extend(typing("hello from the operator"));
    inputs.extend([
        Input::PointerMove { x: 730, y: 425 },
        Input::Button {
            button: 1,
            pressed: true,
        },
        Input::Button {
            button: 1,
            pressed: false,
        },
    ]);
    rt.block_on(share.send_input(&inputs)).unwrap();
    let deadline = Instant::now() + WAIT;
    let line = loop {
        let got = std::fs::read_to_string(&typed).unwrap_or_default();
        if got.contains('\n') || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if line != "hello from the operator\n" {
        let report = ok(&["operator", "report", "--config", &s.op, &s.sid], None);
        panic!("typed {line:?}\nagent: {}\n{report}", s.agent.rest());
    }
    let clicks: Vec<(i16, i16)> = desk
        .events(Duration::from_millis(500))
        .into_iter()
        .filter_map(|e| match e {
            Event::ButtonPress(b) if b.event == target => Some((b.event_x, b.event_y)),
            _ => None,
        })
        .collect();
    assert_eq!(clicks, [(30, 25)]);
    rt.block_on(share.stop()).unwrap();
    let report = ok(&["operator", "report", "--config", &s.op, &s.sid], None);
    assert!(
        report.contains("input.control for plugin screen: deny (decided by customer"),
        "{report}"
    );
    assert!(
        report.contains("control was not allowed by the customer"),
        "{report}"
    );
    assert!(report.contains("remote control started"), "{report}");
}

#[test]
fn the_customer_sees_the_indicator_and_stopping_it_ends_the_stream() {
    let x = Xvfb::start_with("1024x600x24");
    let desk = Desk::open(&x.display);
    let s = setup(&x.display, "\"screen.capture\" = \"allow\"\n");
    let rt = runtime();
    let mut share = shared(&rt, &s, MonitorChoice::All, Quality::Auto);
    let (_, at) = desk
        .find(INDICATOR_TITLE)
        .expect("the indicator is on screen while sharing");
    let pixels = desk.grab(Area {
        x: at.x + 2,
        y: at.y + 2,
        w: 1,
        h: 1,
    });
    assert_eq!(
        pixels, INDICATOR_RGB,
        "the indicator's colour on the display"
    );
    // The operator's picture shows it too.
    rt.block_on(share.sync()).unwrap();
    let fb = share.framebuffer();
    assert_eq!(
        fb.pixel((at.x + 2) as u32, (at.y + 2) as u32),
        Some(INDICATOR_RGB)
    );

    // The customer presses Stop (the right end of the indicator).
    desk.click(at.x + at.w as i16 - 20, at.y + at.h as i16 / 2);
    let mut updates_after = 0;
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rt.block_on(async { tokio::time::timeout(left, share.next()).await }) {
            Ok(Ok(Some(Message::Update { .. }))) => updates_after += 1,
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!("the stream did not end after Stop"),
        }
    }
    // Within one frame interval: at most the update already captured.
    assert!(updates_after <= 1, "{updates_after} updates after Stop");
    let end = share.closed().expect("the stream closed").clone();
    assert!(end.reason.contains("closed by the plugin"), "{end:?}");
    let deadline = Instant::now() + WAIT;
    while desk.find(INDICATOR_TITLE).is_some() {
        assert!(Instant::now() < deadline, "the indicator stays after Stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = desk.grab(Area {
        x: at.x + 2,
        y: at.y + 2,
        w: 1,
        h: 1,
    });
    assert_ne!(after, INDICATOR_RGB, "the indicator's pixels are gone");
    let report = ok(&["operator", "report", "--config", &s.op, &s.sid], None);
    assert!(report.contains("stopped screen sharing"), "{report}");
}

/// A PNG file as RGB pixels, with its size.
fn png_rgb(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    (info.width, info.height, buf)
}

#[test]
fn the_cli_snapshots_records_and_exports_and_the_sessions_end_stops_sharing() {
    let x = Xvfb::start_with("800x600x24");
    let desk = Desk::open(&x.display);
    let photo = desk.photo(Area {
        x: 100,
        y: 100,
        w: 240,
        h: 160,
    });
    let panel = desk.window(
        Area {
            x: 420,
            y: 300,
            w: 200,
            h: 100,
        },
        0xc04020,
    );
    let s = setup(&x.display, "\"screen.capture\" = \"allow\"\n");
    let out = tempfile::tempdir().unwrap();
    let o = out.path();

    // A snapshot is the display as it is.
    let settled = desk.settle();
    let snap = o.join("snap.png");
    let args = [
        "operator",
        "screen",
        "--config",
        &s.op,
        &s.sid,
        "--quality",
        "lossless",
        "--snapshot",
    ];
    let mut argv = args.to_vec();
    argv.push(p(&snap));
    ok(&argv, None);
    let (w, h, rgb) = png_rgb(&snap);
    assert_eq!((w, h), (800, 600));
    if let Some((count, at)) = diff(&below_indicator(&rgb), &below_indicator(&settled), 800) {
        panic!("the snapshot differs from the display in {count} pixels, the first at {at:?}");
    }

    // A recording while a window moves, exported to pictures: the last
    // one is the display as it ended.
    let rec = o.join("screen.rec");
    let mover = std::thread::spawn({
        let display = x.display.clone();
        move || {
            let desk = Desk::open(&display);
            std::thread::sleep(Duration::from_millis(700));
            let w = desk.window(
                Area {
                    x: 10,
                    y: 400,
                    w: 100,
                    h: 100,
                },
                0x40c040,
            );
            for i in 0..10 {
                desk.move_window(w, 10 + i * 40, 400);
                std::thread::sleep(Duration::from_millis(50));
            }
            // Kept: the connection (and the window) stays until the end.
            std::thread::sleep(Duration::from_secs(4));
        }
    });
    let recorded = ok(
        &[
            "operator",
            "screen",
            "--config",
            &s.op,
            &s.sid,
            "--quality",
            "lossless",
            "--record",
            p(&rec),
            "--seconds",
            "3",
        ],
        None,
    );
    assert!(recorded.contains("Recorded"), "{recorded}");
    let settled = desk.settle();
    let pictures = o.join("pictures");
    let exported = ok(
        &["operator", "screen-export", p(&rec), "--out", p(&pictures)],
        None,
    );
    assert!(exported.contains("Wrote"), "{exported}");
    let mut names: Vec<_> = std::fs::read_dir(&pictures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{exported}: {names:?}");
    let (_, _, last) = png_rgb(names.last().unwrap());
    if let Some((count, at)) = diff(&below_indicator(&last), &below_indicator(&settled), 800) {
        panic!("the last exported picture differs in {count} pixels, the first at {at:?}");
    }
    mover.join().unwrap();

    // The session ends while sharing: the stream closes, the indicator
    // goes, the report says so.
    let rt = runtime();
    let mut share = shared(&rt, &s, MonitorChoice::All, Quality::Auto);
    assert!(desk.find(INDICATOR_TITLE).is_some());
    ok(
        &[
            "operator", "end", "--config", &s.op, &s.sid, "--reason", "done",
        ],
        None,
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rt.block_on(async { tokio::time::timeout(left, share.next()).await }) {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!("the stream did not end with the session"),
        }
    }
    while desk.find(INDICATOR_TITLE).is_some() {
        assert!(
            Instant::now() < deadline,
            "the indicator stays after the session"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = ok(&["operator", "report", "--config", &s.op, &s.sid], None);
    assert!(
        report.contains("plugin screen stream 3 \"screen\" ended with the session"),
        "{report}"
    );
    desk.destroy(photo);
    desk.destroy(panel);
}

#[test]
fn without_a_display_the_operator_is_told_and_the_customer_is_not_asked() {
    let mut s = setup("none", "");
    let rt = runtime();
    let client = rt.block_on(operator(&s));
    let err = rt
        .block_on(ScreenSession::share(
            client,
            &s.sid,
            MonitorChoice::All,
            Quality::Auto,
        ))
        .err()
        .expect("no screen to share")
        .to_string();
    assert!(
        err.contains("screen sharing is not supported on this display"),
        "{err}"
    );
    assert!(err.contains("this agent has no display"), "{err}");
    s.agent.kill();
    assert!(
        !s.agent.rest().contains("Type /allow"),
        "the customer was asked"
    );
}
