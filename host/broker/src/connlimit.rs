//! Connection caps per source and in all, for each listener.
//!
//! A permit is taken when a connection is accepted, before any TLS work,
//! and released when the connection's task ends. Sources are IPv4
//! addresses, or IPv6 /64 prefixes: one subscriber usually owns a whole /64
//! and could otherwise open connections from 2⁶⁴ addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refusals are logged at most this often (with a count), so that a flood
/// past the caps cannot flood the log too.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Where a connection comes from, as far as limits are concerned: the
/// same key as the guessing limits ([`crate::ratelimit::source_key`]).
pub type Source = IpAddr;

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "too many connections from your address ({limit} at once; broker.limits.max_connections_per_source); close other Lifeline connections or try again later"
    )]
    Source { limit: usize },
    #[error(
        "the broker is at its connection limit ({limit} at once; broker.limits.max_connections); try again later"
    )]
    Full { limit: usize },
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_source: HashMap<Source, usize>,
    /// Refusals not yet logged, and when the last log line was written.
    unlogged: u64,
    logged_at: Option<Instant>,
}

/// Counts open connections of one listener.
pub struct ConnectionLimiter {
    /// Which listener, for log lines.
    name: &'static str,
    max_total: usize,
    max_per_source: usize,
    counts: Mutex<Counts>,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnectionLimiter>,
    source: Source,
}

impl std::fmt::Debug for ConnectionLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimiter")
            .field("name", &self.name)
            .field("max_total", &self.max_total)
            .field("max_per_source", &self.max_per_source)
            .finish_non_exhaustive()
    }
}

impl ConnectionLimiter {
    pub fn new(name: &'static str, max_total: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(ConnectionLimiter {
            name,
            max_total,
            max_per_source,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .expect("connection-count lock is never poisoned")
    }

    /// Takes a place for a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Refusal> {
        let source = crate::ratelimit::source_key(ip);
        let mut c = self.counts();
        let mine = c.by_source.get(&source).copied().unwrap_or(0);
        let refusal = if mine >= self.max_per_source {
            Some(Refusal::Source {
                limit: self.max_per_source,
            })
        } else if c.total >= self.max_total {
            Some(Refusal::Full {
                limit: self.max_total,
            })
        } else {
            None
        };
        if let Some(r) = refusal {
            c.unlogged += 1;
            let due = c.logged_at.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
            if due {
                tracing::warn!(
                    "{}: refused {} connection(s) in the last {} s; the latest from {ip}: {r}",
                    self.name,
                    c.unlogged,
                    REFUSAL_LOG_EVERY.as_secs()
                );
                c.unlogged = 0;
                c.logged_at = Some(Instant::now());
            }
            return Err(r);
        }
        c.total += 1;
        c.by_source.insert(source, mine + 1);
        Ok(ConnPermit {
            limiter: Arc::clone(self),
            source,
        })
    }

    /// Open connections now (all sources).
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut c = self.limiter.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_source_and_global_caps() {
        let l = ConnectionLimiter::new("test", 3, 2);
        let a1 = l.admit(ip("192.0.2.1")).unwrap();
        let _a2 = l.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            l.admit(ip("192.0.2.1")).unwrap_err(),
            Refusal::Source { limit: 2 }
        );
        let _b = l.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(
            l.admit(ip("192.0.2.3")).unwrap_err(),
            Refusal::Full { limit: 3 }
        );
        drop(a1);
        assert_eq!(l.open(), 2);
        let _a3 = l.admit(ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn ipv6_counts_by_64_prefix_and_mapped_v4_as_v4() {
        let l = ConnectionLimiter::new("test", 100, 1);
        let _x = l.admit(ip("2001:db8:1:2::1")).unwrap();
        assert!(l.admit(ip("2001:db8:1:2:ffff::9")).is_err());
        let _y = l.admit(ip("2001:db8:1:3::1")).unwrap();
        let _v4 = l.admit(ip("192.0.2.7")).unwrap();
        assert!(l.admit(ip("::ffff:192.0.2.7")).is_err());
    }
}
