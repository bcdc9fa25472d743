//! Benchmark 3: idle agents, and the broker's memory per idle agent.
//!
//! The broker runs as its own process (the `lifeline` binary with a
//! temporary config) so that its resident memory can be read from
//! /proc/PID/status. N invitations are created, the RSS is read, N agents
//! join by link token and stay idle, and after a pause the RSS is read
//! again: (after − before) / N is the memory one idle agent costs. A full
//! run reads it once more after one heartbeat exchange on every connection.
//!
//! The same run first measures a baseline the same way: N bare TLS 1.3
//! connections held open by a process of their own (`idle_base.rs`).
//! `LIFELINE_BENCH_CLUSTER=1` runs the broker with `[cluster]` (its own
//! nats-server, a PostgreSQL database); `LIFELINE_BENCH_HEAPTRACK=FILE`
//! profiles the broker's heap.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lifeline_core::tls::Fingerprint;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[path = "idle_base.rs"]
mod base;

use crate::{HEARTBEAT, Opts, PASSWORD, Row, USERNAME, endpoint, login, row, step};

/// Connections in flight at once while creating invitations and agents.
const CONCURRENCY: usize = 64;
/// One loopback source address and the ephemeral port range bound N.
const MAX_AGENTS: usize = 25_000;
/// File descriptors kept free for everything else in each process.
const FD_HEADROOM: u64 = 1_024;
/// Pause between the last join and the second RSS reading.
const SETTLE: Duration = Duration::from_secs(3);
const TARGET_PER_GIB: f64 = 100_000.0;
/// MeshCentral's published figure, not measured here.
const MESHCENTRAL: &str = "~3,500/GB MeshCentral (published)";

