//! Benchmark 9, cluster (issue 17): two broker nodes in this process
//! sharing one PostgreSQL database and the benchmark's own nats-server,
//! measured beside one broker with the cluster off, all in the same run.
//!
//! 1. join latency and chat round trip: four setups interleaved session by
//!    session: one broker on SQLite and one on PostgreSQL with the cluster
//!    off, the operator and agent both on node A ("same node"), the
//!    operator on A and the agent on B ("cross-node"); benchmark 1's bare
//!    TLS connect as the floor;
//! 2. relay throughput operator → agent, same node and cross-node
//!    (benchmark 2's method), in rounds: the median round's ratio;
//! 3. NATS messages per second at rest with N idle sessions homed on both
//!    nodes (`/varz` of nats-server's monitoring endpoint).
//!
//! Every PostgreSQL connection goes through a counting proxy, one per
//! broker, so the round trips of each step are counted. Needs PostgreSQL
//! (`store::testing::TestDatabase`) and nats-server, as the e2e tests do.
//! `LIFELINE_BENCH_QUICK=1`: fewer sessions, less data, a shorter idle.

mod idle;
mod infra;
mod latency;
mod throughput;

use std::time::Duration;

use anyhow::{Context, Result};
use lifeline_core::config::store::StoreConfig;

use crate::{Opts, Row, ms, percentile, row};
use infra::{Database, Nats, Node, PgProxy, broker_config, cluster};
use latency::{Counters, Samples, Setup};

/// Cross-node p50 over same-node p50, join and chat (issue 17).
const TARGET_LATENCY_RATIO: f64 = 2.0;
/// Cross-node throughput over same-node.
const TARGET_THROUGHPUT_RATIO: f64 = 0.5;
/// Rounds of the relay benchmark (same node, then cross-node): the run-to-run
/// spread of one round's ratio on the 2-core VM is about ± 0.05, as wide as
/// the 64 KiB run's margin, so the table gives the median round.
const THROUGHPUT_ROUNDS: usize = 3;
/// Idle sessions for the at-rest reading (full, quick).
const IDLE_SESSIONS: (usize, usize) = (1_000, 200);
/// The idle interval: longer than the heartbeat and the sweep (15 s), so
/// that anything periodic shows (full, quick).
const IDLE_SECS: (u64, u64) = (31, 16);
const B: &str = "9 cluster";

/// The two nodes, the single brokers, and what they run on.
struct Bed {
    nats: Nats,
    proxies: [PgProxy; 3],
    sqlite: Node,
    off: Node,
    a: Node,
    b: Node,
    _dbs: [Database; 2],
    _dir: tempfile::TempDir,
}

impl Bed {
    async fn start() -> Result<Bed> {
        let dir = tempfile::tempdir().context("temporary folder")?;
        let d = dir.path();
        let nats = Nats::start(d).await?;
        let (db_off, db) = (Database::create().await?, Database::create().await?);
        let proxies = [
            PgProxy::start(&db_off).await?,
            PgProxy::start(&db).await?,
            PgProxy::start(&db).await?,
        ];
        let store = |i: usize| proxies[i].store.clone();
        let sqlite =
            Node::start(broker_config(d, "sqlite", StoreConfig::Sqlite, None), true).await?;
        let off = Node::start(broker_config(d, "pg-off", store(0), None), true).await?;
        let a = Node::start(broker_config(d, "a", store(1), cluster(&nats, "a")), true).await?;
        let b = Node::start(broker_config(d, "b", store(2), cluster(&nats, "b")), false).await?;
        Ok(Bed {
            nats,
            proxies,
            sqlite,
            off,
            a,
            b,
            _dbs: [db_off, db],
            _dir: dir,
        })
    }

    fn shutdown(&self) {
        for n in [&self.sqlite, &self.off, &self.a, &self.b] {
            n.broker.shutdown();
        }
    }
}

