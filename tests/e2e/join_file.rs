//! Joining with nothing to configure: the join page's agent download and
//! signed join file, `agent join FILE` with no configuration, tampered and
//! foreign join files, `agent setup` / `operator setup` with a confirmed
//! fingerprint, and the "Allow remote assistance" switch. Real broker,
//! agent and operator processes; HTTPS over real TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use lifeline_core::tls::{self, Fingerprint, Trust};
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};

use crate::processes::{
    Proc, client_configs, invite, login, ok, output_text, p, start_broker_https, write,
};
use crate::support::WAIT;

/// A TLS stream to the broker, trusting its pinned certificate.
fn tls_to(addr: &str, fp: &str) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let cfg = tls::client_config(&Trust::Pinned(Fingerprint::parse(fp).unwrap())).unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::clone(&cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// An HTTP/1.1 GET over TLS: status, header, body.
fn https_get(https: &str, fp: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = tls_to(https, fp);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    // A peer closing without close_notify still delivered the response.
    let _ = s.read_to_end(&mut buf);
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..at]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, buf[at + 4..].to_vec())
}

fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("https://").unwrap();
    format!("/{}", rest.split_once('/').unwrap().1)
}

/// `lifeline` (or `program`) with HOME in `home` and no XDG folders or
/// LIFELINE_CONFIG from the test's environment.
fn customer_cmd(program: &Path, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_remove("LIFELINE_CONFIG")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home)
        .env("RUST_LOG", "warn");
    c
}

fn lifeline_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeline"))
}

