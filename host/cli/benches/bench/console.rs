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

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Wall clock in milliseconds since the epoch (the page's clock is mapped onto it).
fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Resident set size of a process in bytes (VmRSS).
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    let kb = kb.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    Ok(kb.context("no VmRSS in /proc status")? * 1024)
}

fn tail(p: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every process below `root` (children, their children, ...), from /proc.
fn descendants(root: u32) -> Vec<i32> {
    let mut parent = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent.insert(pid, ppid);
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root as i32];
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &parent {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

// ---------------------------------------------------------------- the broker

/// The broker child; killed and reaped when dropped, on every path.
struct Broker {
    child: Child,
    ep: Endpoint,
    console: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss(&mut self) -> Result<u64> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the broker died ({status}): {}", tail(&self.log, 5));
        }
        rss(self.pid())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lifeline(args: &[&str], config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.args(args).arg("--config").arg(config);
    c.env_remove("LIFELINE_CONFIG").env("RUST_LOG", "warn");
    c
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

/// `lifeline broker run` with a temporary config (both listeners on
/// 127.0.0.1:0, the connection caps lifted for 100 tabs from one address)
/// and the bench operator; waits for its banner.
///
/// `fixed_mmap`: glibc's mmap threshold pinned at its default (128 KiB).
/// Otherwise glibc raises it after the first large free, and from then on
/// every malloc arena that served a password check (argon2id, 19 MiB) keeps
/// those 19 MiB resident: the RSS jumps by 19 MiB at unpredictable logins,
/// which would swamp a per-connection figure (see the findings in
/// docs/benchmarks.md).
fn start_broker(fixed_mmap: bool) -> Result<Broker> {
    let dir = tempfile::tempdir().context("temporary folder")?;
    let config = dir.path().join("broker.toml");
    let toml = "[broker]\nlisten = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\n\
                data_dir = \"data\"\n[broker.limits]\nmax_connections = 100000\n\
                max_connections_per_source = 100000\n";
    std::fs::write(&config, toml)?;
    let args = [
        "broker",
        "add-operator",
        "--username",
        USERNAME,
        "--name",
        "Bench Operator",
        "--password-stdin",
    ];
    let mut add = lifeline(&args, &config);
    add.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut add = add.spawn()?;
    let mut stdin = add.stdin.take().context("add-operator stdin")?;
    stdin.write_all(format!("{PASSWORD}\n").as_bytes())?;
    drop(stdin);
    let status = wait_child(&mut add, STEP)?;
    if !status.success() {
        bail!("lifeline broker add-operator failed ({status})");
    }
    let (out, log) = (dir.path().join("broker.out"), dir.path().join("broker.log"));
    let mut cmd = lifeline(&["broker", "run"], &config);
    if fixed_mmap {
        cmd.env("MALLOC_MMAP_THRESHOLD_", "131072");
    }
    cmd.current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&log)?);
    let mut child = cmd.spawn().context("starting lifeline broker run")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // "Broker listening on ADDR (sessions) and https://HTTPS (links)"
        let text = std::fs::read_to_string(&out)?;
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("Broker listening on "));
        let addr = line.and_then(|l| l.split(' ').next());
        let https = line.and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("https://"))
        });
        let fp = text
            .lines()
            .find_map(|l| l.strip_prefix("Certificate fingerprint: "));
        if let (Some(addr), Some(https), Some(fp)) = (addr, https, fp) {
            return Ok(Broker {
                ep: endpoint(addr.to_string(), Fingerprint::parse(fp.trim())?),
                console: format!("https://{https}/console/"),
                child,
                log,
                _dir: dir,
            });
        }
        if let Some(status) = child.try_wait()? {
            bail!("the broker exited ({status}): {}", tail(&log, 5));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no broker banner within 20 s: {}", tail(&log, 5));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- the browser side

/// `node tests/console/bench/console-bench.mjs`: one JSON command per line
/// in, one JSON answer per line out. Stopped (with the browser) when dropped.
struct NodeProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    next: u64,
    log: PathBuf,
}

