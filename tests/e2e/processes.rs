//! The built `lifeline` binary, with broker, agent and operator as separate
//! processes, and the file-level commands (config check, audit verify, demo).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{PASSWORD, WAIT};

pub fn lifeline() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.env_remove("LIFELINE_CONFIG").env("RUST_LOG", "warn");
    c
}

pub fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = lifeline()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        pipe.write_all(s.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

pub fn ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "lifeline {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Standard output and standard error of a finished command, as text.
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn fails(args: &[&str]) -> String {
    let out = run(args, None);
    assert!(!out.status.success(), "lifeline {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// Kills a child process when dropped (tests never leave processes behind).
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Self::spawn_with(args, Stdio::inherit(), "warn")
    }

    /// Spawns with standard error going to `stderr` and `RUST_LOG=log`.
    pub fn spawn_with(args: &[&str], stderr: Stdio, log: &str) -> Proc {
        let mut c = lifeline();
        c.args(args).env("RUST_LOG", log).stderr(stderr);
        Self::from_command(c)
    }

    /// Spawns `c` (its standard error as set, stdin and stdout piped).
    pub fn from_command(mut c: Command) -> Proc {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines: rx }
    }

    pub fn wait_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!("process never printed {needle:?}"),
            }
        }
    }

    /// The lines printed from now up to and including the first with
    /// `needle` (bounded by `WAIT`).
    pub fn wait_lines(&self, needle: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let found = l.contains(needle);
                    seen.push(l);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("process never printed {needle:?}; it printed {seen:?}"),
            }
        }
    }

    /// Everything the process prints from now until it closes its output
    /// (bounded by `WAIT`).
    pub fn rest(&self) -> String {
        let mut out = String::new();
        while let Ok(l) = self.lines.recv_timeout(WAIT) {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }

    pub fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Kills the process (SIGKILL), as a crash or power loss would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "process did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Starts `lifeline broker run` on port 0; returns it with its address and fingerprint.
pub fn start_broker(dir: &Path) -> (Proc, String, String) {
    let (broker, addr, _, fp) = start_broker_https(dir);
    (broker, addr, fp)
}

/// [`start_broker`], also returning the HTTPS listener's address (the web
/// console's and the links').
pub fn start_broker_https(dir: &Path) -> (Proc, String, String, String) {
    start_broker_filtered(dir, "debug")
}

/// [`start_broker_https`] logging to `dir/broker.log` with the log filter
/// `filter` (`RUST_LOG`, e.g. `"info,lifeline::relay=trace"`).
pub fn start_broker_filtered(dir: &Path, filter: &str) -> (Proc, String, String, String) {
    let cfg = dir.join("broker.toml");
    write(
        &cfg,
        "[broker]\nname = \"Process broker\"\nlisten = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\ndata_dir = \"broker-data\"\n",
    );
    add_alice(p(&cfg));
    run_broker_filtered(dir, p(&cfg), "broker.log", filter)
}

/// Adds the operator Alice Smith (password [`PASSWORD`]) to the broker of
/// config file `cfg`.
pub fn add_alice(cfg: &str) {
    ok(
        &[
            "broker",
            "add-operator",
            "--config",
            cfg,
            "--username",
            "alice",
            "--name",
            "Alice Smith",
            "--title",
            "Support Engineer",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
}

/// Runs `lifeline broker run --config cfg`, logging everything (debug) to
/// `dir/log` (the tests search it for secrets); returns it with its
/// session address, HTTPS address and certificate fingerprint.
pub fn run_broker(dir: &Path, cfg: &str, log: &str) -> (Proc, String, String, String) {
    run_broker_filtered(dir, cfg, log, "debug")
}

/// [`run_broker`] with the log filter `filter` (`RUST_LOG`).
pub fn run_broker_filtered(
    dir: &Path,
    cfg: &str,
    log: &str,
    filter: &str,
) -> (Proc, String, String, String) {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    let broker = Proc::spawn_with(&["broker", "run", "--config", cfg], log.into(), filter);
    // "Broker listening on ADDR (sessions) and https://HTTPS_ADDR (links)"
    let listening = broker.wait_line("Broker listening on");
    let addr = listening.split_whitespace().nth(3).unwrap().to_string();
    let https = listening
        .split_whitespace()
        .find_map(|w| w.strip_prefix("https://"))
        .unwrap()
        .to_string();
    let fp = broker
        .wait_line("Certificate fingerprint:")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    (broker, addr, https, fp)
}

pub fn client_configs(dir: &Path, addr: &str, fp: &str) -> (String, String) {
    let conn = format!(
        "[connection]\nbroker = \"{addr}\"\nserver_name = \"localhost\"\nfingerprint = \"{fp}\"\n"
    );
    let op = dir.join("operator.toml");
    write(
        &op,
        &format!("[operator]\ndata_dir = \"op-data\"\nusername = \"alice\"\n{conn}"),
    );
    let agent = dir.join("agent.toml");
    write(
        &agent,
        &format!(
            "[agent]\ndata_dir = \"agent-data\"\nconsent_timeout_secs = 30\n{conn}\
             [customer]\nsocket = \"{}\"\n",
            // The service's customer socket in the test's folder, not the
            // machine's /run/lifeline (tests run in parallel, as root).
            dir.join("run/customer.sock").display()
        ),
    );
    (p(&op).to_string(), p(&agent).to_string())
}

pub fn login(op: &str) {
    ok(
        &["operator", "login", "--config", op, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
}

/// Creates an invitation; returns its session ID and the whole JSON.
pub fn invite(op: &str, ticket: &str) -> (String, serde_json::Value) {
    let args = [
        "operator", "invite", "--config", op, "--ticket", ticket, "--name", "Mario", "--json",
    ];
    let inv: serde_json::Value = serde_json::from_str(&ok(&args, None)).unwrap();
    (inv["session_id"].as_str().unwrap().to_string(), inv)
}

/// Starts `lifeline agent join` with `credential` and waits until the session is ready.
pub fn join_ready(op: &str, agent_cfg: &str, credential: &str, sid: &str) -> Proc {
    let agent = Proc::spawn(&["agent", "join", "--config", agent_cfg, credential]);
    ok(
        &["operator", "wait", "--config", op, sid, "--timeout", "20"],
        None,
    );
    agent
}

#[test]
fn session_across_separate_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr, fp) = start_broker(dir.path());
    let (op, agent_cfg) = client_configs(dir.path(), &addr, &fp);

    let out = ok(
        &["operator", "login", "--config", &op, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(
        out.contains("Logged in to Process broker as Alice Smith"),
        "{out}"
    );
    // The saved login is private.
    lifeline_core::secrets::check_private(&dir.path().join("op-data/login.json")).unwrap();

    let text = ok(
        &[
            "operator",
            "invite",
            "--config",
            &op,
            "--ticket",
            "T-9",
            "--name",
            "Mario Rossi",
        ],
        None,
    );
    for label in ["Connection ID:", "Link:", "Short link:", "mailto:?subject="] {
        assert!(text.contains(label), "{label} in {text}");
    }
    let inv: serde_json::Value = serde_json::from_str(&ok(
        &[
            "operator",
            "invite",
            "--config",
            &op,
            "--ticket",
            "T-10",
            "--name",
            "Mario Rossi",
            "--json",
        ],
        None,
    ))
    .unwrap();
    let sid = inv["session_id"].as_str().unwrap().to_string();
    let code = inv["connection_id"].as_str().unwrap();

    let mut agent = Proc::spawn(&["agent", "join", "--config", &agent_cfg, code]);
    let banner = agent.wait_line("will help you");
    assert!(
        banner.contains("Alice Smith (Support Engineer)") && banner.contains("T-10"),
        "{banner}"
    );
    assert!(
        ok(
            &["operator", "wait", "--config", &op, &sid, "--timeout", "20"],
            None
        )
        .contains("is ready")
    );
    let list = ok(&["operator", "sessions", "--config", &op], None);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&sid) && l.contains("ready")),
        "{list}"
    );

    ok(
        &[
            "operator",
            "chat",
            "--config",
            &op,
            &sid,
            "Hello from the operator",
        ],
        None,
    );
    agent.wait_line("[Alice Smith] Hello from the operator");
    agent.type_line("Thanks, the printer is offline");

    let mut ask = Proc::spawn(&[
        "operator",
        "ask",
        "--config",
        &op,
        &sid,
        "--plugin",
        "sysinfo",
        "--action",
        "system.info",
        "--detail",
        "Read system information",
        "--timeout",
        "20",
    ]);
    agent.wait_line("Consent needed");
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    ask.wait_line("allow once (customer)");
    assert!(ask.wait_exit().success());

    let mut ask = Proc::spawn(&[
        "operator",
        "ask",
        "--config",
        &op,
        &sid,
        "--plugin",
        "power",
        "--action",
        "power.restart",
        "--detail",
        "Reboot",
        "--timeout",
        "20",
    ]);
    agent.wait_line("Type /allow");
    agent.type_line("/deny");
    assert_eq!(ask.wait_exit().code(), Some(lifeline::EXIT_DENIED as i32));

    ok(
        &[
            "operator",
            "end",
            "--config",
            &op,
            &sid,
            "--reason",
            "printer fixed",
        ],
        None,
    );
    agent.wait_line("ended by the operator: printer fixed");
    assert!(agent.wait_exit().success());

    let report: serde_json::Value = serde_json::from_str(&ok(
        &[
            "operator", "report", "--config", &op, &sid, "--format", "json",
        ],
        None,
    ))
    .unwrap();
    let kinds: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"invitation"));
    assert_eq!(kinds.last(), Some(&"end"));
    for k in [
        "join",
        "connect",
        "chat",
        "consent_request",
        "consent",
        "disconnect",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert_eq!(report["session"]["state"], "ended");
    let texts: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"Thanks, the printer is offline"));
    let file = dir.path().join("report.txt");
    ok(
        &[
            "operator",
            "report",
            "--config",
            &op,
            &sid,
            "--format",
            "text",
            "--output",
            p(&file),
        ],
        None,
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("Ticket:    T-10") && text.contains("Hello from the operator"));

    // The agent's audit log verifies; an edit is detected.
    let audit = dir.path().join("agent-data/audit.log");
    assert!(ok(&["audit", "verify", p(&audit)], None).contains("4 entries"));
    let tampered = std::fs::read_to_string(&audit).unwrap().replacen(
        "allow once",
        "allow for this session",
        1,
    );
    write(&audit, &tampered);
    assert!(fails(&["audit", "verify", p(&audit)]).contains("edited"));

    // No secret reaches a report, a log line, the audit log or the database.
    let token = std::fs::read_to_string(dir.path().join("op-data/login.json")).unwrap();
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let token = token["token"].as_str().unwrap();
    let log = std::fs::read_to_string(dir.path().join("broker.log")).unwrap();
    assert!(log.contains("operator logged in"), "the log is real: {log}");
    let db = std::fs::read(dir.path().join("broker-data/broker.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    for place in [text.as_str(), tampered.as_str(), log.as_str(), &db] {
        assert!(!place.contains(PASSWORD) && !place.contains(token));
    }
}

