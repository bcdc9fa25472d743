//! The two sharers: Lifeline (broker, agent, operator client) and x11vnc with the Python VNC client.

use super::*;

pub(super) struct Lifeline {
    // Dropped in this order: the agent before the broker.
    pub(super) agent: Proc,
    pub(super) broker: Proc,
    pub(super) ctl: Arc<Client>,
    pub(super) sid: String,
    pub(super) fwd: Forwarder,
    pub(super) fwd_ep: Endpoint,
    pub(super) dir: tempfile::TempDir,
}

pub(super) fn lifeline(args: &[&str], config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.args(args).arg("--config").arg(config);
    c.env_remove("LIFELINE_CONFIG").env("RUST_LOG", "warn");
    c
}

/// Starts `lifeline broker run` with the bench operator; its process, its
/// address and certificate fingerprint.
pub(super) fn start_broker(dir: &Path) -> Result<(Proc, String, String)> {
    let config = dir.join("broker.toml");
    let toml = "[broker]\nlisten = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\n\
                data_dir = \"broker-data\"\n";
    std::fs::write(&config, toml)?;
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
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().context("add-operator stdin")?;
        stdin.write_all(format!("{PASSWORD}\n").as_bytes())?;
    }
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(s) = add.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = add.kill();
            let _ = add.wait();
            bail!("lifeline broker add-operator took longer than {STEP:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("lifeline broker add-operator failed ({status})");
    }
    let (out, log) = (dir.join("broker.out"), dir.join("broker.log"));
    let mut cmd = lifeline(&["broker", "run"], &config);
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&log)?);
    let mut broker = Proc::spawn("the broker", &mut cmd, false)?;
    let (addr, fp) = poll_for("the broker's banner", || {
        let text = std::fs::read_to_string(&out)?;
        let addr = text
            .lines()
            .find_map(|l| l.strip_prefix("Broker listening on ")?.split(' ').next());
        let fp = text
            .lines()
            .find_map(|l| l.strip_prefix("Certificate fingerprint: "));
        if let (Some(a), Some(f)) = (addr, fp) {
            return Ok(Some((a.to_string(), f.trim().to_string())));
        }
        broker.alive_or(&log).map(|()| None)
    })?;
    Ok((broker, addr, fp))
}

