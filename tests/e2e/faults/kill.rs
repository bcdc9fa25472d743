//! `kill -9` of the agent process in the middle of a script run and of a
//! run-as login (the license install: `kill_license`; the screen stream:
//! `kill_screen`).

use super::*;
use crate::machine::{Xvfb, account};

/// Adds `name` to the operator's script library, running `body`.
fn add_script(rig: &Rig, name: &str, body: &str) {
    let f = rig.d().join(format!("{name}.sh"));
    write(&f, body);
    ok(
        &[
            "operator",
            "scripts",
            "add",
            "--config",
            &rig.op,
            "--name",
            name,
            "--category",
            "Diagnostics",
            "--exec",
            p(&f),
        ],
        None,
    );
}

/// A script that says its process ID, starts a child that leaves its
/// process group and session (`setsid`) and says its ID, then waits.
const STUCK: &str = "#!/bin/sh\necho pid=$$\nsetsid sleep 300 &\necho child=$!\nsleep 300\n";

/// Starts `operator scripts run SID stuck` and lets the customer allow it;
/// returns the command and the script's and its child's process IDs.
fn run_stuck(rig: &Rig, agent: &mut Proc, sid: &str) -> (Proc, Vec<i32>) {
    let runp = Proc::spawn(&[
        "operator",
        "scripts",
        "run",
        "--config",
        &rig.op,
        sid,
        "stuck",
        "--timeout",
        "600",
    ]);
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    let pid = number_after(&runp.wait_line("[stuck] pid="), "pid=");
    let child = number_after(&runp.wait_line("[stuck] child="), "child=");
    assert!(alive(pid) && alive(child));
    (runp, vec![pid, child])
}

#[test]
fn agent_killed_during_a_script_run() {
    let rig = Rig::new(&["plugins/scripts"], "");
    add_script(&rig, "stuck", STUCK);
    let (sid, mut agent) = rig.join("T-FAULT-SCRIPT");
    let (mut runp, pids) = run_stuck(&rig, &mut agent, &sid);
    assert_eq!(rig.temp_folders().len(), 1);
    let agent_pid = kill_9(&mut agent);

    // The operator's command ends (bounded) and says the agent is gone.
    let said = runp.rest();
    assert!(!runp.wait_exit().success(), "{said}");
    rig.wait_ended(&sid);
    let report = rig.report(&sid);
    for needle in [
        "scripts_run",
        "[stuck stdout] pid=",
        "customer connection lost",
    ] {
        assert!(report.contains(needle), "{needle:?} in\n{report}");
    }
    assert!(!report.contains("scripts_done"), "{report}");

    // The agent's next start ends what the dead one left running (its
    // cgroups, even the child that left its session) and removes the
    // script's temporary folder.
    let out = rig.start_again();
    assert!(out.contains("No rejoin ticket"), "{out}");
    wait_gone(&pids);
    assert_eq!(cgroups_of(agent_pid), Vec::<String>::new());
    assert_eq!(rig.temp_folders(), Vec::<String>::new());
    rig.audit_verifies();
    // The next session runs scripts as before.
    let (sid, mut agent) = rig.join("T-FAULT-SCRIPT-2");
    add_script(&rig, "quick", "#!/bin/sh\necho fine\n");
    let mut runp = Proc::spawn(&[
        "operator", "scripts", "run", "--config", &rig.op, &sid, "quick",
    ]);
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    runp.wait_line("1 of 1 script(s) succeeded");
    assert!(runp.wait_exit().success());
}

const USER: &str = "ll-fault1";
const USER_PW: &str = "Fault passw0rd 19";

#[test]
fn agent_killed_during_a_run_as_login() {
    let x = Xvfb::start();
    let desk = crate::screen_desk::Desk::open(&x.display);
    account(USER, USER_PW);
    let rig = Rig::new(
        &["plugins/run-as", "plugins/scripts"],
        &format!(
            "[run_as]\ndisplay = \"{}\"\ncredential_timeout_secs = 30\n",
            x.display
        ),
    );
    add_script(&rig, "stuck", STUCK);
    let (sid, mut agent) = rig.join("T-FAULT-RUNAS");
    let login_as = [
        "operator",
        "login-as",
        "--config",
        &rig.op,
        &sid,
        USER,
        "--password-stdin",
    ];
    let args: Vec<String> = login_as.iter().map(|s| s.to_string()).collect();
    let t = std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, Some(&format!("{USER_PW}\n")))
    });
    agent.wait_line("Type /allow");
    agent.type_line("/allow-session");
    let out = t.join().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    agent.wait_line(&format!("is now working on this computer as user {USER}"));
    x.wait_keyboard_free(false);
    assert!(desk.find(lifeline_agent::x11::BANNER_TITLE).is_some());
    // A script runs as that user when the agent dies.
    let (mut runp, pids) = run_stuck(&rig, &mut agent, &sid);
    let owner = std::fs::metadata(format!("/proc/{}", pids[0])).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&owner),
        nix::unistd::User::from_name(USER)
            .unwrap()
            .unwrap()
            .uid
            .as_raw()
    );
    let agent_pid = kill_9(&mut agent);

    // The customer has the keyboard, the pointer and the screen back at
    // once: the grabs and the banner went with the agent's X connection.
    x.wait_keyboard_free(true);
    let deadline = Instant::now() + WAIT;
    while desk.find(lifeline_agent::x11::BANNER_TITLE).is_some() {
        assert!(Instant::now() < deadline, "the banner stays");
        std::thread::sleep(Duration::from_millis(50));
    }
    runp.rest();
    assert!(!runp.wait_exit().success());
    rig.wait_ended(&sid);
    let report = rig.report(&sid);
    for needle in [
        &format!("logged in as {USER}; the customer's access is suspended"),
        "[stuck stdout] pid=",
        "customer connection lost",
    ] {
        assert!(report.contains(needle), "{needle:?} in\n{report}");
    }

    // The next start records the login's end and ends the user's processes.
    let out = rig.start_again();
    assert!(
        out.contains(&format!(
            "The operator's login as {USER} ended when Lifeline stopped"
        )),
        "{out}"
    );
    wait_gone(&pids);
    assert_eq!(cgroups_of(agent_pid), Vec::<String>::new());
    assert_eq!(rig.temp_folders(), Vec::<String>::new());
    assert!(!rig.data().join("run-as.json").exists());
    let audit = std::fs::read_to_string(rig.data().join("audit.log")).unwrap();
    assert!(audit.contains("run_as_teardown"), "{audit}");
    rig.audit_verifies();
}
