//! The agent's disk full, for real: its data folder (audit log) or the
//! license folder on a small tmpfs mounted for the test and filled up.

use std::io::Write;

use super::*;

/// A tmpfs of `size` mounted on `dir` (created), unmounted when dropped.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `None` (with the reason printed) when this machine cannot mount.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs for the disk-full test (needs root and CAP_SYS_ADMIN): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Some(Tmpfs {
            dir: dir.to_owned(),
        })
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Fills the file system, then gives back `leave` bytes.
    pub fn fill(&self, leave: u64) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(leave)).unwrap();
    }

    pub fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// The operator asks the customer a question (`operator ask`) while the
/// customer answers `answer`; returns the command's exit code and output.
pub fn ask(rig: &Rig, agent: &mut Proc, sid: &str, answer: &str) -> (Option<i32>, String) {
    ask_with(rig, agent, sid, "Read system information", answer)
}

/// [`ask`] with the question's `detail`.
pub fn ask_with(
    rig: &Rig,
    agent: &mut Proc,
    sid: &str,
    detail: &str,
    answer: &str,
) -> (Option<i32>, String) {
    let args: Vec<String> = [
        "operator",
        "ask",
        "--config",
        &rig.op,
        sid,
        "--plugin",
        "sysinfo",
        "--action",
        "system.info",
        "--detail",
        detail,
        "--timeout",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let t = std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, None)
    });
    agent.wait_line("Type /allow");
    agent.type_line(answer);
    let out = t.join().unwrap();
    (out.status.code(), output_text(&out))
}

#[test]
fn audit_log_on_a_full_disk() {
    let rig = Rig::new(&["plugins/scripts"], "");
    let Some(disk) = Tmpfs::mount(&rig.data(), "4m") else {
        return;
    };
    // Entries bigger than a page: a full file system has no room for
    // them even in the last page of the log (a small one could fit there).
    let script = rig.d().join("hello.sh");
    write(&script, "#!/bin/sh\necho hello\n");
    let description = "a long description. ".repeat(95);
    for name in ["hello", "hello2", "hello3"] {
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
                p(&script),
                "--description",
                &description,
            ],
            None,
        );
    }
    let question = "Read system information. ".repeat(200);
    let (sid, mut agent) = rig.join("T-FAULT-DISK");
    disk.fill(0);

    // A consent the agent cannot record is no consent: refused, and both
    // sides are told why.
    let (code, said) = ask_with(&rig, &mut agent, &sid, &question, "/allow");
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("No space left on device"), "{said}");
    agent.wait_line("not recorded: No space left on device");
    let run_hello = || {
        Proc::spawn(&[
            "operator", "scripts", "run", "--config", &rig.op, &sid, "hello", "hello2", "hello3",
        ])
    };
    let mut runp = run_hello();
    agent.wait_line("Type /allow");
    agent.type_line("/allow-session");
    let said = runp.rest();
    assert!(!runp.wait_exit().success(), "{said}");
    assert!(said.contains("could not be recorded"), "{said}");
    assert!(!said.contains("[hello] hello"), "{said}");

    // Space again: the unrecorded "allow for this session" granted nothing
    // (the customer is asked again), and what is recorded now works.
    disk.free();
    let mut runp = run_hello();
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    runp.wait_line("3 of 3 script(s) succeeded");
    assert!(runp.wait_exit().success());
    let (code, said) = ask_with(&rig, &mut agent, &sid, &question, "/allow");
    assert_eq!(code, Some(0), "{said}");
    rig.audit_verifies();
    let report = rig.report(&sid);
    assert!(report.contains("hello: exit code 0"), "{report}");
    ok(&["operator", "end", "--config", &rig.op, &sid], None);
    agent.wait_exit();
    // No half entry, and the next start finds the chain whole.
    let log = std::fs::read(rig.data().join("audit.log")).unwrap();
    assert_eq!(log.last(), Some(&b'\n'));
    rig.start_again();
    rig.audit_verifies();
    assert_eq!(rig.temp_folders(), Vec::<String>::new());
}

/// The license folder on a full disk: with no room at all, and with room
/// for the backup but not the new license. The previous license is kept
/// whole, no temporary file stays, and with room again the update installs.
#[tokio::test(flavor = "multi_thread")]
async fn license_written_to_a_full_disk() {
    use crate::license_support::*;
    use lifeline_license::document::License;
    let office = crate::license_support::Office::start().await;
    office.publish(&new_license());
    let agent = super::kill_license::license_agent(&office, "full", "true");
    let folder = agent.folder();
    let saved = std::fs::read(&agent.file).unwrap();
    let Some(disk) = Tmpfs::mount(&folder, "1m") else {
        return;
    };
    std::fs::write(&agent.file, &saved).unwrap();
    let check = || run(&["agent", "license-check", "--config", p(&agent.cfg)], None);
    for leave in [0, 4096] {
        disk.fill(leave);
        let out = check();
        let said = output_text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains("No space left on device")
                && said.contains("the previous license is kept"),
            "{said}"
        );
        disk.free();
        assert_eq!(agent.whole(), old_license());
        agent.no_leftovers();
        let _ = std::fs::remove_file(agent.file.with_file_name("license.toml.bak"));
    }
    let out = check();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(agent.whole(), new_license());
    agent.no_leftovers();
    assert_eq!(License::load(&agent.file).unwrap(), new_license());
}
