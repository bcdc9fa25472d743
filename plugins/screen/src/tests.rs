//! Sharing end to end against a simulated host and operator: what the
//! operator's picture shows, what is sent when, how input, refusals and
//! stops are handled.

use lifeline_screen_format::{Input, Level, Message, MonitorChoice, Quality};

use crate::api::{ButtonChange, HostError, InputEvent, KeyChange, PointerPosition, Rect};
use crate::service::Service;
use crate::share::{CONTROL_REFUSED, STOPPED_BY_CUSTOMER};
use crate::testutil::{FakeHost, Operator};

/// The WIT records compare by their Debug form (the bindings derive no
/// `PartialEq`).
fn dbg<T: std::fmt::Debug>(t: &T) -> String {
    format!("{t:?}")
}

fn rect(x: u32, y: u32, width: u32, height: u32) -> Rect {
    Rect {
        x,
        y,
        width,
        height,
    }
}

/// A display of `w`×`h` with one monitor covering it.
fn display(w: u32, h: u32) -> FakeHost {
    FakeHost::new(w, h, &[("screen", rect(0, 0, w, h))])
}

fn share(s: &mut Service, host: &mut FakeHost, args: &[&str]) -> Result<String, String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    s.run(host, "share", &args)
}

fn started(host: &mut FakeHost, args: &[&str]) -> (Service, Operator) {
    let mut s = Service::new();
    share(&mut s, host, args).expect("shares");
    let mut op = Operator::default();
    op.read(host);
    (s, op)
}

/// Fires the frame timer and lets the operator read.
fn tick(s: &mut Service, host: &mut FakeHost, op: &mut Operator) {
    let id = host.last_timer();
    s.on_timer(host, id);
    op.read(host);
}

/// The operator's input arrives.
fn operator_input(s: &mut Service, host: &mut FakeHost, op: &mut Operator, inputs: &[Input]) {
    host.operator_sends(inputs);
    s.on_stream_input(host, 7);
    op.read(host);
}

/// Pseudo-random pixels: PNG cannot compress them, and they are photo-like.
fn noise(x: u32, y: u32) -> [u8; 3] {
    let h = (x.wrapping_mul(0x9e37_79b1) ^ y.wrapping_mul(0x85eb_ca6b)).wrapping_mul(0xc2b2_ae35);
    [(h >> 24) as u8, (h >> 16) as u8, (h >> 8) as u8]
}

/// A smooth picture with a little noise: photo-like, and JPEG does well.
fn photo(x: u32, y: u32) -> [u8; 3] {
    let n = noise(x, y)[0] / 16;
    [(x / 3) as u8 ^ n, (y / 2) as u8 + n, ((x + y) / 5) as u8]
}

#[test]
fn share_sends_the_layout_then_the_whole_screen_and_the_pointer() {
    let mut host = display(300, 200);
    host.paint(rect(10, 10, 200, 100), noise);
    let mut s = Service::new();
    let line = share(&mut s, &mut host, &[]).expect("shares");
    for part in [
        ":0",
        "300×200",
        "whole display",
        "quality auto",
        "\"screen\"",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(host.reports[0].starts_with("screen sharing started"));
    let mut op = Operator::default();
    op.read(&mut host);
    assert_eq!(op.order, vec!["layout"]);
    assert_eq!(host.timers[0].1, 0, "the first frame goes at once");
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.order, vec!["layout", "update", "cursor"]);
    assert_eq!(op.picture, host.rgb(rect(0, 0, 300, 200)));
    assert_eq!(op.tiles.len(), 5 * 4);
    assert!(op.tiles.contains(&(256, 128, "solid")), "{:?}", op.tiles);
    assert_eq!(op.cursors, vec![(10, 20, false)]);
    let delay = host.timers.last().expect("rescheduled").1;
    assert!(
        (2..=16).contains(&delay),
        "{delay} ms to the next frame at 60 fps"
    );
}

