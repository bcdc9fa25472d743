//! Faults with real processes (issue 16, part 5): the agent process killed
//! (`kill -9`) in the middle of a script, a license install, a run-as login
//! and a screen-sharing stream; the agent's disk full while it writes its
//! audit log and a license (a real, small tmpfs); the agent's clock jumping
//! an hour forward and back (libfaketime in the agent process only).
//!
//! After each fault: no temporary folder, process or cgroup is left behind
//! (where the agent's next start is what recovers, the test starts it again
//! and checks after that), the customer's access is back, the audit chain
//! verifies, an installed license is the old or the new one whole, and the
//! broker's report says what happened. The broker is never killed here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::processes::*;
use crate::support::WAIT;

mod clock;
mod disk;
mod kill;
mod kill_license;
mod kill_screen;

/// A broker process, an operator logged in, and an agent configuration
/// with `plugins` installed; the folder goes last.
pub struct Rig {
    _broker: Proc,
    pub op: String,
    pub agent_cfg: String,
    pub dir: tempfile::TempDir,
}

impl Rig {
    /// `extra` is appended to the agent's configuration (after `[plugins]`).
    pub fn new(plugins: &[&str], extra: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (broker, addr, fp) = start_broker(d);
        let (op, agent_cfg) = client_configs(d, &addr, &fp);
        crate::plugins::install_plugins(&d.join("agent-plugins"), plugins);
        let text = std::fs::read_to_string(&agent_cfg).unwrap()
            + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n"
            + extra;
        write(Path::new(&agent_cfg), &text);
        login(&op);
        Rig {
            _broker: broker,
            op,
            agent_cfg,
            dir,
        }
    }

    /// Gives the agent a policy with `rules` (lines of `"capability" = "allow"`).
    pub fn policy(&self, rules: &str) {
        let path = self.d().join("policy.toml");
        write(&path, &format!("[policy]\n[policy.capabilities]\n{rules}"));
        let text = std::fs::read_to_string(&self.agent_cfg).unwrap().replacen(
            "[agent]\n",
            &format!("[agent]\npolicy = \"{}\"\n", path.display()),
            1,
        );
        write(Path::new(&self.agent_cfg), &text);
    }

    pub fn d(&self) -> &Path {
        self.dir.path()
    }

    pub fn data(&self) -> PathBuf {
        self.d().join("agent-data")
    }

    /// Invites and starts `lifeline agent join` (standard error to
    /// `agent.log`); returns the session ID and the agent once ready.
    pub fn join(&self, ticket: &str) -> (String, Proc) {
        self.join_with(ticket, |_| {})
    }

    /// [`Rig::join`], with `adjust` changing the agent's command first
    /// (its environment).
    pub fn join_with(
        &self,
        ticket: &str,
        adjust: impl FnOnce(&mut std::process::Command),
    ) -> (String, Proc) {
        let (sid, inv) = invite(&self.op, ticket);
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lifeline"));
        c.env_remove("LIFELINE_CONFIG")
            .env("RUST_LOG", "info")
            .args(["agent", "join", "--config", &self.agent_cfg])
            .arg(inv["connection_id"].as_str().unwrap())
            .stderr(std::fs::File::create(self.d().join("agent.log")).unwrap());
        adjust(&mut c);
        let agent = Proc::from_command(c);
        ok(
            &[
                "operator",
                "wait",
                "--config",
                &self.op,
                &sid,
                "--timeout",
                "20",
            ],
            None,
        );
        (sid, agent)
    }

    /// Waits (bounded) until the broker lists the session as ended.
    pub fn wait_ended(&self, sid: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let list = ok(
                &["operator", "sessions", "--config", &self.op, "--json"],
                None,
            );
            let list: serde_json::Value = serde_json::from_str(&list).unwrap();
            if list
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["session_id"] == sid && s["state"] == "ended")
            {
                return;
            }
            assert!(Instant::now() < deadline, "the session never ended: {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The session's report as text.
    pub fn report(&self, sid: &str) -> String {
        ok(&["operator", "report", "--config", &self.op, sid], None)
    }

    /// The agent's audit chain verifies (`lifeline audit verify`).
    pub fn audit_verifies(&self) -> String {
        ok(
            &["audit", "verify", p(&self.data().join("audit.log"))],
            None,
        )
    }

    /// Starts the agent again as the service manager would (`agent
    /// service`: no rejoin ticket, no long-lived plugin, so it returns);
    /// returns what it printed.
    pub fn start_again(&self) -> String {
        ok(&["agent", "service", "--config", &self.agent_cfg], None)
    }

    /// The agent's plugin temporary folders.
    pub fn temp_folders(&self) -> Vec<String> {
        names_in(&self.data().join("plugin-tmp"))
    }
}

/// The entries of `dir` (none when it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The cgroup v2 folder of this test process, where the agents it starts
/// create their `lifeline-spawn-PID-N` groups (as `runtime::cgroup` finds
/// it); `None` without a cgroup v2 hierarchy.
fn own_cgroup() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split(' ').next() == Some("cgroup2")).then(|| left.split(' ').nth(4))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    Some(Path::new(mount).join(own.trim_start_matches('/')))
}

/// The cgroups the agent with process ID `pid` created and left.
pub fn cgroups_of(pid: u32) -> Vec<String> {
    let prefix = format!("lifeline-spawn-{pid}-");
    own_cgroup()
        .map(|g| names_in(&g))
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// True while process `pid` runs (a zombie waiting to be reaped is gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (COMM) STATE …": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Waits (bounded) until none of `pids` runs.
pub fn wait_gone(pids: &[i32]) {
    let deadline = Instant::now() + WAIT;
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "processes left behind: {:?}",
            pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The number after `key=` in a line such as `[name] pid=123`.
pub fn number_after(line: &str, key: &str) -> i32 {
    line.split(key)
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

/// Kills the agent (SIGKILL) and returns its process ID.
pub fn kill_9(agent: &mut Proc) -> u32 {
    let pid = agent.child.id();
    agent.kill();
    pid
}
