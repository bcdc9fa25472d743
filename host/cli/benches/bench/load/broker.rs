//! The broker as its own process (`lifeline broker run`), so that
//! /proc/PID gives its CPU time and memory; the operator accounts written
//! into its database before it starts; and a sampler of its RSS and of the
//! machine's load average while the sessions run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lifeline_core::client::Endpoint;
use lifeline_core::config::BrokerConfig;
use lifeline_core::tls::Fingerprint;
use lifeline_protocol::OperatorProfile;

use crate::{PASSWORD, endpoint};

/// Clock ticks per second of /proc/PID/stat's utime and stime (`USER_HZ`,
/// fixed at 100 in Linux's user-space ABI whatever the kernel's HZ).
const USER_HZ: f64 = 100.0;
/// Bound on the broker's start (banner printed).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the sampler reads the broker's RSS and the load average.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Connections from one source address the bench's broker accepts: every
/// agent and operator client of the bench comes from 127.0.0.1, which the
/// default (`DEFAULT_MAX_CONNECTIONS_PER_SOURCE` = 64, sized for one office
/// behind NAT) would refuse beyond 32 sessions. Set through the broker's
/// own config key `[broker.limits] max_connections_per_source`.
pub const PER_SOURCE: usize = 4096;

/// The broker child; killed and reaped when dropped, on every path.
pub struct BrokerProcess {
    child: Child,
    pub ep: Endpoint,
    log: PathBuf,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Figures of one process read from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcFigures {
    /// User + system CPU seconds since the process started.
    pub cpu: f64,
    /// Resident set size now (VmRSS), bytes.
    pub rss: u64,
    /// Peak resident set size (VmHWM), bytes.
    pub hwm: u64,
}

/// CPU seconds (user + system) of `/proc/<pid>/stat` (`self` for this one).
pub fn cpu_secs(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // "pid (comm) state ppid …": comm may hold spaces; utime and stime are
    // fields 14 and 15, i.e. the 12th and 13th after the ")".
    let rest = stat.rsplit_once(')').context("no ')' in /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let (u, s) = (ticks(11), ticks(12));
    let (u, s) = u.zip(s).context("no utime/stime in /proc stat")?;
    Ok((u + s) as f64 / USER_HZ)
}

/// A `kB` line of `/proc/<pid>/status`, in bytes.
fn status_kb(pid: &str, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status.lines().find_map(|l| l.strip_prefix(key));
    let kb = kb.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    Ok(kb.with_context(|| format!("no {key} in /proc/{pid}/status"))? * 1024)
}

pub fn figures(pid: &str) -> Result<ProcFigures> {
    Ok(ProcFigures {
        cpu: cpu_secs(pid)?,
        rss: status_kb(pid, "VmRSS:")?,
        hwm: status_kb(pid, "VmHWM:")?,
    })
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let first = text.split_whitespace().next();
    first.and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

fn tail(p: &Path) -> String {
    let log = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" / ")
}

impl BrokerProcess {
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Its figures; an error (with its log's tail) if it died.
    pub fn figures(&mut self) -> Result<ProcFigures> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the broker died ({status}): {}", tail(&self.log));
        }
        figures(&self.pid())
    }
}

/// Writes the config and `n` operator accounts `load-0`…, then starts the
/// broker and waits for its banner.
pub fn start(dir: &Path, operators: usize) -> Result<BrokerProcess> {
    let config = dir.join("broker.toml");
    let toml = format!(
        "[broker]\nlisten = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\n\
         data_dir = \"data\"\n[broker.limits]\nmax_connections_per_source = {PER_SOURCE}\n\
         max_connections = {PER_SOURCE}\n"
    );
    std::fs::write(&config, toml)?;
    add_operators(&config, operators)?;
    let (out, log) = (dir.join("broker.out"), dir.join("broker.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    cmd.args(["broker", "run", "--config"]).arg(&config);
    cmd.env_remove("LIFELINE_CONFIG").env("RUST_LOG", "warn");
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&log)?);
    let child = cmd.spawn().context("starting lifeline broker run")?;
    // Killed on every path, also before the banner.
    let mut guard = Guard(Some(child));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&out)?;
        let addr = text
            .lines()
            .find_map(|l| l.strip_prefix("Broker listening on ")?.split(' ').next());
        let fp = text
            .lines()
            .find_map(|l| l.strip_prefix("Certificate fingerprint: "));
        if let (Some(addr), Some(fp)) = (addr, fp) {
            let ep = endpoint(addr.to_string(), Fingerprint::parse(fp.trim())?);
            let child = guard.0.take().expect("the child is held until here");
            return Ok(BrokerProcess { child, ep, log });
        }
        let child = guard.0.as_mut().expect("the child is held until here");
        if let Some(status) = child.try_wait()? {
            bail!("the broker exited ({status}): {}", tail(&log));
        }
        if Instant::now() > deadline {
            bail!("no broker banner within {START_TIMEOUT:?}: {}", tail(&log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills and reaps a child it still holds when dropped.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The operator accounts, added one after the other as `lifeline broker
/// add-operator` does (each is one argon2id hash; two at once race on the
/// database's migrations).
fn add_operators(config: &Path, n: usize) -> Result<()> {
    let cfg = BrokerConfig::load(config)?;
    for i in 0..n {
        let profile = OperatorProfile {
            username: super::operator_name(i),
            name: format!("Load Operator {i}"),
            email: String::new(),
            title: String::new(),
        };
        lifeline_broker::add_operator(&cfg, &profile, PASSWORD)
            .with_context(|| format!("adding operator {}", profile.username))?;
    }
    Ok(())
}

/// Peak RSS and peak 1-minute load average seen while it ran.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    pub peak_rss: u64,
    pub peak_load: f64,
}

/// Reads the broker's RSS and the load average every [`SAMPLE_EVERY`]
/// until dropped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak_rss: Arc<AtomicU64>,
    /// The peak load average × 100.
    peak_load: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_rss = Arc::new(AtomicU64::new(0));
        let peak_load = Arc::new(AtomicU64::new(0));
        let (s, r, l) = (stop.clone(), peak_rss.clone(), peak_load.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(rss) = status_kb(&pid, "VmRSS:") {
                    r.fetch_max(rss, Ordering::Relaxed);
                }
                l.fetch_max((loadavg() * 100.0) as u64, Ordering::Relaxed);
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler {
            stop,
            peak_rss,
            peak_load,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Sampled {
        self.halt();
        Sampled {
            peak_rss: self.peak_rss.load(Ordering::Relaxed),
            peak_load: self.peak_load.load(Ordering::Relaxed) as f64 / 100.0,
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}
