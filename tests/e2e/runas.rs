//! Log in as another user through the real PAM stack, with a real X server
//! (Xvfb) whose keyboard the agent suspends, as separate processes.

use std::path::Path;
use std::process::Output;

use crate::machine::{Xvfb, account};
use crate::processes::*;

const USER: &str = "ll-runas1";
const USER_PW: &str = "Run-As passw0rd 7";
const WRONG_PW: &str = "not-the-right-one-42";

/// Runs `lifeline args` on a thread while the customer answers the consent
/// prompt on `agent` with `answer`; returns the command's output.
fn with_consent(agent: &mut Proc, args: &[&str], stdin: Option<&str>, answer: &str) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(String::from);
    let t = std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, stdin.as_deref())
    });
    agent.wait_line("Type /allow");
    agent.type_line(answer);
    t.join().unwrap()
}

use crate::processes::output_text as text;

/// Every file under `dir`, as bytes.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.extend(b);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn run_as_login_through_pam_suspends_and_restores_the_customer() {
    let x = Xvfb::start();
    let (uid, group) = account(USER, USER_PW);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_broker, addr, fp) = start_broker(d);
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    crate::plugins::install_plugins(
        &d.join("agent-plugins"),
        &["plugins/run-as", "plugins/scripts"],
    );
    let text_cfg = std::fs::read_to_string(&agent_cfg).unwrap()
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n"
        + &format!(
            "[run_as]\ndisplay = \"{}\"\ncredential_timeout_secs = 30\n",
            x.display
        );
    write(Path::new(&agent_cfg), &text_cfg);
    login(&op);
    let whoami = d.join("whoami.sh");
    write(
        &whoami,
        "#!/bin/sh\necho user=$(id -un) groups=$(id -G)\necho home=$HOME\n",
    );
    ok(
        &[
            "operator",
            "scripts",
            "add",
            "--config",
            &op,
            "--name",
            "whoami",
            "--category",
            "Diagnostics",
            "--exec",
            p(&whoami),
        ],
        None,
    );
    let (sid, inv) = invite(&op, "T-RUNAS");
    // The agent logs everything (debug) to a file searched for secrets below.
    let agent_log = std::fs::File::create(d.join("agent.log")).unwrap();
    let code = inv["connection_id"].as_str().unwrap();
    let mut agent = Proc::spawn_with(
        &["agent", "join", "--config", &agent_cfg, code],
        agent_log.into(),
        "debug",
    );
    ok(
        &["operator", "wait", "--config", &op, &sid, "--timeout", "20"],
        None,
    );
    assert!(x.keyboard_free());

    // A name that cannot be an account: the plugin says so before anyone
    // is asked.
    let out = run(
        &[
            "operator",
            "login-as",
            "--config",
            &op,
            &sid,
            "no such user",
            "--password-stdin",
        ],
        Some("x\n"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("\"no such user\" is not an account name"),
        "{}",
        text(&out)
    );

    // A wrong password: a clear error, nothing suspended. The customer's
    // consent for the session covers the later attempts.
    let login_as = [
        "operator",
        "login-as",
        "--config",
        &op,
        &sid,
        USER,
        "--password-stdin",
    ];
    let out = with_consent(
        &mut agent,
        &login_as,
        Some(&format!("{WRONG_PW}\n")),
        "/allow-session",
    );
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "the user name or password for {USER} was not accepted (1 of 3 attempts)"
        )),
        "{t}"
    );
    assert!(x.keyboard_free());

    // The right one: PAM accepts, the customer's keyboard and input are suspended.
    let out = ok(&login_as, Some(&format!("{USER_PW}\n")));
    assert!(
        out.contains(&format!("logged in as {USER} (uid {uid}")),
        "{out}"
    );
    agent.wait_line(&format!("is now working on this computer as user {USER}"));
    x.wait_keyboard_free(false);
    agent.type_line("can you still hear me?");
    agent.wait_line("Held: your input is paused");

    // Scripts and commands run as that user: uid, groups, home.
    let out = with_consent(
        &mut agent,
        &[
            "operator", "scripts", "run", "--config", &op, &sid, "whoami",
        ],
        None,
        "/allow",
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("user={USER}")), "{t}");
    let groups_line = t.lines().find(|l| l.contains("groups=")).unwrap();
    let groups: Vec<&str> = groups_line
        .split("groups=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        groups.contains(&group.to_string().as_str()),
        "{groups_line}"
    );
    assert!(t.contains(&format!("home=/home/{USER}")), "{t}");
    let out = with_consent(
        &mut agent,
        &["operator", "run", "--config", &op, &sid, "run-as", "whoami"],
        None,
        "/allow",
    );
    let t = text(&out);
    assert!(t.contains(&format!("uid={uid}({USER})")), "{t}");
    let sessions = ok(&["operator", "sessions", "--config", &op], None);
    assert!(sessions.contains("suspended"), "{sessions}");
    let status = ok(
        &["operator", "run", "--config", &op, &sid, "run-as", "status"],
        None,
    );
    assert!(
        status.contains(&format!("logged in as {USER} (uid {uid}")) && status.contains(" since "),
        "{status}"
    );
    // One login at a time: the plugin refuses before asking for a password.
    let again = run(&login_as, Some(&format!("{USER_PW}\n")));
    assert!(
        text(&again).contains(&format!("already logged in as {USER}; log out first")),
        "{}",
        text(&again)
    );

    // Logging out gives everything back; the held line is delivered.
    let out = ok(&["operator", "logout-as", "--config", &op, &sid], None);
    assert!(out.contains(&format!("logged out of {USER}")), "{out}");
    x.wait_keyboard_free(true);
    agent.wait_line("Your access is restored");
    let report = ok(&["operator", "report", "--config", &op, &sid], None);
    for needle in [
        "can you still hear me?",
        "supplied the credentials",
        "(not recorded)",
        &format!("logged in as {USER}; the customer's access is suspended"),
        &format!("run-as login as {USER} ended"),
        "account.login for plugin run-as: allow for this session",
    ] {
        assert!(report.contains(needle), "{needle:?} in\n{report}");
    }

    // The agent dies during a login: X gives the keyboard back at once, and
    // the next start records the teardown.
    let out = ok(&login_as, Some(&format!("{USER_PW}\n")));
    assert!(out.contains("logged in as"), "{out}");
    x.wait_keyboard_free(false);
    let marker = d.join("agent-data/run-as.json");
    assert!(marker.exists());
    agent.kill();
    x.wait_keyboard_free(true);
    let out = ok(&["agent", "service", "--config", &agent_cfg], None);
    assert!(
        out.contains(&format!(
            "The operator's login as {USER} ended when Lifeline stopped"
        )),
        "{out}"
    );
    assert!(out.contains("No rejoin ticket"), "{out}");
    assert!(!marker.exists());
    let audit = std::fs::read_to_string(d.join("agent-data/audit.log")).unwrap();
    for event in [
        "run_as_login",
        "run_as_logout",
        "run_as_refused",
        "run_as_teardown",
    ] {
        assert!(audit.contains(event), "{event} in the audit log");
    }
    ok(
        &["audit", "verify", p(&d.join("agent-data/audit.log"))],
        None,
    );

    // No password anywhere: reports, audit log, databases, plugin state.
    let report = ok(
        &[
            "operator", "report", "--config", &op, &sid, "--format", "json",
        ],
        None,
    );
    let logs = [
        std::fs::read(d.join("agent.log")).unwrap(),
        std::fs::read(d.join("broker.log")).unwrap(),
    ];
    assert!(
        contains(&logs[1], "DEBUG"),
        "the broker logged at debug level"
    );
    for secret in [USER_PW, WRONG_PW] {
        assert!(!report.contains(secret));
        for log in &logs {
            assert!(!contains(log, secret), "a password leaked into a debug log");
        }
        for folder in ["agent-data", "broker-data", "op-data"] {
            assert!(
                !contains(&all_bytes(&d.join(folder)), secret),
                "a password leaked into {folder}"
            );
        }
    }
}
