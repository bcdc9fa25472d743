//! The customer's window in a real browser: Debian's Chromium driven by
//! Playwright (`tests/console/window/`, the console tests' Node package)
//! against a real broker and real agent processes on loopback.
//!
//! This side prepares the real parts — the broker (a process), the
//! operator's and the agent's configurations (plugins, a consent policy
//! that asks, a short consent timeout for the countdown, the Xvfb display
//! to share, a power backend that stops the agent as a restart would, the
//! service's customer socket in the test's folder) — then runs the
//! scenarios with `node --test`. The scenarios start the agent (`agent
//! join --ui window --no-browser`, `agent service`, `agent window
//! --no-browser`), open the launcher file in Chromium, and act as the
//! operator with the real command line.
//!
//! Screenshots: `target/customer-window-screenshots/`.
//! Alone: `cargo test -p lifeline --test e2e customer_window -- --nocapture`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::console_browser::{NODE_WAIT, NodeRun, preflight, read, repo};
use crate::machine::Xvfb;
use crate::processes::*;
use crate::screen_desk::{Area, Desk};
use crate::support::PASSWORD;

/// Seconds the customer has to answer (the countdown scenario waits it out).
const CONSENT_SECS: u64 = 8;

#[test]
fn customer_window_in_a_real_browser() {
    let package = repo().join("tests/console");
    let chromium = preflight(&package);
    let x = Xvfb::start_with("800x600x24");
    let desk = Desk::open(&x.display);
    let _mark = desk.window(
        Area {
            x: 100,
            y: 100,
            w: 200,
            h: 120,
        },
        0x30a060,
    );
    desk.settle();

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_broker, addr, _https, fp) = start_broker_https(d);
    let (op_cfg, agent_cfg) = client_configs(d, &addr, &fp);
    crate::plugins::install_plugins(
        &d.join("agent-plugins"),
        &["plugins/sysinfo", "plugins/reboot", "plugins/screen"],
    );
    // The customer answers system information and restarts in the window;
    // the screen and the processes the plugins start are allowed.
    let policy = d.join("policy.toml");
    write(
        &policy,
        "[policy]\ndefault = \"ask\"\n[policy.capabilities]\n\"screen.capture\" = \"allow\"\n\
         \"fs.temp\" = \"allow\"\n\"process.spawn\" = \"allow\"\n",
    );
    let cfg = std::fs::read_to_string(&agent_cfg).unwrap().replace(
        "consent_timeout_secs = 30\n",
        &format!(
            "consent_timeout_secs = {CONSENT_SECS}\npolicy = \"{}\"\n",
            policy.display()
        ),
    ) + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n"
        + &format!("[screen]\ndisplay = \"{}\"\n", x.display)
        + "[power]\nreboot_command = [\"sh\", \"-c\", \"kill -9 $LIFELINE_AGENT_PID\"]\n";
    // (`client_configs` puts the service's customer socket at
    // run/customer.sock in the test's folder.)
    write(Path::new(&agent_cfg), &cfg);
    ok(&["config", "check", &agent_cfg], None);

    let shots = repo().join("target/customer-window-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let work = d.join("browser");
    std::fs::create_dir_all(work.join("tmp")).unwrap();
    let log = d.join("node.log");
    let out = std::fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let child = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-timeout=300000"])
        .arg("window/")
        .current_dir(&package)
        .env_remove("LIFELINE_CONFIG")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("LIFELINE_BIN", env!("CARGO_BIN_EXE_lifeline"))
        .env("LIFELINE_CHROMIUM", &chromium)
        .env("LIFELINE_OPERATOR_NAME", "Alice Smith")
        .env("LIFELINE_PASSWORD", PASSWORD)
        .env("LIFELINE_AGENT_CONFIG", &agent_cfg)
        .env("LIFELINE_OPERATOR_CONFIG", &op_cfg)
        .env("LIFELINE_WORK_DIR", &work)
        .env("LIFELINE_SCREENSHOTS", &shots)
        // No $XDG_RUNTIME_DIR of a desktop here: the launcher goes into an
        // owner-only temporary folder under the test's.
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", work.join("tmp"))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .expect("node");
    let mut node = NodeRun(child);
    let status = node.wait(NODE_WAIT);
    let said = read(&log);
    match status {
        Some(s) if s.success() => {
            println!("{said}");
            println!("screenshots: {}", shots.display());
        }
        Some(s) => panic!(
            "the customer-window scenarios failed ({s}); screenshots in {}:\n{said}",
            shots.display()
        ),
        None => panic!(
            "the customer-window scenarios did not finish within {NODE_WAIT:?}; screenshots in {}:\n{said}",
            shots.display()
        ),
    }
}

/// The service's customer socket checks who connects: a window of another
/// local account (a real second account; the file's mode is opened up so
/// that only the peer-credential check stands in the way) is refused and
/// told why, and sees nothing of the session.
#[test]
fn a_window_of_another_local_account_is_refused() {
    use lifeline_agent::CustomerUi;
    use lifeline_agent::channel::{Hub, socket};
    use std::os::unix::fs::PermissionsExt;

    let (uid, _) = crate::machine::account("ll-window1", "Window pw 42");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("customer.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let me = nix::unistd::getuid().as_raw();
    let (hub, _commands) = Hub::new(None);
    hub.show("a secret of the session");
    let _server = rt
        .block_on(async { socket::serve(&path, hub, socket::Allowed(vec![me]), None) })
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .args(["agent", "window", "--no-browser", "--socket", p(&path)])
        .uid(uid)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("LIFELINE_CONFIG")
        .current_dir("/")
        .output()
        .unwrap();
    let said = output_text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("uid {uid} is not one of the customer accounts")),
        "{said}"
    );
    assert!(!said.contains("a secret of the session"), "{said}");
    assert!(
        !said.contains("The Lifeline window"),
        "no window opens: {said}"
    );
}