/// Runs to the end with `stdin`; output and status.
fn run_in(home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = customer_cmd(&lifeline_bin(), home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn fails_in(home: &Path, args: &[&str], stdin: &str) -> String {
    let out = run_in(home, args, stdin);
    assert!(
        !out.status.success(),
        "{args:?} should fail: {}",
        output_text(&out)
    );
    output_text(&out)
}

fn ok_in(home: &Path, args: &[&str], stdin: &str) -> String {
    let out = run_in(home, args, stdin);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        output_text(&out)
    );
    output_text(&out)
}

/// Downloads the join file of `link` into `dir` (its name from the
/// Content-Disposition header).
fn download_join_file(https: &str, fp: &str, link: &str, dir: &Path) -> PathBuf {
    let (status, head, body) = https_get(https, fp, &format!("{}/join.lifeline", path_of(link)));
    assert_eq!(status, 200, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/x-lifeline-join"),
        "{head}"
    );
    let at = lower.find("filename=\"").unwrap() + "filename=\"".len();
    let name = head[at..].split('"').next().unwrap().to_string();
    assert!(name.ends_with(".lifeline"), "{head}");
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// The broker's log lines after `from` bytes.
fn log_since(dir: &Path, from: usize) -> String {
    let log = std::fs::read_to_string(dir.join("broker.log")).unwrap();
    log[from.min(log.len())..].to_string()
}

fn log_len(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("broker.log"))
        .unwrap()
        .len()
}

/// Opens and closes one TLS connection to the session listener and waits
/// until the broker logged it: every connection made before it was
/// accepted, and logged, by then. Returns the marker's address.
fn mark_session_listener(dir: &Path, addr: &str, fp: &str) -> String {
    let mut s = tls_to(addr, fp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).unwrap();
    }
    let me = s.sock.local_addr().unwrap().to_string();
    drop(s);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let log = std::fs::read_to_string(dir.join("broker.log")).unwrap();
        if log.lines().any(|l| l.contains(&me)) {
            return me;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the broker never logged {me}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn session_state(op: &str, sid: &str) -> String {
    let list = ok(&["operator", "sessions", "--config", op], None);
    let line = list.lines().find(|l| l.starts_with(sid)).unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn join_from_the_link_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr, https, fp) = start_broker_https(dir.path());
    let (op, _) = client_configs(dir.path(), &addr, &fp);
    login(&op);
    let (sid, inv) = invite(&op, "T-77");
    let link = inv["link"].as_str().unwrap();

    // The join page offers the agent (with its SHA-256) and the join file.
    let (status, _, page) = https_get(&https, &fp, &path_of(link));
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("href=\"/download/lifeline\""), "{page}");
    assert!(
        page.contains(&format!("{}/join.lifeline", path_of(link))),
        "{page}"
    );
    assert!(
        page.contains("lifeline agent join ~/Downloads/support-T-77.lifeline"),
        "{page}"
    );
    let shown = page
        .split("<code class=\"agent-sha256\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();

    // The short link leads to the same page.
    let (status, head, _) = https_get(&https, &fp, &path_of(inv["short_link"].as_str().unwrap()));
    assert_eq!(status, 303, "{head}");

    let home = dir.path().join("home");
    let downloads = home.join("Downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let (status, head, program) = https_get(&https, &fp, "/download/lifeline");
    assert_eq!(status, 200, "{head}");
    let digest: String = Sha256::digest(&program)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, shown);
    assert_eq!(program, std::fs::read(lifeline_bin()).unwrap());
    let agent_bin = downloads.join("lifeline");
    std::fs::write(&agent_bin, &program).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&agent_bin, std::fs::Permissions::from_mode(0o755)).unwrap();

    let file = download_join_file(&https, &fp, link, &downloads);
    assert!(file.ends_with("support-T-77.lifeline"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&format!("broker = \"{addr}\"")), "{text}");
    assert!(text.contains(&format!("fingerprint = \"{fp}\"")), "{text}");
    assert!(text.contains("operator = \"Alice Smith\""), "{text}");
    assert!(
        text.contains(&format!(
            "expires_at = \"{}\"",
            inv["expires_at"].as_str().unwrap()
        )),
        "{text}"
    );

    // The downloaded program, the join file, nothing configured.
    let mut c = customer_cmd(&agent_bin, &home);
    c.args(["agent", "join", p(&file)]);
    let mut agent = Proc::from_command(c);
    let banner = agent.wait_line("will help you");
    assert!(banner.contains("Alice Smith"), "{banner}");
    ok(
        &["operator", "wait", "--config", &op, &sid, "--timeout", "20"],
        None,
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
    agent.type_line("Thanks, it works without a config");
    ok(
        &["operator", "end", "--config", &op, &sid, "--reason", "done"],
        None,
    );
    agent.wait_line("ended by the operator: done");
    assert!(agent.wait_exit().success());
    let report = ok(&["operator", "report", "--config", &op, &sid], None);
    assert!(
        report.contains("Thanks, it works without a config"),
        "{report}"
    );
    // The built-in data folder holds the audit log.
    assert!(home.join(".local/share/lifeline/agent/audit.log").is_file());
}

#[test]
fn tampered_and_foreign_join_files_are_refused() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (_a, addr_a, https_a, fp_a) = start_broker_https(dir_a.path());
    let (_b, addr_b, https_b, fp_b) = start_broker_https(dir_b.path());
    let (op_a, _) = client_configs(dir_a.path(), &addr_a, &fp_a);
    let (op_b, _) = client_configs(dir_b.path(), &addr_b, &fp_b);
    login(&op_a);
    login(&op_b);
    let home = dir_a.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (sid_a, inv_a) = invite(&op_a, "T-1");
    let good = download_join_file(&https_a, &fp_a, inv_a["link"].as_str().unwrap(), &home);
    let text = std::fs::read_to_string(&good).unwrap();
    let before = log_len(dir_a.path());

    let edited = |name: &str, text: String| {
        let f = home.join(name);
        write(&f, &text);
        f
    };
    // One byte of the invitation; one of the expiry (a year later).
    let token = inv_a["link"].as_str().unwrap().rsplit('/').next().unwrap();
    let flipped = if token.starts_with('A') { "B" } else { "A" };
    let bad_invitation = edited(
        "bad-invitation.lifeline",
        text.replace(
            &format!("invitation = \"{}", &token[..1]),
            &format!("invitation = \"{flipped}"),
        ),
    );
    let year = inv_a["expires_at"].as_str().unwrap()[..4].to_string();
    let next_year = (year.parse::<u32>().unwrap() + 1).to_string();
    let bad_expiry = edited(
        "bad-expiry.lifeline",
        text.replace(
            &format!("expires_at = \"{year}"),
            &format!("expires_at = \"{next_year}"),
        ),
    );
    for f in [&bad_invitation, &bad_expiry] {
        assert_ne!(std::fs::read_to_string(f).unwrap(), text);
        let err = fails_in(&home, &["agent", "join", p(f)], "");
        assert!(
            err.contains(&format!(
                "join file {} was altered after the broker issued it",
                f.display()
            )),
            "{err}"
        );
    }

    // Broker B's file, its address edited to broker A: A's certificate is
    // not the pin.
    let (_, inv_b) = invite(&op_b, "T-2");
    let b_file = download_join_file(&https_b, &fp_b, inv_b["link"].as_str().unwrap(), &home);
    let b_text = std::fs::read_to_string(&b_file).unwrap();
    let repointed = edited("repointed.lifeline", b_text.replace(&addr_b, &addr_a));
    let err = fails_in(&home, &["agent", "join", "--file", p(&repointed)], "");
    assert!(
        err.contains(&format!(
            "join file {} is for another broker: its certificate pin {fp_b} does not match the broker at {addr_a}",
            repointed.display()
        )),
        "{err}"
    );
    // … and re-pinned to A as well, still signed with B's key.
    let repinned = edited(
        "repinned.lifeline",
        b_text.replace(&addr_b, &addr_a).replace(&fp_b, &fp_a),
    );
    let err = fails_in(&home, &["agent", "join", p(&repinned)], "");
    assert!(
        err.contains("was altered after the broker issued it"),
        "{err}"
    );

    // Broker A saw connections (the certificate checks) but no join.
    mark_session_listener(dir_a.path(), &addr_a, &fp_a);
    let log = log_since(dir_a.path(), before);
    assert!(
        !log.contains("customer joined") && !log.contains("join refused"),
        "{log}"
    );
    assert_eq!(session_state(&op_a, &sid_a), "invited");
    // The good file still joins.
    let mut c = customer_cmd(&lifeline_bin(), &home);
    c.args(["agent", "join", p(&good)]);
    let _agent = Proc::from_command(c);
    ok(
        &[
            "operator",
            "wait",
            "--config",
            &op_a,
            &sid_a,
            "--timeout",
            "20",
        ],
        None,
    );
    ok(&["operator", "end", "--config", &op_a, &sid_a], None);
}

