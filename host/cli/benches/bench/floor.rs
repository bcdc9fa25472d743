//! What benchmark 1's "entered → operator connected" cannot go below with
//! this design, measured in the same run: the end-to-end handshake's key
//! operations, and a round trip through two links' reader and writer
//! tasks against the same round trip done directly on the TLS streams.
//!
//! Floor = baseline (TLS connect + one round trip) + [`HOPS`] one-way hops
//! through links + the handshake's key operations on the way (the
//! operator's start, the agent's accept, the operator's finish). It leaves
//! out all the broker's own work (store, registry, routing).
//!
//! [`Loopback`] and [`connect`] also make benchmark 2's direct baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use lifeline_core::link::spawn_link;
use lifeline_core::tls::{self, Trust};
use lifeline_e2e::{Initiator, Responder};
use lifeline_protocol::{Frame, MAX_FRAME_BYTES};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use crate::{HEARTBEAT, STEP, percentile, step};

/// Bytes of the round trip's message: about a small control message.
const PING_BYTES: usize = 64;

/// One-way hops on benchmark 1's timed path after the agent's connect, each
/// a message from one link's writer to another link's reader (half of
/// [`round_trips`]' first figure): `Joined` to the agent (1; its `Join`
/// rode with the `Hello`, inside the baseline), the operator's `Attach` to
/// the broker (1), its end-to-end hello relayed to the agent (1), the
/// agent's reply relayed to the operator (2), the operator's confirm
/// relayed to the agent (2). The attach's reply travels while the agent
/// answers, off the path.
pub const HOPS: u32 = 7;

/// p50 of the handshake's key operations on the operator's path: start +
/// the agent's accept + finish.
pub fn handshake(iters: usize) -> Result<Duration> {
    let mut v = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let (op, hello) = Initiator::start("s-floor", 1, rand::random())?;
        let (_, reply) = Responder::accept("s-floor", 1, &hello, rand::random())?;
        op.finish(&reply)?;
        v.push(t.elapsed());
    }
    v.sort();
    Ok(percentile(&v, 0.5))
}

/// p50 round trips of [`PING_BYTES`] on loopback TLS: (through a link at
/// each end, directly on the streams).
pub async fn round_trips(iters: usize) -> Result<(Duration, Duration)> {
    Ok((via_links(iters).await?, direct(iters).await?))
}

/// p50 round trip through a link at each end; the far end echoes.
async fn via_links(iters: usize) -> Result<Duration> {
    let (c, s) = pair().await?;
    let echo = tokio::spawn(async move {
        let mut link = spawn_link(s, HEARTBEAT, MAX_FRAME_BYTES);
        while let Some(f) = link.rx.recv().await {
            if link.tx.send(f).await.is_err() {
                break;
            }
        }
    });
    let mut link = spawn_link(c, HEARTBEAT, MAX_FRAME_BYTES);
    let mut v = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let sent = link.tx.send(Frame::Data(vec![1; PING_BYTES])).await;
        sent.map_err(|_| anyhow!("link closed"))?;
        let back = tokio::time::timeout(STEP, link.rx.recv()).await;
        back.context("no echo")?.context("link closed")?;
        v.push(t.elapsed());
    }
    echo.abort();
    v.sort();
    Ok(percentile(&v, 0.5))
}

/// p50 round trip done directly on the TLS streams; the far end echoes.
async fn direct(iters: usize) -> Result<Duration> {
    let (mut c, mut s) = pair().await?;
    let echo = tokio::spawn(async move {
        let mut b = [0u8; PING_BYTES];
        while s.read_exact(&mut b).await.is_ok() {
            if s.write_all(&b).await.is_err() || s.flush().await.is_err() {
                break;
            }
        }
    });
    let mut v = Vec::with_capacity(iters);
    let mut b = [0u8; PING_BYTES];
    for _ in 0..iters {
        let t = Instant::now();
        c.write_all(&[1; PING_BYTES]).await?;
        c.flush().await?;
        step("echo", c.read_exact(&mut b)).await?;
        v.push(t.elapsed());
    }
    echo.abort();
    v.sort();
    Ok(percentile(&v, 0.5))
}

/// A TLS 1.3 connection on loopback between two tasks of this process (the
/// broker's configurations, a pinned self-signed certificate), `TCP_NODELAY`
/// on both ends as the broker and the clients set it.
async fn pair() -> Result<(client::TlsStream<TcpStream>, server::TlsStream<TcpStream>)> {
    let bed = Loopback::new().await?;
    let acceptor = TlsAcceptor::from(Arc::clone(&bed.server));
    let listener = bed.listener;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        acceptor.accept(tcp).await
    });
    let c = connect(&bed.connector, bed.addr).await?;
    let s = step("accept", async { server.await.context("accept task") }).await??;
    Ok((c, s))
}

/// What a direct TLS connection on loopback needs: the broker's server
/// configuration with a fresh self-signed identity, a client pinned to it,
/// and a listener on a free port.
pub struct Loopback {
    pub server: Arc<rustls::ServerConfig>,
    pub connector: TlsConnector,
    pub listener: TcpListener,
    pub addr: std::net::SocketAddr,
    /// The identity's folder, kept for as long as the bed is used.
    _dir: tempfile::TempDir,
}

impl Loopback {
    pub async fn new() -> Result<Loopback> {
        let dir = tempfile::tempdir().context("temporary folder")?;
        let id = tls::load_or_create_identity(dir.path(), None, &["localhost".into()])?;
        let server = tls::server_config(&id)?;
        let connector = TlsConnector::from(tls::client_config(&Trust::Pinned(id.fingerprint))?);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(Loopback {
            server,
            connector,
            listener,
            addr,
            _dir: dir,
        })
    }
}

/// The client's end: TCP with `TCP_NODELAY`, then TLS to "localhost".
pub async fn connect(
    connector: &TlsConnector,
    addr: std::net::SocketAddr,
) -> Result<client::TlsStream<TcpStream>> {
    let tcp = step("connect", TcpStream::connect(addr)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").context("server name")?;
    step("TLS", connector.connect(name, tcp)).await
}
