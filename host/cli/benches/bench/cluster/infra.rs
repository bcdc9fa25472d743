//! What the cluster benchmark runs on: its own nats-server (with the
//! monitoring endpoint), a fresh PostgreSQL database, a counting proxy in
//! front of PostgreSQL per broker node, and in-process broker nodes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lifeline_broker::store::testing::TestDatabase;
use lifeline_core::client::Endpoint;
use lifeline_core::config::BrokerConfig;
use lifeline_core::config::cluster::ClusterConfig;
use lifeline_core::config::store::{PostgresConfig, StoreConfig};
use lifeline_operator::Client;
use lifeline_protocol::OperatorProfile;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{HEARTBEAT, PASSWORD, USERNAME, endpoint, step};

/// How long nats-server may take to listen.
const NATS_START_POLLS: usize = 200;
const NATS_START_POLL: Duration = Duration::from_millis(25);
/// PostgreSQL's startup-phase request codes that keep the stream untyped
/// (SSLRequest, GSSENCRequest): the startup message follows them.
const PG_SSL_REQUEST: u32 = 80_877_103;
const PG_GSSENC_REQUEST: u32 = 80_877_104;
/// Read size of the proxy.
const PROXY_BUF: usize = 64 << 10;

/// A port free right now on 127.0.0.1.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("free port")?;
    Ok(l.local_addr()?.port())
}

/// The benchmark's own nats-server: `max_payload: 8MB` (the broker
/// refuses less) and its monitoring endpoint on `monitor`.
pub struct Nats {
    child: std::process::Child,
    pub url: String,
    monitor: u16,
}

/// Counters of nats-server's `/varz`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Varz {
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
}

impl Nats {
    pub async fn start(dir: &Path) -> Result<Nats> {
        let (port, monitor) = (free_port()?, free_port()?);
        let conf = dir.join("nats.conf");
        let text =
            format!("listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\nmax_payload: 8MB\n");
        std::fs::write(&conf, text).context("nats.conf")?;
        let child = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("nats-server (Debian package nats-server; scripts/setup installs it)")?;
        let nats = Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            monitor,
        };
        for _ in 0..NATS_START_POLLS {
            if nats.varz().await.is_ok() && TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(nats);
            }
            tokio::time::sleep(NATS_START_POLL).await;
        }
        bail!("nats-server never listened on port {port}")
    }

    /// Reads `/varz` from the monitoring endpoint (HTTP/1.0, one request).
    pub async fn varz(&self) -> Result<Varz> {
        let mut s = TcpStream::connect(("127.0.0.1", self.monitor)).await?;
        s.write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).await?;
        let text = String::from_utf8_lossy(&body);
        let json = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .ok_or_else(|| anyhow!("no HTTP body from /varz"))?;
        let v: serde_json::Value = serde_json::from_str(json).context("/varz JSON")?;
        let n = |k: &str| v[k].as_u64().unwrap_or_default();
        Ok(Varz {
            in_msgs: n("in_msgs"),
            out_msgs: n("out_msgs"),
            in_bytes: n("in_bytes"),
            out_bytes: n("out_bytes"),
            subscriptions: n("subscriptions"),
        })
    }
}

/// A subscriber to every subject (`>`), tallying the messages it sees by
/// the first two parts of their subject (`lifeline.home`, ...).
pub struct Tap {
    seen: Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tap {
    /// What it saw, by subject prefix.
    pub fn stop(self) -> BTreeMap<String, u64> {
        self.task.abort();
        self.seen.lock().expect("tap lock").clone()
    }
}

impl Nats {
    /// Subscribes to `>` with the plain NATS text protocol.
    pub async fn tap(&self) -> Result<Tap> {
        let addr = self.url.trim_start_matches("nats://").to_string();
        let s = TcpStream::connect(addr).await?;
        let (r, mut w) = s.into_split();
        let mut r = tokio::io::BufReader::new(r);
        let mut line = String::new();
        r.read_line(&mut line).await?; // INFO
        w.write_all(b"CONNECT {\"verbose\":false}\r\nSUB > 1\r\nPING\r\n")
            .await?;
        line.clear();
        r.read_line(&mut line).await?; // PONG: subscribed
        let seen = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let tally = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let _ = tap_loop(r, w, tally).await;
        });
        Ok(Tap { seen, task })
    }
}

