//! Benchmark 3's helpers: the same-run baseline (bare TLS 1.3 connections
//! held open by a process of their own), the `[cluster]` variant (its own
//! nats-server and PostgreSQL database) and a heap profile of the broker.
//!
//! The baseline server is this bench binary run again with
//! [`BARE_TLS_ENV`] set: it accepts TLS connections, answers one byte on
//! each and then holds it with one task waiting in a read, printing its
//! address and fingerprint on stdout. Its RSS growth per connection is the
//! least a tokio + rustls server pays for an idle TLS connection.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lifeline_broker::store::testing::TestDatabase;
use lifeline_core::tls::{self, Fingerprint, Trust};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Set (to anything) in the baseline server's environment.
pub const BARE_TLS_ENV: &str = "LIFELINE_BENCH_BARE_TLS_SERVER";
/// `=1`: the broker runs with `[store] kind = "postgres"` and `[cluster]`.
pub const CLUSTER_ENV: &str = "LIFELINE_BENCH_CLUSTER";
/// `=FILE`: the broker runs under heaptrack's preload library, writing raw
/// data to FILE (`heaptrack_interpret < FILE | gzip > FILE.gz`, then
/// `heaptrack_print FILE.gz`).
pub const HEAPTRACK_ENV: &str = "LIFELINE_BENCH_HEAPTRACK";
/// heaptrack's preload library (Debian package `heaptrack`).
const HEAPTRACK_PRELOAD: &str = "/usr/lib/heaptrack/libheaptrack_preload.so";
/// NATS payload limit Lifeline needs (as in tests/e2e/cluster.rs).
const NATS_MAX_PAYLOAD: &str = "8MB";
/// Bound on waiting for a child's first line or port.
const START_WAIT: Duration = Duration::from_secs(20);

/// A child process killed and reaped when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Adds heaptrack's preload to the broker's command when asked to.
pub fn profile(cmd: &mut Command) {
    if let Ok(out) = std::env::var(HEAPTRACK_ENV) {
        cmd.env("LD_PRELOAD", HEAPTRACK_PRELOAD)
            .env("DUMP_HEAPTRACK_OUTPUT", out);
    }
}

/// The `[cluster]` variant's own services; dropped after the broker.
pub struct ClusterServices {
    _db: TestDatabase,
    _nats: ChildGuard,
    /// `[store]` and `[cluster]` sections for the broker's config.
    pub toml: String,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts a nats-server of its own and creates a database when
/// [`CLUSTER_ENV`] is `1`.
pub fn cluster(dir: &Path) -> Result<Option<ClusterServices>> {
    if std::env::var(CLUSTER_ENV).as_deref() != Ok("1") {
        return Ok(None);
    }
    let db = TestDatabase::create().map_err(anyhow::Error::msg)?;
    let port = free_port()?;
    let conf = dir.join("nats.conf");
    let text = format!("listen: 127.0.0.1:{port}\nmax_payload: {NATS_MAX_PAYLOAD}\n");
    std::fs::write(&conf, text)?;
    let child = Command::new("nats-server")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("nats-server is installed (scripts/setup)")?;
    let nats = ChildGuard(child);
    let deadline = std::time::Instant::now() + START_WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            bail!("nats-server never listened on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let toml = format!(
        "\n[store]\nkind = \"postgres\"\nurl = \"{}\"\n\n[cluster]\n\
         nats_url = \"nats://127.0.0.1:{port}\"\nnode = \"bench\"\n",
        db.url()
    );
    Ok(Some(ClusterServices {
        _db: db,
        _nats: nats,
        toml,
    }))
}

/// Baseline server mode: serves until stdin closes (the parent is gone).
pub async fn serve_bare_tls() -> Result<()> {
    let dir = tempfile::tempdir().context("temporary folder")?;
    let id = tls::load_or_create_identity(dir.path(), None, &["localhost".into()])?;
    let acceptor = TlsAcceptor::from(tls::server_config(&id)?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("BARE {} {}", listener.local_addr()?, id.fingerprint);
    std::io::stdout().flush()?;
    let accept = async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                tcp.set_nodelay(true).ok();
                let mut tls = acceptor.accept(tcp).await?;
                let mut byte = [0u8; 1];
                while tls.read(&mut byte).await? == 1 {
                    tls.write_all(&byte).await?;
                    tls.flush().await?;
                }
                Ok::<_, std::io::Error>(())
            });
        }
    };
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    });
    tokio::select! {
        _ = accept => {}
        _ = stdin_closed => {}
    }
    Ok(())
}

