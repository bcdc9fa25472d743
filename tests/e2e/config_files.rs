//! The configuration files through the built binary: the shipped examples
//! pass `config check`, and bad files are refused naming file, line and
//! key.

use std::path::Path;

use crate::processes::*;

#[test]
fn example_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    for f in [
        "broker.toml",
        "agent.toml",
        "operator.toml",
        "policy.toml",
        "../examples/unattended-policy.toml",
    ] {
        let out = ok(&["config", "check", p(&root.join(f))], None);
        assert!(out.contains("valid"), "{out}");
    }
}

#[test]
fn bad_config_files_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broker.toml");
    write(
        &f,
        "[broker]\nlisten = \"127.0.0.1:7443\"\nhttps_lisen = \"127.0.0.1:7444\"\ndata_dir = \"d\"\n",
    );
    let err = fails(&["config", "check", p(&f)]);
    assert!(
        err.contains("broker.toml:3:")
            && err.contains("https_lisen")
            && err.contains("expected one of"),
        "{err}"
    );

    write(
        &f,
        "[broker]\nlisten = \"127.0.0.1:7443\"\nhttps_listen = \"127.0.0.1:7444\"\ndata_dir = \"d\"\nheartbeat_secs = \"often\"\n",
    );
    let err = fails(&["config", "check", p(&f)]);
    assert!(
        err.contains("broker.toml:5:") && err.contains("heartbeat_secs"),
        "{err}"
    );

    // Capabilities come from one registry: a policy or a plugin manifest
    // naming one that does not exist is refused with the valid names.
    let pol = dir.path().join("policy.toml");
    write(
        &pol,
        "[policy]\ndefault = \"ask\"\n[policy.capabilities]\n\"system.info\" = \"allow\"\n\"session.login_as\" = \"deny\"\n",
    );
    let err = fails(&["config", "check", p(&pol)]);
    assert!(
        err.contains("policy.toml:5:")
            && err.contains("\"session.login_as\" is not a capability")
            && err.contains("account.login"),
        "{err}"
    );
    let man = dir.path().join("plugin.toml");
    write(
        &man,
        "[plugin]\nid = \"x\"\nversion = \"1.0.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\ndescription = \"x\"\n[capabilities]\n\"screen.view\" = \"See the screen\"\n",
    );
    let err = fails(&["config", "check", p(&man)]);
    assert!(
        err.contains("plugin.toml:8:") && err.contains("\"screen.view\" is not a capability"),
        "{err}"
    );
    for shipped in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("plugin.toml").exists())
    {
        ok(
            &["config", "check", p(&shipped.path().join("plugin.toml"))],
            None,
        );
    }

    let a = dir.path().join("agent.toml");
    write(
        &a,
        "[agent]\ndata_dir = \"d\"\n[connection]\nbroker = \"localhost:7443\"\nfingerprint = \"SHA256:12\"\n",
    );
    let err = fails(&["config", "check", p(&a)]);
    assert!(
        err.contains("agent.toml:5: `connection.fingerprint`") && err.contains("64 hex digits"),
        "{err}"
    );

    write(
        &a,
        "[agent]\ndata_dir = \"d\"\npolicy = \"missing-policy.toml\"\n[connection]\nbroker = \"localhost:7443\"\n",
    );
    let err = fails(&["config", "check", p(&a)]);
    assert!(
        err.contains("cannot read config file") && err.contains("missing-policy.toml"),
        "{err}"
    );

    let err = fails(&["config", "check", p(&dir.path().join("nope.toml"))]);
    assert!(
        err.contains("nope.toml") && err.contains("No such file"),
        "{err}"
    );

    write(&f, "[something]\nx = 1\n");
    assert!(fails(&["config", "check", p(&f)]).contains("cannot tell which role"));

    // A secret in a file others can read is refused, and the file is kept.
    use std::os::unix::fs::PermissionsExt;
    let o = dir.path().join("operator.toml");
    let secret = "[operator]\ndata_dir = \"d\"\npassword = \"hunter2hunter2\"\n[connection]\nbroker = \"localhost:7443\"\n";
    write(&o, secret);
    std::fs::set_permissions(&o, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(&["config", "check", p(&o)]);
    assert!(
        err.contains("readable by others") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the secret is not echoed");
    assert_eq!(std::fs::read_to_string(&o).unwrap(), secret);
    std::fs::set_permissions(&o, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(&["config", "check", p(&o)], None);
}
