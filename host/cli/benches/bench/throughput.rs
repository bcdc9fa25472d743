//! Benchmark 2: relay throughput operator → agent through the broker.
//!
//! The operator client sends data frames with `send_data`; the broker relays
//! them to the attached session's agent; the agent counts payload bytes.
//! Baseline: the same frames over one direct TLS 1.3 connection between two
//! tasks of this process, with the same `Link` machinery on both ends (same
//! framing, same reader/writer tasks): one TLS hop instead of two plus the
//! broker's relay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lifeline_core::link::{Link, spawn_link};
use lifeline_core::tls::{self, Trust};
use lifeline_protocol::{Frame, JoinCredential, MAX_FRAME_BYTES};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::{HEARTBEAT, Harness, Opts, Row, join, step};

/// Bytes sent before the clock starts.
const WARMUP_BYTES: u64 = 64 << 20;
/// Bound on one whole transfer.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);
const TARGET_GBPS: f64 = 1.0;

/// Counts data bytes arriving on `rx`; reports the instant each cumulative
/// mark in `marks` is reached, then returns.
fn spawn_counter(mut rx: mpsc::Receiver<Frame>, marks: Vec<u64>) -> mpsc::UnboundedReceiver<Instant> {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut got = 0u64;
        let mut marks = marks.into_iter().peekable();
        while let Some(frame) = rx.recv().await {
            if let Frame::Data(d) = frame {
                got += d.len() as u64;
                while marks.peek().is_some_and(|m| got >= *m) {
                    marks.next();
                    let _ = tx.send(Instant::now());
                }
                if marks.peek().is_none() {
                    return;
                }
            }
        }
    });
    out
}

/// Sends `warm` then `total` bytes in `chunk`-byte frames through `send`,
/// with the receiver counting on `rx`; returns the seconds the timed part took.
async fn transfer<F, Fut>(rx: mpsc::Receiver<Frame>, chunk: usize, total: u64, send: F) -> Result<f64>
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let warm = WARMUP_BYTES.div_ceil(chunk as u64) * chunk as u64;
    let mut marks = spawn_counter(rx, vec![warm, warm + total]);
    let payload = vec![0xA5u8; chunk];
    let run = async {
        for _ in 0..warm / chunk as u64 {
            send(payload.clone()).await?;
        }
        marks.recv().await.context("receiver stopped during warm-up")?;
        let t0 = Instant::now();
        for _ in 0..total / chunk as u64 {
            send(payload.clone()).await?;
        }
        let t1 = marks.recv().await.context("receiver stopped before all bytes arrived")?;
        Ok::<_, anyhow::Error>((t1 - t0).as_secs_f64())
    };
    match tokio::time::timeout(TRANSFER_TIMEOUT, run).await {
        Ok(r) => r,
        Err(_) => bail!("transfer of {total} bytes not done within {TRANSFER_TIMEOUT:?}"),
    }
}

/// Operator → broker → agent.
async fn relay(h: &Harness, chunk: usize, total: u64) -> Result<f64> {
    let inv = step("invite", h.op.invite("TPUT-1", "Bench Customer", None)).await?;
    let token = inv.link.rsplit('/').next().unwrap_or_default().to_string();
    let agent = join(&h.ep, JoinCredential::LinkToken(token)).await?;
    step("attach", h.op.attach(&inv.session_id)).await?;
    let Link { tx: _agent_tx, rx, .. } = agent;
    let op = Arc::clone(&h.op);
    let secs = transfer(rx, chunk, total, |b| {
        let op = Arc::clone(&op);
        async move { op.send_data(b).await.map_err(Into::into) }
    })
    .await?;
    step("end", h.op.end(&inv.session_id, "throughput run over")).await?;
    Ok(secs)
}

/// One direct TLS connection between two tasks of this process.
async fn direct(chunk: usize, total: u64) -> Result<f64> {
    let dir = tempfile::tempdir().context("temporary folder")?;
    let id = tls::load_or_create_identity(dir.path(), None, &["localhost".to_string()])?;
    let acceptor = TlsAcceptor::from(tls::server_config(&id)?);
    let connector = TlsConnector::from(tls::client_config(&Trust::Pinned(id.fingerprint))?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let tls = acceptor.accept(tcp).await?;
        Ok::<_, std::io::Error>(spawn_link(tls, HEARTBEAT, MAX_FRAME_BYTES))
    });
    let tcp = step("direct connect", TcpStream::connect(addr)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").context("server name")?;
    let tls = step("direct TLS", connector.connect(name, tcp)).await?;
    let sender = spawn_link(tls, HEARTBEAT, MAX_FRAME_BYTES);
    let receiver = step("direct accept", async { Ok::<_, anyhow::Error>(server.await.context("accept task")??) }).await?;
    let Link { tx: _receiver_tx, rx, .. } = receiver;
    let tx = sender.tx.clone();
    transfer(rx, chunk, total, |b| {
        let tx = tx.clone();
        async move { tx.send(Frame::Data(b)).await.map_err(|_| anyhow::anyhow!("direct link closed")) }
    })
    .await
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let total: u64 = if opts.quick { 256 << 20 } else { 2 << 30 };
    println!("\n[2/3] relay throughput: {} MiB per run", total >> 20);
    let h = Harness::start().await?;
    let mut rows = Vec::new();
    for (chunk, label) in [(MAX_FRAME_BYTES - 1, "1 MiB-1"), (256 << 10, "256 KiB")] {
        let total = total / chunk as u64 * chunk as u64;
        let base = direct(chunk, total).await?;
        let via = relay(&h, chunk, total).await?;
        let gbps = |s: f64| total as f64 / s / 1e9;
        let mibps = |s: f64| total as f64 / s / f64::from(1 << 20);
        println!(
            "  {label} chunks: broker relay {:.2} GB/s ({:.0} MiB/s) in {via:.2} s; direct TLS {:.2} GB/s ({:.0} MiB/s)",
            gbps(via),
            mibps(via),
            gbps(base),
            mibps(base)
        );
        let fmt = |s: f64| format!("{:.2} GB/s ({:.0} MiB/s)", gbps(s), mibps(s));
        rows.push(
            Row::new("2 relay throughput", format!("{label} chunks"), fmt(via), format!("{} direct TLS", fmt(base)))
                .target("≥ 1 GB/s", gbps(via) >= TARGET_GBPS),
        );
    }
    h.broker.shutdown();
    Ok(rows)
}