/// Starts the baseline server (this binary again); its process, address
/// and fingerprint.
pub fn start_bare_tls() -> Result<(ChildGuard, String, Fingerprint)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("idle")
        .env(BARE_TLS_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = ChildGuard(cmd.spawn().context("starting the baseline TLS server")?);
    let out = child.0.stdout.take().context("baseline stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("BARE ") {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let line = rx
        .recv_timeout(START_WAIT)
        .context("no address from the baseline TLS server")?;
    let (addr, fp) = line.split_once(' ').context("baseline banner")?;
    Ok((child, addr.to_string(), Fingerprint::parse(fp)?))
}

/// One client connection to the baseline server, after one round trip.
pub async fn bare_client(
    connector: Arc<TlsConnector>,
    addr: String,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(&addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").context("server name")?;
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(b"x").await?;
    tls.flush().await?;
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).await?;
    Ok(tls)
}

/// A connector trusting the baseline server.
pub fn bare_connector(fp: Fingerprint) -> Result<Arc<TlsConnector>> {
    let cfg = tls::client_config(&Trust::Pinned(fp))?;
    Ok(Arc::new(TlsConnector::from(cfg)))
}

/// Bound on one agent's join or resume exchange.
const AGENT_STEP: Duration = Duration::from_secs(30);

/// An agent that joined by link token and kept the resume credential the
/// broker sent right after `Joined`.
pub async fn join_keeping_credential(
    ep: &lifeline_core::client::Endpoint,
    token: String,
) -> Result<(lifeline_core::link::Link, lifeline_protocol::Secret)> {
    use lifeline_protocol::{Frame, JoinCredential, Message};
    let (mut link, _) = crate::join(ep, JoinCredential::LinkToken(token)).await?;
    loop {
        match tokio::time::timeout(AGENT_STEP, link.rx.recv()).await {
            Err(_) => bail!("no resume credential within {AGENT_STEP:?}"),
            Ok(Some(Frame::Control(Message::ResumeCredential { credential }))) => {
                return Ok((link, credential));
            }
            Ok(Some(_)) => {}
            Ok(None) => bail!("agent link closed: {}", link.close_reason.get()),
        }
    }
}

/// An agent whose broker went away resumes its session with `credential`
/// on a new connection; done when the broker answers `Rejoined`.
pub async fn resume(
    ep: &lifeline_core::client::Endpoint,
    credential: lifeline_protocol::Secret,
) -> Result<lifeline_core::link::Link> {
    use lifeline_protocol::{ClientRole, Frame, Message};
    let (mut link, _) = lifeline_core::client::connect(ep, ClientRole::Agent).await?;
    let host = "bench-pc".into();
    let msg = Frame::Control(Message::Resume { credential, host });
    link.tx
        .send(msg)
        .await
        .map_err(|_| anyhow::anyhow!("agent link closed: {}", link.close_reason.get()))?;
    loop {
        match tokio::time::timeout(AGENT_STEP, link.rx.recv()).await {
            Err(_) => bail!("no rejoined within {AGENT_STEP:?}"),
            Ok(Some(Frame::Control(Message::Rejoined { .. }))) => return Ok(link),
            Ok(Some(Frame::Control(Message::Error { message, .. }))) => {
                bail!("resume refused: {message}")
            }
            Ok(Some(_)) => {}
            Ok(None) => bail!("agent link closed: {}", link.close_reason.get()),
        }
    }
}