#[test]
fn only_changed_tiles_are_sent() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    tick(&mut s, &mut host, &mut op);
    op.clear_counts();
    host.paint(rect(70, 70, 10, 10), |_, _| [255, 0, 0]);
    tick(&mut s, &mut host, &mut op);
    // Only the part of the tile that changed: one colour.
    assert_eq!(op.tiles, vec![(70, 70, "solid")]);
    assert_eq!(op.picture, host.rgb(rect(0, 0, 300, 200)));
    op.clear_counts();
    // Damage without a change of pixels, and a pointer that did not move.
    host.paint(rect(70, 70, 10, 10), |_, _| [255, 0, 0]);
    tick(&mut s, &mut host, &mut op);
    assert!(op.order.is_empty(), "{:?}", op.order);
}

#[test]
fn parts_of_tiles_rebuild_the_picture_exactly() {
    let mut host = display(300, 200);
    host.paint(rect(0, 0, 300, 200), photo);
    let (mut s, mut op) = started(&mut host, &[]);
    tick(&mut s, &mut host, &mut op);
    // "Typing": glyph-sized changes across tile edges, frame after frame,
    // over the photo and over what earlier frames changed.
    for step in 0..12u32 {
        op.clear_counts();
        let (x, y) = (20 + step * 21, 50 + (step % 3) * 9);
        host.paint(rect(x, y, 9, 14), move |px, py| {
            if (px + py + step) % 3 == 0 {
                [0, 0, 0]
            } else {
                [250, 250, 240]
            }
        });
        tick(&mut s, &mut host, &mut op);
        assert_eq!(op.picture, host.rgb(rect(0, 0, 300, 200)), "step {step}");
        // Each tile touched is sent from the glyph's corner inside it.
        let mut want: Vec<(u32, u32)> = [x, (x + 8) / 64 * 64]
            .into_iter()
            .flat_map(|tx| [y, (y + 13) / 64 * 64].map(|ty| (tx.max(x), ty.max(y))))
            .collect();
        want.sort_unstable();
        want.dedup();
        let mut got: Vec<(u32, u32)> = op
            .tiles
            .iter()
            .map(|&(tx, ty, _)| (u32::from(tx), u32::from(ty)))
            .collect();
        got.sort_unstable();
        assert_eq!(got, want, "step {step}");
    }
}

#[test]
fn a_monitor_is_shared_in_its_own_coordinates() {
    let mut host = FakeHost::new(
        300,
        200,
        &[("A", rect(0, 0, 100, 200)), ("B", rect(100, 0, 200, 150))],
    );
    host.paint(rect(0, 0, 300, 200), noise);
    host.cursor = (150, 30);
    let (mut s, mut op) = started(&mut host, &["1"]);
    let Message::Layout {
        width,
        height,
        monitors,
    } = &op.layouts[0]
    else {
        panic!("no layout");
    };
    assert_eq!((*width, *height), (200, 150));
    assert_eq!((monitors[0].x, monitors[1].x, monitors[1].y), (-100, 0, 0));
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.picture, host.rgb(rect(100, 0, 200, 150)));
    assert_eq!(op.cursors, vec![(50, 30, false)]);
    let moves = [
        Input::PointerMove { x: 5, y: 6 },
        Input::PointerMove { x: 5000, y: 5000 },
    ];
    operator_input(&mut s, &mut host, &mut op, &moves);
    let want = vec![
        InputEvent::PointerMove(PointerPosition { x: 105, y: 6 }),
        InputEvent::PointerMove(PointerPosition { x: 299, y: 149 }),
    ];
    assert_eq!(
        dbg(&host.injected),
        dbg(&vec![want]),
        "one batch, translated and clamped"
    );
    // Damage on the other monitor is not the shared area's.
    op.clear_counts();
    host.paint(rect(0, 0, 100, 200), |_, _| [1, 2, 3]);
    tick(&mut s, &mut host, &mut op);
    assert!(op.tiles.is_empty());
}

