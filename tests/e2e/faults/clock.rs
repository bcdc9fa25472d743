//! The agent's clock jumps an hour forward and an hour back during a
//! session, and a restart (reboot and rejoin) happens with it an hour
//! ahead. The machine's clock is not touched: libfaketime (Debian's
//! `faketime`, installed by scripts/setup) is preloaded into the agent
//! process only, reading the offset from a file the test rewrites
//! (`FAKETIME_TIMESTAMP_FILE`, no cache). The monotonic clock is left real
//! (`FAKETIME_DONT_FAKE_MONOTONIC`), as on a machine whose wall clock is
//! set: only what reads the wall clock sees the jump.

use std::process::Command;

use super::*;

/// libfaketime's multi-threaded build (the agent runs threads).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// Runs `c` with its wall clock offset by what `stamp` says ("+1h").
fn faked(c: &mut Command, stamp: &Path) {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: scripts/setup installs the faketime package"
    );
    c.env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", stamp)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
}

/// Runs the script `hello` in the session; the customer allows it for
/// the session the first time (`answer`), later runs are covered by that
/// (the customer may be asked 5 times a minute, and this test asks 4).
fn run_hello(rig: &Rig, agent: &mut Proc, sid: &str, answer: Option<&str>) {
    let mut runp = Proc::spawn(&[
        "operator", "scripts", "run", "--config", &rig.op, sid, "hello",
    ]);
    if let Some(answer) = answer {
        agent.wait_line("Type /allow");
        agent.type_line(answer);
    }
    runp.wait_line("1 of 1 script(s) succeeded");
    assert!(runp.wait_exit().success());
}

/// The audit entries' times, as offsets in whole minutes from now.
fn audit_offsets(rig: &Rig) -> Vec<i64> {
    let now = chrono::Utc::now();
    std::fs::read_to_string(rig.data().join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let at = chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).unwrap();
            (at.with_timezone(&chrono::Utc) - now).num_minutes()
        })
        .collect()
}

fn state(rig: &Rig, sid: &str) -> String {
    let list = ok(
        &["operator", "sessions", "--config", &rig.op, "--json"],
        None,
    );
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == sid)
        .map(|s| s["state"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn agent_clock_jumps_an_hour_forward_and_back() {
    let rig = Rig::new(
        &["plugins/scripts", "plugins/reboot"],
        "[power]\nreboot_command = [\"sh\", \"-c\", \"kill -9 $LIFELINE_AGENT_PID\"]\n",
    );
    let stamp = rig.d().join("faketime");
    write(&stamp, "+0\n");
    let script = rig.d().join("hello.sh");
    write(&script, "#!/bin/sh\necho hello\n");
    ok(
        &[
            "operator",
            "scripts",
            "add",
            "--config",
            &rig.op,
            "--name",
            "hello",
            "--category",
            "Diagnostics",
            "--exec",
            p(&script),
        ],
        None,
    );
    let (sid, mut agent) = rig.join_with("T-FAULT-CLOCK", |c| faked(c, &stamp));
    run_hello(&rig, &mut agent, &sid, Some("/allow-session"));
    for jump in ["+1h", "-1h"] {
        write(&stamp, &format!("{jump}\n"));
        run_hello(&rig, &mut agent, &sid, None);
        let (code, said) = super::disk::ask(&rig, &mut agent, &sid, "/allow");
        assert_eq!(code, Some(0), "{said}");
        ok(
            &[
                "operator",
                "chat",
                "--config",
                &rig.op,
                &sid,
                &format!("after {jump}"),
            ],
            None,
        );
        agent.wait_line(&format!("after {jump}"));
        // Heartbeats and timeouts run on the monotonic clock: the session
        // goes on.
        assert_ne!(state(&rig, &sid), "ended");
    }
    // The agent really wrote its entries an hour ahead and an hour behind,
    // and the chain (which orders entries by sequence, not by time)
    // verifies.
    let offsets = audit_offsets(&rig);
    assert!(
        offsets.iter().any(|m| (55..=65).contains(m))
            && offsets.iter().any(|m| (-65..=-55).contains(m)),
        "{offsets:?}"
    );
    rig.audit_verifies();

    // A restart with the clock an hour ahead of the broker's: the rejoin
    // ticket (15 minutes by the broker's clock) is still taken.
    write(&stamp, "+1h\n");
    let args: Vec<String> = [
        "operator", "reboot", "--config", &rig.op, &sid, "--reason", "clock",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let t = std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, None)
    });
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    let out = t.join().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    agent.wait_exit();
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.env_remove("LIFELINE_CONFIG")
        .env("RUST_LOG", "warn")
        .args(["agent", "service", "--config", &rig.agent_cfg]);
    faked(&mut c, &stamp);
    let mut back = Proc::from_command(c);
    back.wait_line("You are back in the session with Alice Smith");
    ok(
        &[
            "operator",
            "chat",
            "--config",
            &rig.op,
            &sid,
            "welcome back",
        ],
        None,
    );
    back.wait_line("welcome back");
    ok(&["operator", "end", "--config", &rig.op, &sid], None);
    assert!(back.wait_exit().success());
    rig.audit_verifies();
    let report = rig.report(&sid);
    for needle in [
        "rejoined after the reboot",
        "after +1h",
        "after -1h",
        "hello: exit code 0",
    ] {
        assert!(report.contains(needle), "{needle:?} in\n{report}");
    }
    assert_eq!(rig.temp_folders(), Vec::<String>::new());
}
