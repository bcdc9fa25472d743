//! Benchmark 3: idle agents, and the broker's memory per idle agent.
//!
//! The broker runs as its own process (the `lifeline` binary with a
//! temporary config) so that its resident memory can be read from
//! /proc/PID/status. N invitations are created, the RSS is read, N agents
//! join by link token and stay idle, and after a pause the RSS is read
//! again: (after − before) / N is the memory one idle agent costs.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lifeline_core::tls::Fingerprint;
use lifeline_protocol::JoinCredential;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::{Opts, PASSWORD, Row, USERNAME, endpoint, join, login, step};

/// Connections in flight at once while creating invitations and agents.
const CONCURRENCY: usize = 64;
/// One loopback source address and the ephemeral port range bound N.
const MAX_AGENTS: usize = 25_000;
/// File descriptors kept free for everything else in each process.
const FD_HEADROOM: u64 = 1_024;
/// Pause between the last join and the second RSS reading.
const SETTLE: Duration = Duration::from_secs(3);
const TARGET_PER_GIB: f64 = 35_000.0;
/// MeshCentral's published figure (not measured here).
const MESHCENTRAL_PER_GB: &str = "~3,500 agents/GB (MeshCentral, published)";

/// The broker child; killed and reaped when dropped, on every path.
struct BrokerProcess(Child);

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl BrokerProcess {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// Resident set size of a process, bytes (VmRSS).
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the broker's /proc status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kb * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// Raises the soft open-files limit to the hard one (children inherit it);
/// returns the limit now in force.
fn raise_nofile() -> Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().context("reading RLIMIT_NOFILE")?;
    if soft < hard {
        rlimit::Resource::NOFILE.set(hard, hard).context("raising RLIMIT_NOFILE")?;
    }
    Ok(hard)
}

fn lifeline(args: &[&str], config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.args(args).arg("--config").arg(config);
    c
}

/// Writes the config, creates the operator, starts the broker and waits for
/// its banner; returns the process, its session address and fingerprint.
fn start_broker(dir: &Path) -> Result<(BrokerProcess, String, Fingerprint)> {
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        "[broker]\nname = \"Lifeline bench broker\"\nlisten = \"127.0.0.1:0\"\n\
         https_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n",
    )?;
    let mut add = lifeline(&["broker", "add-operator", "--username", USERNAME, "--name", "Bench Operator", "--password-stdin"], &config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("running lifeline broker add-operator")?;
    add.stdin.take().context("add-operator stdin")?.write_all(format!("{PASSWORD}\n").as_bytes())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = add.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = add.kill();
            let _ = add.wait();
            bail!("lifeline broker add-operator did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("lifeline broker add-operator failed ({status})");
    }
    let out_path = dir.join("broker.out");
    let log_path = dir.join("broker.log");
    let child = lifeline(&["broker", "run"], &config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()
        .context("starting lifeline broker run")?;
    let mut broker = BrokerProcess(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        let addr = out.lines().find_map(|l| l.strip_prefix("Broker listening on ")?.split(' ').next());
        let fp = out.lines().find_map(|l| l.strip_prefix("Certificate fingerprint: "));
        if let (Some(addr), Some(fp)) = (addr, fp) {
            return Ok((broker, addr.to_string(), Fingerprint::parse(fp)?));
        }
        if let Some(status) = broker.0.try_wait()? {
            bail!("the broker exited ({status}): {}", tail(&log_path));
        }
        if Instant::now() > deadline {
            bail!("the broker printed no banner within 20 s: {}", tail(&log_path));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    s.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let limit = raise_nofile()?;
    let fd_cap = usize::try_from(limit.saturating_sub(FD_HEADROOM)).unwrap_or(usize::MAX);
    let wanted = if opts.quick { opts.agents / 10 } else { opts.agents };
    let n = wanted.clamp(1, MAX_AGENTS.min(fd_cap).max(1));
    println!("\n[3/3] idle agents: N = {n} (asked {wanted}; RLIMIT_NOFILE {limit}, cap {})", MAX_AGENTS.min(fd_cap));
    let dir = tempfile::Builder::new().prefix("lifeline-bench-idle-").tempdir().context("temporary folder")?;
    let (mut broker, addr, fp) = start_broker(dir.path())?;
    let pid = broker.pid();
    let ep = Arc::new(endpoint(addr, fp));
    let op = login(&ep).await?;
    let rss_empty = rss(pid)?;

    let t = Instant::now();
    let mut tasks = JoinSet::new();
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    for i in 0..n {
        let (op, gate) = (Arc::clone(&op), Arc::clone(&gate));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let inv = step("invite", op.invite(&format!("IDLE-{i}"), "Bench Customer", None)).await?;
            Ok::<_, anyhow::Error>(inv.link.rsplit('/').next().unwrap_or_default().to_string())
        });
    }
    let mut tokens = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        tokens.push(r.context("invite task")??);
    }
    let invite_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(pid)?;

    let t = Instant::now();
    let mut tasks = JoinSet::new();
    for token in tokens {
        let (ep, gate) = (Arc::clone(&ep), Arc::clone(&gate));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            step("agent join", join(&ep, JoinCredential::LinkToken(token))).await
        });
    }
    let mut agents = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        agents.push(r.context("agent task")??);
    }
    let connect_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let after = rss(pid)?;
    if let Some(status) = broker.0.try_wait()? {
        bail!("the broker died during the run ({status}): {}", tail(&dir.path().join("broker.log")));
    }
    drop(broker);
    drop(agents);

    let per_agent = after.saturating_sub(before) as f64 / n as f64;
    let per_gib = f64::from(1u32 << 30) / per_agent.max(1.0);
    println!(
        "  broker RSS: idle {}, with {n} invitations {} ({:.0} invitations/s), with {n} idle agents {}",
        mib(rss_empty),
        mib(before),
        n as f64 / invite_secs,
        mib(after)
    );
    println!(
        "  {:.1} KiB per idle agent → {per_gib:.0} agents per GiB; {n} agents connected in {connect_secs:.2} s ({:.0} agents/s)",
        per_agent / 1024.0,
        n as f64 / connect_secs
    );
    const B: &str = "3 idle agents";
    Ok(vec![
        Row::new(B, "broker RSS, no invitations", mib(rss_empty), ""),
        Row::new(B, format!("broker RSS, {n} invitations, no agents"), mib(before), ""),
        Row::new(B, format!("broker RSS, {n} idle agents"), mib(after), ""),
        Row::new(B, "memory per idle agent", format!("{:.1} KiB", per_agent / 1024.0), ""),
        Row::new(B, "idle agents per GiB", format!("{per_gib:.0}"), MESHCENTRAL_PER_GB)
            .target("≥ 35,000", per_gib >= TARGET_PER_GIB),
        Row::new(B, format!("time to connect {n} agents"), format!("{connect_secs:.2} s ({:.0}/s)", n as f64 / connect_secs), ""),
    ])
}