#[test]
fn a_monitor_by_name_and_bad_arguments() {
    let mut host = FakeHost::new(
        300,
        200,
        &[("A", rect(0, 0, 100, 200)), ("B", rect(100, 0, 200, 150))],
    );
    let mut s = Service::new();
    let e = share(&mut s, &mut host, &["5"]).expect_err("no monitor 5");
    assert!(
        e.contains("there is no monitor 5") && e.contains("1 B 200×150 at 100,0"),
        "{e}"
    );
    assert!(!host.screen_is_open, "the screen is closed again");
    let e = share(&mut s, &mut host, &["all", "best"]).expect_err("bad quality");
    assert!(e.contains("\"best\""), "{e}");
    let line = share(&mut s, &mut host, &["B", "lossless"]).expect("shares");
    assert!(
        line.contains("monitor 1 (B") && line.contains("lossless"),
        "{line}"
    );
    // Sharing again starts over on a new stream, keeping the settings.
    let again = share(&mut s, &mut host, &[]).expect("answers");
    assert!(
        again.starts_with("sharing the screen")
            && again.contains("monitor 1 (B")
            && again.contains("lossless"),
        "{again}"
    );
    let e = share(&mut s, &mut host, &["7"]).expect_err("no monitor 7");
    assert!(e.contains("there is no monitor 7"), "{e}");
    assert!(
        host.screen_is_open,
        "a wrong argument leaves the share as it was"
    );
    let changed = share(&mut s, &mut host, &["all"]).expect("applies");
    assert!(
        changed.contains("whole display") && changed.contains("lossless"),
        "{changed}"
    );
}

#[test]
fn screen_open_refused_or_impossible() {
    let mut host = display(64, 64);
    host.open_error = Some(HostError::Denied(
        "\"screen.capture\" was not allowed: no".into(),
    ));
    let mut s = Service::new();
    let e = share(&mut s, &mut host, &[]).expect_err("denied");
    assert!(
        e.starts_with("the customer did not allow screen sharing"),
        "{e}"
    );
    assert_eq!(host.stream, None);
    host.open_error = Some(HostError::Failed("not supported on this display".into()));
    let e = share(&mut s, &mut host, &[]).expect_err("failed");
    assert_eq!(
        e,
        "screen sharing is not possible here: not supported on this display"
    );
    assert_eq!(
        s.run(&mut host, "status", &[]).expect("status"),
        "not sharing the screen"
    );
}

#[test]
fn low_credit_skips_the_capture_until_credit_comes() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    host.credit = 1000;
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.order, vec!["layout", "cursor"], "the pointer still goes");
    host.credit = 0;
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.order, vec!["layout", "cursor"], "nothing without credit");
    host.credit = 1 << 20;
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.picture, host.rgb(rect(0, 0, 300, 200)));
    assert!(s
        .run(&mut host, "status", &[])
        .expect("status")
        .contains("2 ticks skipped"));
}

#[test]
fn the_budget_leaves_tiles_for_later_frames_and_they_go_first() {
    let mut host = display(640, 128);
    host.paint(rect(0, 0, 640, 128), noise);
    let (mut s, mut op) = started(&mut host, &["all", "lossless"]);
    host.credit = 100 << 10;
    tick(&mut s, &mut host, &mut op);
    let first = op.tiles.len();
    assert!(
        (6..20).contains(&first),
        "{first} tiles of about 12 KiB in 100 KiB"
    );
    // The rest goes before newer damage.
    host.paint(rect(0, 0, 10, 10), |_, _| [0, 0, 0]);
    host.credit = 100 << 10;
    op.clear_counts();
    tick(&mut s, &mut host, &mut op);
    assert_eq!(
        op.tiles[0].0,
        (first as u16 % 10) * 64,
        "the first tile left over comes first"
    );
    for _ in 0..5 {
        host.credit = 1 << 20;
        tick(&mut s, &mut host, &mut op);
    }
    assert_eq!(op.picture, host.rgb(rect(0, 0, 640, 128)));
}

#[test]
fn large_frames_are_split_into_updates_below_the_frame_limit() {
    let mut host = display(1280, 720);
    host.paint(rect(0, 0, 1280, 720), noise);
    let (mut s, mut op) = started(&mut host, &["all", "lossless"]);
    tick(&mut s, &mut host, &mut op);
    assert!(op.updates.len() >= 3, "{} updates", op.updates.len());
    assert_eq!(op.updates, (0..op.updates.len() as u32).collect::<Vec<_>>());
    assert_eq!(op.picture, host.rgb(rect(0, 0, 1280, 720)));
    assert!(
        host.reads.iter().sum::<usize>() <= 12,
        "rows are read as runs: {:?}",
        host.reads
    );
}

