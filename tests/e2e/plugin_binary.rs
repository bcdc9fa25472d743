//! Plugins through the built binary: signed bundles from keygen to a run in
//! a session, and the system-information plugin with its text file.

use std::path::Path;

use crate::processes::*;

#[test]
fn signed_bundle_installs_and_runs_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = ok(
        &["plugin", "keygen", "--out", p(&d.join("publisher.key"))],
        None,
    );
    let public = out.lines().last().unwrap().trim().to_string();
    assert!(public.starts_with("ed25519:"), "{out}");
    let bundle = d.join("hello-lua.llpkg");
    ok(
        &[
            "plugin",
            "pack",
            p(&repo.join("plugins/hello-lua")),
            "--out",
            p(&bundle),
        ],
        None,
    );
    // Unsigned: refused by verify and by install.
    let err = fails(&["plugin", "verify", p(&bundle), "--trusted-key", &public]);
    assert!(err.contains("not signed"), "{err}");
    ok(
        &[
            "plugin",
            "sign",
            p(&bundle),
            "--key",
            p(&d.join("publisher.key")),
        ],
        None,
    );
    assert!(
        ok(
            &["plugin", "verify", p(&bundle), "--trusted-key", &public],
            None
        )
        .contains("signature valid")
    );
    // Another publisher's key is not trusted.
    let other = ok(
        &["plugin", "keygen", "--out", p(&d.join("other.key"))],
        None,
    );
    let other = other.lines().last().unwrap().trim().to_string();
    assert!(
        fails(&["plugin", "verify", p(&bundle), "--trusted-key", &other])
            .contains("not among the agent's trusted")
    );
    // A tampered bundle: one byte of the code changed after signing.
    let tampered = d.join("tampered.llpkg");
    let mut files = lifeline_runtime::bundle::read_bundle(&bundle).unwrap();
    files
        .get_mut("main.lua")
        .unwrap()
        .extend_from_slice(b"\n-- evil");
    lifeline_runtime::bundle::write_bundle(&tampered, &files).unwrap();
    assert!(
        fails(&["plugin", "verify", p(&tampered), "--trusted-key", &public])
            .contains("modified after signing")
    );

    let (_broker, addr, fp) = start_broker(d);
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    let mut text = std::fs::read_to_string(&agent_cfg).unwrap();
    text.push_str(&format!(
        "[plugins]\ndirs = [\"agent-plugins\"]\ntrusted_keys = [\"{public}\"]\n"
    ));
    write(Path::new(&agent_cfg), &text);
    assert!(
        fails(&["plugin", "install", p(&tampered), "--config", &agent_cfg])
            .contains("modified after signing")
    );
    assert!(
        ok(
            &["plugin", "install", p(&bundle), "--config", &agent_cfg],
            None
        )
        .contains("Installed hello-lua 0.1.0")
    );

    login(&op);
    let (sid, inv) = invite(&op, "T-7");
    let mut agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );
    let list = ok(&["operator", "plugins", "--config", &op, &sid], None);
    assert!(
        list.contains("hello-lua 0.1.0 (lua)") && list.contains("greet <name?>"),
        "{list}"
    );
    let out = ok(
        &[
            "operator",
            "run",
            "--config",
            &op,
            &sid,
            "hello-lua",
            "greet",
            "Mario",
        ],
        None,
    );
    assert_eq!(out, "Hello, Mario!\ngreeted 1 times\n");
    // A capability the customer denies: the plugin handles it, the operator reads why.
    let mut run = Proc::spawn(&[
        "operator",
        "run",
        "--config",
        &op,
        &sid,
        "hello-lua",
        "memory",
    ]);
    agent.wait_line("Type /allow");
    agent.type_line("/deny");
    run.wait_line("did not allow");
    assert!(run.wait_exit().success());
    let out = run_cmd_fails(&[
        "operator",
        "run",
        "--config",
        &op,
        &sid,
        "hello-lua",
        "nope",
    ]);
    assert!(out.contains("no command \"nope\""), "{out}");
    let report = ok(&["operator", "report", "--config", &op, &sid], None);
    assert!(
        report.contains("plugin_run")
            && report.contains("Hello, Mario!")
            && report.contains("system.info for plugin hello-lua: deny"),
        "{report}"
    );
}

#[test]
fn sysinfo_shows_a_category_and_saves_all_to_a_text_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_broker, addr, fp) = start_broker(d);
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    crate::plugins::install_plugins(&d.join("agent-plugins"), &["plugins/sysinfo"]);
    write(
        &d.join("policy.toml"),
        "[policy]\ndefault = \"deny\"\n[policy.capabilities]\n\"system.info\" = \"allow\"\n",
    );
    let text = std::fs::read_to_string(&agent_cfg)
        .unwrap()
        .replace("[agent]\n", "[agent]\npolicy = \"policy.toml\"\n")
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n";
    write(Path::new(&agent_cfg), &text);
    login(&op);
    let (sid, inv) = invite(&op, "T-9");
    let _agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );
    let file = d.join("sysinfo.txt");
    let shown = ok(
        &[
            "operator",
            "sysinfo",
            "--config",
            &op,
            &sid,
            "--category",
            "memory",
            "--save",
            p(&file),
        ],
        None,
    );
    assert!(
        shown.contains("== Memory ==") && shown.contains("Total"),
        "{shown}"
    );
    assert!(
        !shown.contains("== Operating system =="),
        "only the chosen category is shown: {shown}"
    );
    let saved = std::fs::read_to_string(&file).unwrap();
    for title in [
        "Operating system",
        "Hardware and CPU",
        "Memory",
        "Disks and file systems",
        "Network interfaces",
        "Running processes",
        "Logged-in users",
        "Installed software",
    ] {
        assert!(
            saved.contains(&format!("== {title} ==")),
            "{title} in the saved file"
        );
    }
    assert!(saved.contains("Package manager") && saved.contains("Top by CPU:"));
    // A filter narrows the lines; the report says what was viewed and when.
    let pkgs = ok(
        &[
            "operator",
            "sysinfo",
            "--config",
            &op,
            &sid,
            "--category",
            "software",
            "--filter",
            "libc",
        ],
        None,
    );
    let lines: Vec<&str> = pkgs.lines().skip(1).filter(|l| !l.is_empty()).collect();
    assert!(
        lines.iter().all(|l| l.to_lowercase().contains("libc")),
        "{pkgs}"
    );
    assert!(pkgs.contains("libc6"), "{pkgs}");
    let report = ok(&["operator", "report", "--config", &op, &sid], None);
    assert!(
        report.contains("runs sysinfo show memory") && report.contains("runs sysinfo show all"),
        "{report}"
    );
}
