//! Real parts of the customer's machine for the run-as and reboot tests:
//! local accounts with known passwords (useradd/chpasswd, as root), and an
//! X server (Xvfb) on a free display.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, GrabMode, GrabStatus};

/// A supplementary group the test accounts belong to.
pub const TEST_GROUP: &str = "lifeline-testers";

static ACCOUNTS: Mutex<()> = Mutex::new(());

fn sh(cmd: &str, args: &[&str], stdin: Option<&str>) -> bool {
    let mut c = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    if let Some(text) = stdin {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    c.wait().unwrap().success()
}

/// Creates (once) a local account `name` with `password`, a home folder and
/// the supplementary group [`TEST_GROUP`]; returns its uid and the group's gid.
pub fn account(name: &str, password: &str) -> (u32, u32) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the run-as tests create local accounts and need root (.ci/run runs as root)"
    );
    let _g = ACCOUNTS.lock().unwrap();
    if nix::unistd::Group::from_name(TEST_GROUP).unwrap().is_none() {
        assert!(sh("groupadd", &[TEST_GROUP], None), "groupadd {TEST_GROUP}");
    }
    if nix::unistd::User::from_name(name).unwrap().is_none() {
        assert!(
            sh(
                "useradd",
                &["-m", "-s", "/bin/sh", "-G", TEST_GROUP, name],
                None
            ),
            "useradd {name}"
        );
    }
    assert!(
        sh("chpasswd", &[], Some(&format!("{name}:{password}\n"))),
        "chpasswd {name}"
    );
    let uid = nix::unistd::User::from_name(name).unwrap().unwrap().uid;
    let gid = nix::unistd::Group::from_name(TEST_GROUP)
        .unwrap()
        .unwrap()
        .gid;
    (uid.as_raw(), gid.as_raw())
}

/// An Xvfb server, stopped when dropped.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        Self::start_with("800x600x24")
    }

    /// An Xvfb whose one screen is `geometry` ("1920x1080x24"), with
    /// MIT-SHM, XDamage, XFixes, RandR and XTest (Xvfb's defaults).
    pub fn start_with(geometry: &str) -> Xvfb {
        // Tests start servers at the same time: one at a time, each until
        // its lock file is there, so two never take the same number (the
        // loser's probe would reach the winner's server).
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        for n in 70..120u32 {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists()
                || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            {
                continue;
            }
            let child = Command::new("Xvfb")
                .args([
                    &format!(":{n}"),
                    "-nolisten",
                    "tcp",
                    // The readiness probe's connection closing must not
                    // reset the server (and drop what a test set up).
                    "-noreset",
                    "-screen",
                    "0",
                    geometry,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb is installed by scripts/setup (package xvfb)");
            let mut x = Xvfb {
                child,
                display: format!(":{n}"),
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if x11rb::connect(Some(&x.display)).is_ok() && x.child.try_wait().unwrap().is_none()
                {
                    return x;
                }
                if x.child.try_wait().unwrap().is_some() {
                    break; // lost a race for this display: try the next
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = x.child.kill();
        }
        panic!("could not start Xvfb on any display :70..:119");
    }

    /// True when another X client can grab the keyboard now (the customer
    /// could type); the grab is released again at once.
    pub fn keyboard_free(&self) -> bool {
        let (conn, screen) = x11rb::connect(Some(&self.display)).unwrap();
        let root = conn.setup().roots[screen].root;
        let r = conn
            .grab_keyboard(
                false,
                root,
                x11rb::CURRENT_TIME,
                GrabMode::ASYNC,
                GrabMode::ASYNC,
            )
            .unwrap()
            .reply()
            .unwrap();
        let free = r.status == GrabStatus::SUCCESS;
        if free {
            conn.ungrab_keyboard(x11rb::CURRENT_TIME).unwrap();
            conn.flush().unwrap();
        }
        free
    }

    /// Polls (bounded) until the keyboard is free or grabbed as wanted.
    pub fn wait_keyboard_free(&self, want: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.keyboard_free() != want {
            assert!(
                Instant::now() < deadline,
                "keyboard never became {}",
                if want { "free" } else { "grabbed" }
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Xvfb {
    /// SIGTERM, so that Xvfb removes its lock file and socket.
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