#[test]
fn a_smaller_host_read_limit_is_followed() {
    let mut host = display(640, 480);
    host.paint(rect(0, 0, 640, 480), noise);
    host.read_limit = 100 << 10;
    let (mut s, mut op) = started(&mut host, &[]);
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.picture, host.rgb(rect(0, 0, 640, 480)));
    assert!(host.logs.iter().any(|l| l.contains("screen-read limit")));
}

#[test]
fn photo_like_tiles_go_jpeg_when_short_and_are_refined_later() {
    let mut host = display(640, 256);
    host.paint(rect(0, 0, 640, 256), photo);
    host.paint(rect(0, 0, 64, 64), |x, y| {
        if (x + y) % 9 == 0 {
            [0; 3]
        } else {
            [255; 3]
        }
    });
    let (mut s, mut op) = started(&mut host, &[]);
    for _ in 0..8 {
        host.credit = 150 << 10;
        tick(&mut s, &mut host, &mut op);
    }
    let jpeg = op.tiles.iter().filter(|t| t.2 == "jpeg").count();
    assert!(jpeg > 0, "{:?}", op.tiles);
    assert!(!op.tiles.contains(&(0, 0, "jpeg")), "text stays lossless");
    // Plenty of credit: lossy tiles are sent again, lossless.
    for _ in 0..10 {
        host.credit = 8 << 20;
        tick(&mut s, &mut host, &mut op);
    }
    assert_eq!(op.picture, host.rgb(rect(0, 0, 640, 256)));
}

#[test]
fn lossless_never_sends_jpeg() {
    let mut host = display(640, 256);
    host.paint(rect(0, 0, 640, 256), photo);
    let (mut s, mut op) = started(&mut host, &["", "lossless"]);
    for _ in 0..8 {
        host.credit = 150 << 10;
        tick(&mut s, &mut host, &mut op);
    }
    assert!(op.tiles.iter().all(|t| t.2 != "jpeg"));
    assert_eq!(op.picture, host.rgb(rect(0, 0, 640, 256)));
}

#[test]
fn sync_captures_at_once_whatever_the_credit() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    tick(&mut s, &mut host, &mut op);
    host.credit = 0;
    host.paint(rect(0, 0, 30, 30), noise);
    op.clear_counts();
    operator_input(&mut s, &mut host, &mut op, &[Input::Sync { token: 42 }]);
    assert_eq!(op.order, vec!["update", "sync"]);
    assert_eq!(op.syncs, vec![42]);
    assert_eq!(op.picture, host.rgb(rect(0, 0, 300, 200)));
}

#[test]
fn refresh_sends_everything_again_with_the_pointer_image() {
    let mut host = display(300, 200);
    host.cursor_image = Some(crate::api::CursorImage {
        width: 2,
        height: 2,
        hot_x: 1,
        hot_y: 1,
        rgba: vec![255; 16],
    });
    let (mut s, mut op) = started(&mut host, &[]);
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.cursors, vec![(10, 20, true)]);
    op.clear_counts();
    operator_input(&mut s, &mut host, &mut op, &[Input::Refresh]);
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.tiles.len(), 20);
    assert_eq!(op.cursors, vec![(10, 20, true)], "the image again");
}

#[test]
fn a_new_layout_is_sent_and_everything_follows() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &["0"]);
    tick(&mut s, &mut host, &mut op);
    let mut bigger = display(400, 300);
    bigger.paint(rect(0, 0, 400, 300), noise);
    host.fb = bigger.fb.clone();
    host.info = bigger.info.clone();
    host.layout = Some(bigger.info.clone());
    host.damage = vec![rect(0, 0, 400, 300)];
    op.clear_counts();
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.order[0], "layout");
    assert_eq!((op.width, op.height), (400, 300));
    assert_eq!(op.picture, host.rgb(rect(0, 0, 400, 300)));
}