impl Lifeline {
    pub(super) async fn start(display: &str) -> Result<Lifeline> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let wasm = repo().join("plugins/screen/plugin.wasm");
        if !wasm.exists() {
            bail!("{} is missing: run scripts/build-plugins", wasm.display());
        }
        let plugin = d.join("plugins/screen");
        std::fs::create_dir_all(&plugin)?;
        for f in ["plugin.toml", "plugin.wasm"] {
            std::fs::copy(repo().join("plugins/screen").join(f), plugin.join(f))?;
        }
        let (broker, addr, fp) = start_broker(d)?;
        let ep = crate::endpoint(addr.clone(), Fingerprint::parse(&fp)?);
        let ctl = crate::login(&ep).await?;
        let inv = step("invite", ctl.invite("SCREEN-BENCH", "Customer", None)).await?;
        std::fs::write(
            d.join("policy.toml"),
            "[policy]\n[policy.capabilities]\n\"screen.capture\" = \"allow\"\n\"input.control\" = \"allow\"\n",
        )?;
        let agent_toml = d.join("agent.toml");
        std::fs::write(
            &agent_toml,
            format!(
                "[agent]\ndata_dir = \"agent-data\"\nconsent_timeout_secs = 30\npolicy = \"policy.toml\"\n\
                 [connection]\nbroker = \"{addr}\"\nserver_name = \"localhost\"\nfingerprint = \"{fp}\"\n\
                 [plugins]\ndirs = [\"plugins\"]\nallow_unsigned = true\nhot_reload = false\n\
                 [screen]\ndisplay = \"{display}\"\n"
            ),
        )?;
        let mut cmd = lifeline(&["agent", "join"], &agent_toml);
        cmd.arg(&inv.connection_id)
            // The customer's terminal: kept open, never typed into.
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(d.join("agent.out"))?)
            .stderr(std::fs::File::create(d.join("agent.log"))?);
        let mut agent = Proc::spawn("the agent", &mut cmd, false)?;
        if let Err(e) = step("the agent to join", ctl.wait_ready(&inv.session_id, STEP)).await {
            let _ = agent.alive();
            bail!("{e:#}; agent: {}", tail_of(&d.join("agent.log")));
        }
        let broker_addr: SocketAddr = addr.parse()?;
        let fwd = Forwarder::start(broker_addr).await?;
        let fwd_ep = crate::endpoint(fwd.addr.to_string(), Fingerprint::parse(&fp)?);
        Ok(Lifeline {
            agent,
            broker,
            ctl,
            sid: inv.session_id,
            fwd,
            fwd_ep,
            dir,
        })
    }

    /// A new operator connection through the forwarder, logged in and
    /// attached, sharing the whole display at `quality` and `fps`, with
    /// its first picture.
    pub(super) async fn share(
        &mut self,
        quality: Quality,
        fps: u8,
    ) -> Result<ScreenSession<Client>> {
        let log = self.dir.path().join("agent.log");
        self.agent.alive_or(&log)?;
        let mut c = step("operator connect", Client::connect(&self.fwd_ep)).await?;
        step("operator login", c.login(USERNAME, PASSWORD)).await?;
        step("attach", c.attach(&self.sid)).await?;
        let all = MonitorChoice::All;
        let mut s = step(
            "screen share",
            ScreenSession::share(c, &self.sid, all, quality),
        )
        .await?;
        step("the first picture", s.first_picture()).await?;
        if fps != DEFAULT_FPS {
            let set = Input::Settings {
                quality,
                monitor: all,
                max_fps: fps,
            };
            step("settings", s.send_input(&[set])).await?;
        }
        Ok(s)
    }

    pub(super) async fn stop(&self, share: ScreenSession<Client>) -> Result<()> {
        let end = step("screen stop", share.stop()).await?;
        if end.dropped > 0 {
            println!("      (the agent dropped {} frames)", end.dropped);
        }
        Ok(())
    }

    pub(super) fn pids(&self, xvfb: u32) -> [u32; 4] {
        [
            self.agent.pid(),
            xvfb,
            self.broker.pid(),
            std::process::id(),
        ]
    }

    pub(super) async fn shutdown(self) {
        let _ = step("end", self.ctl.end(&self.sid, "benchmark over")).await;
        // The agent leaves when the session ends; Proc's drop reaps it.
        let mut agent = self.agent;
        let deadline = Instant::now() + Duration::from_secs(5);
        while agent.alive().is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------
// x11vnc and the VNC client

/// The Python with vncdotool: `target/bench-venv`, made when missing.
pub(super) fn python() -> Result<PathBuf> {
    let venv = repo().join("target/bench-venv");
    let py = venv.join("bin/python");
    let works = |py: &Path| {
        let mut c = Command::new(py);
        c.args(["-c", "import vncdotool, twisted, PIL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        run_bounded(&mut c, STEP).is_ok_and(|s| s.success())
    };
    if py.exists() && works(&py) {
        return Ok(py);
    }
    println!(
        "  making the VNC client's venv in {} (once; pip needs the network)",
        venv.display()
    );
    if !py.exists() {
        let mut c = Command::new("python3");
        c.arg("-m").arg("venv").arg(&venv);
        let s = run_bounded(&mut c, Duration::from_secs(120))?;
        if !s.success() {
            bail!("python3 -m venv {} failed ({s})", venv.display());
        }
    }
    let mut c = Command::new(&py);
    c.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
    ])
    .arg(repo().join("bench/screen/requirements.txt"));
    let s = run_bounded(&mut c, Duration::from_secs(600))?;
    if !s.success() || !works(&py) {
        bail!(
            "pip install -r bench/screen/requirements.txt into {} failed",
            venv.display()
        );
    }
    Ok(py)
}

pub(super) struct Vnc {
    pub(super) fwd: Forwarder,
    pub(super) proc: Proc,
    pub(super) py: PathBuf,
}

impl Vnc {
    /// x11vnc on `display` as bench/screen/README.md starts it (defaults
    /// for everything that shapes performance), with a forwarder before it.
    pub(super) async fn start(display: &str, py: &Path, dir: &Path) -> Result<Vnc> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join(format!("x11vnc-{port}.log"));
        let file = std::fs::File::create(&log)?;
        let mut cmd = Command::new("x11vnc");
        cmd.args(["-display", display, "-rfbport", &port.to_string()])
            .args([
                "-localhost",
                "-nopw",
                "-forever",
                "-shared",
                "-norc",
                "-quiet",
            ])
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let mut proc = Proc::spawn("x11vnc", &mut cmd, true)?;
        let wanted = format!("PORT={port}");
        poll_for("x11vnc to listen", || {
            if std::fs::read_to_string(&log)?.contains(&wanted) {
                return Ok(Some(()));
            }
            proc.alive_or(&log).map(|()| None)
        })?;
        let fwd = Forwarder::start(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        Ok(Vnc {
            fwd,
            proc,
            py: py.to_path_buf(),
        })
    }

    pub(super) fn client(&self, args: &[String]) -> Result<tokio::process::Child> {
        let mut c = tokio::process::Command::new(&self.py);
        c.arg(repo().join("bench/screen/vnc_client.py"))
            .args(args)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.fwd.addr.port().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(c.spawn()?)
    }
}

/// The client's JSON line, once it exits (within `limit`).
pub(super) async fn client_result(
    child: tokio::process::Child,
    limit: Duration,
) -> Result<serde_json::Value> {
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("the VNC client did not finish within {limit:?}"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).with_context(|| {
        format!(
            "the VNC client's output {line:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = v.get("error") {
        bail!("the VNC client: {e}");
    }
    Ok(v)
}

/// The pixels of each of the client's updates applied within `[from,
/// to)` seconds of its connect.
pub(super) fn updates_between(v: &serde_json::Value, from: f64, to: f64) -> Result<Vec<u64>> {
    let times = v["update_ms"]
        .as_array()
        .context("no update_ms from the VNC client")?;
    let px = v["update_px"]
        .as_array()
        .context("no update_px from the VNC client")?;
    Ok(times
        .iter()
        .zip(px)
        .filter_map(|(t, p)| Some((t.as_f64()?, p.as_u64()?)))
        .filter(|&(ms, _)| ms >= from * 1e3 && ms < to * 1e3)
        .map(|(_, p)| p)
        .collect())
}

// ---------------------------------------------------------------------
// The phases
