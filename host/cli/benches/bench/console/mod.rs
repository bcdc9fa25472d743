//! Benchmark 7: the web console in a real browser (Debian's Chromium,
//! headless, driven by playwright-core from
//! `tests/console/bench/console-bench.mjs`), against the broker as a
//! process (the `lifeline` binary), each figure beside an operator-protocol
//! baseline measured in the same run.
//!
//! 1. login → sessions list rendered: in the page, from the login form's
//!    submit to the sessions table's rows in the DOM (and the next animation
//!    frame), on a fresh browser context each time. Baselines, interleaved:
//!    a `lifeline_operator::Client` on a new TLS connection doing connect +
//!    login + `list_sessions` (the same work over the operator protocol),
//!    and a bare HTTPS GET of `/console/` on a new TLS connection.
//! 2. customer join → row: one console page stays open on #/sessions; per
//!    join the benchmark creates an invitation (operator protocol), an agent
//!    connection joins it by connection ID (`crate::join`) and the page's
//!    MutationObserver timestamps the insertion of the session's row in
//!    state "waiting". Two cases: the invitation already listed in the page
//!    (the row is replaced in place on the pushed state), and not listed
//!    (the console fetches the list again). Baseline: a logged-in operator
//!    client of the same operator, whose pushed `State { Waiting }` event
//!    is timestamped for the very same join. The page's clock is mapped
//!    onto this process's wall clock by round trips (`calibrate`); the
//!    in-page part (socket message → row) needs no mapping.
//! 3. memory: the broker's VmRSS before and after N console tabs (each a
//!    browser context of its own: a login, i.e. a cookie session, and the
//!    page's WebSocket), and, on another fresh broker, before and after N
//!    idle logged-in operator connections over TLS.
//!
//! The node process and every browser process it starts are killed on
//! every exit path (`NodeProcess`'s drop walks /proc for descendants,
//! because Playwright puts the browser in a process group of its own).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use lifeline_core::client::Endpoint;
use lifeline_core::tls::Fingerprint;
use lifeline_operator::{Client, Event};
use lifeline_protocol::{JoinCredential, SessionMessage, SessionState};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{HEARTBEAT, Opts, PASSWORD, Row, STEP, USERNAME, endpoint, join, row, step};

const TARGET_JOIN_P50_MS: f64 = 100.0;
/// Bound on one command of the node script; `tabs` gets one per tab.
const NODE_STEP: Duration = Duration::from_secs(60);
/// Pause between opening the last tab / connection and reading the RSS.
const SETTLE: Duration = Duration::from_secs(3);
/// Tabs (connections) opened and closed before the memory's "before"
/// reading: the first ones set up what every later one shares (TLS and
/// HTTP state, SQLite's cache, the allocator's arenas of the threads).
const MEMORY_WARMUP: usize = 8;
const CHROMIUM: &str = "/usr/bin/chromium";
/// Invitations the sessions list holds when the logins are timed.
const LISTED: usize = 20;

mod figures;
mod node;
mod procs;
use figures::*;
use node::*;
use procs::*;

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let (login_n, join_n, tabs_n) = if opts.quick {
        (5, 10, 10)
    } else {
        (20, 50, 50)
    };
    println!("\n[7] web console in Chromium: {login_n} logins, 2 × {join_n} joins, {tabs_n} tabs");
    // Chromium and the broker's connections want descriptors.
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft < hard {
        rlimit::Resource::NOFILE
            .set(hard, hard)
            .context("raising RLIMIT_NOFILE")?;
    }
    let work = tempfile::tempdir().context("temporary folder")?;
    let mut node = NodeProcess::spawn(work.path())?;
    let v = node.call(json!({"cmd": "start"})).await?;
    println!("  browser: {}", v["version"].as_str().unwrap_or("?"));
    let result = measure(&mut node, opts, login_n, join_n, tabs_n).await;
    node.quit().await;
    drop(node);
    result
}

