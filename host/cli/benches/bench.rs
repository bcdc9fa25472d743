//! `cargo bench -p lifeline --bench lifeline-bench`: three loopback
//! benchmarks of the broker, each beside a baseline measured in the same run.
//!
//! 1. join latency: connection ID entered → operator connected;
//! 2. relay throughput operator → agent through the broker;
//! 3. idle agents: broker memory per idle agent (broker in its own process).
//!
//! `LIFELINE_BENCH_QUICK=1` shrinks every size about tenfold;
//! `LIFELINE_BENCH_AGENTS=N` sets the number of idle agents (default 10,000).
//! Figures and how to read them: docs/benchmarks.md.

#[path = "bench/idle.rs"]
mod idle;
#[path = "bench/latency.rs"]
mod latency;
#[path = "bench/throughput.rs"]
mod throughput;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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

/// One line of the final table.
#[derive(Debug, Clone)]
pub struct Row {
    pub bench: &'static str,
    pub metric: String,
    pub value: String,
    pub baseline: String,
    pub target: String,
    /// `None`: no target for this line.
    pub met: Option<bool>,
}

impl Row {
    pub fn new(bench: &'static str, metric: impl Into<String>, value: impl Into<String>, baseline: impl Into<String>) -> Row {
        Row { bench, metric: metric.into(), value: value.into(), baseline: baseline.into(), target: String::new(), met: None }
    }
    pub fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.met = Some(met);
        self
    }
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

pub fn endpoint(address: String, fingerprint: Fingerprint) -> Endpoint {
    Endpoint { address, server_name: "localhost".into(), trust: Trust::Pinned(fingerprint), heartbeat: HEARTBEAT }
}

pub fn profile() -> OperatorProfile {
    OperatorProfile {
        username: USERNAME.into(),
        name: "Bench Operator".into(),
        email: String::new(),
        title: String::new(),
    }
}

/// An in-process broker on loopback with a logged-in operator client whose
/// pushed events are drained (else "session ready" notices would pile up and
/// stall its connection).
pub struct Harness {
    pub broker: lifeline_broker::Broker,
    pub ep: Endpoint,
    pub op: Arc<Client>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Result<Harness> {
        let dir = tempfile::Builder::new().prefix("lifeline-bench-").tempdir().context("temporary folder")?;
        let cfg = BrokerConfig {
            name: "Lifeline bench broker".into(),
            listen: "127.0.0.1:0".parse().expect("literal address"),
            https_listen: "127.0.0.1:0".parse().expect("literal address"),
            public_url: None,
            data_dir: dir.path().join("broker"),
            cert_names: vec!["localhost".into(), "127.0.0.1".into()],
            tls_files: None,
            invitation_ttl: Duration::from_secs(600),
            heartbeat: HEARTBEAT,
        };
        lifeline_broker::add_operator(&cfg, &profile(), PASSWORD)?;
        let broker = lifeline_broker::Broker::start(cfg).await?;
        let ep = endpoint(broker.addr.to_string(), broker.fingerprint);
        let op = login(&ep).await?;
        Ok(Harness { broker, ep, op, _dir: dir })
    }
}

/// Connects and logs in the bench operator; drains its events in a task.
pub async fn login(ep: &Endpoint) -> Result<Arc<Client>> {
    let mut op = step("operator connect", Client::connect(ep)).await?;
    step("operator login", op.login(USERNAME, PASSWORD)).await?;
    let op = Arc::new(op);
    let drain = Arc::clone(&op);
    tokio::spawn(async move { while drain.next_event().await.is_some() {} });
    Ok(op)
}

/// An agent: TLS + handshake, `Join`, and wait for `Joined`.
pub async fn join(ep: &Endpoint, credential: JoinCredential) -> Result<Link> {
    Ok(join_timed(ep, credential).await?.0)
}

/// [`join`], also returning the time the connect phase (TCP, TLS,
/// `Hello`/`Welcome`) took.
pub async fn join_timed(ep: &Endpoint, credential: JoinCredential) -> Result<(Link, Duration)> {
    let t0 = std::time::Instant::now();
    let (mut link, _) = client::connect(ep, ClientRole::Agent).await.context("agent connect")?;
    let connected = t0.elapsed();
    let join = Frame::Control(Message::Join { credential, host: "bench-pc".into() });
    link.tx.send(join).await.map_err(|_| anyhow!("agent link closed: {}", link.close_reason.get()))?;
    loop {
        match tokio::time::timeout(STEP, link.rx.recv()).await.context("waiting for joined")? {
            Some(Frame::Control(Message::Joined { .. })) => return Ok((link, connected)),
            Some(Frame::Control(Message::Error { message, .. })) => bail!("join refused: {message}"),
            Some(_) => {}
            None => bail!("agent link closed before joined: {}", link.close_reason.get()),
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn env_usize(name: &str) -> Result<Option<usize>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v.trim().replace(['_', ','], "").parse().with_context(|| format!("{name}={v:?} is not a count"))?)),
        Err(_) => Ok(None),
    }
}

fn print_table(rows: &[Row]) {
    let head = ["benchmark", "metric", "Lifeline", "baseline (same run)", "target", "met"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            };
            [r.bench.into(), r.metric.clone(), r.value.clone(), r.baseline.clone(), r.target.clone(), met.into()]
        })
        .collect();
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let parts: Vec<String> = c.iter().zip(&width).map(|(s, w)| format!("{s:<w$}")).collect();
        println!("| {} |", parts.join(" | "));
    };
    line(&head.map(String::from));
    line(&width.map(|w| "-".repeat(w)));
    for c in &cells {
        line(c);
    }
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; a filter argument picks benchmarks.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let opts = Opts {
        quick: std::env::var("LIFELINE_BENCH_QUICK").is_ok_and(|v| v == "1"),
        agents: env_usize("LIFELINE_BENCH_AGENTS")?.unwrap_or(10_000),
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("Lifeline benchmarks ({} mode, {cores} cores, release={})", if opts.quick { "quick" } else { "full" }, !cfg!(debug_assertions));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    let mut rows = Vec::new();
    let started = std::time::Instant::now();
    if wants("latency") {
        rows.extend(rt.block_on(latency::run(opts))?);
    }
    if wants("throughput") {
        rows.extend(rt.block_on(throughput::run(opts))?);
    }
    if wants("idle") {
        rows.extend(rt.block_on(idle::run(opts))?);
    }
    // Idle agents' links are dropped with the runtime.
    rt.shutdown_timeout(Duration::from_secs(5));
    println!();
    println!("Summary ({:.0} s in all):", started.elapsed().as_secs_f64());
    print_table(&rows);
    Ok(())
}
