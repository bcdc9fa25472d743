//! A private X server (Xvfb) for this module's tests, on a free display
//! number, stopped when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Display numbers the tests try (the e2e suite uses 70..120).
const FIRST_DISPLAY: u32 = 140;
const DISPLAYS: u32 = 100;
/// How long a starting Xvfb has to open its socket.
const START_WAIT: Duration = Duration::from_secs(15);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// An Xvfb server, 1280x800 at 24 bits, with MIT-SHM.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 800;

impl Xvfb {
    pub fn start() -> Xvfb {
        let offset = std::process::id() % DISPLAYS;
        for _ in 0..DISPLAYS {
            let n = FIRST_DISPLAY + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % DISPLAYS;
            let socket = format!("/tmp/.X11-unix/X{n}");
            if in_use(n) {
                continue;
            }
            let child = Command::new("Xvfb")
                .args([
                    &format!(":{n}"),
                    "-screen",
                    "0",
                    &format!("{WIDTH}x{HEIGHT}x24"),
                    "+extension",
                    "MIT-SHM",
                    "-nolisten",
                    "tcp",
                    // No server reset when the last client goes (the
                    // readiness probe is the first).
                    "-noreset",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb is installed by scripts/setup (package xvfb)");
            let mut x = Xvfb {
                child,
                display: format!(":{n}"),
            };
            if x.wait_ready(&socket) {
                return x;
            }
        }
        panic!("could not start Xvfb on any display :{FIRST_DISPLAY}..");
    }

    /// Waits (bounded) for the socket and a first connection; false when
    /// this Xvfb lost the display to another.
    fn wait_ready(&mut self, socket: &str) -> bool {
        let deadline = Instant::now() + START_WAIT;
        while Instant::now() < deadline {
            if Path::new(socket).exists() && x11rb::connect(Some(&self.display)).is_ok() {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// Whether display `n` has a live server (Xvfb itself replaces the lock
/// and socket of a dead one).
fn in_use(n: u32) -> bool {
    let Ok(lock) = std::fs::read_to_string(format!("/tmp/.X{n}-lock")) else {
        return false;
    };
    match lock.trim().parse::<u32>() {
        Ok(pid) => Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => true,
    }
}

impl Drop for Xvfb {
    /// SIGTERM, so that Xvfb removes its lock and socket; SIGKILL when it
    /// does not end within a second.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
