//! The byte-counting TCP forwarder between each client and its server.

use super::*;

/// A stream counting the bytes read from it.
pub(super) struct Counted {
    pub(super) inner: TcpStream,
    pub(super) read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        this.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A loopback TCP forwarder to `target` counting the bytes each way
/// (`copy_bidirectional`, TCP_NODELAY on both legs), live.
pub(super) struct Forwarder {
    pub(super) addr: SocketAddr,
    /// Client → server, server → client.
    pub(super) up: Arc<AtomicU64>,
    pub(super) down: Arc<AtomicU64>,
    pub(super) accepted: Arc<Mutex<Vec<Instant>>>,
    pub(super) tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Forwarder {
    pub(super) async fn start(target: SocketAddr) -> Result<Forwarder> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let f = Forwarder {
            addr,
            up: Arc::default(),
            down: Arc::default(),
            accepted: Arc::default(),
            tasks: Arc::default(),
        };
        let (up, down) = (Arc::clone(&f.up), Arc::clone(&f.down));
        let (accepted, tasks) = (Arc::clone(&f.accepted), Arc::clone(&f.tasks));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if let Ok(mut a) = accepted.lock() {
                    a.push(Instant::now());
                }
                let (up, down) = (Arc::clone(&up), Arc::clone(&down));
                let conn = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let mut a = Counted {
                        inner: client,
                        read: up,
                    };
                    let mut b = Counted {
                        inner: server,
                        read: down,
                    };
                    let _ =
                        tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, 1 << 16, 1 << 16)
                            .await;
                });
                if let Ok(mut t) = tasks.lock() {
                    t.push(conn.abort_handle());
                }
            }
        });
        if let Ok(mut t) = f.tasks.lock() {
            t.push(accept.abort_handle());
        }
        Ok(f)
    }

    /// Bytes so far, both directions together.
    pub(super) fn bytes(&self) -> u64 {
        self.up.load(Ordering::Relaxed) + self.down.load(Ordering::Relaxed)
    }

    pub(super) fn connections(&self) -> usize {
        self.accepted.lock().map_or(0, |a| a.len())
    }

    /// Waits for connection number `n` (0-based); when it was accepted.
    pub(super) async fn accepted(&self, n: usize) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if let Some(at) = self.accepted.lock().ok().and_then(|a| a.get(n).copied()) {
                return Ok(at);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no connection to the forwarder within {STEP:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Ok(t) = self.tasks.lock() {
            t.iter().for_each(|h| h.abort());
        }
    }
}

// ---------------------------------------------------------------------
// Measuring

/// CPU seconds of some processes and forwarded bytes at one instant.
#[derive(Debug, Clone)]
pub(super) struct Snap {
    pub(super) at: Instant,
    pub(super) cpu: Vec<f64>,
    pub(super) bytes: u64,
    /// The sharer's threads (by name).
    pub(super) threads: std::collections::BTreeMap<String, f64>,
}

pub(super) fn snap(pids: &[u32], fwd: &Forwarder) -> Result<Snap> {
    let cpu = pids.iter().map(|&p| cpu_secs(p)).collect::<Result<_>>()?;
    Ok(Snap {
        at: Instant::now(),
        cpu,
        bytes: fwd.bytes(),
        threads: pids.first().map(|&p| thread_cpu(p)).unwrap_or_default(),
    })
}
