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

/// Another account's identity that spawned processes take (run-as login):
/// user and group IDs, supplementary groups, home, shell and the
/// environment its PAM session set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: std::path::PathBuf,
    pub shell: std::path::PathBuf,
    /// From the PAM session (`pam_getenvlist`), e.g. `LANG`, `MAIL`.
    pub env: Vec<(String, String)>,
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
    run_streaming_as(program, args, cwd, timeout, output_limit, None, on_line)
}

/// Sets the child's environment: minimal for the agent's own identity; the
/// user's home, names, shell and PAM environment for a run-as identity.
fn environment(cmd: &mut Command, cwd: &Path, identity: Option<&Identity>) {
    cmd.env_clear();
    match identity {
        None => {
            cmd.env("HOME", cwd).env("TMPDIR", cwd);
        }
        Some(id) => {
            for (k, v) in &id.env {
                cmd.env(k, v);
            }
            cmd.env("HOME", &id.home)
                .env("USER", &id.user)
                .env("LOGNAME", &id.user)
                .env("SHELL", &id.shell)
                .env("TMPDIR", "/tmp");
            drop_privileges(cmd, id);
        }
    }
    cmd.env("PATH", SAFE_PATH);
}

/// Makes the child take `id`'s groups, group and user before it executes
/// (after the working folder was entered, so the folder's parents need not
/// be open to the user).
#[allow(unsafe_code)]
fn drop_privileges(cmd: &mut Command, id: &Identity) {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let (uid, gid) = (Uid::from_raw(id.uid), Gid::from_raw(id.gid));
    // SAFETY: the closure runs in the forked child before exec and only
    // makes three system calls (setgroups, setgid, setuid) on data prepared
    // before the fork: no allocation, no locks, async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            setgroups(&groups)?;
            setgid(gid)?;
            setuid(uid)?;
            Ok(())
        });
    }
}

/// Like [`run_streaming`], as `identity` when given.
pub fn run_streaming_as(
    program: &str,
    args: &[String],
    cwd: &Path,
    timeout: Duration,
    output_limit: usize,
    identity: Option<&Identity>,
    on_line: &mut dyn FnMut(&str, &str),
) -> Result<ProcessOutput, String> {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd);
    environment(&mut cmd, cwd, identity);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that everything it starts can be ended.
        .process_group(0)
        .spawn()
        .map_err(|e| match identity {
            Some(id) => format!("cannot start {program:?} as {}: {e}", id.user),
            None => format!("cannot start {program:?}: {e}"),
        })?;
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
