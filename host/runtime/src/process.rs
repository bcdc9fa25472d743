//! Spawning a process for a plugin: inside its temporary folder, with a
//! minimal environment, no standard input, bounded output and a timeout.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::cgroup;
use crate::host::ProcessOutput;

/// How often a running child is checked for exit or timeout.
pub const POLL_EVERY: Duration = Duration::from_millis(5);
/// Longest wait, after the spawned tree was killed, for its output pipes
/// to close: a process that escaped the kill (no cgroup v2, see
/// [`crate::cgroup`]) cannot hold the call longer than this.
pub const PIPE_DRAIN_WAIT: Duration = Duration::from_secs(2);
/// `PATH` given to spawned processes.
pub const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Output of one pipe, shared with its reader thread: what was read is
/// kept even when the reader is abandoned.
type Captured = Arc<Mutex<Vec<u8>>>;

/// Reads a pipe line by line: each line goes to `lines` as it arrives, and
/// the whole (up to `limit` bytes) is kept in the returned buffer.
fn capture(
    r: impl Read + Send + 'static,
    limit: usize,
    stream: &'static str,
    lines: mpsc::Sender<(&'static str, String)>,
) -> (Captured, std::thread::JoinHandle<()>) {
    let all = Captured::default();
    let kept = Arc::clone(&all);
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(r.take(limit as u64));
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            kept.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            let _ = lines.send((stream, text));
            line.clear();
        }
    });
    (all, reader)
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
    let job = Job {
        program,
        args,
        cwd,
        timeout,
        output_limit,
        identity: None,
    };
    run_job(&job, on_line, &|| false)
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

/// What to run, where, as whom and under which limits.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub cwd: &'a Path,
    pub timeout: Duration,
    /// Bytes kept of each of stdout and stderr.
    pub output_limit: usize,
    /// Run as this account (run-as login); `None`: the agent's own.
    pub identity: Option<&'a Identity>,
}

/// Where the spawned tree lives, so that all of it can be ended.
enum Tree {
    /// Its own cgroup: every descendant, even one that called `setsid`.
    Cgroup(cgroup::Group),
    /// Fallback without a writable cgroup v2: its own process group.
    ProcessGroup,
}

impl Tree {
    fn new() -> Tree {
        match cgroup::Group::create() {
            Ok(g) => Tree::Cgroup(g),
            Err(e) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(
                        "spawned processes are ended by process group only (a process that calls setsid can outlive its call): {e}"
                    )
                });
                Tree::ProcessGroup
            }
        }
    }

    /// Ends every process of the tree.
    fn kill(&self, child: &Child) {
        match self {
            Tree::Cgroup(g) => g.kill(),
            Tree::ProcessGroup => {}
        }
        kill_group(child.id());
    }
}

/// Starts the job's child in `tree`, with its environment and identity.
#[allow(unsafe_code)]
fn start(job: &Job, tree: &Tree) -> Result<Child, String> {
    let mut cmd = Command::new(job.program);
    cmd.args(job.args).current_dir(job.cwd);
    if let Tree::Cgroup(g) = tree {
        let join = g
            .joiner()
            .map_err(|e| format!("cannot prepare the cgroup {}: {e}", g.path().display()))?;
        // SAFETY: `join` makes one write(2) on a descriptor opened before
        // the fork: async-signal-safe, no allocation. It runs first, before
        // privileges are dropped (registered later in `environment`).
        unsafe {
            cmd.pre_exec(join);
        }
    }
    environment(&mut cmd, job.cwd, job.identity);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group too, so that an ordinary background job is
        // ended even without a cgroup.
        .process_group(0)
        .spawn()
        .map_err(|e| match job.identity {
            Some(id) => format!("cannot start {:?} as {}: {e}", job.program, id.user),
            None => format!("cannot start {:?}: {e}", job.program),
        })
}

/// Runs `job`, handing each output line to `on_line(stream, line)` as it
/// arrives. At its timeout, or when `stop()` says so (the session ended),
/// the whole tree is killed; when the child exits, whatever it left running
/// is killed too. The call returns without waiting for pipes that an
/// escaped process still holds (at most [`PIPE_DRAIN_WAIT`]).
pub fn run_job(
    job: &Job,
    on_line: &mut dyn FnMut(&str, &str),
    stop: &dyn Fn() -> bool,
) -> Result<ProcessOutput, String> {
    let tree = Tree::new();
    let mut child = start(job, &tree)?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (out, out_reader) = capture(stdout, job.output_limit, "stdout", tx.clone());
    let (err, err_reader) = capture(stderr, job.output_limit, "stderr", tx);
    let deadline = Instant::now() + job.timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline || stop() => {
                timed_out = true;
                tree.kill(&child);
                break child.wait().map_err(|e| e.to_string())?;
            }
            Ok(None) => {
                if let Ok((stream, line)) = rx.recv_timeout(POLL_EVERY) {
                    on_line(stream, &line);
                }
            }
            Err(e) => {
                tree.kill(&child);
                let _ = child.wait();
                return Err(format!("waiting for {:?}: {e}", job.program));
            }
        }
    };
    // Whatever it left running (background jobs) ends with it: nothing stays
    // behind, and its pipes close.
    tree.kill(&child);
    drop(tree);
    let drain_until = Instant::now() + PIPE_DRAIN_WAIT;
    while !(out_reader.is_finished() && err_reader.is_finished()) && Instant::now() < drain_until {
        if let Ok((stream, line)) = rx.recv_timeout(POLL_EVERY) {
            on_line(stream, &line);
        }
    }
    for (stream, line) in rx.try_iter() {
        on_line(stream, &line);
    }
    let taken = |c: &Captured| std::mem::take(&mut *c.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(ProcessOutput {
        exit_code: status.code().unwrap_or(-1),
        stdout: taken(&out),
        stderr: taken(&err),
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
