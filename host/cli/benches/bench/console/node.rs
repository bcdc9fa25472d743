//! The Node.js + Chromium side (tests/console/bench), and percentiles.

use super::*;

/// `node tests/console/bench/console-bench.mjs`: one JSON command per line
/// in, one JSON answer per line out. Stopped (with the browser) when dropped.
pub(super) struct NodeProcess {
    pub(super) child: Child,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) lines: mpsc::UnboundedReceiver<String>,
    pub(super) next: u64,
    pub(super) log: PathBuf,
}

impl NodeProcess {
    pub(super) fn spawn(dir: &Path) -> Result<NodeProcess> {
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
    pub(super) async fn call_for(&mut self, mut cmd: Value, limit: Duration) -> Result<Value> {
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

    pub(super) async fn call(&mut self, cmd: Value) -> Result<Value> {
        self.call_for(cmd, NODE_STEP).await
    }

    /// Asks it to close the browser and exit; bounded.
    pub(super) async fn quit(&mut self) {
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

pub(super) fn num(v: &Value, key: &str) -> Result<f64> {
    v[key]
        .as_f64()
        .ok_or_else(|| anyhow!("the browser side's answer has no {key}: {v}"))
}

/// Offset of the page's clock over this process's wall clock (ms), from
/// the round trip with the smallest duration; and that round trip.
pub(super) async fn calibrate(node: &mut NodeProcess) -> Result<(f64, f64)> {
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
pub(super) fn pct(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied().unwrap_or(f64::NAN)
}

#[derive(Default)]
pub(super) struct Series(pub(super) Vec<f64>);

impl Series {
    pub(super) fn push(&mut self, v: f64) {
        self.0.push(v);
    }
    pub(super) fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    pub(super) fn p50(&self) -> f64 {
        pct(&self.sorted(), 0.5)
    }
    /// "p50 X ms (p90 Y, max Z)".
    pub(super) fn show(&self) -> String {
        let v = self.sorted();
        format!(
            "{:.1} ms (p90 {:.1}, max {:.1})",
            pct(&v, 0.5),
            pct(&v, 0.9),
            v.last().copied().unwrap_or(f64::NAN)
        )
    }
}
