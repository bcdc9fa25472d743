//! Remote reboot with automatic rejoin, as separate processes: the power
//! backend kills the agent (as a restart would), the agent is started again
//! the way the service manager starts it, and rejoins the same session.

use std::path::Path;

use crate::processes::*;

use crate::processes::output_text as text;

/// Gives the agent of `agent_cfg` (in folder `dir`) the reboot plugin and
/// a power backend that kills the agent, as a restart would.
pub fn with_reboot_plugin(dir: &Path, agent_cfg: &str) {
    crate::plugins::install_plugins(&dir.join("agent-plugins"), &["plugins/reboot"]);
    let cfg_text = std::fs::read_to_string(agent_cfg).unwrap()
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n"
        + "[power]\nreboot_command = [\"sh\", \"-c\", \"kill -9 $LIFELINE_AGENT_PID\"]\n";
    write(Path::new(agent_cfg), &cfg_text);
}

#[test]
fn reboot_rejoins_the_same_session_and_tickets_are_single_use() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_broker, addr, fp) = start_broker(d);
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    with_reboot_plugin(d, &agent_cfg);
    login(&op);
    let (sid, inv) = invite(&op, "T-REBOOT");
    let mut agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );

    // The operator asks; the reboot plugin tells the customer what the
    // restart means; the customer consents; the agent takes a ticket and
    // the power backend stops it.
    let args: Vec<String> = [
        "operator",
        "reboot",
        "--config",
        &op,
        &sid,
        "--reason",
        "apply updates",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let t = std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, None)
    });
    let told = agent.wait_line("Lifeline reconnects to this session by itself");
    assert!(
        told.contains("[reboot]") && told.contains("(apply updates)"),
        "{told}"
    );
    let prompt = agent.wait_line("power.restart");
    assert!(prompt.contains("reboot"), "{prompt}");
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    let out = t.join().unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("restarting"), "{said}");
    let status = agent.wait_exit();
    assert!(
        !status.success(),
        "the power backend killed the agent: {status}"
    );
    let ticket = d.join("agent-data/rejoin-ticket.json");
    lifeline_core::secrets::check_private(&ticket).unwrap();
    let saved = std::fs::read_to_string(&ticket).unwrap();
    let sessions = ok(&["operator", "sessions", "--config", &op], None);
    assert!(sessions.contains("rebooting"), "{sessions}");
    let refused = run(&["operator", "chat", "--config", &op, &sid, "hello?"], None);
    assert!(text(&refused).contains("restarting"), "{}", text(&refused));

    // Started again as the service manager would: back in the same session
    // without a code.
    let mut back = Proc::spawn(&["agent", "service", "--config", &agent_cfg]);
    let line = back.wait_line("You are back in the session with Alice Smith");
    assert!(line.contains("T-REBOOT"), "{line}");
    assert!(!ticket.exists(), "a used ticket is removed");
    ok(
        &["operator", "chat", "--config", &op, &sid, "welcome back"],
        None,
    );
    back.wait_line("welcome back");
    // Nobody reads the service's output and no customer window is
    // connected: what the policy leaves to the customer is refused at
    // once, and the operator is told why (not after the timeout).
    let out = run(
        &[
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
            "60",
        ],
        None,
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(lifeline::EXIT_DENIED as i32),
        "{said}"
    );
    // "absent", not "timeout": decided at once.
    assert!(said.contains("absent: no customer window"), "{said}");
    let report = ok(&["operator", "report", "--config", &op, &sid], None);
    let order = [
        "Alice Smith runs reboot reboot apply updates",
        "customer] Your operator wants to restart this computer (apply updates)",
        "power.restart for plugin reboot: allow once",
        "reboot requested: rejoin ticket issued",
        "the customer's computer is restarting: Alice Smith restarts the computer: apply updates",
        "agent stopped for the reboot",
        "rejoined after the reboot",
    ];
    let mut at = 0;
    for needle in order {
        let found = report[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} after byte {at} in\n{report}"));
        at += found;
    }
    let json = ok(
        &[
            "operator", "report", "--config", &op, &sid, "--format", "json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ["reboot", "rejoin"].contains(&e["kind"].as_str().unwrap()))
        .map(|e| {
            assert!(e["at"].as_str().is_some_and(|t| t.starts_with("20")), "{e}");
            e["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kinds, ["reboot", "reboot", "reboot", "rejoin"], "{json}");
    ok(&["operator", "end", "--config", &op, &sid], None);
    assert!(back.wait_exit().success());

    // The same ticket again: refused, and the customer is told what to do.
    lifeline_core::secrets::write_private(&ticket, saved.as_bytes()).unwrap();
    let out = run(&["agent", "service", "--config", &agent_cfg], None);
    let t = text(&out);
    assert!(!out.status.success());
    assert!(
        t.contains("already used") && t.contains("ask your operator for a new connection ID"),
        "{t}"
    );
    assert!(!ticket.exists());
    // A forged one.
    let forged = saved.replace("rj_", "rj_forged");
    lifeline_core::secrets::write_private(&ticket, forged.as_bytes()).unwrap();
    let t = text(&run(&["agent", "service", "--config", &agent_cfg], None));
    assert!(
        t.contains("not valid") && t.contains("new connection ID"),
        "{t}"
    );
    // An expired one (the agent knows without asking the broker).
    let mut v: serde_json::Value = serde_json::from_str(&saved).unwrap();
    v["expires_at"] = 1.into();
    lifeline_core::secrets::write_private(&ticket, v.to_string().as_bytes()).unwrap();
    let t = text(&run(&["agent", "service", "--config", &agent_cfg], None));
    assert!(
        t.contains("expired") && t.contains("new connection ID"),
        "{t}"
    );
    // A ticket file others can read is refused, naming the file.
    write(&ticket, &saved);
    std::fs::set_permissions(&ticket, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let t = text(&run(&["agent", "service", "--config", &agent_cfg], None));
    assert!(t.contains("rejoin-ticket.json"), "{t}");
}

#[test]
fn install_service_writes_a_systemd_unit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, agent_cfg) = client_configs(d, "127.0.0.1:1", &format!("SHA256:{}", "00".repeat(32)));
    let units = d.join("units");
    let autostart = d.join("autostart");
    let out = ok(
        &[
            "agent",
            "install-service",
            "--config",
            &agent_cfg,
            "--unit-dir",
            p(&units),
            "--autostart-dir",
            p(&autostart),
            "--no-systemctl",
            "--account",
            "root",
        ],
        None,
    );
    assert!(out.contains("lifeline-agent.service"), "{out}");
    // The customer's window comes back at the desktop login.
    let entry = std::fs::read_to_string(autostart.join("lifeline-window.desktop")).unwrap();
    assert!(
        entry.contains(&format!(
            "Exec=\"{}\" agent window --wait --config \"{agent_cfg}\"",
            env!("CARGO_BIN_EXE_lifeline")
        )),
        "{entry}"
    );
    let unit = std::fs::read_to_string(units.join("lifeline-agent.service")).unwrap();
    let exe = env!("CARGO_BIN_EXE_lifeline");
    for line in [
        "[Unit]",
        "After=network-online.target",
        "[Service]",
        "User=root",
        &format!("ExecStart={exe} agent service --config {agent_cfg}"),
        "Restart=on-failure",
        "[Install]",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line:?} in\n{unit}");
    }
    let bad = run(
        &[
            "agent",
            "install-service",
            "--config",
            &agent_cfg,
            "--unit-dir",
            p(&units),
            "--autostart-dir",
            p(&autostart),
            "--no-systemctl",
            "--account",
            "no-such-account-here",
        ],
        None,
    );
    assert!(
        text(&bad).contains("\"no-such-account-here\" does not exist"),
        "{}",
        text(&bad)
    );
    ok(
        &[
            "agent",
            "uninstall-service",
            "--config",
            &agent_cfg,
            "--unit-dir",
            p(&units),
            "--autostart-dir",
            p(&autostart),
            "--no-systemctl",
        ],
        None,
    );
    assert!(!units.join("lifeline-agent.service").exists());
    assert!(!autostart.join("lifeline-window.desktop").exists());
}

/// In-process: a session whose agent took a rejoin ticket and stopped (the
/// power backend "succeeds" without stopping anything; the test stops the
/// agent). The operator stays attached throughout.
pub(crate) async fn rebooted(
    rejoin_ttl: std::time::Duration,
) -> (
    crate::support::TestBroker,
    lifeline_operator::Client,
    String,
    lifeline_agent::config::AgentConfig,
) {
    use crate::support::*;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = broker_config(dir.path(), Duration::from_secs(15));
    cfg.rejoin_ttl = rejoin_ttl;
    lifeline_broker::add_operator(&cfg, &profile("alice", "Alice Smith"), PASSWORD).unwrap();
    let tb = TestBroker {
        broker: lifeline_broker::Broker::start(cfg).await.unwrap(),
        dir,
    };
    let op = tb.operator("alice").await;
    let root = tb.dir.path().join("plugins");
    crate::plugins::install_plugins(&root, &["plugins/reboot"]);
    let mut acfg = tb.agent_config("agent", None, Duration::from_secs(20));
    acfg.plugins = Some(unsigned_plugins(root));
    acfg.power.reboot_command = vec!["true".into()];
    let (sid, mut agent) = connected_session(&tb, &op, acfg.clone()).await;
    let run = op.run_plugin(&sid, "reboot", "reboot", &[], WAIT, |_, _| {});
    let answer = async {
        agent
            .sees("Lifeline reconnects to this session by itself")
            .await;
        agent.sees("Consent needed").await;
        agent.input.send("/allow".into()).await.unwrap();
    };
    let (r, ()) = tokio::join!(run, answer);
    let said = r.unwrap().unwrap();
    assert!(said.contains("restarting"), "{said}");
    // The call ends after the ticket is saved and the power backend ran.
    agent.sees("reboot finished").await;
    agent.task.abort();
    let _ = agent.task.await;
    (tb, op, sid, acfg)
}

/// In-process: the operator, still attached, sees the customer come back.
#[tokio::test]
async fn attached_operator_sees_the_customer_return() {
    use crate::support::*;
    use std::sync::Arc;

    let (_tb, op, sid, acfg) = rebooted(std::time::Duration::from_secs(900)).await;
    let (stx, mut srx) = tokio::sync::mpsc::unbounded_channel();
    let (_itx, irx) = tokio::sync::mpsc::channel(1);
    let agent =
        tokio::spawn(
            async move { lifeline_agent::rejoin(&acfg, Arc::new(Screen(stx)), irx).await },
        );
    let msg = operator_sees(&op, |m| {
        matches!(m, lifeline_protocol::SessionMessage::State { state: lifeline_protocol::SessionState::Connected, detail } if detail.contains("is back after the restart"))
    })
    .await;
    assert!(format!("{msg:?}").contains("Mario Rossi"), "{msg:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let line = tokio::time::timeout_at(deadline, srx.recv())
            .await
            .unwrap()
            .unwrap();
        if line.contains("You are back in the session with Alice Smith") {
            assert!(!line.contains("Waiting for the operator"));
            break;
        }
    }
    op.chat(&sid, "welcome back").await.unwrap();
    op.end(&sid, "done").await.unwrap();
    let outcome = agent.await.unwrap().unwrap().unwrap();
    assert_eq!(outcome.session.session_id, sid);
}

/// In-process: a customer who does not come back in time. The broker refuses
/// the late ticket itself, and the sweeper ends the waiting session.
#[tokio::test]
async fn late_rejoin_is_refused_and_the_session_ends() {
    use crate::support::*;
    use std::sync::Arc;
    use std::time::Duration;

    let (tb, op, sid, acfg) = rebooted(Duration::from_secs(1)).await;

    // Past the ticket's life (the agent's own clock is fooled on purpose so
    // that the broker has to refuse it).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let path = lifeline_agent::reboot::ticket_path(&acfg.data_dir);
    let mut t = lifeline_agent::reboot::load(&acfg.data_dir)
        .unwrap()
        .unwrap();
    t.expires_at += 600_000;
    lifeline_agent::reboot::save(&acfg.data_dir, &t).unwrap();
    let (stx, mut srx) = tokio::sync::mpsc::unbounded_channel();
    let (_itx, irx) = tokio::sync::mpsc::channel(1);
    let err = lifeline_agent::rejoin(&acfg, Arc::new(Screen(stx)), irx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expired at") && err.contains("new connection ID"),
        "{err}"
    );
    assert!(srx.recv().await.unwrap().contains("expired at"));
    assert!(!path.exists());

    tb.broker.shared.sweep_rebooting();
    let list = op.sessions(false).await.unwrap();
    let s = list.iter().find(|s| s.session_id == sid).unwrap();
    assert_eq!(s.state, lifeline_protocol::SessionState::Ended);
    let (_, events) = op.report(&sid).await.unwrap();
    assert!(
        events.iter().any(|e| e
            .text
            .contains("did not come back before the rejoin ticket expired")),
        "{events:?}"
    );
}

/// In-process: runs `reboot reboot` and denies the consent once the customer
/// read `sentence` (so nothing restarts); returns the operator's error.
async fn denied_restart(
    op: &lifeline_operator::Client,
    sid: &str,
    agent: &mut crate::support::TestAgent,
    sentence: &str,
) -> String {
    use crate::support::WAIT;

    let args = ["updates".to_string()];
    let run = op.run_plugin(sid, "reboot", "reboot", &args, WAIT, |_, _| {});
    let answer = async {
        let told = agent.sees(sentence).await;
        agent.sees("Consent needed").await;
        agent.input.send("/deny".into()).await.unwrap();
        told
    };
    let (r, told) = tokio::join!(run, answer);
    assert!(told.starts_with("* [reboot] "), "{told}");
    r.unwrap().unwrap_err()
}

/// In-process: what the operator and the customer read about a restart is
/// the reboot plugin's. Its main.lua edited and saved while the agent runs,
/// the next command says the new sentence, without an agent restart; with
/// the plugin's folder deleted, the command is gone.
#[tokio::test]
async fn the_restart_dialogue_is_the_plugins_edited_live_then_deleted() {
    use crate::support::*;
    use lifeline_protocol::SessionMessage;

    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let root = tb.dir.path().join("plugins");
    crate::plugins::install_plugins(&root, &["plugins/reboot"]);
    let mut acfg = tb.agent_config("agent", None, WAIT);
    let mut plugins = unsigned_plugins(root.clone());
    plugins.hot_reload = true;
    acfg.plugins = Some(plugins);
    acfg.power.reboot_command = vec!["true".into()];
    let (sid, mut agent) = connected_session(&tb, &op, acfg).await;

    let before = "Your operator wants to restart this computer (updates)";
    let err = denied_restart(&op, &sid, &mut agent, before).await;
    assert!(
        err.contains("the customer did not allow the restart"),
        "{err}"
    );

    // Edited and saved: the agent reloads it and the next run says so.
    let main = root.join("reboot/main.lua");
    let code = std::fs::read_to_string(&main).unwrap();
    let edited = code
        .replace(
            "Your operator wants to restart",
            "Edited live: your operator would like to restart",
        )
        .replace(
            "the customer did not allow the restart",
            "the customer said no to the restart",
        );
    assert_ne!(code, edited, "the sentences to edit are in main.lua");
    std::fs::write(&main, edited).unwrap();
    operator_sees(&op, |m| {
        matches!(m, SessionMessage::PluginNotice { text } if text.contains("plugin reboot reloaded"))
    })
    .await;
    let after = "Edited live: your operator would like to restart this computer (updates)";
    let err = denied_restart(&op, &sid, &mut agent, after).await;
    assert!(err.contains("the customer said no to the restart"), "{err}");
    let events = op.report(&sid).await.unwrap().1;
    for sentence in [before, after] {
        assert!(
            events
                .iter()
                .any(|e| e.kind == "plugin_output" && e.text.contains(sentence)),
            "{sentence:?} in the report: {events:?}"
        );
    }

    // Deleted: the command is gone, with a clear error.
    std::fs::remove_dir_all(root.join("reboot")).unwrap();
    operator_sees(&op, |m| {
        matches!(m, SessionMessage::PluginNotice { text } if text.contains("plugin reboot removed"))
    })
    .await;
    let r = op
        .run_plugin(&sid, "reboot", "reboot", &[], WAIT, |_, _| {})
        .await
        .unwrap();
    assert!(
        r.as_ref()
            .is_err_and(|e| e.contains("plugin \"reboot\" is not installed")),
        "{r:?}"
    );
    assert!(op.plugins(&sid, WAIT).await.unwrap().is_empty());
    op.end(&sid, "done").await.unwrap();
    assert!(agent.task.await.unwrap().is_ok());
}

#[test]
fn the_agent_service_stops_cleanly_on_sigterm() {
    // systemd stops the service with SIGTERM: the background plugins stop
    // and the process exits successfully, not killed by the signal.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, agent_cfg) = client_configs(d, "127.0.0.1:1", &format!("SHA256:{}", "00".repeat(32)));
    crate::plugins::install_plugins(&d.join("agent-plugins"), &["plugins/screen"]);
    let cfg = std::fs::read_to_string(&agent_cfg).unwrap()
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n";
    write(Path::new(&agent_cfg), &cfg);
    let mut service = Proc::spawn(&["agent", "service", "--config", &agent_cfg]);
    service.wait_line("Running in the background: screen.");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(service.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = service.wait_exit();
    assert!(status.success(), "{status:?}: {}", service.rest());
}