#[test]
fn setup_confirms_the_fingerprint_and_writes_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr, _, fp) = start_broker_https(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let agent_cfg = dir.path().join("agent.toml");
    let op_cfg = dir.path().join("operator.toml");
    let wrong = Fingerprint::of(b"another broker").to_string();

    // A wrong --yes-fingerprint and an interactive "n" write nothing.
    for role in ["agent", "operator"] {
        let cfg = if role == "agent" { &agent_cfg } else { &op_cfg };
        let base = [
            role,
            "setup",
            "--broker",
            &addr,
            "--server-name",
            "localhost",
            "--config",
            p(cfg),
        ];
        let err = fails_in(
            &home,
            &[&base[..], &["--yes-fingerprint", &wrong]].concat(),
            "",
        );
        assert!(
            err.contains(&format!("presented {fp}, not {wrong}")),
            "{err}"
        );
        assert!(err.contains("nothing was written"), "{err}");
        let out = fails_in(&home, &base, "n\n");
        assert!(
            out.contains(&fp) && out.contains("Trust this broker? [y/N]"),
            "{out}"
        );
        assert!(out.contains("nothing was written"), "{out}");
        assert!(!cfg.exists());
    }

    // The right fingerprint: a complete, valid configuration.
    for (role, cfg) in [("agent", &agent_cfg), ("operator", &op_cfg)] {
        let out = ok_in(
            &home,
            &[
                role,
                "setup",
                "--broker",
                &addr,
                "--server-name",
                "localhost",
                "--config",
                p(cfg),
                "--yes-fingerprint",
                &fp,
            ],
            "",
        );
        assert!(out.contains(&format!("Wrote {}", cfg.display())), "{out}");
        let check = ok(&["config", "check", p(cfg)], None);
        assert!(check.contains("valid"), "{check}");
    }
    // An existing file: only [connection] changes; answered "y".
    std::fs::write(
        &op_cfg,
        "# my operator file\n[operator]\ndata_dir = \"op-data\" # keep\nusername = \"alice\"\n\n[connection]\nbroker = \"old.example:1\"\nheartbeat_secs = 20\n",
    )
    .unwrap();
    let out = ok_in(
        &home,
        &[
            "operator",
            "setup",
            "--broker",
            &addr,
            "--server-name",
            "localhost",
            "--config",
            p(&op_cfg),
        ],
        "y\n",
    );
    assert!(out.contains("Trust this broker? [y/N]"), "{out}");
    let text = std::fs::read_to_string(&op_cfg).unwrap();
    for kept in [
        "# my operator file",
        "# keep",
        "username = \"alice\"",
        "heartbeat_secs = 20",
    ] {
        assert!(text.contains(kept), "{kept} in {text}");
    }
    assert!(
        text.contains(&fp) && text.contains(&addr) && !text.contains("old.example"),
        "{text}"
    );

    // Both configurations work: a join with the connection ID.
    let op = p(&op_cfg).to_string();
    login(&op);
    let (sid, inv) = invite(&op, "T-3");
    let mut c = customer_cmd(&lifeline_bin(), &home);
    c.args([
        "agent",
        "join",
        "--config",
        p(&agent_cfg),
        inv["connection_id"].as_str().unwrap(),
    ]);
    let mut agent = Proc::from_command(c);
    agent.wait_line("will help you");
    ok(
        &["operator", "wait", "--config", &op, &sid, "--timeout", "20"],
        None,
    );
    ok(&["operator", "end", "--config", &op, &sid], None);
    assert!(agent.wait_exit().success());
}