async fn measure(
    node: &mut NodeProcess,
    opts: Opts,
    login_n: usize,
    join_n: usize,
    tabs_n: usize,
) -> Result<Vec<Row>> {
    // glibc's defaults here: this broker's RSS after its logins is a finding.
    let mut b = start_broker(false)?;
    let rss_fresh = b.rss()?;
    let (op, mut events) = watching_operator(&b.ep).await?;
    for i in 0..LISTED {
        step("invite", op.invite(&format!("LIST-{i}"), "Customer", None)).await?;
    }

    let l = logins(node, &b, 2, login_n).await?;
    let rss_logins = b.rss()?;
    // The watching operator, and a console and an operator login per round.
    let checks = 1 + 2 * (2 + login_n);
    println!(
        "  login → list: console {}; operator protocol {}; GET /console/ {}",
        l.console.show(),
        l.operator.show(),
        l.get.show()
    );

    node.call(json!({"cmd": "open_main", "url": b.console}))
        .await?;
    let (offset, rtt) = calibrate(node).await?;
    let listed = joins(node, &b, &op, &mut events, offset, true, 3, join_n).await?;
    let new = joins(node, &b, &op, &mut events, offset, false, 3, join_n).await?;
    let (offset2, rtt2) = calibrate(node).await?;
    println!(
        "  page clock − wall clock: {offset:.2} ms (round trip {rtt:.2} ms); after the joins {offset2:.2} ms (round trip {rtt2:.2} ms)"
    );
    for (name, f) in [("listed", &listed), ("not listed", &new)] {
        println!(
            "  join → row ({name}): console {}; operator client {}; in page {}",
            f.row.show(),
            f.operator.show(),
            f.in_page.show()
        );
    }
    drop(b);

    let cm = console_memory(node, tabs_n, opts.quick).await?;
    let om = operator_memory(tabs_n, opts.quick).await?;

    const B: &str = "7 web console";
    let met = |p50: f64| Some(("≤ 100 ms p50", p50 <= TARGET_JOIN_P50_MS));
    let p50s = |s: &Series| format!("{:.1} ms", s.p50());
    let mut rows = vec![
        row(
            B,
            &format!(
                "login submitted → sessions list ({} rows) in the DOM, p50",
                l.rows
            ),
            l.console.show(),
            &format!(
                "operator protocol, new TLS connection + login + list_sessions: {}; bare HTTPS GET /console/, new TLS connection: {}",
                l.operator.show(),
                l.get.show()
            ),
            None,
        ),
        row(
            B,
            "  … to the next animation frame, p50",
            l.frame.show(),
            "",
            None,
        ),
        row(
            B,
            "  phases p50: login POST answered / WebSocket created / open / list reply",
            format!(
                "{} / {} / {} / {}",
                p50s(&l.post),
                p50s(&l.ws_new),
                p50s(&l.ws_open),
                p50s(&l.list_reply)
            ),
            "",
            None,
        ),
        row(
            B,
            "  (not timed) page load → login form, p50",
            l.load.show(),
            "",
            None,
        ),
    ];
    for (what, f) in [
        ("invitation already listed: row replaced", &listed),
        ("invitation not listed: list fetched again", &new),
    ] {
        rows.push(row(
            B,
            &format!(
                "customer join → row \"ready\" ({what}; list of {}–{} rows), {join_n} joins",
                f.rows.0, f.rows.1
            ),
            f.row.show(),
            &format!(
                "operator client's pushed State, same joins: {}",
                f.operator.show()
            ),
            met(f.row.p50()),
        ));
        rows.push(row(
            B,
            "  socket message → row (page clock only), p50",
            f.in_page.show(),
            "",
            None,
        ));
        rows.push(row(
            B,
            "  p50 join → agent Joined / → page's socket / → next frame",
            format!(
                "{} / {} / {}",
                p50s(&f.joined),
                p50s(&f.to_page),
                p50s(&f.frame)
            ),
            "",
            None,
        ));
        if f.other_path > 0 {
            rows.push(row(
                B,
                "  joins that took the other case (a list refresh raced)",
                f.other_path.to_string(),
                "",
                None,
            ));
        }
    }
    rows.push(row(
        B,
        "clock mapping page → bench (best round trip, drift over the joins)",
        format!(
            "±{:.2} ms, {:+.2} ms",
            rtt.max(rtt2) / 2.0,
            offset2 - offset
        ),
        "",
        None,
    ));
    rows.push(row(
        B,
        &format!("broker RSS, glibc defaults: fresh → after {checks} password checks"),
        format!(
            "{:.1} → {:.1} MiB",
            rss_fresh as f64 / 1048576.0,
            rss_logins as f64 / 1048576.0
        ),
        "",
        None,
    ));
    rows.push(row(
        B,
        &format!("broker memory per open console tab (own login + WebSocket), {tabs_n} tabs, mmap threshold pinned"),
        cm.show(),
        &format!(
            "per idle TLS operator connection (logged in), {tabs_n} of them: {}",
            om.show()
        ),
        None,
    ));
    rows.push(row(
        B,
        "  console tab / operator connection",
        format!("{:.1}×", cm.primary() / om.primary().max(0.1)),
        "",
        None,
    ));
    Ok(rows)
}
