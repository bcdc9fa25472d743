//! The script library and script runs, with real shell and Python scripts
//! run by a real agent process.

use std::path::Path;

use crate::processes::*;
use crate::support::PASSWORD;

fn add(
    op: &str,
    name: &str,
    category: &str,
    exec: &Path,
    input: Option<&Path>,
) -> std::process::Output {
    let mut args = vec![
        "operator",
        "scripts",
        "add",
        "--config",
        op,
        "--name",
        name,
        "--category",
        category,
        "--exec",
        p(exec),
    ];
    args.extend(["--description", "test script"]);
    if let Some(i) = input {
        args.extend(["--input", p(i)]);
    }
    run(&args, None)
}

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, body).unwrap();
    f
}

/// The agent's leftover temporary folders (none once every run is over).
fn leftovers(d: &Path) -> Vec<String> {
    std::fs::read_dir(d.join("agent-data/plugin-tmp"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn library_and_runs_with_real_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_broker, addr, fp) = start_broker(d);
    ok(
        &[
            "broker",
            "add-operator",
            "--config",
            p(&d.join("broker.toml")),
            "--username",
            "bob",
            "--name",
            "Bob",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    let bob = d.join("bob.toml");
    write(
        &bob,
        &std::fs::read_to_string(&op)
            .unwrap()
            .replace("username = \"alice\"", "username = \"bob\"")
            .replace("op-data", "bob-data"),
    );
    let bob = p(&bob).to_string();
    crate::plugins::install_plugins(&d.join("agent-plugins"), &["plugins/scripts"]);
    let text = std::fs::read_to_string(&agent_cfg).unwrap()
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n";
    write(Path::new(&agent_cfg), &text);
    login(&op);
    ok(
        &["operator", "login", "--config", &bob, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );

    // The library.
    assert!(
        ok(
            &["operator", "scripts", "categories", "--config", &op],
            None
        )
        .contains("Diagnostics")
    );
    let sh = script(
        d,
        "hello.sh",
        "#!/bin/sh\necho \"hello from $(basename $(pwd))\"\ncat input.txt\necho warning >&2\n",
    );
    let input = script(d, "input.txt", "line from the input file\n");
    let py = script(
        d,
        "version.py",
        "#!/usr/bin/env python3\nimport sys\nprint('python', sys.version_info[0])\n",
    );
    let fail = script(d, "fail.sh", "#!/bin/sh\necho failing\nexit 3\n");
    let slow = script(
        d,
        "slow.sh",
        "#!/bin/sh\necho started\nsleep 30\necho never\n",
    );
    let plain = script(d, "plain", "echo no shebang here\n");
    for (name, f, inp) in [
        ("hello", &sh, Some(input.as_path())),
        ("py", &py, None),
        ("fail", &fail, None),
        ("slow", &slow, None),
        ("plain", &plain, None),
    ] {
        let out = add(&op, name, "Diagnostics", f, inp);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Clear, fixable errors.
    let err = |o: std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err(add(&op, "hello", "Diagnostics", &sh, None)).contains("already exists"));
    assert!(
        err(add(&op, "x", "Gardening", &sh, None))
            .contains("the site's categories are: Diagnostics, Maintenance, Network, Other")
    );
    assert!(err(add(&op, "x", "Network", &d.join("missing.sh"), None)).contains("missing.sh"));
    let big = script(
        d,
        "big.sh",
        &format!("#!/bin/sh\n#{}\n", "x".repeat(1 << 20)),
    );
    assert!(err(add(&op, "big", "Network", &big, None)).contains("limited to 1 MB"));
    assert!(
        run_cmd_fails(&["operator", "scripts", "delete", "--config", &bob, "hello"])
            .contains("only its creator can delete")
    );
    assert!(
        run_cmd_fails(&[
            "operator",
            "scripts",
            "edit",
            "--config",
            &bob,
            "hello",
            "--description",
            "mine"
        ])
        .contains("only its creator can edit")
    );
    // Sortable listing; publishing makes a script visible to others.
    let list = ok(
        &[
            "operator", "scripts", "list", "--config", &op, "--sort", "name", "--desc",
        ],
        None,
    );
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["slow", "py", "plain", "hello", "fail"]);
    assert!(
        run_cmd_fails(&[
            "operator", "scripts", "list", "--config", &op, "--sort", "size"
        ])
        .contains("sort by name, category")
    );
    assert_eq!(
        ok(&["operator", "scripts", "list", "--config", &bob], None)
            .lines()
            .count(),
        1
    );
    ok(
        &["operator", "scripts", "publish", "--config", &op, "hello"],
        None,
    );
    let bobs = ok(
        &["operator", "scripts", "list", "--config", &bob, "--json"],
        None,
    );
    let bobs: serde_json::Value = serde_json::from_str(&bobs).unwrap();
    assert_eq!(bobs.as_array().unwrap().len(), 1);
    assert_eq!(bobs[0]["name"], "hello");
    ok(
        &[
            "operator",
            "scripts",
            "edit",
            "--config",
            &op,
            "plain",
            "--category",
            "Network",
        ],
        None,
    );
    let by_cat = ok(
        &[
            "operator", "scripts", "list", "--config", &op, "--sort", "category",
        ],
        None,
    );
    assert!(
        by_cat.lines().last().unwrap().starts_with("plain"),
        "{by_cat}"
    );

    // Runs in a session: consent once for the batch, in order, output live.
    let (sid, inv) = invite(&op, "T-11");
    let mut agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );
    let mut runp = Proc::spawn(&[
        "operator", "scripts", "run", "--config", &op, &sid, "hello", "py", "plain",
    ]);
    agent.wait_line("wants to run 3 script(s): hello, py, plain");
    agent.wait_line("1. hello — test script");
    let hash = agent.wait_line("sha256");
    assert_eq!(hash.trim().len(), "sha256 ".len() + 64, "{hash}");
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    let first = runp.wait_line("[hello] hello from scripts-");
    assert!(first.contains("[hello]"));
    runp.wait_line("[hello] line from the input file");
    runp.wait_line("* hello: exit code 0");
    runp.wait_line("[py] python 3");
    runp.wait_line("[plain] no shebang here");
    runp.wait_line("3 of 3 script(s) succeeded");
    assert!(runp.wait_exit().success());
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));

    // A failing script stops the batch by default…
    let mut runp = Proc::spawn(&[
        "operator", "scripts", "run", "--config", &op, &sid, "fail", "hello",
    ]);
    agent.wait_line("Type /allow");
    agent.type_line("/allow-session");
    runp.wait_line("* fail: exit code 3");
    runp.wait_line("stopped after fail failed; not run: hello");
    assert!(!runp.wait_exit().success());
    // …unless the operator says to go on (consent for the session covers it).
    let out = run(
        &[
            "operator",
            "scripts",
            "run",
            "--config",
            &op,
            &sid,
            "fail",
            "hello",
            "--continue",
        ],
        None,
    );
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.contains("* fail: exit code 3")
            && out.contains("* hello: exit code 0")
            && out.contains("1 of 2"),
        "{out}"
    );
    // A timeout ends the script and still removes its folder. The session
    // grant covered only the batch the customer saw: this one is asked.
    let mut runp = Proc::spawn(&[
        "operator",
        "scripts",
        "run",
        "--config",
        &op,
        &sid,
        "slow",
        "--timeout",
        "1",
    ]);
    agent.wait_line("1. slow");
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    let out = runp.rest();
    runp.wait_exit();
    assert!(
        out.contains("[slow] started")
            && out.contains("* slow: timed out")
            && !out.contains("never"),
        "{out}"
    );
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));

    let report = ok(&["operator", "report", "--config", &op, &sid], None);
    for needle in [
        "scripts_run",
        "1. hello (sha256",
        "script_output",
        "[hello stdout] line from the input file",
        "hello: exit code 0",
        "fail: exit code 3",
        "slow: timed out",
        "scripts_done",
    ] {
        assert!(report.contains(needle), "{needle} in {report}");
    }

    // The agent killed mid-script leaves a folder; the next start removes it.
    let _slow = Proc::spawn(&[
        "operator",
        "scripts",
        "run",
        "--config",
        &op,
        &sid,
        "slow",
        "--timeout",
        "60",
    ]);
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    let deadline = std::time::Instant::now() + crate::support::WAIT;
    while leftovers(d).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow script never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(leftovers(d).len(), 1);
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    let (sid2, inv2) = invite(&op, "T-12");
    let mut agent2 = join_ready(
        &op,
        &agent_cfg,
        inv2["connection_id"].as_str().unwrap(),
        &sid2,
    );
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));

    // One operator drives two sessions running scripts at the same time.
    let (sid3, inv3) = invite(&op, "T-13");
    let agent3_cfg = d.join("agent3.toml");
    write(
        &agent3_cfg,
        &std::fs::read_to_string(&agent_cfg)
            .unwrap()
            .replace("agent-data", "agent3-data"),
    );
    let mut agent3 = join_ready(
        &op,
        p(&agent3_cfg),
        inv3["connection_id"].as_str().unwrap(),
        &sid3,
    );
    let mut run2 = Proc::spawn(&[
        "operator", "scripts", "run", "--config", &op, &sid2, "hello", "py",
    ]);
    let mut run3 = Proc::spawn(&[
        "operator", "scripts", "run", "--config", &op, &sid3, "py", "hello",
    ]);
    agent2.wait_line("Type /allow");
    agent3.wait_line("Type /allow");
    agent2.type_line("/allow");
    agent3.type_line("/allow");
    run2.wait_line("2 of 2 script(s) succeeded");
    run3.wait_line("2 of 2 script(s) succeeded");
    assert!(run2.wait_exit().success() && run3.wait_exit().success());
}