#[test]
fn allow_remote_assistance_switch_refuses_joins() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr, https, fp) = start_broker_https(dir.path());
    let (op, agent_cfg) = client_configs(dir.path(), &addr, &fp);
    login(&op);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let admin_off = dir.path().join("admin-off.toml");
    write(
        &admin_off,
        &std::fs::read_to_string(&agent_cfg)
            .unwrap()
            .replace("[agent]\n", "[agent]\nallow_remote_assistance = false\n")
            .replace("agent-data", "admin-off-data"),
    );

    // The administrator's off: refused before connecting.
    let (sid, inv) = invite(&op, "T-4");
    let code = inv["connection_id"].as_str().unwrap();
    // Everything before this marker is in the log before `before`.
    mark_session_listener(dir.path(), &addr, &fp);
    let before = log_len(dir.path());
    let err = fails_in(
        &home,
        &["agent", "join", "--config", p(&admin_off), code],
        "",
    );
    assert!(
        err.contains("remote assistance is turned off on this computer by the administrator"),
        "{err}"
    );
    let marker = mark_session_listener(dir.path(), &addr, &fp);
    let log = log_since(dir.path(), before);
    // The broker's own lines since: only about the marker's connection.
    let broker_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("lifeline_broker"))
        .collect();
    assert!(
        !broker_lines.is_empty() && broker_lines.iter().all(|l| l.contains(&marker)),
        "only the marker {marker} connected: {log}"
    );
    let status = ok_in(&home, &["agent", "status", "--config", p(&admin_off)], "");
    assert!(
        status.contains("Remote assistance: off (turned off by the administrator"),
        "{status}"
    );
    // The customer's on does not override it.
    let out = ok_in(
        &home,
        &[
            "agent",
            "allow-remote-assistance",
            "on",
            "--config",
            p(&admin_off),
        ],
        "",
    );
    assert!(out.contains("It stays off"), "{out}");

    // The customer's off: joins with a code and with a join file refused.
    ok_in(
        &home,
        &[
            "agent",
            "allow-remote-assistance",
            "off",
            "--config",
            &agent_cfg,
        ],
        "",
    );
    let status = ok_in(&home, &["agent", "status", "--config", &agent_cfg], "");
    assert!(
        status.contains("Remote assistance: off (turned off by"),
        "{status}"
    );
    assert!(
        status.contains(&format!("Fingerprint:       {fp}")),
        "{status}"
    );
    assert!(status.contains("Rejoin ticket:     none"), "{status}");
    let err = fails_in(&home, &["agent", "join", "--config", &agent_cfg, code], "");
    assert!(err.contains("turned off on this computer by you"), "{err}");
    assert!(
        err.contains("lifeline agent allow-remote-assistance on"),
        "{err}"
    );
    let file = download_join_file(&https, &fp, inv["link"].as_str().unwrap(), &home);
    let err = fails_in(
        &home,
        &["agent", "join", "--config", &agent_cfg, p(&file)],
        "",
    );
    assert!(err.contains("turned off on this computer by you"), "{err}");
    assert_eq!(session_state(&op, &sid), "invited");

    // On again: the join file joins.
    ok_in(
        &home,
        &[
            "agent",
            "allow-remote-assistance",
            "on",
            "--config",
            &agent_cfg,
        ],
        "",
    );
    let status = ok_in(&home, &["agent", "status", "--config", &agent_cfg], "");
    assert!(
        status.contains("Remote assistance: on (turned on by"),
        "{status}"
    );
    let mut c = customer_cmd(&lifeline_bin(), &home);
    c.args(["agent", "join", "--config", &agent_cfg, p(&file)]);
    let mut agent = Proc::from_command(c);
    agent.wait_line("will help you");
    ok(
        &["operator", "wait", "--config", &op, &sid, "--timeout", "20"],
        None,
    );
    ok(&["operator", "end", "--config", &op, &sid], None);
    assert!(agent.wait_exit().success());
}

/// A rejoin after a reboot is refused too while the switch is off, before
/// connecting; the ticket stays for when it is on again.
#[tokio::test]
async fn allow_switch_off_refuses_the_rejoin() {
    let tb = crate::support::TestBroker::start().await;
    let mut cfg = tb.agent_config("switch-off", None, std::time::Duration::from_secs(5));
    cfg.allow_remote_assistance = false;
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    let ticket: lifeline_agent::reboot::SavedTicket = serde_json::from_value(serde_json::json!({
        "ticket": "t".repeat(43),
        "session_id": "S-1",
        "operator": "Alice Smith",
        "expires_at": lifeline_core::time::now_millis() + 600_000,
        "saved_at": lifeline_core::time::now_rfc3339(),
    }))
    .unwrap();
    lifeline_agent::reboot::save(&cfg.data_dir, &ticket).unwrap();
    let (_tx, input) = tokio::sync::mpsc::channel(1);
    let err = lifeline_agent::rejoin(&cfg, Arc::new(lifeline_agent::TerminalUi), input)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("remote assistance is turned off on this computer by the administrator"),
        "{err}"
    );
    assert!(
        lifeline_agent::reboot::load(&cfg.data_dir)
            .unwrap()
            .is_some()
    );
}
