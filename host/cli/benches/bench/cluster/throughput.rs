//! Relay throughput operator → agent on one node and across nodes, with
//! benchmark 2's method (`throughput::transfer`): data frames sent with
//! `Client::send_data`, counted on the agent's link.

use std::sync::Arc;

use anyhow::Result;
use lifeline_core::client::Endpoint;
use lifeline_core::link::Link;
use lifeline_operator::Client;
use lifeline_protocol::JoinCredential;

use crate::throughput::transfer;
use crate::{join, step};

/// The process's resident memory (kB) as /proc/self/status tells it.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_default()
}

/// One transfer: `op` (logged in on its node) → broker(s) → an agent
/// joining at `agent_ep`. Returns the timed seconds and the process's
/// RSS growth (KiB) from before the session to the end of the transfer.
pub async fn relay(
    op: &Arc<Client>,
    agent_ep: &Endpoint,
    chunk: usize,
    total: u64,
) -> Result<(f64, i64)> {
    let inv = step("invite", op.invite("CL-TPUT", "Customer", None)).await?;
    let token = inv.link.rsplit('/').next().unwrap_or_default().into();
    let before = rss_kib() as i64;
    let (mut agent, _) = join(agent_ep, JoinCredential::LinkToken(token)).await?;
    crate::raw_e2e::attach(op, &mut agent, &inv.session_id).await?;
    // The agent's sender must live on: dropping it closes the connection.
    let Link {
        tx: _agent_tx, rx, ..
    } = agent;
    let sid = inv.session_id.clone();
    let send = |b| {
        let (op, sid) = (Arc::clone(op), sid.clone());
        async move { Ok(op.send_data(&sid, b).await?) }
    };
    let secs = transfer(rx, chunk, total, send).await?;
    let grown = rss_kib() as i64 - before;
    step("end", op.end(&inv.session_id, "throughput run over")).await?;
    Ok((secs, grown))
}