async fn tap_loop(
    mut r: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    tally: Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if line.starts_with("PING") {
            w.write_all(b"PONG\r\n").await?;
            continue;
        }
        let Some(rest) = line.strip_prefix("MSG ") else {
            continue;
        };
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let len: usize = parts.last().and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut payload = vec![0u8; len + 2];
        r.read_exact(&mut payload).await?;
        let subject = parts.first().copied().unwrap_or("?");
        let key: Vec<&str> = subject.splitn(3, '.').take(2).collect();
        *tally
            .lock()
            .expect("tap lock")
            .entry(key.join("."))
            .or_default() += 1;
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh PostgreSQL database (created and dropped off the async runtime:
/// the blocking client runs a runtime of its own).
pub struct Database(Option<TestDatabase>);

impl Database {
    pub async fn create() -> Result<Database> {
        let db = tokio::task::spawn_blocking(TestDatabase::create)
            .await
            .context("database task")?
            .map_err(|e| anyhow!(e))?;
        Ok(Database(Some(db)))
    }

    /// `(user part, host:port, database)` of its URL.
    fn parts(&self) -> Result<(String, String, String)> {
        let url = self.0.as_ref().expect("present until dropped").url();
        let (user, rest) = url.rsplit_once('@').context("user@ in the test URL")?;
        let (host, name) = rest.split_once('/').context("/database in the test URL")?;
        Ok((user.into(), host.into(), name.into()))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            // Off any runtime thread: a plain thread, joined.
            let _ = std::thread::spawn(move || drop(db)).join();
        }
    }
}

/// A TCP proxy in front of PostgreSQL that counts round trips: the
/// client's `Sync` and simple `Query` messages (each waits for the
/// server's `ReadyForQuery`). It runs on a thread and runtime of its own:
/// the broker's store calls block the runtime's workers while they wait
/// for PostgreSQL, so a proxy sharing them could deadlock.
pub struct PgProxy {
    pub store: StoreConfig,
    round_trips: Arc<[AtomicU64; 3]>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl PgProxy {
    pub async fn start(db: &Database) -> Result<PgProxy> {
        let (user, upstream, name) = db.parts()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let round_trips = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let count = Arc::clone(&round_trips);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("proxy runtime")?;
        std::thread::Builder::new()
            .name("bench-pg-proxy".into())
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        r = serve(listener, upstream, count) => {
                            if let Err(e) = r {
                                eprintln!("PostgreSQL proxy stopped: {e}");
                            }
                        }
                    }
                })
            })
            .context("proxy thread")?;
        let url = format!("{user}@{addr}/{name}");
        let store = StoreConfig::Postgres(PostgresConfig {
            url: lifeline_protocol::Secret::new(url),
            password: None,
        });
        Ok(PgProxy {
            store,
            round_trips,
            stop: Some(stop),
        })
    }

    /// Round trips so far: all, and those that were simple queries (the
    /// store's `BEGIN` and `COMMIT` of multi-statement transactions).
    pub fn round_trips(&self) -> [u64; 2] {
        let [a, b, _] = &*self.round_trips;
        let (s, q) = (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
        [s + q, q]
    }

    /// Bytes PostgreSQL sent through the proxy so far.
    pub fn bytes_down(&self) -> u64 {
        self.round_trips[2].load(Ordering::Relaxed)
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    count: Arc<[AtomicU64; 3]>,
) -> Result<()> {
    let listener = TcpListener::from_std(listener)?;
    loop {
        let (client, _) = listener.accept().await?;
        let (count, upstream) = (Arc::clone(&count), upstream.clone());
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(&upstream).await {
                let _ = proxy(client, server, count).await;
            }
        });
    }
}

