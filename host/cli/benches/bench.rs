//! `cargo bench -p lifeline --bench lifeline-bench [latency|throughput|idle|features|stream|screen|console|load]`:
//! three loopback benchmarks of the broker, each beside a baseline measured
//! in the same run.
//!
//! 1. join latency: connection ID entered → operator connected;
//! 2. relay throughput operator → agent through the broker;
//! 3. idle agents: broker memory per idle agent (broker in its own process);
//! 4. features: script-run overhead, system-information gathering;
//! 5. stream: a WASM plugin's stream to the operator client, against the
//!    raw relay of benchmark 2 in the same run;
//! 6. screen: the screen plugin against x11vnc on the same Xvfb display
//!    (needs Xvfb, x11vnc, xterm, python3; see bench/screen/README.md);
//! 8. load: N concurrent sessions (join, chat, consent, scripts, a 1 MiB
//!    stream, the report counted) on one broker process, beside the same
//!    steps with N = 1 (`LIFELINE_BENCH_SESSIONS=N`, default 200);
//! 9. cluster: two broker nodes on PostgreSQL and NATS, same node against
//!    cross-node, beside one broker with the cluster off (needs PostgreSQL
//!    and nats-server, as the e2e tests).
//!
//! `LIFELINE_BENCH_QUICK=1` shrinks every size about tenfold;
//! `LIFELINE_BENCH_AGENTS=N` sets the number of idle agents (default 10,000).
//! Figures and how to read them: docs/benchmarks.md.

#[path = "bench/cluster/mod.rs"]
mod cluster;
#[path = "bench/console/mod.rs"]
mod console;
#[path = "bench/features.rs"]
mod features;
#[path = "bench/floor.rs"]
mod floor;
#[path = "bench/idle.rs"]
mod idle;
#[path = "bench/latency.rs"]
mod latency;
#[path = "bench/load/mod.rs"]
mod load;
#[path = "bench/raw_e2e.rs"]
mod raw_e2e;
#[path = "bench/screen/mod.rs"]
mod screen;
#[path = "bench/stream.rs"]
mod stream;
#[path = "bench/throughput.rs"]
mod throughput;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use lifeline_core::client::{self, Endpoint};
use lifeline_core::config::BrokerConfig;
use lifeline_core::link::Link;
use lifeline_core::tls::{Fingerprint, Trust};
use lifeline_operator::Client;
use lifeline_protocol::{ClientRole, Frame, JoinCredential, Message, OperatorProfile};

/// Bound on every single wait of the benchmark.
pub const STEP: Duration = Duration::from_secs(30);
/// Heartbeat of every connection (the broker's default).
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Operator account used by every benchmark.
pub const USERNAME: &str = "bench";
pub const PASSWORD: &str = "bench-password-0123";

/// Run-wide settings from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub quick: bool,
    /// Idle agents requested (before the file-descriptor cap).
    pub agents: usize,
}

/// One line of the final table: benchmark, metric, Lifeline, baseline,
/// target and whether it was met (`None`: no target on this line).
pub type Row = [String; 6];

pub fn row(
    bench: &str,
    metric: &str,
    value: String,
    base: &str,
    target: Option<(&str, bool)>,
) -> Row {
    let (target, met) = match target {
        Some((t, ok)) => (t, if ok { "yes" } else { "NO" }),
        None => ("", ""),
    };
    [bench, metric, &value, base, target, met].map(String::from)
}

/// Awaits `fut` for at most [`STEP`], naming what timed out.
pub async fn step<T, E, F>(what: &str, fut: F) -> Result<T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    match tokio::time::timeout(STEP, fut).await {
        Ok(r) => r.map_err(Into::into).with_context(|| what.to_string()),
        Err(_) => bail!("timed out after {STEP:?}: {what}"),
    }
}

pub fn endpoint(address: String, fp: Fingerprint) -> Endpoint {
    let trust = Trust::Pinned(fp);
    let server_name = "localhost".into();
    Endpoint {
        address,
        server_name,
        trust,
        heartbeat: HEARTBEAT,
    }
}

