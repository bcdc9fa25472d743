//! The broker as a process, and reading /proc (VmRSS, descendants).

use super::*;

pub(super) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Wall clock in milliseconds since the epoch (the page's clock is mapped onto it).
pub(super) fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Resident set size of a process in bytes (VmRSS).
pub(super) fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    let kb = kb.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    Ok(kb.context("no VmRSS in /proc status")? * 1024)
}

pub(super) fn tail(p: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every process below `root` (children, their children, ...), from /proc.
pub(super) fn descendants(root: u32) -> Vec<i32> {
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

pub(super) fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

// ---------------------------------------------------------------- the broker

/// The broker child; killed and reaped when dropped, on every path.
pub(super) struct Broker {
    pub(super) child: Child,
    pub(super) ep: Endpoint,
    pub(super) console: String,
    pub(super) log: PathBuf,
    pub(super) _dir: tempfile::TempDir,
}

impl Broker {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn rss(&mut self) -> Result<u64> {
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

pub(super) fn lifeline(args: &[&str], config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.args(args).arg("--config").arg(config);
    c.env_remove("LIFELINE_CONFIG").env("RUST_LOG", "warn");
    c
}

/// Waits for a child for at most `limit`, killing it when it overstays.
pub(super) fn wait_child(child: &mut Child, limit: Duration) -> Result<std::process::ExitStatus> {
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
pub(super) fn start_broker(fixed_mmap: bool) -> Result<Broker> {
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
