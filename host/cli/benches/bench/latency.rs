//! Benchmark 1: "connection ID entered → operator connected" on loopback.
//!
//! Timed per iteration: agent TCP + TLS 1.3 + `Hello`/`Welcome` with the
//! `Join` by connection ID written right behind the `Hello` (as the agent
//! does), until `Joined`; then the operator's `attach`, carrying its
//! end-to-end hello, until the channel with the agent is ready (attach
//! reply, the agent's answer). Not timed: creating the invitation, ending
//! the session.
//! Baseline, interleaved with it: `client::connect` alone (TCP + TLS +
//! one `Hello`/`Welcome` round trip) to the same broker.

use std::time::{Duration, Instant};

use anyhow::Result;
use lifeline_core::client;
use lifeline_protocol::{ClientRole, JoinCredential};

use crate::{Harness, Opts, Row, join, ms, percentile, row, step};

const TARGET_P50: Duration = Duration::from_millis(5);

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let (warmup, iters) = if opts.quick { (5, 30) } else { (20, 300) };
    println!("\n[1/3] join latency: {iters} iterations after {warmup} warm-up");
    let h = Harness::start().await?;
    // total, baseline, and the phases: connect, Join → Joined, attach
    // (both sides' channels ready), the operator's side ready.
    let mut s: [Vec<Duration>; 6] = Default::default();
    for i in 0..warmup + iters {
        let t = Instant::now();
        let bare = step("baseline", client::connect(&h.ep, ClientRole::Agent)).await?;
        let base = t.elapsed();
        drop(bare);

        let inv = step("invite", h.op.invite(&format!("LAT-{i}"), "Customer", None)).await?;
        let t0 = Instant::now();
        let code = JoinCredential::ConnectionId(inv.connection_id.clone());
        let (mut agent, connect) = step("agent join", join(&h.ep, code)).await?;
        let joined = t0.elapsed();
        let (_, op_ready) =
            crate::raw_e2e::attach_timed(&h.op, &mut agent, &inv.session_id).await?;
        let total = t0.elapsed();
        step("end", h.op.end(&inv.session_id, "iteration over")).await?;
        drop(agent);
        if i >= warmup {
            let sample = [
                total,
                base,
                connect,
                joined - connect,
                total - joined,
                op_ready,
            ];
            s.iter_mut().zip(sample).for_each(|(v, d)| v.push(d));
        }
    }
    h.broker.shutdown();
    let crypto = crate::floor::handshake(iters)?;
    let (rt_links, rt_direct) = crate::floor::round_trips(iters).await?;
    s.iter_mut().for_each(|v| v.sort());
    let [total, base, connect, joined, attach, op_ready] = &s;
    let stats = |v: &[Duration]| {
        let max = v.last().copied().unwrap_or_default();
        [percentile(v, 0.5), percentile(v, 0.99), max]
    };
    let ([p50, p99, max], [b50, b99, bmax]) = (stats(total), stats(base));
    let phases = [connect, joined, attach, op_ready].map(|v| ms(percentile(v, 0.5)));
    println!(
        "  entered → connected: p50 {} p99 {} max {}",
        ms(p50),
        ms(p99),
        ms(max)
    );
    println!(
        "  baseline TLS + 1 RTT: p50 {} p99 {} max {}",
        ms(b50),
        ms(b99),
        ms(bmax)
    );
    println!(
        "  p50 phases: connect {}, join {}, attach {} (the operator's side ready after {})",
        phases[0], phases[1], phases[2], phases[3]
    );
    let floor = b50 + rt_links * crate::floor::HOPS / 2 + crypto;
    println!(
        "  floor of this design: baseline + {} hops through links (round trip {}; directly on TLS {}) + handshake keys {} = {} (× {:.2})",
        crate::floor::HOPS,
        ms(rt_links),
        ms(rt_direct),
        ms(crypto),
        ms(floor),
        floor.as_secs_f64() / b50.as_secs_f64()
    );
    const B: &str = "1 join latency";
    let [c, j, a, o] = phases;
    Ok(vec![
        row(
            B,
            "p50",
            ms(p50),
            &ms(b50),
            Some(("≤ 5 ms", p50 <= TARGET_P50)),
        ),
        row(B, "p99", ms(p99), &ms(b99), None),
        row(B, "max", ms(max), &ms(bmax), None),
        row(
            B,
            "p50 phase: agent TCP+TLS+Hello (join sent with it)",
            c,
            "",
            None,
        ),
        row(B, "p50 phase: Join → Joined", j, "", None),
        row(B, "p50 phase: operator attach + e2e handshake", a, "", None),
        row(
            B,
            "p50 of that phase: the operator's side ready (attach returned)",
            o,
            "",
            None,
        ),
        row(
            B,
            "floor: baseline + 7 link hops + handshake keys, no broker work",
            ms(floor),
            &format!(
                "× {:.2} of the baseline",
                floor.as_secs_f64() / b50.as_secs_f64()
            ),
            None,
        ),
        row(
            B,
            "p50 round trip of 64 bytes through a link at each end",
            ms(rt_links),
            &format!("{} directly on the TLS streams", ms(rt_direct)),
            None,
        ),
        row(
            B,
            "p50 handshake key operations (start + accept + finish)",
            ms(crypto),
            "",
            None,
        ),
    ])
}
