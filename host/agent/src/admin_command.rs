//! Running a command the agent's admin names in `[plugins.commands]`
//! (`command.admin`), e.g. the license server's reload: as the agent, no
//! input, both pipes drained with a cap, stopped after a time limit.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lifeline_runtime::host::ProcessOutput;

/// Longest time an admin command may run before it is killed.
pub const ADMIN_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of each pipe (stdout, stderr) kept in memory; the rest is read
/// and dropped. Both pipes are drained while the command runs, so a chatty
/// command never blocks on a full pipe (64 KiB on Linux) and a hostile one
/// cannot fill the agent's memory.
pub const MAX_CAPTURE_BYTES: usize = 16 * 1024;
/// How long output is still collected after the command exited (a child it
/// left in the background may hold the pipes open).
pub const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// Output read from one pipe so far (at most [`MAX_CAPTURE_BYTES`]).
type Captured = Arc<Mutex<Vec<u8>>>;

/// Reads `pipe` to its end on a thread, keeping the first bytes.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> (Captured, JoinHandle<()>) {
    let kept = Captured::default();
    let buf = Arc::clone(&kept);
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
            let room = MAX_CAPTURE_BYTES.saturating_sub(b.len());
            b.extend_from_slice(&chunk[..n.min(room)]);
        }
    });
    (kept, reader)
}

/// A pipe's bytes, waiting until `until` at most for it to close.
fn collect((kept, reader): (Captured, JoinHandle<()>), until: Instant) -> Vec<u8> {
    while !reader.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let b = kept.lock().unwrap_or_else(|p| p.into_inner());
    b.clone()
}

/// Runs `argv`; a program that cannot start is an error, a failing one is
/// an output with its exit code.
pub fn run(argv: &[String]) -> Result<ProcessOutput, String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let started = Instant::now();
    let (exit_code, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(s)) => break (s.code().unwrap_or(-1), false),
            Ok(None) if started.elapsed() > ADMIN_COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break (-1, true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    let until = Instant::now() + OUTPUT_GRACE;
    Ok(ProcessOutput {
        exit_code,
        stdout: out.map(|p| collect(p, until)).unwrap_or_default(),
        stderr: err.map(|p| collect(p, until)).unwrap_or_default(),
        timed_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_exit_code_and_a_missing_program() {
        let o = run(&[
            "/bin/sh".into(),
            "-c".into(),
            "echo out; echo err >&2; exit 3".into(),
        ])
        .expect("sh runs");
        assert_eq!((o.exit_code, o.timed_out), (3, false));
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
        let e = run(&["/nonexistent/reload".into()]).unwrap_err();
        assert!(e.contains("cannot start /nonexistent/reload"), "{e}");
    }

    #[test]
    fn a_chatty_command_is_capped_not_blocked() {
        let o = run(&[
            "/bin/sh".into(),
            "-c".into(),
            "head -c 1000000 /dev/zero".into(),
        ])
        .expect("sh runs");
        assert_eq!(o.exit_code, 0);
        assert_eq!(o.stdout.len(), MAX_CAPTURE_BYTES);
    }
}