/// p50 and p99 of unsorted samples.
fn p50_p99(v: &[Duration]) -> (Duration, Duration) {
    let mut s = v.to_vec();
    s.sort();
    (percentile(&s, 0.5), percentile(&s, 0.99))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let (warmup, iters) = if opts.quick { (5, 30) } else { (20, 300) };
    println!("\n[9] cluster: {iters} sessions per setup after {warmup} warm-up, interleaved");
    let bed = Bed::start().await?;
    let (setups, base) = latencies(&bed, warmup, iters).await?;
    let mut rows = latency_rows(&setups, &base);
    rows.extend(throughput_rows(&bed, opts).await?);
    rows.extend(idle_rows(&bed, opts).await?);
    bed.shutdown();
    Ok(rows)
}

/// Runs the interleaved sessions; returns the setups and the bare-TLS
/// baseline.
async fn latencies(bed: &Bed, warmup: usize, iters: usize) -> Result<(Vec<Setup>, Vec<Duration>)> {
    let mut setups = vec![
        Setup::new(
            "1 node, SQLite, cluster off",
            &bed.sqlite.ep,
            &bed.sqlite.ep,
        )
        .await?,
        Setup::new("1 node, PostgreSQL, cluster off", &bed.off.ep, &bed.off.ep).await?,
        Setup::new("cluster, same node (A, A)", &bed.a.ep, &bed.a.ep).await?,
        Setup::new("cluster, cross-node (op A, agent B)", &bed.a.ep, &bed.b.ep).await?,
    ];
    let [p0, p1, p2] = &bed.proxies;
    let pg = [p0, p1, p2];
    let counters = Counters {
        pg: &pg,
        nats: &bed.nats,
    };
    let mut base = Vec::new();
    for i in 0..warmup + iters {
        let keep = i >= warmup;
        let d = latency::bare_connect(&bed.a.ep).await?;
        if keep {
            base.push(d);
        }
        for s in setups.iter_mut() {
            latency::session(s, &counters, i, keep).await?;
        }
    }
    // One more session on each cluster setup, with a subscriber to every
    // subject: what the cluster sends for a join, an attach, a chat, an end.
    for s in setups.iter_mut().skip(2) {
        let tap = bed.nats.tap().await?;
        latency::session(s, &counters, warmup + iters, false).await?;
        println!(
            "  NATS subjects of one session, {}: {:?}",
            s.label,
            tap.stop()
        );
    }
    let (b50, b99) = p50_p99(&base);
    println!(
        "  bare TLS + 1 RTT to node A: p50 {} p99 {}",
        ms(b50),
        ms(b99)
    );
    setups.iter().for_each(print_setup);
    Ok((setups, base))
}

fn print_setup(s: &Setup) {
    let m: &Samples = &s.samples;
    let n = m.sessions.max(1) as f64;
    let (j50, j99) = p50_p99(&m.total);
    let (c50, c99) = p50_p99(&m.chat_rtt);
    let p = |v: &[Duration]| ms(p50_p99(v).0);
    println!("  {}:", s.label);
    println!(
        "    join p50 {} p99 {} (p50 phases: connect {}, Join → Joined {}, attach {})",
        ms(j50),
        ms(j99),
        p(&m.connect),
        p(&m.joined),
        p(&m.attach)
    );
    println!(
        "    chat round trip p50 {} p99 {} (p50 operator → agent {})",
        ms(c50),
        ms(c99),
        p(&m.to_agent)
    );
    println!(
        "    per session: PostgreSQL round trips join {:.1}, attach {:.1}, chat {:.1} ({:.1} of them BEGIN/COMMIT); NATS messages in {:.1}, out {:.1}",
        m.pg[0] as f64 / n,
        m.pg[1] as f64 / n,
        m.pg[2] as f64 / n,
        m.pg_simple as f64 / n,
        m.nats[0] as f64 / n,
        m.nats[1] as f64 / n
    );
}

/// Which samples of a setup a table line compares.
type Pick = fn(&Samples) -> &[Duration];

