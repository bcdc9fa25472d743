//! Spawning a process for a plugin: inside its temporary folder, with a
//! minimal environment, no standard input, bounded output and a timeout.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::ProcessOutput;

/// How often a running child is checked for exit or timeout.
pub const POLL_EVERY: Duration = Duration::from_millis(5);
/// `PATH` given to spawned processes.
pub const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn capture(r: impl Read + Send + 'static, limit: usize) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.take(limit as u64).read_to_end(&mut buf);
        buf
    })
}

/// Runs `program args…` in `cwd`; kills it after `timeout`.
pub fn run(
    program: &str,
    args: &[String],
    cwd: &Path,
    timeout: Duration,
    output_limit: usize,
) -> Result<ProcessOutput, String> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("HOME", cwd)
        .env("TMPDIR", cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {program:?}: {e}"))?;
    let out = capture(child.stdout.take().expect("stdout is piped"), output_limit);
    let err = capture(child.stderr.take().expect("stderr is piped"), output_limit);
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().map_err(|e| e.to_string())?;
            }
            Ok(None) => std::thread::sleep(POLL_EVERY),
            Err(e) => return Err(format!("waiting for {program:?}: {e}")),
        }
    };
    Ok(ProcessOutput {
        exit_code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_folder_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let o = run(
            "sh",
            &["-c".into(), "pwd; echo err >&2; exit 3".into()],
            dir.path(),
            Duration::from_secs(10),
            1024,
        )
        .unwrap();
        assert_eq!(o.exit_code, 3);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            dir.path().canonicalize().unwrap().display().to_string()
        );
        assert_eq!(o.stderr, b"err\n");
        let o = run(
            "sleep",
            &["30".into()],
            dir.path(),
            Duration::from_millis(100),
            1024,
        )
        .unwrap();
        assert!(o.timed_out);
        assert!(
            run(
                "/no/such/program",
                &[],
                dir.path(),
                Duration::from_secs(1),
                10
            )
            .is_err()
        );
    }
}