/// An in-process broker on loopback with a logged-in operator client.
pub struct Harness {
    pub broker: lifeline_broker::Broker,
    pub ep: Endpoint,
    pub op: Arc<Client>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Result<Harness> {
        let dir = tempfile::tempdir().context("temporary folder")?;
        let cfg = BrokerConfig {
            name: "Lifeline bench broker".into(),
            listen: "127.0.0.1:0".parse().expect("literal address"),
            https_listen: "127.0.0.1:0".parse().expect("literal address"),
            public_url: None,
            data_dir: dir.path().join("broker"),
            cert_names: vec!["localhost".into(), "127.0.0.1".into()],
            tls_files: None,
            invitation_ttl: Duration::from_secs(600),
            rejoin_ttl: Duration::from_secs(900),
            heartbeat: HEARTBEAT,
            script_categories: vec!["Other".into()],
            back_office: None,
            // Up to 25 000 idle agents from 127.0.0.1: lift the caps.
            limits: lifeline_core::limits::BrokerLimits {
                max_connections: 1_000_000,
                max_connections_per_source: 1_000_000,
                ..Default::default()
            },
            smtp: None,
            join: Default::default(),
            store: Default::default(),
            cluster: None,
        };
        let profile = OperatorProfile {
            username: USERNAME.into(),
            name: "Bench Operator".into(),
            email: String::new(),
            title: String::new(),
        };
        lifeline_broker::add_operator(&cfg, &profile, PASSWORD)?;
        let broker = lifeline_broker::Broker::start(cfg).await?;
        let ep = endpoint(broker.addr.to_string(), broker.fingerprint);
        let op = login(&ep).await?;
        Ok(Harness {
            broker,
            ep,
            op,
            _dir: dir,
        })
    }
}

/// Connects and logs in the bench operator. Its pushed events are drained
/// by a task: unread "session ready" notices would stall its connection.
pub async fn login(ep: &Endpoint) -> Result<Arc<Client>> {
    let mut op = step("operator connect", Client::connect(ep)).await?;
    step("operator login", op.login(USERNAME, PASSWORD)).await?;
    let op = Arc::new(op);
    let drain = Arc::clone(&op);
    tokio::spawn(async move { while drain.next_event().await.is_some() {} });
    Ok(op)
}

/// An agent: TLS + handshake, `Join`, and wait for `Joined`; also returns
/// the time the connect phase (TCP, TLS, `Hello`/`Welcome`) took.
pub async fn join(ep: &Endpoint, credential: JoinCredential) -> Result<(Link, Duration)> {
    let t0 = Instant::now();
    let host = "bench-pc".into();
    // As the agent does: the join right behind the handshake's hello.
    let join = Frame::Control(Message::Join { credential, host });
    let (mut link, _) = client::connect_then(ep, ClientRole::Agent, None, &join).await?;
    let connected = t0.elapsed();
    let closed = |l: &Link| anyhow!("agent link closed: {}", l.close_reason.get());
    loop {
        match tokio::time::timeout(STEP, link.rx.recv()).await {
            Err(_) => bail!("no joined within {STEP:?}"),
            Ok(Some(Frame::Control(Message::Joined { .. }))) => return Ok((link, connected)),
            Ok(Some(Frame::Control(Message::Error { message, .. }))) => bail!("refused: {message}"),
            Ok(Some(_)) => {}
            Ok(None) => return Err(closed(&link)),
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn print_table(rows: &[Row]) {
    let head = [
        "benchmark",
        "metric",
        "Lifeline",
        "baseline (same run)",
        "target",
        "met",
    ];
    let head = head.map(String::from);
    let mut width = [0; 6];
    for r in rows.iter().chain([&head]) {
        for (w, s) in width.iter_mut().zip(r) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |r: &Row| {
        let cells: Vec<String> = r
            .iter()
            .zip(width)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        println!("| {} |", cells.join(" | "));
    };
    line(&head);
    line(&width.map(|w| "-".repeat(w)));
    rows.iter().for_each(line);
}

fn main() -> Result<()> {
    // The load benchmark's agents run in copies of this binary.
    if let Ok(spec) = std::env::var(load::agents::HOST_ENV) {
        return load::agents::host_main(&spec);
    }
    // `cargo bench` passes `--bench`; other arguments pick benchmarks.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    let agents = match std::env::var("LIFELINE_BENCH_AGENTS") {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .context("LIFELINE_BENCH_AGENTS")?,
        Err(_) => 10_000,
    };
    let quick = std::env::var("LIFELINE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let opts = Opts { quick, agents };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mode = if quick { "quick" } else { "full" };
    let release = !cfg!(debug_assertions);
    println!("Lifeline benchmarks ({mode} mode, {cores} cores, optimised={release})");
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    let started = Instant::now();
    let mut rows = Vec::new();
    if wants("latency") {
        rows.extend(rt.block_on(latency::run(opts))?);
    }
    if wants("throughput") {
        rows.extend(rt.block_on(throughput::run(opts))?);
    }
    if wants("idle") {
        rows.extend(rt.block_on(idle::run(opts))?);
    }
    if wants("features") {
        rows.extend(features::run(opts)?);
    }
    if wants("stream") {
        rows.extend(rt.block_on(stream::run(opts))?);
    }
    if wants("screen") {
        rows.extend(rt.block_on(screen::run(opts))?);
    }
    if wants("console") {
        rows.extend(rt.block_on(console::run(opts))?);
    }
    if wants("load") {
        rows.extend(rt.block_on(load::run(opts))?);
    }
    if wants("cluster") {
        rows.extend(rt.block_on(cluster::run(opts))?);
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    println!(
        "\nSummary ({:.0} s in all):",
        started.elapsed().as_secs_f64()
    );
    print_table(&rows);
    Ok(())
}
