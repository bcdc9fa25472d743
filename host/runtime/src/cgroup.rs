//! Containing a spawned process tree in a cgroup of its own (cgroup v2).
//!
//! A process group is not a container: a child that calls `setsid` (or
//! `setpgid`) leaves it, escapes the kill at the timeout, keeps the output
//! pipes open and outlives the session. A cgroup cannot be left by an
//! unprivileged process, and `cgroup.kill` ends every member at once.
//!
//! The groups are created beneath the agent's own cgroup (read from
//! `/proc/self/cgroup`, under the cgroup2 mount of `/proc/self/mountinfo`);
//! the child joins its group before it runs anything (`pre_exec`, before it
//! drops privileges). Without a writable cgroup v2 hierarchy, spawning
//! falls back to the process-group kill (see `process`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest wait for a killed group to empty before its folder is removed
/// (a killed process only has to run its exit; this bounds a stuck kernel
/// task, not a process that resists).
pub const EMPTY_WAIT: Duration = Duration::from_secs(5);
/// How often a killed group is checked for being empty.
pub const EMPTY_POLL: Duration = Duration::from_millis(5);
/// Prefix of the cgroups the agent creates (then its process ID and a
/// counter), so an administrator can tell them apart.
pub const GROUP_PREFIX: &str = "lifeline-spawn-";
/// Most rounds of "kill every member" on kernels without `cgroup.kill`
/// (each round kills what the previous round's members had forked).
pub const KILL_ROUNDS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup v2 hierarchy is mounted (none in /proc/self/mountinfo)")]
    NotMounted,
    #[error("this process has no cgroup v2 entry (\"0::\" in /proc/self/cgroup)")]
    NoOwnGroup,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup v2 is not usable here: {0}")]
    Unavailable(String),
    #[error("cannot create the cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The agent's own cgroup folder in the cgroup2 hierarchy.
fn own_group() -> Result<PathBuf, CgroupError> {
    let mountinfo = read(Path::new("/proc/self/mountinfo"))?;
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER"
    let mount = mountinfo
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2")).then(|| left.split(' ').nth(4))?
        })
        .ok_or(CgroupError::NotMounted)?;
    let cgroup = read(Path::new("/proc/self/cgroup"))?;
    let own = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or(CgroupError::NoOwnGroup)?;
    Ok(Path::new(mount).join(own.trim_start_matches('/')))
}

fn parent() -> Result<&'static Path, &'static CgroupError> {
    static PARENT: OnceLock<Result<PathBuf, CgroupError>> = OnceLock::new();
    PARENT.get_or_init(own_group).as_ref().map(PathBuf::as_path)
}

/// Kills and removes the groups an agent that is gone left behind (it
/// crashed while a process ran): their folder name carries its process ID.
pub fn sweep_stale() {
    let Ok(parent) = parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(owner) = name
            .strip_prefix(GROUP_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists() {
            tracing::warn!(
                "ending the processes a stopped agent left in {}",
                e.path().display()
            );
            // Opening cgroup.procs only fails for a folder already gone.
            if let Ok(procs) = std::fs::OpenOptions::new()
                .write(true)
                .open(e.path().join("cgroup.procs"))
            {
                drop(Group {
                    dir: e.path(),
                    procs,
                });
            }
        }
    }
}

/// One spawned tree's cgroup: killed and removed when dropped.
pub struct Group {
    dir: PathBuf,
    /// `cgroup.procs`, opened before the fork: the child joins by writing
    /// "0" (itself) to it, one system call.
    procs: File,
}

impl Group {
    /// Creates a fresh, empty group beneath the agent's own.
    pub fn create() -> Result<Group, CgroupError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let parent = parent().map_err(|e| CgroupError::Unavailable(e.to_string()))?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("{GROUP_PREFIX}{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|source| CgroupError::Create {
            path: dir.clone(),
            source,
        })?;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"));
        match procs {
            Ok(procs) => Ok(Group { dir, procs }),
            Err(source) => {
                let _ = std::fs::remove_dir(&dir);
                Err(CgroupError::Create { path: dir, source })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// What the child runs before `exec` to join the group: one `write(2)`
    /// on a descriptor opened before the fork (no allocation, no lock).
    pub fn joiner(
        &self,
    ) -> std::io::Result<impl FnMut() -> std::io::Result<()> + Send + Sync + 'static> {
        let procs = self.procs.try_clone()?;
        Ok(move || (&procs).write_all(b"0"))
    }

    /// The process IDs in the group.
    pub fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process of the group (`cgroup.kill`; on kernels without
    /// it, each member, round after round).
    pub fn kill(&self) {
        if std::fs::write(self.dir.join("cgroup.kill"), b"1").is_ok() {
            return;
        }
        for _ in 0..KILL_ROUNDS {
            let members = self.members();
            if members.is_empty() {
                return;
            }
            for pid in members {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
        let deadline = Instant::now() + EMPTY_WAIT;
        while !self.members().is_empty() && Instant::now() < deadline {
            std::thread::sleep(EMPTY_POLL);
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!("cannot remove the cgroup {}: {e}", self.dir.display());
        }
    }
}