/// The broker child; killed and reaped when dropped, on every path.
struct BrokerProcess(Child);

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Resident set size of a process in bytes (VmRSS).
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    let kb = kb.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    Ok(kb.context("no VmRSS in /proc status")? * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// Waits for a child for at most `limit`, killing it when it overstays.
fn wait_child(child: &mut Child, limit: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("a lifeline command took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lifeline(args: &[&str], config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.args(args).arg("--config").arg(config);
    c
}

fn log_tail(p: &Path) -> String {
    let log = std::fs::read_to_string(p).unwrap_or_default();
    log.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
}

/// Writes the config, creates the operator, starts the broker and waits for
/// its banner; returns the process, its session address and fingerprint.
fn start_broker(dir: &Path, extra: &str) -> Result<(BrokerProcess, String, Fingerprint)> {
    let config = dir.join("broker.toml");
    let toml = "[broker]\nlisten = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\n\
                data_dir = \"data\"\n[broker.limits]\nmax_connections = {PER_BROKER}\n\
                max_connections_per_source = {PER_BROKER}\n";
    let toml = toml.replace(
        "{PER_BROKER}",
        &(MAX_AGENTS + FD_HEADROOM as usize).to_string(),
    );
    std::fs::write(&config, format!("{toml}{extra}"))?;
    let args = [
        "broker",
        "add-operator",
        "--username",
        USERNAME,
        "--name",
        "Bench",
    ];
    let mut add = lifeline(&args, &config);
    add.arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut add = add.spawn()?;
    let mut stdin = add.stdin.take().context("add-operator stdin")?;
    stdin.write_all(format!("{PASSWORD}\n").as_bytes())?;
    drop(stdin);
    let status = wait_child(&mut add, Duration::from_secs(30))?;
    if !status.success() {
        bail!("lifeline broker add-operator failed ({status})");
    }
    run_broker(dir)
}

/// Starts (or restarts) the broker configured in `dir` and waits for its
/// banner; returns the process, its session address and fingerprint.
fn run_broker(dir: &Path) -> Result<(BrokerProcess, String, Fingerprint)> {
    let config = dir.join("broker.toml");
    let (out, log) = (dir.join("broker.out"), dir.join("broker.log"));
    let mut cmd = lifeline(&["broker", "run"], &config);
    base::profile(&mut cmd);
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?);
    cmd.stderr(std::fs::File::create(&log)?);
    let mut broker = BrokerProcess(cmd.spawn().context("starting lifeline broker run")?);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&out)?;
        let addr = text
            .lines()
            .find_map(|l| l.strip_prefix("Broker listening on ")?.split(' ').next());
        let fp = text
            .lines()
            .find_map(|l| l.strip_prefix("Certificate fingerprint: "));
        if let (Some(addr), Some(fp)) = (addr, fp) {
            return Ok((broker, addr.to_string(), Fingerprint::parse(fp)?));
        }
        if let Some(status) = broker.0.try_wait()? {
            bail!("the broker exited ({status}): {}", log_tail(&log));
        }
        if Instant::now() > deadline {
            bail!("no broker banner within 20 s: {}", log_tail(&log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `f(i)` for `i` in `0..n`, [`CONCURRENCY`] at a time.
async fn bounded<T, F, Fut>(n: usize, f: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let (gate, fut) = (Arc::clone(&gate), f(i));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            fut.await
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        out.push(r.context("task")??);
    }
    Ok(out)
}

/// Restarts the broker in `dir` and resumes every session; the time it
/// took and the broker's RSS growth per resumed agent.
async fn resume_all(dir: &Path, credentials: Vec<lifeline_protocol::Secret>) -> Result<(f64, f64)> {
    let n = credentials.len();
    let (broker, addr, fp) = run_broker(dir)?;
    let pid = broker.0.id();
    let ep = Arc::new(endpoint(addr, fp));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(pid)?;
    let t = Instant::now();
    let links = bounded(n, |i| {
        let (ep, credential) = (Arc::clone(&ep), credentials[i].clone());
        async move { step("agent resume", base::resume(&ep, credential)).await }
    })
    .await?;
    let secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let per = rss(pid)?.saturating_sub(before) as f64 / n as f64;
    drop(broker);
    drop(links);
    Ok((secs, per))
}

/// The baseline: RSS growth of a process holding `n` bare TLS connections
/// (after one round trip each), per connection, in bytes.
async fn bare_tls(n: usize) -> Result<f64> {
    let (server, addr, fp) = base::start_bare_tls()?;
    let pid = server.0.id();
    let connector = base::bare_connector(fp)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(pid)?;
    let conns = bounded(n, |_| {
        let (c, a) = (Arc::clone(&connector), addr.clone());
        async move { step("bare TLS", base::bare_client(c, a)).await }
    })
    .await?;
    tokio::time::sleep(SETTLE).await;
    let after = rss(pid)?;
    drop(conns);
    drop(server);
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    if std::env::var_os(base::BARE_TLS_ENV).is_some() {
        base::serve_bare_tls().await?;
        return Ok(Vec::new());
    }
    // Raise the soft open-files limit to the hard one; the broker inherits it.
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft < hard {
        rlimit::Resource::NOFILE
            .set(hard, hard)
            .context("raising RLIMIT_NOFILE")?;
    }
    let cap = MAX_AGENTS.min(usize::try_from(hard.saturating_sub(FD_HEADROOM))?);
    let wanted = opts.agents / if opts.quick { 10 } else { 1 };
    let n = wanted.clamp(1, cap.max(1));
    println!("\n[3/3] idle agents: N = {n} (asked {wanted}; open-files limit {hard})");
    let bare = bare_tls(n).await?;
    println!(
        "  baseline: {:.1} KiB per bare TLS connection",
        bare / 1024.0
    );
    let dir = tempfile::tempdir().context("temporary folder")?;
    let cluster = base::cluster(dir.path())?;
    let extra = cluster.as_ref().map_or("", |c| c.toml.as_str());
    let (mut broker, addr, fp) = start_broker(dir.path(), extra)?;
    let pid = broker.0.id();
    let ep = Arc::new(endpoint(addr, fp));
    let op = login(&ep).await?;
    let empty = rss(pid)?;

    let t = Instant::now();
    let tokens = bounded(n, |i| {
        let op = Arc::clone(&op);
        async move {
            let inv = step("invite", op.invite(&format!("IDLE-{i}"), "Customer", None)).await?;
            Ok(inv.link.rsplit('/').next().unwrap_or_default().to_string())
        }
    })
    .await?;
    let invite_rate = n as f64 / t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(pid)?;

    let t = Instant::now();
    let agents = bounded(n, |i| {
        let (ep, token) = (Arc::clone(&ep), tokens[i].clone());
        async move { step("agent join", base::join_keeping_credential(&ep, token)).await }
    })
    .await?;
    let connect_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let after = rss(pid)?;
    // A full run also waits until every connection exchanged a heartbeat.
    let beat = if opts.quick {
        None
    } else {
        tokio::time::sleep(HEARTBEAT + Duration::from_secs(1) - SETTLE).await;
        Some(rss(pid)?)
    };
    if let Some(status) = broker.0.try_wait()? {
        let log = log_tail(&dir.path().join("broker.log"));
        bail!("the broker died ({status}): {log}");
    }
    // The node's loss: SIGKILL, then every agent resumes on the restarted
    // broker (SQLite; with [cluster] PostgreSQL, and the restarted node
    // adopts the sessions its former self held), 64 at a time.
    drop(broker);
    let (links, credentials): (Vec<_>, Vec<_>) = agents.into_iter().unzip();
    drop(links);
    let (resume_secs, resume_per) = resume_all(dir.path(), credentials).await?;
    drop(cluster);

    let per_agent = |rss: u64| rss.saturating_sub(before) as f64 / n as f64;
    let per_gib = |rss: u64| f64::from(1u32 << 30) / per_agent(rss).max(1.0);
    let kib = |rss: u64| format!("{:.1} KiB", per_agent(rss) / 1024.0);
    let rate = n as f64 / connect_secs;
    println!(
        "  {n} agents connected in {connect_secs:.2} s; {} each",
        kib(after)
    );
    const B: &str = "3 idle agents";
    let bare_gib = f64::from(1u32 << 30) / bare.max(1.0);
    let info = [
        (
            "baseline: bare TLS 1.3 connection held open".into(),
            format!("{:.1} KiB ({bare_gib:.0} per GiB)", bare / 1024.0),
        ),
        ("broker RSS, no invitations".into(), mib(empty)),
        (format!("broker RSS, {n} invitations"), mib(before)),
        (
            "invitations created per s".into(),
            format!("{invite_rate:.0}"),
        ),
        (
            format!("time to connect {n} agents"),
            format!("{connect_secs:.2} s ({rate:.0}/s)"),
        ),
        (format!("broker RSS, {n} idle agents"), mib(after)),
        ("memory per idle agent".into(), kib(after)),
    ];
    let mut rows: Vec<Row> = info
        .into_iter()
        .map(|(m, v)| row(B, &m, v, "", None))
        .collect();
    let per_gib_row = |metric: &str, rss: u64| {
        let target = Some(("≥ 100,000", per_gib(rss) >= TARGET_PER_GIB));
        row(
            B,
            metric,
            format!("{:.0}", per_gib(rss)),
            MESHCENTRAL,
            target,
        )
    };
    rows.push(per_gib_row("idle agents per GiB", after));
    let resume_rate = n as f64 / resume_secs;
    rows.push(row(
        B,
        &format!("time for {n} agents to resume after SIGKILL + restart"),
        format!("{resume_secs:.2} s ({resume_rate:.0}/s)"),
        "",
        None,
    ));
    rows.push(row(
        B,
        "memory per resumed idle agent",
        format!("{:.1} KiB", resume_per / 1024.0),
        "",
        None,
    ));
    if let Some(beat) = beat {
        rows.push(row(B, "broker RSS after a heartbeat", mib(beat), "", None));
        rows.push(row(
            B,
            "per idle agent after a heartbeat",
            kib(beat),
            "",
            None,
        ));
        rows.push(per_gib_row("agents per GiB after a heartbeat", beat));
    }
    Ok(rows)
}