/// The `scripts` plugin, not the agent, runs the batch: with its folder
/// deleted from the running agent a batch fails clearly and nothing runs;
/// an edited and saved `main.lua` changes the next batch (here: a marker
/// line per script, and the order reversed) without restarting the agent.
#[test]
fn the_scripts_plugin_owns_the_batch_deleted_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_broker, addr, fp) = start_broker(d);
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    let plugins = d.join("agent-plugins");
    crate::plugins::install_plugins(&plugins, &["plugins/scripts"]);
    let text = std::fs::read_to_string(&agent_cfg).unwrap()
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\nhot_reload = true\n";
    write(Path::new(&agent_cfg), &text);
    login(&op);
    // Each script leaves a line in `ran.log`: what ran, in which order.
    let ran = d.join("ran.log");
    for name in ["one", "two"] {
        let body = format!(
            "#!/bin/sh\necho {name}\necho {name} >> '{}'\n",
            ran.display()
        );
        let f = script(d, &format!("{name}.sh"), &body);
        let out = add(&op, name, "Diagnostics", &f, None);
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let (sid, inv) = invite(&op, "T-21");
    let mut agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );
    let args = [
        "operator", "scripts", "run", "--config", &op, &sid, "one", "two",
    ];
    let run_batch = || {
        let out = run(&args, None);
        (out.status.success(), output_text(&out))
    };
    let ran_lines = || std::fs::read_to_string(&ran).unwrap_or_default();

    // As shipped: in the batch's order. The session grant covers this
    // exact listing, so the later batches are not asked again.
    let mut runp = Proc::spawn(&args);
    agent.wait_line("Type /allow");
    agent.type_line("/allow-session");
    let out = runp.rest();
    assert!(runp.wait_exit().success(), "{out}");
    assert!(out.contains("2 of 2 script(s) succeeded"), "{out}");
    assert_eq!(ran_lines(), "one\ntwo\n");

    // Edited and saved in the running agent: the next batch follows it.
    let main = plugins.join("scripts/main.lua");
    let code = std::fs::read_to_string(&main).unwrap();
    let edited = code
        .replace(
            "for n, s in ipairs(batch(args)) do",
            "local all = batch(args)\n  for n = #all, 1, -1 do\n    local s = all[n]",
        )
        .replace(
            "report(\"start\", n)",
            "report(\"start\", n)\n    lifeline.send_output(\"edited plugin runs \" .. s.name)",
        );
    assert_eq!(
        edited.matches("edited plugin runs").count(),
        1,
        "main.lua changed its shape"
    );
    assert!(
        edited.contains("for n = #all, 1, -1"),
        "main.lua changed its shape"
    );
    // Saved as editors do, the new file renamed over the old one.
    let saved = d.join("main.lua.new");
    write(&saved, &edited);
    std::fs::rename(&saved, &main).unwrap();
    agent.wait_line("plugin scripts reloaded");
    let (ok, out) = run_batch();
    assert!(ok, "{out}");
    assert_eq!(ran_lines(), "one\ntwo\ntwo\none\n", "{out}");
    let (two, one) = (
        out.find("[two] edited plugin runs two").expect(&out),
        out.find("[one] edited plugin runs one").expect(&out),
    );
    assert!(two < one, "{out}");
    assert!(
        out.contains("* two: exit code 0") && out.contains("2 of 2"),
        "{out}"
    );

    // Deleted from the running agent: a clear error, nothing asked or run.
    std::fs::remove_dir_all(plugins.join("scripts")).unwrap();
    agent.wait_line("plugin scripts removed");
    let (ok, out) = run_batch();
    assert!(!ok, "{out}");
    assert!(
        out.contains("this agent has no scripts plugin: nothing was run"),
        "{out}"
    );
    assert!(!out.contains("[one]") && !out.contains("[two]"), "{out}");
    let seen = agent.wait_lines("* scripts: this agent has no scripts plugin");
    assert!(
        !seen.iter().any(|l| l.contains("Consent needed")),
        "{seen:?}"
    );
    assert_eq!(ran_lines(), "one\ntwo\ntwo\none\n");
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
}
