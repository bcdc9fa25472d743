//! The Extism 1.x baseline: bench/extism-compare (its own workspace, its own
//! wasmtime), built by its `build` script and driven one command per line on
//! stdin/stdout, so that its measurements interleave with ours in one run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::repo;

/// Bound on building the comparison (a first build compiles wasmtime).
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Bound on each answer of the child.
const STEP: Duration = Duration::from_secs(120);

pub struct Extism {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    pub version: String,
}

/// Waits for `child` at most `limit`, killing it after that.
fn wait_bounded(child: &mut Child, limit: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Extism {
    pub fn start() -> Result<Self> {
        let dir = repo().join("bench/extism-compare");
        println!("building bench/extism-compare (a first build takes several minutes)");
        let mut build = Command::new(dir.join("build"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("bench/extism-compare/build")?;
        let status = wait_bounded(&mut build, BUILD_LIMIT).context("bench/extism-compare/build")?;
        if !status.success() {
            bail!("bench/extism-compare/build failed ({status})");
        }
        let target = repo().join("target/extism-compare");
        let mut child = Command::new(target.join("release/extism-compare"))
            .arg(target.join("wasm32-wasip1/release/extism_echo.wasm"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting extism-compare")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut me = Extism {
            child,
            stdin,
            lines,
            version: String::new(),
        };
        let ready = me.next_line()?;
        me.version = ready
            .strip_prefix("ready ")
            .ok_or_else(|| anyhow!("extism-compare said {ready:?}"))?
            .trim()
            .to_string();
        println!("baseline: {}", me.version);
        Ok(me)
    }

    fn next_line(&mut self) -> Result<String> {
        self.lines
            .recv_timeout(STEP)
            .map_err(|e| anyhow!("no answer from extism-compare within {STEP:?}: {e}"))
    }

    /// Sends `cmd`; returns the figures of the answer (after its `expect` words).
    fn ask(&mut self, cmd: &str, expect: usize) -> Result<Vec<f64>> {
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        let line = self.next_line()?;
        line.split_whitespace()
            .skip(expect)
            .map(|w| w.parse::<f64>().with_context(|| format!("answer {line:?}")))
            .collect()
    }

    /// Nanoseconds per `echo` call of `size` bytes, one figure per batch.
    pub fn echo(&mut self, size: usize, calls: usize, batches: usize) -> Result<Vec<f64>> {
        self.ask(&format!("echo {size} {calls} {batches}"), 2)
    }

    /// Nanoseconds of a new plugin from the compiled module plus its first
    /// 16-byte `echo`, per sample.
    pub fn create(&mut self, samples: usize) -> Result<Vec<f64>> {
        self.ask(&format!("create {samples}"), 1)
    }
}

impl Drop for Extism {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        if wait_bounded(&mut self.child, Duration::from_secs(5)).is_err() {
            let _ = self.child.kill();
        }
    }
}
