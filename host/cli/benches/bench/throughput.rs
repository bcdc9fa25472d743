//! Benchmark 2: relay throughput operator → agent through the broker.
//!
//! The operator client sends data frames with `send_data`; the broker relays
//! them to the attached session's agent; the agent counts payload bytes.
//! Baseline: the same frames over one direct TLS 1.3 connection between two
//! tasks of this process, with the same `Link` machinery on both ends (same
//! framing, same reader/writer tasks): one TLS hop instead of two plus the
//! broker's relay.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use lifeline_core::lean_tls;
use lifeline_core::link::{Link, spawn_link};
use lifeline_operator::e2e::{MAX_DATA_BYTES, SEAL_OVERHEAD_BYTES};
use lifeline_protocol::{Frame, JoinCredential, MAX_FRAME_BYTES};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::{HEARTBEAT, Harness, Opts, Row, join, row, step};

/// Bytes sent before the clock starts.
pub const WARMUP_BYTES: u64 = 64 << 20;
/// Bound on one whole transfer.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);
const TARGET_GBPS: f64 = 1.0;

/// Counts data bytes arriving on `rx`; sends the instant each cumulative
/// mark is reached, and stops after the last.
fn spawn_counter(
    mut rx: lifeline_core::link::FrameReceiver,
    marks: [u64; 2],
) -> mpsc::Receiver<Instant> {
    let (tx, out) = mpsc::channel(2);
    tokio::spawn(async move {
        let (mut got, mut next) = (0, 0);
        while let Some(frame) = rx.recv().await {
            let Frame::Data(d) = frame else { continue };
            // The operator client's frames arrive sealed: count what it sent.
            got += if d.first() == Some(&lifeline_protocol::stream::TAG_SEALED) {
                d.len().saturating_sub(SEAL_OVERHEAD_BYTES)
            } else {
                d.len()
            } as u64;
            while next < marks.len() && got >= marks[next] {
                let _ = tx.send(Instant::now()).await;
                next += 1;
            }
            if next == marks.len() {
                return;
            }
        }
    });
    out
}

/// Sends a warm-up, then `total` bytes in `chunk`-byte frames through
/// `send` while the receiver counts on `rx`; returns the timed seconds.
pub async fn transfer<F, Fut>(
    rx: lifeline_core::link::FrameReceiver,
    chunk: usize,
    total: u64,
    send: F,
) -> Result<f64>
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let warm = WARMUP_BYTES.div_ceil(chunk as u64);
    let mut marks = spawn_counter(rx, [warm * chunk as u64, warm * chunk as u64 + total]);
    let payload = vec![0xA5u8; chunk];
    let run = async {
        for _ in 0..warm {
            send(payload.clone()).await?;
        }
        marks
            .recv()
            .await
            .context("receiver stopped in the warm-up")?;
        let t0 = Instant::now();
        for _ in 0..total / chunk as u64 {
            send(payload.clone()).await?;
        }
        let t1 = marks.recv().await.context("receiver stopped early")?;
        Ok((t1 - t0).as_secs_f64())
    };
    tokio::time::timeout(TRANSFER_TIMEOUT, run)
        .await
        .map_err(|_| anyhow!("transfer not done within {TRANSFER_TIMEOUT:?}"))?
}

/// Operator → broker → agent.
pub async fn relay(h: &Harness, chunk: usize, total: u64) -> Result<f64> {
    let inv = step("invite", h.op.invite("TPUT-1", "Customer", None)).await?;
    let token = inv.link.rsplit('/').next().unwrap_or_default().into();
    let (mut agent, _) = join(&h.ep, JoinCredential::LinkToken(token)).await?;
    crate::raw_e2e::attach(&h.op, &mut agent, &inv.session_id).await?;
    // The agent's sender must live on: dropping it closes the connection.
    let Link {
        tx: _agent_tx, rx, ..
    } = agent;
    let op = Arc::clone(&h.op);
    let sid = inv.session_id.clone();
    let send = |b| {
        let (op, sid) = (Arc::clone(&op), sid.clone());
        async move { Ok(op.send_data(&sid, b).await?) }
    };
    let secs = transfer(rx, chunk, total, send).await?;
    step("end", h.op.end(&inv.session_id, "throughput run over")).await?;
    Ok(secs)
}

/// One direct TLS connection between two tasks of this process; the
/// receiving (server) side is tokio-rustls, or with `lean` the broker's own
/// `lean_tls` (rustls's unbuffered connection), to compare the two.
async fn direct(chunk: usize, total: u64, lean: bool) -> Result<f64> {
    let bed = crate::floor::Loopback::new().await?;
    let (server_cfg, listener) = (Arc::clone(&bed.server), bed.listener);
    let acceptor = TlsAcceptor::from(Arc::clone(&server_cfg));
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        Ok::<_, std::io::Error>(if lean {
            let tls = lean_tls::accept(tcp, server_cfg).await?;
            spawn_link(tls, HEARTBEAT, MAX_FRAME_BYTES)
        } else {
            spawn_link(acceptor.accept(tcp).await?, HEARTBEAT, MAX_FRAME_BYTES)
        })
    });
    let tls = crate::floor::connect(&bed.connector, bed.addr).await?;
    let sender = spawn_link(tls, HEARTBEAT, MAX_FRAME_BYTES);
    let accepted = async { server.await.context("accept task") };
    let Link {
        tx: _receiver_tx,
        rx,
        ..
    } = step("direct accept", accepted).await??;
    let send = |b| {
        let tx = sender.tx.clone();
        async move {
            tx.send(Frame::Data(b))
                .await
                .map_err(|_| anyhow!("link closed"))
        }
    };
    transfer(rx, chunk, total, send).await
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let total: u64 = if opts.quick { 256 << 20 } else { 2 << 30 };
    println!("\n[2/3] relay throughput: {} MiB per run", total >> 20);
    let h = Harness::start().await?;
    let mut rows = Vec::new();
    for (chunk, label) in [(MAX_DATA_BYTES, "4 MiB-99"), (256 << 10, "256 KiB")] {
        let total = total / chunk as u64 * chunk as u64;
        let base = direct(chunk, total, false).await?;
        let lean = direct(chunk, total, true).await?;
        let via = relay(&h, chunk, total).await?;
        let gbps = |s: f64| total as f64 / s / 1e9;
        let fmt = |s: f64| {
            format!(
                "{:.2} GB/s ({:.0} MiB/s)",
                gbps(s),
                gbps(s) * 1e9 / 1048576.0
            )
        };
        println!(
            "  {label} chunks: via broker {}, direct TLS {}, direct with lean_tls receiving {}",
            fmt(via),
            fmt(base),
            fmt(lean)
        );
        let target = Some(("≥ 1 GB/s", gbps(via) >= TARGET_GBPS));
        let metric = format!("{label} chunks");
        let base = format!("{} direct TLS", fmt(base));
        rows.push(row("2 relay throughput", &metric, fmt(via), &base, target));
        let metric = format!("{label} chunks, direct, lean_tls receiving");
        rows.push(row("2 relay throughput", &metric, fmt(lean), &base, None));
    }
    h.broker.shutdown();
    Ok(rows)
}