fn latency_rows(setups: &[Setup], base: &[Duration]) -> Vec<Row> {
    let [sqlite, off, same, cross] = [0, 1, 2, 3].map(|i| &setups[i].samples);
    let (b50, _) = p50_p99(base);
    let mut rows = Vec::new();
    let pairs: [(&str, &Samples, &Samples, &str, Pick); 5] = [
        ("join, cross-node", cross, same, "same node", |m| &m.total),
        (
            "chat round trip, cross-node",
            cross,
            same,
            "same node",
            |m| &m.chat_rtt,
        ),
        (
            "join, same node (cluster on)",
            same,
            off,
            "cluster off, PostgreSQL",
            |m| &m.total,
        ),
        (
            "chat round trip, same node (cluster on)",
            same,
            off,
            "cluster off, PostgreSQL",
            |m| &m.chat_rtt,
        ),
        (
            "join, cluster off, PostgreSQL",
            off,
            sqlite,
            "cluster off, SQLite",
            |m| &m.total,
        ),
    ];
    for (i, (what, m, against, label, pick)) in pairs.into_iter().enumerate() {
        let ((v50, v99), (a50, a99)) = (p50_p99(pick(m)), p50_p99(pick(against)));
        let r = ratio(v50, a50);
        let target = (i < 2).then_some(("≤ 2× same node", r <= TARGET_LATENCY_RATIO));
        let base50 = format!("{label} {} (× {r:.2})", ms(a50));
        rows.push(row(B, &format!("{what} p50"), ms(v50), &base50, target));
        let base99 = format!("{label} {}", ms(a99));
        rows.push(row(B, &format!("{what} p99"), ms(v99), &base99, None));
    }
    let floor = format!("bare TLS + 1 RTT {}", ms(b50));
    let (s50, _) = p50_p99(&sqlite.total);
    rows.push(row(
        B,
        "join, cluster off, SQLite p50",
        ms(s50),
        &floor,
        None,
    ));
    let per = |m: &Samples| {
        let n = m.sessions.max(1) as f64;
        format!(
            "{:.1} PostgreSQL round trips, {:.1} NATS msgs in",
            (m.pg[0] + m.pg[1]) as f64 / n,
            m.nats[0] as f64 / n
        )
    };
    let same_per = format!("same node: {}", per(same));
    rows.push(row(
        B,
        "join + attach + chat, cross-node",
        per(cross),
        &same_per,
        None,
    ));
    rows
}

async fn throughput_rows(bed: &Bed, opts: Opts) -> Result<Vec<Row>> {
    let total: u64 = if opts.quick { 256 << 20 } else { 1 << 30 };
    let rounds = if opts.quick { 1 } else { THROUGHPUT_ROUNDS };
    println!(
        "  relay throughput operator → agent: {} MiB per run, {rounds} rounds of same node then cross-node",
        total >> 20
    );
    let op = infra::operator(&bed.a.ep, |_| {}).await?;
    let mut rows = Vec::new();
    for (chunk, label) in [
        (lifeline_operator::e2e::MAX_DATA_BYTES, "4 MiB-99"),
        (64 << 10, "64 KiB"),
    ] {
        let total = total / chunk as u64 * chunk as u64;
        let mibs = |s: f64| total as f64 / s / 1048576.0;
        let mut runs = Vec::new();
        for _ in 0..rounds {
            let run = throughput_round(bed, &op, chunk, total).await?;
            println!(
                "    {label} chunks: same node {:.0} MiB/s (RSS +{} MiB), cross-node {:.0} MiB/s (RSS +{} MiB): × {:.2}; NATS bytes per relayed byte in {:.3}, out {:.3}, messages in {}",
                mibs(run.same),
                run.rss[0] >> 10,
                mibs(run.cross),
                run.rss[1] >> 10,
                run.same / run.cross,
                run.nats_per_byte[0],
                run.nats_per_byte[1],
                run.nats_msgs
            );
            runs.push(run);
        }
        // The round with the median ratio, its figures beside it.
        runs.sort_by(|a, b| (a.same / a.cross).total_cmp(&(b.same / b.cross)));
        let mid = &runs[runs.len() / 2];
        let r = mid.same / mid.cross;
        let base = format!("same node {:.0} MiB/s", mibs(mid.same));
        let target = Some(("≥ 0.5× same node", r >= TARGET_THROUGHPUT_RATIO));
        let value = format!(
            "{:.0} MiB/s (× {r:.2}, median of {rounds})",
            mibs(mid.cross)
        );
        let metric = format!("relay throughput cross-node, {label} chunks");
        rows.push(row(B, &metric, value, &base, target));
    }
    Ok(rows)
}

