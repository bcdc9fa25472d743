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
//!
//! A weighted cost can exceed a bucket's whole capacity (a connection ID
//! costs the number of live codes), so while one attempt holds its tokens
//! the buckets are in debt and any attempt beside it would be refused,
//! right secrets included: under load (200 customers typing their codes at
//! once) most right codes were refused as "too many wrong connection IDs".
//! [`GuessLimiter::check_weighted`] therefore runs the take, the check and
//! the refund of a right secret as one step, one attempt at a time: parallel
//! attempts still cannot overrun the budget, and an attempt is refused only
//! for what earlier *wrong* attempts spent.

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
    /// Held through a whole [`GuessLimiter::check_weighted`].
    checking: Mutex<()>,
    /// Told of every spend and refund (`[cluster]`: the other nodes apply
    /// them too, so the budget is the organisation's, not each node's).
    observer: std::sync::OnceLock<Observer>,
}

/// What a limiter tells of its spends (positive) and refunds (negative),
/// by source key.
pub type Observer = Box<dyn Fn(IpAddr, f64) + Send + Sync>;

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
            checking: Mutex::new(()),
            observer: std::sync::OnceLock::new(),
        }
    }

    /// Sets the observer of this limiter's spends and refunds (once).
    pub fn observe(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    /// Applies a spend (`delta` > 0) or refund (< 0) another node made:
    /// taken from both buckets without a check (they may go into debt), so
    /// the next attempt here is judged against the whole cluster's spending.
    pub fn apply_elsewhere(&self, source: IpAddr, delta: f64) {
        let key = source_key(source);
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("limiter lock is never poisoned");
        let spec = self.per_source;
        let mut src = *inner
            .per_source
            .get(&key)
            .unwrap_or(&Bucket::full(&spec, now));
        src.refill(&spec, now);
        src.tokens = (src.tokens - delta).min(spec.capacity);
        inner.global.refill(&self.global, now);
        inner.global.tokens = (inner.global.tokens - delta).min(self.global.capacity);
        if inner.per_source.len() < MAX_TRACKED_SOURCES || inner.per_source.contains_key(&key) {
            inner.per_source.insert(key, src);
        }
    }

    fn tell(&self, source: IpAddr, delta: f64) {
        if let Some(observer) = self.observer.get() {
            observer(source_key(source), delta);
        }
    }

    /// Takes `cost` tokens as [`Self::acquire_weighted`] does, runs `check`
    /// (the secret's check, synchronous and short: a database lookup) and
    /// gives the tokens back when it succeeds, all while no other
    /// `check_weighted` of this limiter runs. `Err(Limited)`: refused
    /// before the check; otherwise the check's own result.
    pub fn check_weighted<T, E>(
        &self,
        source: IpAddr,
        cost: f64,
        check: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, Limited> {
        let _one_at_a_time = self.checking.lock().expect("check lock is never poisoned");
        self.acquire_weighted(source, cost)?;
        let checked = check();
        if checked.is_ok() {
            self.refund_weighted(source, cost);
        }
        Ok(checked)
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
        drop(inner);
        self.tell(source, cost);
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
        drop(inner);
        self.tell(source, -cost);
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

    /// Found by the load benchmark: with a cost above the buckets'
    /// capacity, a right secret checked while another check holds its
    /// tokens was refused. `check_weighted` runs one check at a time.
    #[test]
    fn a_right_secret_is_not_refused_beside_another_check_in_flight() {
        let l = std::sync::Arc::new(GuessLimiter::new(spec(5.0, 60), spec(25.0, 60)));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let (inside_tx, inside_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let l = l.clone();
            std::thread::spawn(move || {
                l.check_weighted(a, 200.0, || {
                    inside_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    Ok::<_, ()>(())
                })
            })
        };
        inside_rx.recv().unwrap();
        // The old way: beside the check in flight, a right code is refused.
        assert!(l.acquire_weighted(a, 200.0).is_err());
        let second = {
            let l = l.clone();
            std::thread::spawn(move || l.check_weighted(a, 200.0, || Ok::<_, ()>(())))
        };
        go_tx.send(()).unwrap();
        assert_eq!(first.join().unwrap(), Ok(Ok(())));
        assert_eq!(second.join().unwrap(), Ok(Ok(())));
        // A wrong one is paid for: the next attempt is refused.
        assert_eq!(l.check_weighted(a, 200.0, || Err::<(), _>(())), Ok(Err(())));
        assert!(l.check_weighted(a, 1.0, || Ok::<_, ()>(())).is_err());
    }
}
