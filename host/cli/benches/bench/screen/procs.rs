//! Child processes, /proc readings (CPU time, VmRSS) and bounded waits.

use super::*;

pub(super) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The 1, 5 and 15 minute load averages, "load 1.23 0.98 0.70".
pub(super) fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let avg: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load {}", avg.join(" "))
}

// ---------------------------------------------------------------------
// Processes and /proc

/// A child process, stopped when dropped: SIGTERM first when `term` (Xvfb,
/// x11vnc), then SIGKILL if it is still there after 5 s; reaped.
pub(super) struct Proc {
    pub(super) child: Child,
    pub(super) name: String,
    pub(super) term: bool,
}

impl Proc {
    pub(super) fn spawn(name: &str, cmd: &mut Command, term: bool) -> Result<Proc> {
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            child,
            name: name.to_string(),
            term,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error when the process has exited.
    pub(super) fn alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} exited ({status})", self.name),
            None => Ok(()),
        }
    }

    /// [`Proc::alive`], the error quoting the end of the process's `log`.
    pub(super) fn alive_or(&mut self, log: &Path) -> Result<()> {
        self.alive()
            .map_err(|e| anyhow!("{e}; the end of its log: {}", tail_of(log)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if self.term {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end within `limit` (killed when it overstays).
pub(super) fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<std::process::ExitStatus> {
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn clock_ticks() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// CPU seconds (user + system, all threads) a process has used.
pub(super) fn cpu_secs(pid: u32) -> Result<f64> {
    cpu_secs_of(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds from a /proc `stat` file.
pub(super) fn cpu_secs_of(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command's closing parenthesis: state is field 3,
    // utime 14 and stime 15.
    let rest = &stat[stat.rfind(')').context("/proc stat without a command")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field =
        |i: usize| -> Result<u64> { Ok(f.get(i - 3).context("short /proc stat")?.parse::<u64>()?) };
    Ok((field(14)? + field(15)?) as f64 / clock_ticks())
}

/// CPU seconds of each thread of `pid`, summed by thread name.
pub(super) fn thread_cpu(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(secs) = cpu_secs_of(&format!("/proc/{pid}/task/{tid}/stat")) {
            *out.entry(name.trim().to_string()).or_insert(0.0) += secs;
        }
    }
    out
}

/// Resident set size in bytes (VmRSS).
pub(super) fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    let kb = kb.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    Ok(kb.context("no VmRSS in /proc status")? * 1024)
}

pub(super) fn tail_of(p: &Path) -> String {
    let log = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = log.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// Polls `f` every 20 ms until it gives a value, for at most [`STEP`].
pub(super) fn poll_for<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {STEP:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------
// Xvfb and X drawing