impl NodeProcess {
    fn spawn(dir: &Path) -> Result<NodeProcess> {
        let package = repo().join("tests/console");
        let chromium = std::env::var_os("LIFELINE_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(CHROMIUM));
        let node_ok = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !node_ok {
            bail!("the console benchmark needs Node.js >= 20 (`node`): run scripts/setup");
        }
        if !chromium.exists() {
            bail!(
                "the console benchmark needs Debian's chromium at {} (or LIFELINE_CHROMIUM): run scripts/setup",
                chromium.display()
            );
        }
        if !package
            .join("node_modules/playwright-core/package.json")
            .exists()
        {
            bail!(
                "the console benchmark needs playwright-core in {}: run scripts/setup (npm ci there)",
                package.display()
            );
        }
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        let log = dir.join("node.log");
        let mut child = Command::new("node")
            .arg("bench/console-bench.mjs")
            .current_dir(&package)
            .env("LIFELINE_CHROMIUM", &chromium)
            .env("LIFELINE_OPERATOR", USERNAME)
            .env("LIFELINE_PASSWORD", PASSWORD)
            // Chromium's fresh profiles go to the benchmark's folder.
            .env("TMPDIR", &tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting node")?;
        let stdout = child.stdout.take().context("node stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(NodeProcess {
            child,
            stdin,
            lines,
            next: 1,
            log,
        })
    }

    /// Sends `cmd` and waits (at most `limit`) for its answer.
    async fn call_for(&mut self, mut cmd: Value, limit: Duration) -> Result<Value> {
        let id = self.next;
        self.next += 1;
        cmd["id"] = json!(id);
        let what = cmd["cmd"].as_str().unwrap_or("?").to_string();
        let stdin = self.stdin.as_mut().context("node's stdin is closed")?;
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("node ({what}): {}", tail(&self.log, 10)))?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Err(_) => bail!(
                    "the browser side did not answer {what} within {limit:?}: {}",
                    tail(&self.log, 10)
                ),
                Ok(None) => bail!(
                    "the browser side exited during {what}: {}",
                    tail(&self.log, 10)
                ),
                Ok(Some(l)) => l,
            };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue; // not an answer (nothing else should print there)
            };
            if v["id"] != json!(id) {
                continue;
            }
            if v["ok"] != json!(true) {
                bail!("the browser side's {what} failed: {}", v["error"]);
            }
            return Ok(v);
        }
    }

    async fn call(&mut self, cmd: Value) -> Result<Value> {
        self.call_for(cmd, NODE_STEP).await
    }

    /// Asks it to close the browser and exit; bounded.
    async fn quit(&mut self) {
        let _ = self
            .call_for(json!({"cmd": "quit"}), Duration::from_secs(20))
            .await;
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        use nix::sys::signal::Signal;
        self.stdin = None;
        let pid = self.child.id();
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // Playwright's SIGTERM handler closes the browser; whatever is left
        // (the browser runs in a process group of its own) is killed by id.
        let below = descendants(pid);
        kill(pid as i32, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in below.into_iter().chain(descendants(pid)) {
            kill(p, Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn num(v: &Value, key: &str) -> Result<f64> {
    v[key]
        .as_f64()
        .ok_or_else(|| anyhow!("the browser side's answer has no {key}: {v}"))
}

/// Offset of the page's clock over this process's wall clock (ms), from
/// the round trip with the smallest duration; and that round trip.
async fn calibrate(node: &mut NodeProcess) -> Result<(f64, f64)> {
    let mut best = (0.0, f64::INFINITY);
    for _ in 0..25 {
        let t1 = wall_ms();
        let page = num(&node.call(json!({"cmd": "clock"})).await?, "t")?;
        let t2 = wall_ms();
        if t2 - t1 < best.1 {
            best = (page - (t1 + t2) / 2.0, t2 - t1);
        }
    }
    Ok(best)
}

// ---------------------------------------------------------------- statistics

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied().unwrap_or(f64::NAN)
}

#[derive(Default)]
struct Series(Vec<f64>);

impl Series {
    fn push(&mut self, v: f64) {
        self.0.push(v);
    }
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    fn p50(&self) -> f64 {
        pct(&self.sorted(), 0.5)
    }
    /// "p50 X ms (p90 Y, max Z)".
    fn show(&self) -> String {
        let v = self.sorted();
        format!(
            "{:.1} ms (p90 {:.1}, max {:.1})",
            pct(&v, 0.5),
            pct(&v, 0.9),
            v.last().copied().unwrap_or(f64::NAN)
        )
    }
}

fn ms_of(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------- 1. login → list

struct LoginFigures {
    console: Series,
    frame: Series,
    load: Series,
    post: Series,
    ws_new: Series,
    ws_open: Series,
    list_reply: Series,
    operator: Series,
    get: Series,
    rows: u64,
}

async fn logins(
    node: &mut NodeProcess,
    b: &Broker,
    warmup: usize,
    n: usize,
) -> Result<LoginFigures> {
    let mut f = LoginFigures {
        console: Series::default(),
        frame: Series::default(),
        load: Series::default(),
        post: Series::default(),
        ws_new: Series::default(),
        ws_open: Series::default(),
        list_reply: Series::default(),
        operator: Series::default(),
        get: Series::default(),
        rows: 0,
    };
    for i in 0..warmup + n {
        let page = node.call(json!({"cmd": "login", "url": b.console})).await?;
        let get = node.call(json!({"cmd": "get", "url": b.console})).await?;
        let t = Instant::now();
        let mut op = step("operator connect", Client::connect(&b.ep)).await?;
        step("operator login", op.login(USERNAME, PASSWORD)).await?;
        let listed = step("operator list", op.sessions(false)).await?;
        let base = t.elapsed();
        drop(op);
        if i < warmup {
            continue;
        }
        f.console.push(num(&page, "ms")?);
        f.frame.push(num(&page, "frameMs")?);
        f.load.push(num(&page, "loadMs")?);
        for (s, k) in [
            (&mut f.post, "postMs"),
            (&mut f.ws_new, "wsNewMs"),
            (&mut f.ws_open, "wsOpenMs"),
            (&mut f.list_reply, "listReplyMs"),
        ] {
            if let Some(v) = page[k].as_f64() {
                s.push(v);
            }
        }
        f.rows = page["rows"].as_u64().unwrap_or(0);
        f.get.push(num(&get, "ms")?);
        f.operator.push(ms_of(base));
        if listed.len() as u64 != f.rows {
            bail!(
                "the page listed {} sessions, the operator client {}",
                f.rows,
                listed.len()
            );
        }
    }
    Ok(f)
}

// ---------------------------------------------------------------- 2. join → row

#[derive(Default)]
struct JoinFigures {
    /// Join call start → row inserted (page clock mapped onto ours).
    row: Series,
    /// ... → the next animation frame after it.
    frame: Series,
    /// Socket message handled in the page → row inserted (page clock only).
    in_page: Series,
    /// Join call start → the message reaches the page's socket handler.
    to_page: Series,
    /// Join call start → the agent has `Joined`.
    joined: Series,
    /// Baseline: join call start → the operator client's pushed event.
    operator: Series,
    /// Joins whose row was (was not) in the page when the push arrived,
    /// against what the case wanted.
    other_path: usize,
    /// Rows in the page's list when the session's row appeared: fewest, most.
    rows: (u64, u64),
}

/// An operator client whose pushed "ready" notices (`State { Waiting }`)
/// are timestamped as they arrive.
async fn watching_operator(
    ep: &Endpoint,
) -> Result<(Arc<Client>, mpsc::UnboundedReceiver<(String, Instant)>)> {
    let mut op = step("operator connect", Client::connect(ep)).await?;
    step("operator login", op.login(USERNAME, PASSWORD)).await?;
    let op = Arc::new(op);
    let (tx, rx) = mpsc::unbounded_channel();
    let reader = Arc::clone(&op);
    tokio::spawn(async move {
        while let Some(ev) = reader.next_event().await {
            if let Event::Session {
                session_id,
                msg:
                    SessionMessage::State {
                        state: SessionState::Waiting,
                        ..
                    },
            } = ev
            {
                let _ = tx.send((session_id, Instant::now()));
            }
        }
    });
    Ok((op, rx))
}

#[allow(clippy::too_many_arguments)]
async fn joins(
    node: &mut NodeProcess,
    b: &Broker,
    op: &Client,
    events: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    offset: f64,
    listed: bool,
    warmup: usize,
    n: usize,
) -> Result<JoinFigures> {
    let mut f = JoinFigures::default();
    let tag = if listed { "LISTED" } else { "NEW" };
    for i in 0..warmup + n {
        let inv = step("invite", op.invite(&format!("{tag}-{i}"), "Customer", None)).await?;
        let sid = inv.session_id.clone();
        if listed {
            node.call(json!({"cmd": "list", "sid": sid})).await?;
        }
        node.call(json!({"cmd": "arm", "sid": sid})).await?;
        // Nothing older than this join may be mistaken for its notice.
        while events.try_recv().is_ok() {}
        let (t0, w0) = (Instant::now(), wall_ms());
        let code = JoinCredential::ConnectionId(inv.connection_id.clone());
        let (agent, _) = step("agent join", join(&b.ep, code)).await?;
        let joined = t0.elapsed();
        let notice = tokio::time::timeout(STEP, async {
            while let Some((s, at)) = events.recv().await {
                if s == sid {
                    return Some(at);
                }
            }
            None
        })
        .await;
        let at = match notice {
            Ok(Some(at)) => at,
            Ok(None) => bail!("the operator client's connection ended"),
            Err(_) => bail!("the operator client got no notice of {sid} within {STEP:?}"),
        };
        let w = node.call(json!({"cmd": "collect", "sid": sid})).await?;
        step("end", op.end(&sid, "benchmark join over")).await?;
        drop(agent);
        if i < warmup {
            continue;
        }
        let (ws_at, row_at, frame_at) = (num(&w, "wsAt")?, num(&w, "rowAt")?, num(&w, "frameAt")?);
        if w["rowAtMsg"].as_bool() != Some(listed) {
            f.other_path += 1;
        }
        let rows = w["rowsInList"].as_u64().unwrap_or(0);
        f.rows = if f.row.0.is_empty() {
            (rows, rows)
        } else {
            (f.rows.0.min(rows), f.rows.1.max(rows))
        };
        f.row.push(row_at - offset - w0);
        f.frame.push(frame_at - offset - w0);
        f.to_page.push(ws_at - offset - w0);
        f.in_page.push(row_at - ws_at);
        f.joined.push(ms_of(joined));
        f.operator.push(ms_of(at.duration_since(t0)));
    }
    Ok(f)
}

// ---------------------------------------------------------------- 3. memory

struct Memory {
    before: u64,
    after: u64,
    /// After a heartbeat on every connection (full mode).
    beat: Option<u64>,
    n: usize,
}

impl Memory {
    fn kib(&self, rss: u64) -> f64 {
        rss.saturating_sub(self.before) as f64 / self.n as f64 / 1024.0
    }
    fn show(&self) -> String {
        let mut s = format!("{:.1} KiB", self.kib(self.after));
        if let Some(b) = self.beat {
            s = format!("{:.1} KiB ({s} 3 s after the last)", self.kib(b));
        }
        s
    }
    fn primary(&self) -> f64 {
        self.kib(self.beat.unwrap_or(self.after))
    }
}

/// Waits the settle time (and, in a full run, a heartbeat) reading the RSS.
async fn settle(b: &mut Broker, t_last: Instant, quick: bool) -> Result<(u64, Option<u64>)> {
    tokio::time::sleep(SETTLE.saturating_sub(t_last.elapsed())).await;
    let after = b.rss()?;
    let beat = if quick {
        None
    } else {
        // Past the HTTPS keep-alive (10 s) and one heartbeat (15 s).
        let at = t_last + HEARTBEAT + Duration::from_secs(1);
        tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
        Some(b.rss()?)
    };
    Ok((after, beat))
}

async fn console_memory(node: &mut NodeProcess, n: usize, quick: bool) -> Result<Memory> {
    let mut b = start_broker(true)?;
    let url = b.console.clone();
    let limit = NODE_STEP * (MEMORY_WARMUP.max(n) as u32);
    node.call_for(
        json!({"cmd": "tabs", "url": url, "n": MEMORY_WARMUP}),
        limit,
    )
    .await?;
    node.call(json!({"cmd": "close_tabs"})).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = b.rss()?;
    let r = node
        .call_for(json!({"cmd": "tabs", "url": url, "n": n}), limit)
        .await?;
    let (after, beat) = settle(&mut b, Instant::now(), quick).await?;
    println!(
        "  {n} console tabs opened in {:.1} s; broker RSS {:.1} → {:.1} MiB",
        num(&r, "secs")?,
        before as f64 / 1048576.0,
        beat.unwrap_or(after) as f64 / 1048576.0
    );
    node.call(json!({"cmd": "close_tabs"})).await?;
    Ok(Memory {
        before,
        after,
        beat,
        n,
    })
}

async fn operator_memory(n: usize, quick: bool) -> Result<Memory> {
    let mut b = start_broker(true)?;
    for _ in 0..MEMORY_WARMUP {
        drop(crate::login(&b.ep).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = b.rss()?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(crate::login(&b.ep).await?);
    }
    let (after, beat) = settle(&mut b, Instant::now(), quick).await?;
    println!(
        "  {n} operator connections; broker RSS {:.1} → {:.1} MiB",
        before as f64 / 1048576.0,
        beat.unwrap_or(after) as f64 / 1048576.0
    );
    drop(ops);
    Ok(Memory {
        before,
        after,
        beat,
        n,
    })
}

// ---------------------------------------------------------------- the benchmark

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