#[test]
fn a_gone_monitor_falls_back_to_the_whole_display() {
    let mut host = FakeHost::new(
        300,
        200,
        &[("A", rect(0, 0, 100, 200)), ("B", rect(100, 0, 200, 150))],
    );
    let (mut s, mut op) = started(&mut host, &["1"]);
    let mut one = display(300, 200);
    one.info.monitors.truncate(1);
    host.layout = Some(one.info.clone());
    tick(&mut s, &mut host, &mut op);
    assert!(op
        .statuses
        .iter()
        .any(|(l, t)| *l == Level::Warning && t.contains("gone")));
    assert_eq!((op.width, op.height), (300, 200));
}

#[test]
fn settings_change_monitor_quality_and_rate() {
    let mut host = FakeHost::new(
        300,
        200,
        &[("A", rect(0, 0, 100, 200)), ("B", rect(100, 0, 200, 150))],
    );
    let (mut s, mut op) = started(&mut host, &[]);
    tick(&mut s, &mut host, &mut op);
    let settings = Input::Settings {
        quality: Quality::Lossless,
        monitor: MonitorChoice::Index(0),
        max_fps: 10,
    };
    operator_input(&mut s, &mut host, &mut op, &[settings]);
    assert_eq!((op.width, op.height), (100, 200));
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.picture, host.rgb(rect(0, 0, 100, 200)));
    let delay = host.timers.last().expect("timer").1;
    assert!((90..=100).contains(&delay), "{delay} ms at 10 fps");
    let status = s.run(&mut host, "status", &[]).expect("status");
    assert!(
        status.contains("lossless") && status.contains("monitor 0 (A"),
        "{status}"
    );
    let bad = Input::Settings {
        quality: Quality::Lossless,
        monitor: MonitorChoice::Index(9),
        max_fps: 0,
    };
    operator_input(&mut s, &mut host, &mut op, &[bad]);
    assert!(op
        .statuses
        .iter()
        .any(|(_, t)| t.contains("there is no monitor 9")));
}

#[test]
fn refused_control_is_said_once_and_input_waits_for_a_new_request() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    host.input_error = Some(HostError::Denied(
        "\"input.control\" was not allowed".into(),
    ));
    let click = [
        Input::Button {
            button: 1,
            pressed: true,
        },
        Input::Button {
            button: 1,
            pressed: false,
        },
    ];
    operator_input(&mut s, &mut host, &mut op, &click);
    operator_input(&mut s, &mut host, &mut op, &click);
    let warnings: Vec<_> = op
        .statuses
        .iter()
        .filter(|(l, _)| *l == Level::Warning)
        .collect();
    assert_eq!(
        warnings,
        vec![&(Level::Warning, CONTROL_REFUSED.to_string())]
    );
    assert_eq!(
        host.reports
            .iter()
            .filter(|r| r.contains(CONTROL_REFUSED))
            .count(),
        1
    );
    host.input_error = None;
    operator_input(&mut s, &mut host, &mut op, &click);
    assert!(
        host.injected.is_empty(),
        "dropped until control is asked again"
    );
    operator_input(&mut s, &mut host, &mut op, &[Input::RequestControl]);
    assert_eq!(dbg(&host.injected), "[[]]", "the empty request");
    assert_eq!(
        op.statuses.last(),
        Some(&(Level::Info, "control allowed".to_string()))
    );
    operator_input(&mut s, &mut host, &mut op, &click);
    assert_eq!(host.injected.len(), 2);
}

#[test]
fn failed_input_shows_the_hosts_reason_once() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    let why = "the customer's input is suspended by a login as bob";
    host.input_error = Some(HostError::Failed(why.into()));
    let key = Input::Key {
        keysym: 0x61,
        pressed: true,
    };
    operator_input(&mut s, &mut host, &mut op, std::slice::from_ref(&key));
    operator_input(&mut s, &mut host, &mut op, &[key]);
    assert_eq!(op.statuses, vec![(Level::Warning, why.to_string())]);
}

#[test]
fn a_bad_input_frame_is_reported() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    host.inbox.push_back(vec![0x99]);
    s.on_stream_input(&mut host, 7);
    op.read(&mut host);
    let (level, text) = &op.statuses[0];
    assert_eq!(*level, Level::Error);
    assert!(text.contains("screen stream input"), "{text}");
    assert!(host.reports.iter().any(|r| r.contains("bad frame")));
    assert!(s.is_sharing());
}

