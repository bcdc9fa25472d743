//! The broker's connection-resource limits (`[broker.limits]` in
//! broker.toml): how many connections, how long a connection may stay
//! unauthenticated or stop reading, the HTTPS side's timeouts, and how many
//! password hashes run at once. Every default is a named constant saying
//! which threat it guards against.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{ConfigError, Doc};

/// Connections the broker keeps open at once on each listener (sessions,
/// HTTPS). Guards file descriptors and memory against a flood from many
/// addresses; beyond it new connections are refused at once.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 2048;
/// Connections one source may keep open at once on each listener (an IPv4
/// address, or an IPv6 /64: one subscriber's whole prefix). Stops a single
/// source from taking the global budget alone; high enough for an office of
/// operators behind one NAT address.
pub const DEFAULT_MAX_CONNECTIONS_PER_SOURCE: u64 = 64;
/// Seconds a connection may stay unauthenticated after the handshake: an
/// operator must log in or resume, an agent must join or rejoin. Stops
/// anonymous connections from being held open forever by client pings.
pub const DEFAULT_AUTH_DEADLINE_SECS: u64 = 30;
/// Seconds a peer has to take one frame (at most 1 MiB: at least 35 KiB/s)
/// before it is dropped as having stopped reading. Bounds what a peer that
/// never reads can make the broker keep and wait for.
pub const DEFAULT_WRITE_TIMEOUT_SECS: u64 = 30;
/// Seconds a relay waits for room in a peer's queue before that peer is
/// dropped as too slow. Bounds how long a slow operator or agent can hold up
/// the handler of the other side of its session.
pub const DEFAULT_RELAY_WAIT_SECS: u64 = 10;
/// Seconds an HTTPS client has to send a request's header, and the longest
/// an idle keep-alive connection stays open. Guards against slowloris.
pub const DEFAULT_HTTP_HEADER_TIMEOUT_SECS: u64 = 10;
/// Seconds an HTTPS connection may stay open in all. Guards against slow
/// bodies and clients that never read the response.
pub const DEFAULT_HTTP_CONNECTION_SECS: u64 = 120;
/// Password checks (argon2id, 19 MiB each) waiting for a hashing thread
/// before new ones are refused as "busy". Bounds the memory and CPU a login
/// burst can claim.
pub const DEFAULT_LOGIN_QUEUE: u64 = 16;
/// Seconds a session waits for its customer's agent to resume after the
/// broker restarted (or, in a cluster, after the node holding it stopped)
/// before it is ended. Long enough for an agent retrying every couple of
/// seconds to get through a broker that takes a while to start; short
/// enough that an agent gone for good does not leave the operator waiting.
pub const DEFAULT_RESUME_WINDOW_SECS: u64 = 120;
/// Largest value accepted for any count in `[broker.limits]`.
pub const MAX_COUNT: u64 = 1_000_000;
/// Largest value accepted for any number of seconds in `[broker.limits]`.
pub const MAX_LIMIT_SECS: u64 = 24 * 3600;

/// `[broker.limits]` as written in the file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    max_connections: Option<Spanned<u64>>,
    max_connections_per_source: Option<Spanned<u64>>,
    auth_deadline_secs: Option<Spanned<u64>>,
    write_timeout_secs: Option<Spanned<u64>>,
    relay_wait_secs: Option<Spanned<u64>>,
    http_header_timeout_secs: Option<Spanned<u64>>,
    http_connection_secs: Option<Spanned<u64>>,
    login_hash_threads: Option<Spanned<u64>>,
    login_queue: Option<Spanned<u64>>,
    resume_window_secs: Option<Spanned<u64>>,
}

/// Validated connection-resource limits of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerLimits {
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    pub auth_deadline: Duration,
    pub write_timeout: Duration,
    pub relay_wait: Duration,
    pub http_header_timeout: Duration,
    pub http_connection: Duration,
    /// Password hashes running at once (default: the number of CPU cores).
    pub login_hash_threads: usize,
    pub login_queue: usize,
    /// How long a session waits for its agent's resume (`resume`).
    pub resume_window: Duration,
}

