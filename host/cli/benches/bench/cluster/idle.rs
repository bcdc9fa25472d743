//! NATS traffic at rest: N idle sessions homed across the two nodes (half
//! of the agents on each), all attached by one operator connection on node
//! A (so half are attached across nodes through NATS). nats-server's
//! `/varz` counters are read after the sessions settle and again after an
//! idle interval longer than the heartbeat and the broker's sweep.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lifeline_core::client::Endpoint;
use lifeline_core::link::Link;
use lifeline_protocol::JoinCredential;

use super::infra::{Nats, PgProxy, Varz, operator};
use crate::{join, step};

/// Wait after the last attach before the first reading.
const SETTLE: Duration = Duration::from_secs(2);
/// Invitations, joins and attaches in flight at once.
const CONCURRENCY: usize = 64;

/// Runs `f(i)` for `i` in `0..n`, [`CONCURRENCY`] at a time, in order.
async fn bounded<T, F, Fut>(n: usize, f: F) -> Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    use futures_util::StreamExt;
    let results: Vec<Result<T>> = futures_util::stream::iter(0..n)
        .map(f)
        .buffered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// What the idle interval showed.
pub struct AtRest {
    pub sessions: usize,
    pub secs: f64,
    pub before: Varz,
    pub after: Varz,
    /// Subscriptions and messages the setting-up of the sessions cost.
    pub setup: (u64, u64, u64),
    /// PostgreSQL round trips and bytes received by both nodes at rest.
    pub pg: (u64, u64),
    /// What a subscriber to every subject saw at rest, by subject prefix
    /// (its own deliveries are in `after.out_msgs`).
    pub seen: std::collections::BTreeMap<String, u64>,
}

impl AtRest {
    pub fn in_per_sec(&self) -> f64 {
        (self.after.in_msgs - self.before.in_msgs) as f64 / self.secs
    }
    /// Deliveries to the nodes (the tap's own left out).
    pub fn out_per_sec(&self) -> f64 {
        let tapped: u64 = self.seen.values().sum();
        (self.after.out_msgs - self.before.out_msgs).saturating_sub(tapped) as f64 / self.secs
    }
}

/// `n` idle sessions, agents alternating between `nodes`, the operator at
/// `nodes[0]`; waits `idle` and reads the NATS counters around it.
pub async fn run(
    nats: &Nats,
    pg: [&PgProxy; 2],
    nodes: [&Endpoint; 2],
    n: usize,
    idle: Duration,
) -> Result<AtRest> {
    let pg_now = || {
        let trips = pg.iter().map(|p| p.round_trips()[0]).sum::<u64>();
        (trips, pg.iter().map(|p| p.bytes_down()).sum::<u64>())
    };
    let op = operator(nodes[0], |_| {}).await?;
    let start = nats.varz().await?;
    let invs = bounded(n, |i| {
        let op = Arc::clone(&op);
        async move { step("invite", op.invite(&format!("IDLE-{i}"), "Customer", None)).await }
    })
    .await?;
    let eps = [nodes[0].clone(), nodes[1].clone()];
    // Each agent joins, then the operator attaches (the raw agent answers
    // the end-to-end handshake).
    let agents: Vec<(String, Link)> = bounded(n, |i| {
        let inv = invs[i].clone();
        let ep = eps[i % 2].clone();
        let op = Arc::clone(&op);
        async move {
            let token = inv.link.rsplit('/').next().unwrap_or_default().into();
            let (mut link, _) = join(&ep, JoinCredential::LinkToken(token)).await?;
            crate::raw_e2e::attach(&op, &mut link, &inv.session_id).await?;
            Ok((inv.session_id, link))
        }
    })
    .await?;
    tokio::time::sleep(SETTLE).await;
    let tap = nats.tap().await?;
    let (before, pg0) = (nats.varz().await?, pg_now());
    let t = Instant::now();
    tokio::time::sleep(idle).await;
    let (after, pg1) = (nats.varz().await?, pg_now());
    let seen = tap.stop();
    let secs = t.elapsed().as_secs_f64();
    let setup = (
        before.subscriptions - start.subscriptions,
        before.in_msgs - start.in_msgs,
        before.out_msgs - start.out_msgs,
    );
    for (sid, _) in &agents {
        step("end", op.end(sid, "idle run over"))
            .await
            .context("ending the idle sessions")?;
    }
    drop(agents);
    Ok(AtRest {
        sessions: n,
        secs,
        before,
        after,
        setup,
        pg: (pg1.0 - pg0.0, pg1.1 - pg0.1),
        seen,
    })
}
