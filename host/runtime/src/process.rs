//! Spawning a process for a plugin: inside its temporary folder, with a
//! minimal environment, no standard input, bounded output and a timeout.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::host::ProcessOutput;

/// How often a running child is checked for exit or timeout.
pub const POLL_EVERY: Duration = Duration::from_millis(5);
/// `PATH` given to spawned processes.
pub const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Reads a pipe line by line: each line goes to `lines` as it arrives, and
/// the whole (up to `limit` bytes) is returned at the end.
fn capture(
    r: impl Read + Send + 'static,
    limit: usize,
    stream: &'static str,
    lines: mpsc::Sender<(&'static str, String)>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut reader = BufReader::new(r.take(limit as u64));
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            all.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            let _ = lines.send((stream, text));
            line.clear();
        }
        all
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
    run_streaming(program, args, cwd, timeout, output_limit, &mut |_, _| {})
}

/// Like [`run`], handing each output line to `on_line(stream, line)` as
/// it arrives (`stream` is "stdout" or "stderr").
pub fn run_streaming(
    program: &str,
    args: &[String],
    cwd: &Path,
    timeout: Duration,
    output_limit: usize,
    on_line: &mut dyn FnMut(&str, &str),
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
        // Its own process group, so that everything it starts can be ended.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {program:?}: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let out = capture(
        child.stdout.take().expect("stdout is piped"),
        output_limit,
        "stdout",
        tx.clone(),
    );
    let err = capture(
        child.stderr.take().expect("stderr is piped"),
        output_limit,
        "stderr",
        tx,
    );
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group(child.id());
                break child.wait().map_err(|e| e.to_string())?;
            }
            Ok(None) => {
                if let Ok((stream, line)) = rx.recv_timeout(POLL_EVERY) {
                    on_line(stream, &line);
                }
            }
            Err(e) => return Err(format!("waiting for {program:?}: {e}")),
        }
    };
    // Whatever it left running (background jobs) ends with it: nothing stays
    // behind, and its pipes close.
    kill_group(child.id());
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    for (stream, line) in rx.try_iter() {
        on_line(stream, &line);
    }
    Ok(ProcessOutput {
        exit_code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        timed_out,
    })
}

/// Sends SIGKILL to the process group `pgid`.
fn kill_group(pgid: u32) {
    if let Ok(pid) = i32::try_from(pgid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
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