#[test]
fn the_customers_stop_ends_sharing() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    tick(&mut s, &mut host, &mut op);
    host.screen_denied = true;
    tick(&mut s, &mut host, &mut op);
    assert!(!s.is_sharing());
    assert_eq!(host.stream, None, "the stream is closed");
    assert!(!host.screen_is_open);
    assert!(host
        .reports
        .last()
        .expect("a report line")
        .starts_with(STOPPED_BY_CUSTOMER));
    assert_eq!(
        op.statuses,
        vec![(Level::Warning, STOPPED_BY_CUSTOMER.to_string())]
    );
    let timers = host.timers.len();
    s.on_timer(&mut host, 100);
    assert_eq!(host.timers.len(), timers, "no more ticks");
}

#[test]
fn a_closed_stream_ends_sharing() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    host.stream_gone = true;
    tick(&mut s, &mut host, &mut op);
    assert!(!s.is_sharing());
    assert!(!host.screen_is_open);
    assert!(host
        .reports
        .last()
        .expect("report")
        .contains("stream to the operator is gone"));
}

#[test]
fn stop_releases_what_the_operator_holds_and_closes_everything() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    let press = [
        Input::Key {
            keysym: 0xffe1,
            pressed: true,
        },
        Input::Button {
            button: 3,
            pressed: true,
        },
    ];
    operator_input(&mut s, &mut host, &mut op, &press);
    assert_eq!(
        s.run(&mut host, "stop", &[]).expect("stops"),
        "screen sharing stopped"
    );
    let releases = vec![
        InputEvent::Key(KeyChange {
            keysym: 0xffe1,
            pressed: false,
        }),
        InputEvent::PointerButton(ButtonChange {
            button: 3,
            pressed: false,
        }),
    ];
    assert_eq!(dbg(&host.injected.last()), dbg(&Some(&releases)));
    assert!(!host.screen_is_open && host.stream.is_none());
    assert!(host
        .reports
        .last()
        .expect("report")
        .contains("stopped by the operator"));
    assert_eq!(
        s.run(&mut host, "stop", &[]).expect("answers"),
        "not sharing the screen"
    );
    assert!(s.run(&mut host, "nope", &[]).is_err());
}

#[test]
fn the_session_end_closes_everything() {
    let mut host = display(300, 200);
    let (mut s, _op) = started(&mut host, &[]);
    s.end(
        &mut host,
        crate::share::Stop::Ended("the session is ending (bye)".into()),
    );
    assert!(!s.is_sharing() && !host.screen_is_open && host.stream.is_none());
}

#[test]
fn long_input_batches_are_cut_to_the_hosts_limit() {
    let mut host = display(300, 200);
    let (mut s, mut op) = started(&mut host, &[]);
    let moves: Vec<Input> = (0..2500)
        .map(|i| Input::PointerMove { x: i % 300, y: 1 })
        .collect();
    operator_input(&mut s, &mut host, &mut op, &moves);
    let sizes: Vec<usize> = host.injected.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![1024, 1024, 452]);
}

#[test]
fn mixed_tiles_under_a_tight_budget_keep_the_zlib_stream_whole() {
    let mut host = display(640, 480);
    let (mut s, mut op) = started(&mut host, &[]);
    for n in 0..12u32 {
        host.paint(rect(0, 0, 640, 480), move |x, y| {
            if (x / 64 + y / 64 + n) % 2 == 0 {
                if (x + y + n) % 5 == 0 {
                    [0; 3]
                } else {
                    [240, 240, 230]
                }
            } else {
                noise(x ^ n, y)
            }
        });
        for _ in 0..6 {
            host.credit = 40 << 10;
            tick(&mut s, &mut host, &mut op);
        }
    }
    host.credit = u64::MAX;
    for _ in 0..4 {
        tick(&mut s, &mut host, &mut op);
    }
    assert_eq!(op.picture, host.rgb(rect(0, 0, 640, 480)));
}
