//! Token-bucket rate limits for guessable secrets: connection IDs, short
//! codes and operator passwords.
//!
//! A [`GuessLimiter`] keeps one bucket per source address and one global
//! bucket. An attempt takes a token from both *before* the secret is checked
//! (so parallel attempts cannot overrun the limit) and gives them back when
//! the attempt succeeds: only failures are paid for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Source addresses tracked at once; beyond this, buckets that have refilled
/// completely are forgotten (they carry no information).
pub const MAX_TRACKED_SOURCES: usize = 10_000;

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Size and refill rate of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    /// Attempts allowed in a burst.
    pub capacity: f64,
    /// Time to earn one attempt back.
    pub refill_every: Duration,
}

impl Bucket {
    fn full(spec: &BucketSpec, now: Instant) -> Self {
        Bucket {
            tokens: spec.capacity,
            updated: now,
        }
    }

    fn refill(&mut self, spec: &BucketSpec, now: Instant) {
        let earned =
            now.duration_since(self.updated).as_secs_f64() / spec.refill_every.as_secs_f64();
        self.tokens = (self.tokens + earned).min(spec.capacity);
        self.updated = now;
    }

    /// Seconds until one token is available.
    fn wait(&self, spec: &BucketSpec) -> Duration {
        spec.refill_every.mul_f64((1.0 - self.tokens).max(0.0))
    }
}

/// Refused attempt: how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

struct Inner {
    global: Bucket,
    per_source: HashMap<IpAddr, Bucket>,
}

/// Per-source and global limits on failed guesses.
pub struct GuessLimiter {
    pub per_source: BucketSpec,
    pub global: BucketSpec,
    inner: Mutex<Inner>,
}

impl GuessLimiter {
    pub fn new(per_source: BucketSpec, global: BucketSpec) -> Self {
        let now = Instant::now();
        GuessLimiter {
            per_source,
            global,
            inner: Mutex::new(Inner {
                global: Bucket::full(&global, now),
                per_source: HashMap::new(),
            }),
        }
    }

    /// Takes one attempt from `source` and from the global budget.
    pub fn acquire(&self, source: IpAddr) -> Result<(), Limited> {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("limiter lock is never poisoned");
        if inner.per_source.len() >= MAX_TRACKED_SOURCES {
            let spec = self.per_source;
            inner.per_source.retain(|_, b| {
                b.refill(&spec, now);
                b.tokens < spec.capacity
            });
        }
        let spec = self.per_source;
        let mut src = *inner
            .per_source
            .get(&source)
            .unwrap_or(&Bucket::full(&spec, now));
        src.refill(&spec, now);
        inner.global.refill(&self.global, now);
        if src.tokens < 1.0 || inner.global.tokens < 1.0 {
            let retry_after = src.wait(&spec).max(inner.global.wait(&self.global));
            return Err(Limited { retry_after });
        }
        src.tokens -= 1.0;
        inner.global.tokens -= 1.0;
        inner.per_source.insert(source, src);
        Ok(())
    }

    /// Gives back the attempt taken by a successful `acquire`.
    pub fn refund(&self, source: IpAddr) {
        let mut inner = self.inner.lock().expect("limiter lock is never poisoned");
        inner.global.tokens = (inner.global.tokens + 1.0).min(self.global.capacity);
        let cap = self.per_source.capacity;
        if let Some(b) = inner.per_source.get_mut(&source) {
            b.tokens = (b.tokens + 1.0).min(cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(capacity: f64, secs: u64) -> BucketSpec {
        BucketSpec {
            capacity,
            refill_every: Duration::from_secs(secs),
        }
    }

    #[test]
    fn per_source_then_global_limits() {
        let l = GuessLimiter::new(spec(2.0, 60), spec(3.0, 60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.acquire(a).is_ok());
        assert!(l.acquire(a).is_ok());
        let lim = l.acquire(a).unwrap_err();
        assert!(lim.retry_after > Duration::from_secs(50));
        assert!(l.acquire(b).is_ok());
        // Global budget (3) is spent although b has one left.
        assert!(l.acquire(b).is_err());
        // A success gives its attempt back.
        l.refund(b);
        assert!(l.acquire(b).is_ok());
    }
}