async fn proxy(client: TcpStream, server: TcpStream, count: Arc<[AtomicU64; 3]>) -> Result<()> {
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down_count = Arc::clone(&count);
    let down = tokio::spawn(async move {
        let mut buf = vec![0u8; PROXY_BUF];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            cw.write_all(&buf[..n]).await?;
            down_count[2].fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    let mut parser = PgParser::default();
    let mut buf = vec![0u8; PROXY_BUF];
    loop {
        let n = cr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        sw.write_all(&buf[..n]).await?;
        let [syncs, queries] = parser.feed(&buf[..n]);
        count[0].fetch_add(syncs, Ordering::Relaxed);
        count[1].fetch_add(queries, Ordering::Relaxed);
    }
    down.abort();
    Ok(())
}

/// Frontend message framing, fed the bytes as they pass.
#[derive(Default)]
struct PgParser {
    typed: bool,
    head: Vec<u8>,
    skip: usize,
}

impl PgParser {
    /// Consumes `data`; returns how many `Sync` and `Query` messages
    /// started in it.
    fn feed(&mut self, mut data: &[u8]) -> [u64; 2] {
        let mut trips = [0, 0];
        loop {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
            }
            if data.is_empty() {
                return trips;
            }
            let need = if self.typed { 5 } else { 8 };
            let take = (need - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.head.len() < need {
                return trips;
            }
            let int = |at: usize| {
                let b: [u8; 4] = self.head[at..at + 4].try_into().expect("4 bytes");
                u32::from_be_bytes(b) as usize
            };
            if self.typed {
                match self.head[0] {
                    b'S' => trips[0] += 1,
                    b'Q' => trips[1] += 1,
                    _ => {}
                }
                self.skip = int(1).saturating_sub(4);
            } else {
                let code = int(4) as u32;
                self.typed = code != PG_SSL_REQUEST && code != PG_GSSENC_REQUEST;
                self.skip = int(0).saturating_sub(8);
            }
            self.head.clear();
        }
    }
}

/// A broker configuration on loopback like the other benchmarks', with
/// the given store and cluster.
pub fn broker_config(
    dir: &Path,
    name: &str,
    store: StoreConfig,
    cluster: Option<ClusterConfig>,
) -> BrokerConfig {
    BrokerConfig {
        name: format!("Lifeline bench {name}"),
        listen: "127.0.0.1:0".parse().expect("literal address"),
        https_listen: "127.0.0.1:0".parse().expect("literal address"),
        public_url: None,
        data_dir: dir.join(name),
        cert_names: vec!["localhost".into(), "127.0.0.1".into()],
        tls_files: None,
        invitation_ttl: Duration::from_secs(600),
        rejoin_ttl: Duration::from_secs(900),
        heartbeat: HEARTBEAT,
        script_categories: vec!["Other".into()],
        back_office: None,
        limits: lifeline_core::limits::BrokerLimits {
            max_connections: 1_000_000,
            max_connections_per_source: 1_000_000,
            ..Default::default()
        },
        smtp: None,
        join: Default::default(),
        store,
        cluster,
    }
}

/// One in-process broker node and its endpoint.
pub struct Node {
    pub broker: lifeline_broker::Broker,
    pub ep: Endpoint,
}

impl Node {
    /// Starts a broker; `add_operator`: create the bench operator first
    /// (once per database).
    pub async fn start(cfg: BrokerConfig, add_operator: bool) -> Result<Node> {
        if add_operator {
            let profile = OperatorProfile {
                username: USERNAME.into(),
                name: "Bench Operator".into(),
                email: String::new(),
                title: String::new(),
            };
            let c = cfg.clone();
            tokio::task::spawn_blocking(move || {
                lifeline_broker::add_operator(&c, &profile, PASSWORD)
            })
            .await
            .context("add-operator task")??;
        }
        let broker = lifeline_broker::Broker::start(cfg).await?;
        let ep = endpoint(broker.addr.to_string(), broker.fingerprint);
        Ok(Node { broker, ep })
    }
}

/// The node's cluster settings.
pub fn cluster(nats: &Nats, node: &str) -> Option<ClusterConfig> {
    Some(ClusterConfig {
        nats_url: nats.url.clone(),
        node: node.into(),
    })
}

/// A logged-in operator client whose pushed events go to `on_event` (a
/// task reads them all: unread events would stall its connection).
pub async fn operator<F>(ep: &Endpoint, mut on_event: F) -> Result<Arc<Client>>
where
    F: FnMut(lifeline_operator::Event) + Send + 'static,
{
    let mut op = step("operator connect", Client::connect(ep)).await?;
    step("operator login", op.login(USERNAME, PASSWORD)).await?;
    let op = Arc::new(op);
    let reader = Arc::clone(&op);
    tokio::spawn(async move {
        while let Some(ev) = reader.next_event().await {
            on_event(ev);
        }
    });
    Ok(op)
}