#[test]
fn killed_agent_process_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr, fp) = start_broker(dir.path());
    let (op, agent_cfg) = client_configs(dir.path(), &addr, &fp);
    login(&op);
    let (sid, inv) = invite(&op, "T-1");
    let mut agent = join_ready(&op, &agent_cfg, inv["link"].as_str().unwrap(), &sid);
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    let mut ended = false;
    for _ in 0..100 {
        let list: serde_json::Value = serde_json::from_str(&ok(
            &["operator", "sessions", "--config", &op, "--json"],
            None,
        ))
        .unwrap();
        if list
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == sid.as_str() && s["state"] == "ended")
        {
            ended = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ended, "the broker noticed the lost agent");
    let report = ok(&["operator", "report", "--config", &op, &sid], None);
    assert!(report.contains("customer connection lost"), "{report}");
}

#[test]
fn demo_runs_a_session_end_to_end() {
    let out = ok(&["demo"], None);
    let report = out
        .lines()
        .find_map(|l| l.strip_prefix("Report ("))
        .expect("report line");
    let path = report.split(": ").nth(1).unwrap().trim();
    let text = std::fs::read_to_string(path).unwrap();
    for kind in [
        "invitation",
        "join",
        "connect",
        "chat",
        "consent_request",
        "consent",
        "end",
    ] {
        assert!(text.contains(kind), "{kind} in {text}");
    }
    assert!(out.contains("hash chain verified"));
}

