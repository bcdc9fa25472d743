//! `kill -9` of the agent (`lifeline agent license-check`, a process of its
//! own) in the middle of a license install: while the license server's
//! reload command runs, and at the first write into the license folder and
//! a few moments after it. The installed license is always the old or the
//! new one whole, nothing half-written stays in the folder, nothing the
//! install started runs on, and the audit chain verifies.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lifeline_agent::config::remote_service::LicenseMode;
use lifeline_core::proxy::ProxySetting;
use lifeline_license::document::{License, public_key_string};

use super::{alive, kill_9, names_in, wait_gone};
use crate::license_support::*;
use crate::processes::{Proc, ok, p};
use crate::support::WAIT;

/// The agent's files for license checks through the binary.
pub struct LicenseAgent {
    pub cfg: PathBuf,
    pub file: PathBuf,
    data: PathBuf,
}

/// Writes an agent.toml (local license mode, `reload` as the reload
/// command, a policy allowing the install and the reload unattended) and
/// installs the license plugin; the old license is installed.
pub fn license_agent(office: &Office, name: &str, reload: &str) -> LicenseAgent {
    let rs = office.remote_service(name, LicenseMode::Remote, ProxySetting::None);
    let dir = rs
        .license_file
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let code = dir.join("code.secret");
    lifeline_core::secrets::write_private(&code, CODE.as_bytes()).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[policy]\n[policy.capabilities]\n\"fs.folder\" = \"allow\"\n\"command.admin\" = \"allow\"\n",
    )
    .unwrap();
    let plugins = dir.join("plugins");
    crate::plugins::install_plugins(&plugins, &["plugins/license"]);
    let data = dir.join("data");
    let cfg = dir.join("agent.toml");
    let text = format!(
        "[agent]\ndata_dir = \"{data}\"\npolicy = \"{policy}\"\n[connection]\nbroker = \"{broker}\"\nfingerprint = \"{fp}\"\n\
         [remote_service]\nenabled = true\nback_office = \"{bo}\"\norganisation_id = \"{ORG}\"\nverification_code_file = \"{code}\"\n\
         vendor_keys = [\"{key}\"]\nlicense_file = \"{lic}\"\nlicense_mode = \"local\"\nreload_command = [\"sh\", \"-c\", {reload:?}]\n\
         [plugins]\ndirs = [\"{plugins}\"]\nallow_unsigned = true\n",
        data = data.display(),
        policy = policy.display(),
        broker = office.tb.broker.addr,
        fp = office.tb.broker.fingerprint,
        bo = rs.back_office,
        code = code.display(),
        key = public_key_string(&vendor().verifying_key()),
        lic = rs.license_file.display(),
        plugins = plugins.display(),
    );
    std::fs::write(&cfg, text).unwrap();
    LicenseAgent {
        cfg,
        file: rs.license_file,
        data,
    }
}

impl LicenseAgent {
    fn check(&self) -> Proc {
        Proc::spawn_with(
            &["agent", "license-check", "--config", p(&self.cfg)],
            std::process::Stdio::null(),
            "warn",
        )
    }

    pub fn folder(&self) -> PathBuf {
        self.file.parent().unwrap().to_owned()
    }

    /// Nothing but the license and its backup is in the folder (no
    /// temporary file).
    pub fn no_leftovers(&self) {
        let mut names = names_in(&self.folder());
        names.retain(|n| n != "license.toml" && n != "license.toml.bak");
        assert_eq!(names, Vec::<String>::new(), "left in the license folder");
    }

    /// The installed license (and its backup) is the old or the new one,
    /// whole; the audit chain verifies.
    pub fn whole(&self) -> License {
        let installed = License::load(&self.file).expect("the installed license is whole");
        assert!(
            installed == old_license() || installed == new_license(),
            "{installed:?}"
        );
        let backup = self.file.with_file_name("license.toml.bak");
        if backup.exists() {
            assert_eq!(License::load(&backup).unwrap(), old_license());
        }
        ok(&["audit", "verify", p(&self.data.join("audit.log"))], None);
        installed
    }

    /// Back to the old license only.
    fn reset(&self) {
        std::fs::write(&self.file, old_license().to_toml()).unwrap();
        let _ = std::fs::remove_file(self.file.with_file_name("license.toml.bak"));
    }
}

/// Waits (bounded) until `path` exists.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + WAIT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_killed_during_a_license_install() {
    let office = Office::start().await;
    office.publish(&new_license());
    let d = office.tb.dir.path();
    let (pidfile, block) = (d.join("reload.pid"), d.join("reload.block"));
    // The reload command says its process ID and, while `block` exists,
    // takes its time.
    let reload = format!(
        "echo $$ > {}; [ -e {} ] && exec sleep 300; exit 0",
        pidfile.display(),
        block.display()
    );
    let agent = license_agent(&office, "killed", &reload);

    // Killed while the license server reloads: the new license is in place.
    std::fs::write(&block, "").unwrap();
    let mut check = agent.check();
    wait_for(&pidfile);
    let reload_pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill_9(&mut check);
    assert_eq!(agent.whole(), new_license());
    agent.no_leftovers();
    std::fs::remove_file(&block).unwrap();
    // The reload is the admin's own command, not a plugin's process: it
    // runs to its end (it may start the license server as a daemon, which
    // must outlive the agent). This one would wait 300 s: the test ends it.
    assert!(alive(reload_pid), "the admin's reload command runs on");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(reload_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    wait_gone(&[reload_pid]);
    // The agent's next check finds the new license up to date.
    let out = ok(&["agent", "license-check", "--config", p(&agent.cfg)], None);
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(agent.whole(), new_license());
    agent.no_leftovers();

    // Killed at the first change in the license folder, and a little after.
    for delay_ms in [0u64, 1, 2, 5, 10, 20, 50] {
        agent.reset();
        let before = names_in(&agent.folder());
        let mut check = agent.check();
        let deadline = Instant::now() + WAIT;
        while names_in(&agent.folder()) == before && check.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the install never started");
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill_9(&mut check);
        let installed = agent.whole();
        let temp = names_in(&agent.folder())
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .count();
        let which = if installed == new_license() {
            "new"
        } else {
            "old"
        };
        println!(
            "killed {delay_ms} ms after the first write: {which} license, {temp} temporary file(s)"
        );
        // The next start removes a temporary file the dead agent left, and
        // its check finishes the install (or finds it done).
        ok(&["agent", "license-check", "--config", p(&agent.cfg)], None);
        assert_eq!(agent.whole(), new_license());
        agent.no_leftovers();
    }
}