/// One round of the relay benchmark: the timed seconds on one node and
/// across nodes, each run's RSS growth (KiB), and NATS's traffic during
/// the cross-node run.
struct Round {
    same: f64,
    cross: f64,
    rss: [i64; 2],
    nats_per_byte: [f64; 2],
    nats_msgs: u64,
}

async fn throughput_round(
    bed: &Bed,
    op: &std::sync::Arc<lifeline_operator::Client>,
    chunk: usize,
    total: u64,
) -> Result<Round> {
    let (same, same_rss) = throughput::relay(op, &bed.a.ep, chunk, total).await?;
    let v0 = bed.nats.varz().await?;
    let (cross, cross_rss) = throughput::relay(op, &bed.b.ep, chunk, total).await?;
    let v1 = bed.nats.varz().await?;
    let sent = total + crate::throughput::WARMUP_BYTES.div_ceil(chunk as u64) * chunk as u64;
    let per_byte = |d: u64| d as f64 / sent as f64;
    Ok(Round {
        same,
        cross,
        rss: [same_rss, cross_rss],
        nats_per_byte: [
            per_byte(v1.in_bytes - v0.in_bytes),
            per_byte(v1.out_bytes - v0.out_bytes),
        ],
        nats_msgs: v1.in_msgs - v0.in_msgs,
    })
}

async fn idle_rows(bed: &Bed, opts: Opts) -> Result<Vec<Row>> {
    let (n, secs) = if opts.quick {
        (IDLE_SESSIONS.1, IDLE_SECS.1)
    } else {
        (IDLE_SESSIONS.0, IDLE_SECS.0)
    };
    println!("  at rest: {n} idle sessions on nodes A and B, operator on A, {secs} s idle");
    let eps = [&bed.a.ep, &bed.b.ep];
    let pg = [&bed.proxies[1], &bed.proxies[2]];
    let r = idle::run(&bed.nats, pg, eps, n, Duration::from_secs(secs)).await?;
    let (subs, msgs_in, msgs_out) = r.setup;
    println!(
        "    NATS at rest: {:.2} msgs/s in, {:.2} msgs/s out over {:.1} s ({} → {} in); subscriptions {} ({:.1} per session); setting up cost {:.1} msgs in, {:.1} out per session",
        r.in_per_sec(),
        r.out_per_sec(),
        r.secs,
        r.before.in_msgs,
        r.after.in_msgs,
        r.after.subscriptions,
        subs as f64 / n as f64,
        msgs_in as f64 / n as f64,
        msgs_out as f64 / n as f64
    );
    println!(
        "    seen at rest by a subscriber to every subject: {:?}",
        r.seen
    );
    println!(
        "    PostgreSQL at rest (both nodes): {:.2} round trips/s, {:.0} bytes/s received",
        r.pg.0 as f64 / r.secs,
        r.pg.1 as f64 / r.secs
    );
    let value = format!("{:.2} in, {:.2} out", r.in_per_sec(), r.out_per_sec());
    let metric = format!("NATS msgs/s at rest, {} sessions", r.sessions);
    let base = format!("{:.1} subscriptions per session", subs as f64 / n as f64);
    let quiet = r.in_per_sec() < 1.0;
    let pg_value = format!(
        "{:.2} round trips/s, {:.0} bytes/s",
        r.pg.0 as f64 / r.secs,
        r.pg.1 as f64 / r.secs
    );
    let pg_metric = format!("PostgreSQL at rest, {} sessions, both nodes", r.sessions);
    Ok(vec![
        row(B, &metric, value, &base, Some(("~0", quiet))),
        row(B, &pg_metric, pg_value, "", None),
    ])
}