#[test]
fn interactive_console_chats_asks_reports_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr, fp) = start_broker(dir.path());
    let (op, agent_cfg) = client_configs(dir.path(), &addr, &fp);
    login(&op);
    let (sid, inv) = invite(&op, "T-5");
    let mut agent = join_ready(&op, &agent_cfg, inv["short_link"].as_str().unwrap(), &sid);
    let mut console = Proc::spawn(&["operator", "connect", "--config", &op, &sid]);
    console.wait_line("Connected to session");
    agent.wait_line("is connected");
    console.type_line("Can you see this?");
    agent.wait_line("[Alice Smith] Can you see this?");
    agent.type_line("Yes I can");
    console.wait_line("[customer] Yes I can");
    console.type_line("/ask sysinfo system.info Read system information");
    agent.wait_line("Type /allow");
    agent.type_line("yes");
    // Chat is chat, even while a question waits.
    console.wait_line("[customer] yes");
    agent.type_line("/allow");
    console.wait_line("allow once (customer)");
    console.type_line("/report");
    console.wait_line("consent_request");
    console.type_line("/end all done");
    agent.wait_line("ended by the operator: all done");
    assert!(console.wait_exit().success());
    assert!(agent.wait_exit().success());
}

pub fn run_cmd_fails(args: &[&str]) -> String {
    let out = run(args, None);
    assert!(!out.status.success(), "lifeline {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// A port free right now on 127.0.0.1 (for a server that must come back
/// on the same address, or whose config needs one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until something accepts connections on `port`.
pub fn wait_listening(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} never listened on port {port}");
}

/// A server of another project (nats-server, haproxy) the test started;
/// killed when dropped.
pub struct Daemon(Child);

impl Daemon {
    /// Starts `program args…` and waits until it listens on `port`.
    pub fn start(program: &str, args: &[&str], port: u16) -> Daemon {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is installed (scripts/setup): {e}"));
        wait_listening(port, program);
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A session driven through processes: an invitation for `ticket`, the
/// agent of `agent_cfg` joined by its link, and the operator's interactive
/// console connected. Returns the session ID, the agent and the console.
pub fn console_session(op: &str, agent_cfg: &str, ticket: &str) -> (String, Proc, Proc) {
    let (sid, inv) = invite(op, ticket);
    let agent = join_ready(op, agent_cfg, inv["link"].as_str().unwrap(), &sid);
    let console = Proc::spawn(&["operator", "connect", "--config", op, &sid]);
    console.wait_line("Connected to session");
    agent.wait_line("is connected");
    (sid, agent, console)
}

/// One chat line from the console to the customer and one back.
pub fn chat_both_ways(console: &mut Proc, agent: &mut Proc, to_customer: &str, to_operator: &str) {
    console.type_line(to_customer);
    agent.wait_line(&format!("[Alice Smith] {to_customer}"));
    agent.type_line(to_operator);
    console.wait_line(&format!("[customer] {to_operator}"));
}

/// The operator ends the session from the console ("all done"); both
/// processes exit cleanly.
pub fn end_from_console(mut console: Proc, mut agent: Proc) {
    console.type_line("/end all done");
    agent.wait_line("ended by the operator: all done");
    assert!(console.wait_exit().success());
    assert!(agent.wait_exit().success());
}

/// The report of session `sid` as JSON events, read with `op`'s config.
pub fn report_events(op: &str, sid: &str) -> Vec<serde_json::Value> {
    let args = [
        "operator", "report", "--config", op, sid, "--format", "json",
    ];
    let json: serde_json::Value = serde_json::from_str(&ok(&args, None)).unwrap();
    json["events"].as_array().expect("report events").clone()
}

/// How many of `events` are of `kind` with `text` in their text.
pub fn count_events(events: &[serde_json::Value], kind: &str, text: &str) -> usize {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["text"].as_str().unwrap_or("").contains(text))
        .count()
}
