//! Benchmark 1: "connection ID entered → operator connected" on loopback.
//!
//! Timed per iteration: agent TCP + TLS 1.3 + `Hello`/`Welcome`, `Join` by
//! connection ID until `Joined`, then the operator's `attach` until its
//! reply. Not timed: creating the invitation, ending the session.
//! Baseline, interleaved with it: `client::connect` alone (TCP + TLS +
//! one `Hello`/`Welcome` round trip) to the same broker.

use std::time::{Duration, Instant};

use anyhow::Result;
use lifeline_core::client;
use lifeline_protocol::{ClientRole, JoinCredential};

use crate::{Harness, Opts, Row, join_timed, ms, percentile, step};

const TARGET_P50: Duration = Duration::from_millis(5);

struct Samples {
    total: Vec<Duration>,
    connect: Vec<Duration>,
    joined: Vec<Duration>,
    attach: Vec<Duration>,
    baseline: Vec<Duration>,
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let (warmup, iters) = if opts.quick { (5, 30) } else { (20, 300) };
    println!("\n[1/3] join latency: {iters} iterations after {warmup} warm-up");
    let h = Harness::start().await?;
    let mut s = Samples { total: vec![], connect: vec![], joined: vec![], attach: vec![], baseline: vec![] };
    for i in 0..warmup + iters {
        // Baseline: a bare TLS connection with one round trip.
        let t = Instant::now();
        let (link, _) = step("baseline connect", client::connect(&h.ep, ClientRole::Agent)).await?;
        let bare = t.elapsed();
        drop(link);

        let inv = step("invite", h.op.invite(&format!("LAT-{i}"), "Bench Customer", None)).await?;
        let t0 = Instant::now();
        let cred = JoinCredential::ConnectionId(inv.connection_id.clone());
        let (agent, connected) = step("agent join", join_timed(&h.ep, cred)).await?;
        let t_joined = t0.elapsed();
        step("attach", h.op.attach(&inv.session_id)).await?;
        let total = t0.elapsed();
        step("end", h.op.end(&inv.session_id, "benchmark iteration over")).await?;
        drop(agent);
        if i >= warmup {
            s.baseline.push(bare);
            s.total.push(total);
            s.connect.push(connected);
            s.joined.push(t_joined - connected);
            s.attach.push(total - t_joined);
        }
    }
    h.broker.shutdown();
    Ok(report(s))
}

fn report(mut s: Samples) -> Vec<Row> {
    for v in [&mut s.total, &mut s.connect, &mut s.joined, &mut s.attach, &mut s.baseline] {
        v.sort();
    }
    let stats = |v: &[Duration]| (percentile(v, 0.5), percentile(v, 0.99), v.last().copied().unwrap_or_default());
    let (p50, p99, max) = stats(&s.total);
    let (b50, b99, bmax) = stats(&s.baseline);
    println!("  join → operator connected: p50 {} p99 {} max {}", ms(p50), ms(p99), ms(max));
    println!("  baseline TLS connect + 1 RTT: p50 {} p99 {} max {}", ms(b50), ms(b99), ms(bmax));
    let (c50, j50, a50) = (percentile(&s.connect, 0.5), percentile(&s.joined, 0.5), percentile(&s.attach, 0.5));
    println!("  phases (p50): agent connect {}  Join→Joined {}  attach {}", ms(c50), ms(j50), ms(a50));
    const B: &str = "1 join latency";
    vec![
        Row::new(B, "p50", ms(p50), ms(b50)).target("≤ 5 ms", p50 <= TARGET_P50),
        Row::new(B, "p99", ms(p99), ms(b99)),
        Row::new(B, "max", ms(max), ms(bmax)),
        Row::new(B, "p50 phase: agent TLS connect", ms(c50), ""),
        Row::new(B, "p50 phase: Join → Joined", ms(j50), ""),
        Row::new(B, "p50 phase: operator attach", ms(a50), ""),
    ]
}
