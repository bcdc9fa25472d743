//! License auto-update end to end: the real broker as back office on
//! 127.0.0.1 port 0, downloads through a real tinyproxy with Basic
//! authentication, the license plugin in a real session under the
//! customer's consent, refusals that keep the installed license, a disabled
//! remote service that connects nowhere, and the CLI through the binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lifeline_agent::config::AgentConfig;
use lifeline_agent::config::remote_service::{LicenseMode, RemoteServiceConfig};
use lifeline_core::proxy::{ManualProxy, ProxySetting, Secret};
use lifeline_license::document::{License, public_key_string};

use crate::license_support::*;
use crate::processes;
use crate::support::*;

fn install_license_plugin(root: &Path) {
    let dst = root.join("license");
    std::fs::create_dir_all(&dst).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/license");
    for f in ["plugin.toml", "main.lua"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn all_text_under(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    out
}

#[tokio::test]
async fn update_in_a_session_through_the_authenticating_proxy() {
    let office = Office::start().await;
    let proxy = Tinyproxy::start();
    office.publish(&new_license());
    let op = office.tb.operator("alice").await;
    let root = office.tb.dir.path().join("plugins");
    install_license_plugin(&root);
    let mut cfg: AgentConfig = office
        .tb
        .agent_config("agent", None, Duration::from_secs(20));
    cfg.plugins = Some(unsigned_plugins(root));
    let reload_marker = office.tb.dir.path().join("reload.txt");
    let rs = office.remote_service(
        "agent",
        LicenseMode::Local {
            reload_command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!("echo reloaded > {}", reload_marker.display()),
            ]),
        },
        proxy.setting(PROXY_PASSWORD),
    );
    let license_file = rs.license_file.clone();
    cfg.remote_service = Some(rs);
    // The session itself goes through the proxy (manual proxy = all connections).
    let (sid, mut agent) = connected_session(&office.tb, &op, cfg).await;
    assert!(
        proxy.log().contains(&format!(
            "CONNECT 127.0.0.1:{}",
            office.tb.broker.addr.port()
        )),
        "session tunnelled through the proxy: {}",
        proxy.log()
    );

    let about = op
        .run_plugin(&sid, "license", "about", &[], WAIT, |_, _| {})
        .await
        .unwrap()
        .unwrap();
    assert!(
        about.starts_with("Serial number:    LL-2026-0042\nExpires:          2030-12-31"),
        "{about}"
    );
    assert!(
        about.contains("Maintenance:      until 2026-12-31"),
        "{about}"
    );

    let t0 = Instant::now();
    let run = op.run_plugin(&sid, "license", "update", &[], WAIT, |_, _| {});
    let customer = async {
        let announced = agent
            .sees("A new license is available for PrintSuite (serial LL-2026-0042)")
            .await;
        for change in [
            "Maintenance extended: until 2027-12-31 (was 2026-12-31)",
            "Added features: imposition",
            "Users: 25 (was 10; 15 added)",
        ] {
            assert!(announced.contains(change), "{announced}");
        }
        agent.sees("Consent needed").await;
        agent.input.send("/allow".into()).await.unwrap();
        agent
            .sees("The new license is installed on the local license server")
            .await
    };
    let (result, seen) = tokio::join!(run, customer);
    let elapsed = t0.elapsed();
    let text = result.unwrap().unwrap();
    assert!(text.contains("license server was reloaded"), "{text}");
    assert!(seen.contains("previous license is kept"), "{seen}");
    println!("check + announce + consent + install took {elapsed:?}");

    assert_eq!(License::load(&license_file).unwrap(), new_license());
    let backup = license_file.with_file_name("license.toml.bak");
    assert_eq!(License::load(&backup).unwrap(), old_license());
    assert_eq!(read(&reload_marker).trim(), "reloaded");
    let log = proxy.log();
    assert!(
        log.contains(&format!(
            "CONNECT 127.0.0.1:{}",
            office.tb.broker.https_addr.port()
        )),
        "download through the proxy: {log}"
    );
    // A second check finds nothing newer.
    let again = op
        .run_plugin(&sid, "license", "check", &[], WAIT, |_, _| {})
        .await
        .unwrap()
        .unwrap();
    assert!(again.contains("is up to date"), "{again}");
    let kinds = report_kinds(&op, &sid).await;
    assert!(kinds.contains(&"consent".to_string()), "{kinds:?}");
    let events = op.report(&sid).await.unwrap().1;
    let report: String = events.iter().map(|e| e.text.clone() + "\n").collect();
    assert!(
        report.contains("license update: The new license is installed"),
        "{report}"
    );
    // Secrets appear nowhere: report, audit log, status file, anything on disk.
    let disk = all_text_under(&office.tb.dir.path().join("agent"));
    for secret in [CODE, PROXY_PASSWORD] {
        assert!(
            !report.contains(secret) && !disk.contains(secret),
            "{secret} leaked"
        );
    }
    op.end(&sid, "done").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_proxy_credentials_give_407_and_nothing_is_installed() {
    let office = Office::start().await;
    let proxy = Tinyproxy::start();
    office.publish(&new_license());
    let rs = office.remote_service("p407", LicenseMode::Remote, proxy.setting("wrong-password"));
    let file = rs.license_file.clone();
    let cfg = plugin_config(&office, "p407", rs);
    let text = license_command(&cfg, "update").await.0.unwrap_err();
    assert!(
        text.contains("refused the credentials: proxy authentication required (407"),
        "{text}"
    );
    assert!(!text.contains("wrong-password"), "{text}");
    assert_eq!(License::load(&file).unwrap(), old_license());
    assert!(!file.with_file_name("license.toml.bak").exists());
}

/// An agent config whose policy allows installing licenses unattended
/// (`fs.folder`) and writing the report, and denies the rest.
fn unattended_config(office: &Office, name: &str) -> AgentConfig {
    let policy = lifeline_core::consent::Policy {
        default: lifeline_core::consent::Rule::Deny,
        rules: [
            ("fs.folder".to_string(), lifeline_core::consent::Rule::Allow),
            (
                "report.write".to_string(),
                lifeline_core::consent::Rule::Allow,
            ),
        ]
        .into(),
    };
    office
        .tb
        .agent_config(name, Some(policy), Duration::from_secs(5))
}

/// An agent config whose plugins are the license plugin, for `rs`; the
/// policy allows installing unattended (`fs.folder`).
fn plugin_config(office: &Office, name: &str, rs: RemoteServiceConfig) -> AgentConfig {
    let mut cfg = unattended_config(office, name);
    let root = office.tb.dir.path().join(format!("{name}-plugins"));
    install_license_plugin(&root);
    cfg.plugins = Some(unsigned_plugins(root));
    cfg.remote_service = Some(rs);
    cfg
}

/// Runs one command of the license plugin without a session (as the
/// admin's `agent license-check` does): its result and what it showed.
async fn license_command(cfg: &AgentConfig, command: &str) -> (Result<String, String>, String) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let r = lifeline_agent::background::call(cfg, Arc::new(Lines(tx)), "license", command)
        .await
        .unwrap();
    let mut shown = String::new();
    while let Ok(l) = rx.try_recv() {
        shown.push_str(&l);
        shown.push('\n');
    }
    (r, shown)
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_foreign_and_older_licenses_are_refused_and_the_installed_one_kept() {
    let office = Office::start().await;
    let rs = office.remote_service("refuse", LicenseMode::Remote, ProxySetting::None);
    let file = rs.license_file.clone();
    let cfg = plugin_config(&office, "refuse", rs);
    // Tampered: more users than were signed.
    let tampered = new_license().to_toml().replace("users = 25", "users = 999");
    office.serve_raw("2026-11-21T00:00:00Z", tampered);
    let err = license_command(&cfg, "update").await.0.unwrap_err();
    assert!(
        err.contains("/license/v1/licenses/LL-2026-0042: `license.signature` does not match"),
        "{err}"
    );
    // Another installation's license, correctly signed.
    let foreign = license(
        "LL-2026-0999",
        "2026-11-22T00:00:00Z",
        "2028-12-31",
        &["print"],
        99,
    );
    office.serve_raw("2026-11-22T00:00:00Z", foreign.to_toml());
    let err = license_command(&cfg, "update").await.0.unwrap_err();
    assert!(
        err.contains("for serial LL-2026-0999, but this installation has serial LL-2026-0042"),
        "{err}"
    );
    // Older than the installed one (a replay).
    let older = license(SERIAL, "2025-06-01T00:00:00Z", "2025-12-31", &["print"], 5);
    office.serve_raw("2026-11-23T00:00:00Z", older.to_toml());
    let err = license_command(&cfg, "update").await.0.unwrap_err();
    assert!(err.contains("is not newer than the installed one"), "{err}");
    assert_eq!(License::load(&file).unwrap(), old_license());
    assert!(!file.with_file_name("license.toml.bak").exists());
    // The refusal is recorded for the About view and `agent status`.
    let about = license_command(&cfg, "about").await.0.unwrap();
    assert!(
        about.contains("Last check:")
            && about.contains("failed: license refused: the offered license"),
        "{about}"
    );
}

/// Makes `folder` read-only even for root (chmod, then `chattr +i`).
fn read_only(folder: &Path, on: bool) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let chattr = |flag: &str| {
        let _ = std::process::Command::new("chattr")
            .arg(flag)
            .arg(folder)
            .stderr(std::process::Stdio::null())
            .status();
    };
    if on {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o555)).unwrap();
        chattr("+i");
    } else {
        chattr("-i");
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let probe = folder.join(".probe");
    let writable = std::fs::write(&probe, b"x").is_ok();
    let _ = std::fs::remove_file(&probe);
    !writable
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_write_keeps_the_previous_license_and_manual_mode_leaves_a_download() {
    let office = Office::start().await;
    office.publish(&new_license());
    let rs = office.remote_service("ro", LicenseMode::Remote, ProxySetting::None);
    let file = rs.license_file.clone();
    let cfg = plugin_config(&office, "ro", rs);
    let folder: PathBuf = file.parent().unwrap().to_owned();
    if read_only(&folder, true) {
        let r = license_command(&cfg, "update").await.0;
        read_only(&folder, false);
        let err = r.unwrap_err();
        assert!(err.contains("the previous license is kept"), "{err}");
        assert_eq!(License::load(&file).unwrap(), old_license());
    } else {
        eprintln!("cannot make a folder read-only here; the write-failure part is skipped");
    }
    // Manual mode: the license waits in the download folder.
    let rs = office.remote_service("manual", LicenseMode::Manual, ProxySetting::None);
    let (file, downloads) = (rs.license_file.clone(), rs.download_folder.clone());
    let cfg = plugin_config(&office, "manual", rs);
    let (r, shown) = license_command(&cfg, "update").await;
    let message = r.unwrap();
    assert!(
        message.contains("Copy it to") && message.contains(&file.display().to_string()),
        "{message}"
    );
    assert!(
        shown.contains("Copy it to"),
        "the customer is told: {shown}"
    );
    let name = format!("{SERIAL}-20261120T090000Z.toml");
    assert!(message.contains(&name), "{message}");
    assert_eq!(License::load(&downloads.join(name)).unwrap(), new_license());
    assert_eq!(License::load(&file).unwrap(), old_license());
}

/// A TCP server that only counts connections.
fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&n);
    std::thread::spawn(move || {
        for s in l.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, n)
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_remote_service_makes_no_connection() {
    let office = Office::start().await;
    let (port, count) = counting_server();
    let mut rs = office.remote_service("off", LicenseMode::Remote, ProxySetting::None);
    rs.back_office = format!("https://127.0.0.1:{port}");
    rs.enabled = false;
    let mut cfg = office.tb.agent_config("off", None, Duration::from_secs(5));
    cfg.remote_service = Some(rs.clone());
    let _ = cfg;
    let cfg = plugin_config(&office, "off", rs.clone());
    let err = license_command(&cfg, "check").await.0.unwrap_err();
    assert!(
        err.contains("no connection to the back office is made"),
        "{err}"
    );
    // The status command explains it and does not try either.
    let file = office.tb.dir.path().join("off.toml");
    write_agent_toml(&file, &rs, &office, false);
    let out = processes::ok(
        &["agent", "status", "--config", file.to_str().unwrap()],
        None,
    );
    assert!(
        out.contains("Back office:       not connected: the remote service is disabled"),
        "{out}"
    );
    assert!(
        out.contains("Installed license: serial LL-2026-0042"),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "no connection while disabled"
    );
    // Enabled, the same server is contacted (the counter works).
    rs.enabled = true;
    let cfg = plugin_config(&office, "on", rs);
    let err = license_command(&cfg, "check").await.0.unwrap_err();
    assert!(err.contains("back office"), "{err}");
    assert!(count.load(Ordering::SeqCst) >= 1);
}

/// Writes an agent.toml (and its 0600 code file) for `rs`.
fn write_agent_toml(file: &Path, rs: &RemoteServiceConfig, office: &Office, wrong_code: bool) {
    let dir = file.parent().unwrap();
    let code = dir.join("code.secret");
    lifeline_core::secrets::write_private(
        &code,
        if wrong_code {
            b"nope-nope"
        } else {
            CODE.as_bytes()
        },
    )
    .unwrap();
    let text = format!(
        "[agent]\ndata_dir = \"{data}\"\npolicy = \"{policy}\"\n[connection]\nbroker = \"{broker}\"\nfingerprint = \"{fp}\"\n[remote_service]\nenabled = {en}\nback_office = \"{bo}\"\norganisation_id = \"{ORG}\"\nverification_code_file = \"{code}\"\nvendor_keys = [\"{key}\"]\nlicense_file = \"{lic}\"\nlicense_mode = \"remote\"\nservice_account = \"svc-lifeline\"\n",
        data = dir.join("cli-data").display(),
        policy = dir.join("policy.toml").display(),
        broker = office.tb.broker.addr,
        fp = office.tb.broker.fingerprint,
        en = rs.enabled,
        bo = rs.back_office,
        code = code.display(),
        key = public_key_string(&vendor().verifying_key()),
        lic = rs.license_file.display(),
    );
    std::fs::write(
        dir.join("policy.toml"),
        "[policy]\n[policy.capabilities]\n\"fs.folder\" = \"allow\"\n",
    )
    .unwrap();
    // The license plugin answers `agent license-check`.
    let plugins = dir.join("cli-plugins");
    install_license_plugin(&plugins);
    let text = format!(
        "{text}[plugins]\ndirs = [\"{}\"]\nallow_unsigned = true\n",
        plugins.display()
    );
    std::fs::write(file, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_status_check_and_can_update_through_the_binary() {
    let office = Office::start().await;
    let rs = office.remote_service("cli", LicenseMode::Remote, ProxySetting::None);
    let file = office.tb.dir.path().join("cli").join("agent.toml");
    let lic = rs.license_file.display().to_string();
    // Wrong verification code: explained, not shown.
    write_agent_toml(&file, &rs, &office, true);
    let cfg = file.to_str().unwrap();
    let out = processes::ok(&["agent", "status", "--config", cfg], None);
    assert!(
        out.contains(
            "not connected: the back office refused the organisation ID or verification code (401)"
        ),
        "{out}"
    );
    assert!(!out.contains("nope-nope"), "{out}");
    assert!(
        out.contains("Service account:   svc-lifeline") && out.contains("Service:           "),
        "{out}"
    );
    write_agent_toml(&file, &rs, &office, false);
    let out = processes::ok(&["agent", "status", "--config", cfg], None);
    assert!(
        out.contains("Back office:       connected to https://127.0.0.1:"),
        "{out}"
    );
    // Publish through the binary needs a broker config file; the library
    // call is what it runs. Then the unattended check installs by policy.
    office.publish(&new_license());
    let out = processes::ok(&["agent", "license-check", "--config", cfg], None);
    assert!(
        out.contains("Maintenance extended: until 2027-12-31")
            && out.contains("shared license folder"),
        "{out}"
    );
    let audit = read(&file.parent().unwrap().join("cli-data").join("audit.log"));
    assert!(
        audit.contains("\"fs.folder\"") && audit.contains("\"policy\""),
        "{audit}"
    );
    let out = processes::ok(&["agent", "status", "--config", cfg], None);
    assert!(out.contains("maintenance until 2027-12-31"), "{out}");
    assert!(out.contains("Last check:"), "{out}");
    // can-update: 0 yes, 1 no, 2 bad input.
    let run = |args: &[&str]| processes::run(args, None);
    let yes = run(&[
        "license",
        "can-update",
        "--release-date",
        "2027-06-01",
        "--config",
        cfg,
    ]);
    assert_eq!(yes.status.code(), Some(0), "{yes:?}");
    assert!(String::from_utf8_lossy(&yes.stdout).starts_with("yes: "));
    let no = run(&[
        "license",
        "can-update",
        "--release-date",
        "2028-01-01",
        "--license",
        &lic.replace("license.toml", "license.toml.bak"),
    ]);
    assert_eq!(no.status.code(), Some(1), "{no:?}");
    assert!(
        String::from_utf8_lossy(&no.stdout)
            .contains("maintenance for serial LL-2026-0042 ended 2026-12-31")
    );
    let bad = run(&[
        "license",
        "can-update",
        "--release-date",
        "next week",
        "--license",
        &lic,
    ]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
    // show: the About box, serial / expiry / maintenance first.
    let key = public_key_string(&vendor().verifying_key());
    let out = processes::ok(&["license", "show", &lic, "--trusted-key", &key], None);
    assert!(
        out.starts_with("Serial number:    LL-2026-0042\nExpires:          2030-12-31"),
        "{out}"
    );
    assert!(out.contains("Signature:        valid"), "{out}");
}

#[tokio::test]
async fn wrong_codes_are_rate_limited() {
    let office = Office::start().await;
    let mut rs = office.remote_service("rate", LicenseMode::Remote, ProxySetting::None);
    rs.verification_code = Secret::new("guess");
    let bo = office.back_office(&rs);
    let errs = tokio::task::spawn_blocking(move || {
        (0..7)
            .map(|_| {
                bo.get(&format!("/license/v1/licenses/{SERIAL}"))
                    .unwrap_err()
                    .to_string()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(
        errs[0].contains("unknown service organisation ID or wrong verification code"),
        "{}",
        errs[0]
    );
    assert!(
        errs.last()
            .unwrap()
            .contains("too many wrong verification codes"),
        "{errs:?}"
    );
}

#[tokio::test]
async fn pin_mismatch_and_unreachable_proxy_are_explained() {
    let office = Office::start().await;
    let rs = office.remote_service("pin", LicenseMode::Remote, ProxySetting::None);
    let mut bo = office.back_office(&rs);
    bo.trust = lifeline_core::tls::Trust::Pinned(lifeline_core::tls::Fingerprint([9; 32]));
    let err = tokio::task::spawn_blocking(move || bo.hello())
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("TLS with the back office") && err.contains("pinned fingerprint"),
        "{err}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut rs = rs;
    rs.proxy = ProxySetting::Manual(ManualProxy {
        host: "127.0.0.1".into(),
        port: closed,
        auth: None,
        no_proxy: vec![],
    });
    let bo = office.back_office(&rs);
    let err = tokio::task::spawn_blocking(move || bo.hello())
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("cannot reach the proxy 127.0.0.1:{closed}")),
        "{err}"
    );
}

/// Collects what the unattended check shows.
struct Lines(tokio::sync::mpsc::UnboundedSender<String>);
impl lifeline_agent::CustomerUi for Lines {
    fn show(&self, line: &str) {
        let _ = self.0.send(line.to_string());
    }
}

/// An agent config for background runs: the policy allows installing
/// licenses unattended; `plugins`: the license plugin, or none.
fn background_config(
    office: &Office,
    name: &str,
    plugin: bool,
) -> (AgentConfig, std::path::PathBuf) {
    let mut rs = office.remote_service(name, LicenseMode::Remote, ProxySetting::None);
    rs.check_interval = Duration::from_secs(1);
    let mut cfg = unattended_config(office, name);
    let root = office.tb.dir.path().join(format!("{name}-plugins"));
    std::fs::create_dir_all(&root).unwrap();
    if plugin {
        install_license_plugin(&root);
    }
    let mut plugins = unsigned_plugins(root.clone());
    plugins.hot_reload = true;
    cfg.plugins = Some(plugins);
    cfg.remote_service = Some(rs);
    (cfg, root)
}

/// Runs the background plugins; returns the lines they show and a stop.
fn background(
    cfg: AgentConfig,
) -> (
    tokio::sync::mpsc::UnboundedReceiver<String>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        lifeline_agent::background::run(&cfg, Arc::new(Lines(tx)), async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    (rx, stop_tx, task)
}

async fn next_check(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    loop {
        let line = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if line.contains("license check") {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn periodic_checks_install_by_policy_then_find_nothing_newer() {
    let office = Office::start().await;
    office.publish(&new_license());
    let (cfg, _root) = background_config(&office, "periodic", true);
    let file = cfg.remote_service.as_ref().unwrap().license_file.clone();
    let (mut rx, stop, task) = background(cfg);
    // The license plugin's own schedule: at once, then every second.
    let first = next_check(&mut rx).await;
    let second = next_check(&mut rx).await;
    let _ = stop.send(());
    task.await.unwrap();
    assert!(first.contains("A new license is available"), "{first}");
    assert!(second.contains("is up to date"), "{second}");
    assert_eq!(License::load(&file).unwrap(), new_license());
}

/// Proof by deletion and reload: without the license plugin the agent
/// checks nothing by itself; the plugin's code, edited while the agent
/// runs, is what checks next.
#[tokio::test(flavor = "multi_thread")]
async fn periodic_checks_are_the_license_plugins_deleted_or_edited() {
    let office = Office::start().await;
    office.publish(&new_license());
    let (cfg, _root) = background_config(&office, "without", false);
    let file = cfg.remote_service.as_ref().unwrap().license_file.clone();
    let before = std::fs::read(&file).unwrap();
    let (mut rx, stop, task) = background(cfg);
    // (Checked below: the background run ends at once.)
    let said = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(said.contains("No long-lived plugin is installed"), "{said}");
    // Three of the admin's intervals: no check happens.
    let quiet = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await;
    assert!(
        quiet.is_err() || quiet.as_ref().unwrap().is_none(),
        "{quiet:?}"
    );
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), before, "nothing installed");

    let (cfg, root) = background_config(&office, "edited", true);
    let (mut rx, stop, task) = background(cfg);
    next_check(&mut rx).await;
    let main = root.join("license/main.lua");
    let code = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        code.replace("\"license check: \"", "\"license check (edited): \""),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let line = next_check(&mut rx).await;
        if line.contains("license check (edited):") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edit never went live"
        );
    }
    let _ = stop.send(());
    task.await.unwrap();
}
