//! Guessing and login limits that hold for the whole cluster, not per
//! node: every spend and refund of a node's limiters (wrong connection
//! IDs, logins, rejoin tickets and resume credentials, back-office
//! verification codes) is published on `lifeline.limit.{limiter}`, and
//! every other node takes it from its own buckets too. An attacker who
//! spreads wrong codes over N nodes thus gets one budget, not N.
//!
//! The spends travel as NATS messages, so two attempts made at the same
//! instant on two nodes may both pass before either node hears of the
//! other: the overrun is bounded by the attempts in flight during one
//! NATS hop (well under a millisecond on a LAN), against a budget of
//! whole minutes. Spends are published only for attempts the limiter
//! allowed, so their rate is bounded by the limiter itself.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Cluster, ClusterError};
use crate::Shared;
use crate::ratelimit::GuessLimiter;

/// One spend (`delta` > 0) or refund (< 0) of a limiter, by source key.
#[derive(Debug, Serialize, Deserialize)]
struct Spend {
    node: String,
    source: IpAddr,
    delta: f64,
}

/// The limiters whose budgets the nodes share, by name.
fn limiters(shared: &Shared) -> [(&'static str, &GuessLimiter); 4] {
    [
        ("join", &shared.join_limiter),
        ("login", &shared.login_limiter),
        ("rejoin", &shared.rejoin_limiter),
        ("code", &shared.code_limiter),
    ]
}

impl Cluster {
    /// Publishes this node's spends and applies the other nodes'.
    pub(super) async fn share_limits(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
    ) -> Result<(), ClusterError> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, IpAddr, f64)>();
        for (name, limiter) in limiters(shared) {
            let tx = tx.clone();
            limiter.observe(Box::new(move |source, delta| {
                let _ = tx.send((name, source, delta));
            }));
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            while let Some((name, source, delta)) = rx.recv().await {
                let spend = Spend {
                    node: me.node.clone(),
                    source,
                    delta,
                };
                let body = serde_json::to_vec(&spend).expect("spends always serialise");
                if let Err(e) = me
                    .nats
                    .publish(format!("lifeline.limit.{name}"), body.into())
                    .await
                {
                    tracing::warn!("cluster: cannot share a limiter's spend: {e}");
                }
            }
        });
        let mut sub = self.subscribe("lifeline.limit.*".to_string()).await?;
        let me = Arc::clone(self);
        tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(msg) = sub.next().await {
                let Ok(spend) = serde_json::from_slice::<Spend>(&msg.payload) else {
                    continue;
                };
                let name = super::last_token(&msg.subject);
                if spend.node == me.node || !spend.delta.is_finite() {
                    continue;
                }
                let Some(shared) = me.shared() else { continue };
                if let Some((_, limiter)) = limiters(&shared).into_iter().find(|(n, _)| *n == name)
                {
                    limiter.apply_elsewhere(spend.source, spend.delta);
                }
            }
        });
        Ok(())
    }
}
