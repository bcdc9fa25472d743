//! The web console in a real browser: Debian's Chromium, driven by
//! Playwright (`tests/console/`, a Node package), against a real broker and
//! real agents on loopback.
//!
//! This side prepares the real parts — the broker (a process), the agent's
//! config with its plugins, consent policy, run-as display and power
//! backend, a local account for the run-as login (PAM), an Xvfb with a
//! coloured window for the screen viewer — then runs the scenarios with
//! `node --test` and checks its exit status. The scenarios start the agents
//! themselves (`lifeline agent join CONNECTION_ID` once the browser shows
//! the invitation, `lifeline agent service` after a reboot) and type the
//! customer's answers into their standard input.
//!
//! Screenshots of every step: `target/console-screenshots/`.
//! Alone: `cargo test -p lifeline --test e2e console_browser -- --nocapture`;
//! some scenarios only: `LIFELINE_CONSOLE_SCENARIOS=01,screen` (words of
//! their file names). More in `tests/console/README.md`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::machine::{Xvfb, account};
use crate::processes::*;
use crate::screen_desk::{Area, Desk};
use crate::support::PASSWORD;

/// The run-as account (a real local account, checked through PAM).
const RUNAS_USER: &str = "ll-console1";
const RUNAS_PW: &str = "Console run-as pw 42";
/// A window of one colour on the shared display, for the screen viewer.
const MARK: Area = Area {
    x: 260,
    y: 220,
    w: 280,
    h: 160,
};
const MARK_RGB: u32 = 0x3060c0;
/// Bound on the whole browser run (every wait inside is bounded too).
pub(crate) const NODE_WAIT: Duration = Duration::from_secs(15 * 60);
const CHROMIUM: &str = "/usr/bin/chromium";

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `node` and the browser, or a clear message saying how to get them.
pub(crate) fn preflight(package: &Path) -> PathBuf {
    let chromium = std::env::var_os("LIFELINE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the browser tests need Node.js >= 20 (`node`): run scripts/setup"
    );
    assert!(
        chromium.exists(),
        "the browser tests need Debian's chromium at {}: run scripts/setup (or set LIFELINE_CHROMIUM)",
        chromium.display()
    );
    assert!(
        package
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "the browser tests need playwright-core in {}: run scripts/setup (it runs `npm ci` there)",
        package.display()
    );
    chromium
}

/// `node` in a process group of its own (it, the browser and the agents
/// it starts are killed together), stopped when dropped.
pub(crate) struct NodeRun(pub(crate) Child);

impl NodeRun {
    fn kill_group(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }

    /// The exit status, or None after `wait` (then everything is killed).
    pub(crate) fn wait(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Some(s) = self.0.try_wait().unwrap() {
                // Whatever it left behind goes too.
                let pgid = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
                let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.kill_group();
        None
    }
}

impl Drop for NodeRun {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// The scenario files to run: all of `scenarios/`, or those whose names
/// contain one of the comma-separated words of `LIFELINE_CONSOLE_SCENARIOS`
/// ("01,screen").
fn scenarios(package: &Path) -> Vec<String> {
    let Ok(filter) = std::env::var("LIFELINE_CONSOLE_SCENARIOS") else {
        return vec!["scenarios/".into()];
    };
    let mut files: Vec<String> = std::fs::read_dir(package.join("scenarios"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.js"))
        .filter(|n| {
            filter
                .split(',')
                .any(|w| !w.is_empty() && n.contains(w.trim()))
        })
        .map(|n| format!("scenarios/{n}"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no scenario matches LIFELINE_CONSOLE_SCENARIOS={filter:?}"
    );
    files
}

pub(crate) fn read(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

#[test]
fn console_in_a_real_browser() {
    let package = repo().join("tests/console");
    let chromium = preflight(&package);

    // The customer's machine: a display with a known window, an account.
    let x = Xvfb::start_with("800x600x24");
    let desk = Desk::open(&x.display);
    let _mark = desk.window(MARK, MARK_RGB);
    desk.settle();
    let (uid, _) = account(RUNAS_USER, RUNAS_PW);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_broker, addr, https, fp) = start_broker_https(d);
    let (_op, agent_cfg) = client_configs(d, &addr, &fp);
    crate::plugins::install_plugins(
        &d.join("agent-plugins"),
        &[
            "plugins/sysinfo",
            "plugins/scripts",
            "plugins/run-as",
            "plugins/reboot",
            "plugins/screen",
        ],
    );
    // Consent: the policy answers for system information, the screen and
    // the processes the plugins start; the customer (the scenario, at the
    // agent's terminal) for scripts, a run-as login and a reboot.
    let policy = d.join("policy.toml");
    write(
        &policy,
        "[policy]\ndefault = \"ask\"\n[policy.capabilities]\n\"system.info\" = \"allow\"\n\
         \"screen.capture\" = \"allow\"\n\"fs.temp\" = \"allow\"\n\"process.spawn\" = \"allow\"\n",
    );
    let cfg = std::fs::read_to_string(&agent_cfg).unwrap().replace(
        "[agent]\n",
        &format!("[agent]\npolicy = \"{}\"\n", policy.display()),
    ) + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n"
        + &format!(
            "[run_as]\ndisplay = \"{0}\"\ncredential_timeout_secs = 60\n[screen]\ndisplay = \"{0}\"\n",
            x.display
        )
        // The power backend stops the agent as a restart would.
        + "[power]\nreboot_command = [\"sh\", \"-c\", \"kill -9 $LIFELINE_AGENT_PID\"]\n";
    write(Path::new(&agent_cfg), &cfg);
    ok(&["config", "check", &agent_cfg], None);

    let shots = repo().join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let work = d.join("browser");
    std::fs::create_dir_all(work.join("tmp")).unwrap();
    let log = d.join("node.log");
    let out = std::fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let child = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-timeout=300000"])
        .args(scenarios(&package))
        .current_dir(&package)
        .env_remove("LIFELINE_CONFIG")
        .env("LIFELINE_BIN", env!("CARGO_BIN_EXE_lifeline"))
        .env("LIFELINE_CHROMIUM", &chromium)
        .env("LIFELINE_CONSOLE_URL", format!("https://{https}/console/"))
        .env("LIFELINE_OPERATOR", "alice")
        .env("LIFELINE_OPERATOR_NAME", "Alice Smith")
        .env("LIFELINE_PASSWORD", PASSWORD)
        .env("LIFELINE_AGENT_CONFIG", &agent_cfg)
        .env("LIFELINE_WORK_DIR", &work)
        .env("LIFELINE_SCREENSHOTS", &shots)
        .env("LIFELINE_RUNAS_USER", RUNAS_USER)
        .env("LIFELINE_RUNAS_PASSWORD", RUNAS_PW)
        .env("LIFELINE_RUNAS_UID", uid.to_string())
        .env(
            "LIFELINE_SCREEN_MARK",
            format!("{},{},{},{},{MARK_RGB:06x}", MARK.x, MARK.y, MARK.w, MARK.h),
        )
        // Chromium's fresh profile and every temporary file in the test's folder.
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
            "the browser scenarios failed ({s}); screenshots in {}:\n{said}",
            shots.display()
        ),
        None => panic!(
            "the browser scenarios did not finish within {NODE_WAIT:?}; screenshots in {}:\n{said}",
            shots.display()
        ),
    }
}
