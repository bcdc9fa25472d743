//! How the broker asks the C allocator to give large buffers back.
//!
//! Every password check (argon2id, [`crate::accounts`]) allocates
//! [`ARGON2_BLOCK_BYTES`] and frees it a few milliseconds later. glibc
//! serves an allocation that large with its own `mmap` and unmaps it on
//! `free`, but the first such `free` also raises its *dynamic* mmap
//! threshold to the freed size, so every later check takes its 19 MiB from
//! the calling thread's malloc arena and leaves it resident there. A broker
//! went from 15 MiB to 114 MiB after 45 logins that way (docs/benchmarks.md,
//! "Web console", finding 6). Setting the threshold explicitly turns the
//! dynamic adjustment off: large buffers stay `mmap`ed and go back to the
//! kernel when freed, at the cost of one `mmap`/`munmap` pair per check
//! (microseconds, against the check's tens of milliseconds).

/// argon2id's memory with the default parameters the broker uses: 19 MiB.
pub const ARGON2_BLOCK_BYTES: usize = 19 * 1024 * 1024;

/// Allocations at least this large get their own mapping and are returned
/// to the kernel on `free`. glibc's own starting value (128 KiB), pinned so
/// that it no longer grows.
pub const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// Pins the allocator's mmap threshold (glibc on Linux; elsewhere a no-op).
/// Idempotent; returns whether the allocator accepted the setting.
#[allow(unsafe_code)] // one FFI call, see the SAFETY note
pub fn return_large_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes the allocator's tuning parameters;
        // it is thread-safe in glibc (it takes the arena locks) and has no
        // pointer arguments.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads this process's resident memory (VmRSS) in bytes.
    fn rss_bytes() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs is mounted");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS is in /proc/self/status");
        let kib: usize = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("VmRSS is a number of kB");
        kib * 1024
    }

    /// Set in the child process that measures alone (see below).
    const ALONE_ENV: &str = "LIFELINE_MEMORY_TEST_ALONE";

    /// Resident memory is one figure for the whole process: another test
    /// freeing or touching megabytes on another thread at the same moment
    /// (the argon2 tests do) makes the measurement meaningless. So the test
    /// runs itself again in a child process, alone (`--exact`, one thread).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_freed_argon2_sized_buffer_leaves_no_resident_memory() {
        if std::env::var_os(ALONE_ENV).is_none() {
            let name = "memory::tests::a_freed_argon2_sized_buffer_leaves_no_resident_memory";
            let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args(["--exact", name, "--test-threads=1", "--nocapture"])
                .env(ALONE_ENV, "1")
                .output()
                .expect("the test binary runs again");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("1 passed"),
                "measured alone: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        assert!(return_large_buffers(), "glibc accepts the threshold");
        // Two rounds: the second is the one the dynamic threshold used to
        // keep in the arena.
        for _ in 0..2 {
            let buf = vec![1u8; ARGON2_BLOCK_BYTES];
            std::hint::black_box(&buf);
            drop(buf);
        }
        let before = rss_bytes();
        let buf = vec![1u8; ARGON2_BLOCK_BYTES];
        std::hint::black_box(&buf);
        let during = rss_bytes();
        drop(buf);
        let after = rss_bytes();
        assert!(
            during >= before + ARGON2_BLOCK_BYTES / 2,
            "the buffer was resident while in use"
        );
        assert!(
            after + ARGON2_BLOCK_BYTES / 2 <= during,
            "freeing it gave it back: before {before}, during {during}, after {after}"
        );
    }
}
