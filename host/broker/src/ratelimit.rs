//! Token-bucket rate limits for guessable secrets: connection IDs, short
//! codes and operator passwords.
//!
//! A [`GuessLimiter`] keeps one bucket per source and one global bucket. An
//! attempt takes a token from both *before* the secret is checked (so
//! parallel attempts cannot overrun the limit) and gives them back when the
//! attempt succeeds: only failures are paid for.
//!
//! A *source* is an IPv4 address, or the /64 prefix of an IPv6 address
//! ([`source_key`]): one IPv6 subscriber usually holds a whole /64 (often a
//! /56 or /48), so per-address buckets would give him 2^64 fresh budgets.
//!
//! Weighted attempts ([`GuessLimiter::acquire_weighted`]) take `cost` tokens
//! and may push a bucket into debt; a bucket in debt refuses until it has
//! earned back at least one token. This lets the cost of a wrong guess
//! follow its risk (see `invitations`).

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

/// Bits of an IPv6 address that name one source (a subscriber's /64).
pub const IPV6_SOURCE_PREFIX_BITS: u32 = 64;

/// The bucket key of a source address: IPv4 addresses (also IPv4-mapped
/// IPv6 ones) as they are, IPv6 addresses cut to their /64 prefix.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = u128::MAX << (128 - IPV6_SOURCE_PREFIX_BITS);
                IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
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
        self.acquire_weighted(source, 1.0)
    }

    /// Gives back the attempt taken by a successful `acquire`.
    pub fn refund(&self, source: IpAddr) {
        self.refund_weighted(source, 1.0);
    }

    /// Takes `cost` tokens from `source` and from the global budget when both
    /// hold at least one token; either may go into debt.
    pub fn acquire_weighted(&self, source: IpAddr, cost: f64) -> Result<(), Limited> {
        self.acquire_at(source, cost, Instant::now())
    }

    /// [`Self::acquire_weighted`] at a given time (simulations in tests).
    pub fn acquire_at(&self, source: IpAddr, cost: f64, now: Instant) -> Result<(), Limited> {
        let key = source_key(source);
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
            .get(&key)
            .unwrap_or(&Bucket::full(&spec, now));
        src.refill(&spec, now);
        inner.global.refill(&self.global, now);
        if src.tokens < 1.0 || inner.global.tokens < 1.0 {
            let retry_after = src.wait(&spec).max(inner.global.wait(&self.global));
            return Err(Limited { retry_after });
        }
        src.tokens -= cost;
        inner.global.tokens -= cost;
        inner.per_source.insert(key, src);
        Ok(())
    }

    /// Gives back the `cost` taken by a successful `acquire_weighted`.
    pub fn refund_weighted(&self, source: IpAddr, cost: f64) {
        let key = source_key(source);
        let mut inner = self.inner.lock().expect("limiter lock is never poisoned");
        inner.global.tokens = (inner.global.tokens + cost).min(self.global.capacity);
        let cap = self.per_source.capacity;
        if let Some(b) = inner.per_source.get_mut(&key) {
            b.tokens = (b.tokens + cost).min(cap);
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

    #[test]
    fn ipv6_sources_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
        // One /64 spends one per-source budget, whatever addresses it uses.
        let l = GuessLimiter::new(spec(2.0, 60), spec(100.0, 60));
        assert!(l.acquire(a).is_ok());
        assert!(l.acquire(b).is_ok());
        assert!(l.acquire("2001:db8:1:2::77".parse().unwrap()).is_err());
        assert!(l.acquire(c).is_ok());
    }

    #[test]
    fn weighted_cost_goes_into_debt_and_refunds() {
        let l = GuessLimiter::new(spec(100.0, 1), spec(10.0, 10));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(l.acquire_at(a, 25.0, t0).is_ok());
        // The global bucket is 15 tokens in debt: 16 refills until one token.
        let lim = l.acquire_at(a, 1.0, t0).unwrap_err();
        assert_eq!(lim.retry_after, Duration::from_secs(160));
        assert!(l.acquire_at(a, 1.0, t0 + Duration::from_secs(159)).is_err());
        assert!(l.acquire_at(a, 1.0, t0 + Duration::from_secs(161)).is_ok());
        l.refund_weighted(a, 1.0);
        assert!(l.acquire_at(a, 1.0, t0 + Duration::from_secs(161)).is_ok());
    }
}
