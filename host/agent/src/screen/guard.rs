//! The input guard: what the operator holds down on the customer's display
//! is released even when the agent dies.
//!
//! XTest presses outlive the client that made them: a key or button held
//! when the agent is killed stays down, and a key autorepeats, for the
//! customer until they press it themselves (found by the fault test
//! `tests/e2e/faults/kill_screen.rs`). The agent cannot clean up after a
//! `kill -9`, so a small process of its own program does: `lifeline agent
//! input-guard --display D`, started with the first injected input, in a
//! process group of its own (a Ctrl-C meant for the agent does not reach
//! it). After each batch the agent writes what is held on the guard's
//! standard input, one line (`k50 b1`: keycodes and buttons); when that
//! input closes — the share ended, or the agent is gone — the guard
//! releases what the last line held (nothing after a normal end) and exits.

use std::io::{BufRead, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::protocol::xtest::ConnectionExt as _;

/// Longest wait for the guard to exit when a share ends normally (it has
/// nothing to release then); after it, it is killed.
pub const GUARD_EXIT_WAIT: Duration = Duration::from_secs(2);
/// Longest line the guard reads (every keycode and button held fits).
pub const MAX_GUARD_LINE_BYTES: usize = 4096;

// X core event codes FakeInput takes.
const KEY_RELEASE: u8 = 3;
const BUTTON_RELEASE: u8 = 5;

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// The program the guard runs (the `lifeline` executable, set by the
/// command line at start). Without it — the agent used as a library — no
/// guard is started.
pub fn set_program(program: PathBuf) {
    let _ = PROGRAM.set(program);
}

/// The agent's side: a running guard.
pub struct Guard {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Guard {
    /// Starts a guard for `display`; `None` without a program or when it
    /// cannot start (logged: input still works, unguarded).
    pub fn start(display: &str) -> Option<Guard> {
        let program = PROGRAM.get()?;
        let started = Command::new(program)
            .args(["agent", "input-guard", "--display", display])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn();
        match started {
            Ok(mut child) => {
                let stdin = child.stdin.take();
                Some(Guard { child, stdin })
            }
            Err(e) => {
                tracing::warn!("input guard not started ({}): {e}", program.display());
                None
            }
        }
    }

    /// Tells the guard what is held now.
    pub fn held(&mut self, keys: &[u8], buttons: &[u8]) {
        let words: Vec<String> = keys
            .iter()
            .map(|k| format!("k{k}"))
            .chain(buttons.iter().map(|b| format!("b{b}")))
            .collect();
        let line = format!("{}\n", words.join(" "));
        if let Some(s) = &mut self.stdin
            && s.write_all(line.as_bytes())
                .and_then(|()| s.flush())
                .is_err()
        {
            tracing::warn!("the input guard stopped: held input is not guarded");
            self.stdin = None;
        }
    }
}

impl Drop for Guard {
    /// Closes its input (it releases what was held last) and reaps it.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + GUARD_EXIT_WAIT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The keycodes and buttons of a line `k50 k62 b1`.
fn parse(line: &str) -> (Vec<u8>, Vec<u8>) {
    let (mut keys, mut buttons) = (Vec::new(), Vec::new());
    for w in line.split_whitespace() {
        if let Some(k) = w.strip_prefix('k').and_then(|n| n.parse().ok()) {
            keys.push(k);
        } else if let Some(b) = w.strip_prefix('b').and_then(|n| n.parse().ok()) {
            buttons.push(b);
        }
    }
    (keys, buttons)
}

/// The guard's side (`lifeline agent input-guard`): reads what is held
/// until its input closes, then releases it on `display`.
pub fn run(display: &str) -> Result<(), String> {
    let mut last = String::new();
    let mut input = std::io::stdin().lock();
    loop {
        let mut line = String::new();
        let read = (&mut input)
            .take(MAX_GUARD_LINE_BYTES as u64)
            .read_line(&mut line);
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => last = line,
        }
    }
    let (keys, buttons) = parse(&last);
    if keys.is_empty() && buttons.is_empty() {
        return Ok(());
    }
    let fail = |e: &dyn std::fmt::Display| format!("cannot release held input on {display}: {e}");
    let (conn, screen) = x11rb::connect(Some(display)).map_err(|e| fail(&e))?;
    let root = conn.setup().roots[screen].root;
    let release = |kind: u8, detail: u8| {
        conn.xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, root, 0, 0, 0)
            .map(|_| ())
            .map_err(|e| fail(&e))
    };
    for k in keys {
        release(KEY_RELEASE, k)?;
    }
    for b in buttons {
        release(BUTTON_RELEASE, b)?;
    }
    // A round trip: the server has it all before the guard exits.
    conn.get_input_focus()
        .map_err(|e| fail(&e))?
        .reply()
        .map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_name_keycodes_and_buttons() {
        assert_eq!(super::parse("k50 k62 b1 x9 k999"), (vec![50, 62], vec![1]));
        assert_eq!(super::parse(""), (vec![], vec![]));
    }
}