/// One hashing thread per core (at least one).
pub fn default_hash_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for BrokerLimits {
    fn default() -> Self {
        let count = |n: u64| usize::try_from(n).expect("default counts fit in usize");
        BrokerLimits {
            max_connections: count(DEFAULT_MAX_CONNECTIONS),
            max_connections_per_source: count(DEFAULT_MAX_CONNECTIONS_PER_SOURCE),
            auth_deadline: Duration::from_secs(DEFAULT_AUTH_DEADLINE_SECS),
            write_timeout: Duration::from_secs(DEFAULT_WRITE_TIMEOUT_SECS),
            relay_wait: Duration::from_secs(DEFAULT_RELAY_WAIT_SECS),
            http_header_timeout: Duration::from_secs(DEFAULT_HTTP_HEADER_TIMEOUT_SECS),
            http_connection: Duration::from_secs(DEFAULT_HTTP_CONNECTION_SECS),
            login_hash_threads: default_hash_threads(),
            login_queue: count(DEFAULT_LOGIN_QUEUE),
            resume_window: Duration::from_secs(DEFAULT_RESUME_WINDOW_SECS),
        }
    }
}

/// Validates `[broker.limits]` (called from `BrokerConfig::parse`).
pub(crate) fn validate(doc: &Doc<'_>, raw: &RawLimits) -> Result<BrokerLimits, ConfigError> {
    let d = BrokerLimits::default();
    let count = |v: &Option<Spanned<u64>>, key: &str, default: usize| {
        doc.bounded(
            v,
            &format!("broker.limits.{key}"),
            default as u64,
            MAX_COUNT,
            "",
        )
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let secs = |v: &Option<Spanned<u64>>, key: &str, default: Duration| {
        doc.bounded(
            v,
            &format!("broker.limits.{key}"),
            default.as_secs(),
            MAX_LIMIT_SECS,
            " seconds",
        )
        .map(Duration::from_secs)
    };
    let per_source = count(
        &raw.max_connections_per_source,
        "max_connections_per_source",
        d.max_connections_per_source,
    )?;
    let total = count(&raw.max_connections, "max_connections", d.max_connections)?;
    if let (Some(s), true) = (&raw.max_connections_per_source, per_source > total) {
        return Err(doc.invalid(
            &s.span(),
            "broker.limits.max_connections_per_source",
            format!("must not exceed max_connections ({total}), got {per_source}"),
        ));
    }
    Ok(BrokerLimits {
        max_connections: total,
        max_connections_per_source: per_source,
        auth_deadline: secs(
            &raw.auth_deadline_secs,
            "auth_deadline_secs",
            d.auth_deadline,
        )?,
        write_timeout: secs(
            &raw.write_timeout_secs,
            "write_timeout_secs",
            d.write_timeout,
        )?,
        relay_wait: secs(&raw.relay_wait_secs, "relay_wait_secs", d.relay_wait)?,
        http_header_timeout: secs(
            &raw.http_header_timeout_secs,
            "http_header_timeout_secs",
            d.http_header_timeout,
        )?,
        http_connection: secs(
            &raw.http_connection_secs,
            "http_connection_secs",
            d.http_connection,
        )?,
        login_hash_threads: count(
            &raw.login_hash_threads,
            "login_hash_threads",
            d.login_hash_threads,
        )?,
        login_queue: count(&raw.login_queue, "login_queue", d.login_queue)?,
        resume_window: secs(
            &raw.resume_window_secs,
            "resume_window_secs",
            d.resume_window,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::BrokerConfig;

    const BROKER: &str =
        "[broker]\nlisten = \"127.0.0.1:1\"\nhttps_listen = \"127.0.0.1:2\"\ndata_dir = \"d\"\n";

    #[test]
    fn defaults_and_overrides() {
        let c = BrokerConfig::parse(Path::new("b.toml"), BROKER).unwrap();
        assert_eq!(c.limits, super::BrokerLimits::default());
        let text = format!(
            "{BROKER}[broker.limits]\nmax_connections = 100\nmax_connections_per_source = 4\nauth_deadline_secs = 5\nlogin_queue = 2\n"
        );
        let c = BrokerConfig::parse(Path::new("b.toml"), &text).unwrap();
        assert_eq!(c.limits.max_connections, 100);
        assert_eq!(c.limits.max_connections_per_source, 4);
        assert_eq!(c.limits.auth_deadline.as_secs(), 5);
        assert_eq!(c.limits.login_queue, 2);
    }

    #[test]
    fn bad_values_are_located() {
        let text = format!("{BROKER}[broker.limits]\nauth_deadline_secs = 0\n");
        let err = BrokerConfig::parse(Path::new("b.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.toml:6: `broker.limits.auth_deadline_secs`"),
            "{err}"
        );
        let text = format!(
            "{BROKER}[broker.limits]\nmax_connections = 10\nmax_connections_per_source = 20\n"
        );
        let err = BrokerConfig::parse(Path::new("b.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("must not exceed max_connections (10)"),
            "{err}"
        );
    }
}
