//! The agents of the load, in child processes of their own ("agent hosts":
//! this bench binary started again with [`HOST_ENV`] set), at most
//! [`AGENTS_PER_HOST`] per process.
//!
//! Why not all in this process: each agent starts a WASM engine whose
//! pooling allocator reserves address space for `POOL_INSTANCES` (256)
//! instances up front, terabytes of it (see `VmSize` of a host); a process
//! has 128 TiB, and the ~20th agent of one process fails with "cannot start
//! the WASM engine: failed to protect stack guard page". A real agent is a
//! process of its own (one engine), so this is an artifact of the bench,
//! not a product limit. The baseline's agents run in a host of their own.
//!
//! Protocol, one line each way: the bench writes `join NAME CODE DATA_DIR`
//! to a host's stdin; the host writes `stopped NAME ok|err TEXT` when that
//! agent's session is over. A host exits when its stdin closes.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use lifeline_agent::Customer;
use lifeline_core::client::Endpoint;
use lifeline_core::tls::Fingerprint;
use tokio::sync::{mpsc, oneshot};

use super::session::{AutoCustomer, CUSTOMER_INPUT, agent_config};

/// Set (to "ADDRESS FINGERPRINT PLUGIN_DIR") in an agent host's environment.
pub const HOST_ENV: &str = "LIFELINE_LOAD_AGENT_HOST";
/// Agents one host process runs at most (see the module's note).
pub const AGENTS_PER_HOST: usize = 10;
/// Worker threads of a host's runtime: agents block their thread while
/// they load plugins; more threads than cores lets the kernel share the
/// cores among them as separate machines would have them.
const HOST_THREADS: usize = 8;

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>;

struct Host {
    child: Child,
    stdin: Mutex<ChildStdin>,
}

/// The agent hosts; killed and reaped when dropped.
pub struct Agents {
    hosts: Vec<Host>,
    waiters: Waiters,
}

impl Drop for Agents {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
    }
}

impl Agents {
    /// Starts enough hosts for `n` agents, and one for the baseline's.
    pub fn start(n: usize, ep: &Endpoint, plugins: &Path) -> Result<Agents> {
        let Endpoint { address, trust, .. } = ep;
        let lifeline_core::tls::Trust::Pinned(fp) = trust else {
            anyhow::bail!("the bench's endpoint is always pinned");
        };
        let spec = format!("{address} {} {}", fp, plugins.display());
        let waiters: Waiters = Arc::default();
        let mut hosts = Vec::new();
        for _ in 0..n.div_ceil(AGENTS_PER_HOST) + 1 {
            let mut child = Command::new(std::env::current_exe()?)
                .env(HOST_ENV, &spec)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting an agent host")?;
            let stdin = child.stdin.take().context("agent host stdin")?;
            let stdout = child.stdout.take().context("agent host stdout")?;
            let w = waiters.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut parts = line.splitn(3, ' ');
                    let (Some("stopped"), Some(name)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let waiter = w.lock().expect("waiters lock").remove(name);
                    if let Some(tx) = waiter {
                        let _ = tx.send(parts.next().unwrap_or_default().to_string());
                    }
                }
            });
            let stdin = Mutex::new(stdin);
            hosts.push(Host { child, stdin });
        }
        Ok(Agents { hosts, waiters })
    }

    /// Starts agent `i` of the load (`None`: one of the baseline), named
    /// `name` (no spaces), with `code`; the receiver gets "ok ENDED_BY" or
    /// "err WHY" when it stops.
    pub fn join(
        &self,
        i: Option<usize>,
        name: &str,
        code: &str,
        data_dir: &Path,
    ) -> Result<oneshot::Receiver<String>> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters lock")
            .insert(name.to_string(), tx);
        let last = self.hosts.len() - 1;
        let host = &self.hosts[i.map_or(last, |i| (i / AGENTS_PER_HOST).min(last))];
        let mut stdin = host.stdin.lock().expect("host stdin lock");
        writeln!(stdin, "join {name} {code} {}", data_dir.display())?;
        stdin.flush()?;
        Ok(rx)
    }

    /// CPU seconds of every host process.
    pub fn cpu(&self) -> f64 {
        let pids = self.hosts.iter().map(|h| h.child.id().to_string());
        pids.filter_map(|p| super::broker::cpu_secs(&p).ok()).sum()
    }
}

/// An agent host's `main`: runs the agents the bench asks for.
pub fn host_main(spec: &str) -> Result<()> {
    let mut parts = spec.splitn(3, ' ');
    let (addr, fp, plugins) = (parts.next(), parts.next(), parts.next());
    let (Some(addr), Some(fp), Some(plugins)) = (addr, fp, plugins) else {
        anyhow::bail!("{HOST_ENV} must be \"ADDRESS FINGERPRINT PLUGIN_DIR\"");
    };
    let ep = crate::endpoint(addr.to_string(), Fingerprint::parse(fp)?);
    let plugins = std::path::PathBuf::from(plugins);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(HOST_THREADS)
        .enable_all()
        .build()?;
    let out = Arc::new(Mutex::new(std::io::stdout()));
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let f: Vec<&str> = line.splitn(4, ' ').collect();
        let [_, name, code, dir] = f[..] else {
            return Err(anyhow!("agent host: bad line {line:?}"));
        };
        let cfg = agent_config(&ep, &plugins, Path::new(dir));
        let (name, code, out) = (name.to_string(), code.to_string(), out.clone());
        rt.spawn(async move {
            let (tx, rx) = mpsc::channel(CUSTOMER_INPUT);
            let customer = Customer::terminal(Arc::new(AutoCustomer { input: tx }), rx);
            let text = match lifeline_agent::join_with(&cfg, &code, customer).await {
                Ok(o) => format!("ok {:?}", o.ended_by),
                Err(e) => format!("err {}", e.to_string().replace('\n', " ")),
            };
            let mut out = out.lock().expect("stdout lock");
            let _ = writeln!(out, "stopped {name} {text}");
            let _ = out.flush();
        });
    }
    // The bench closed our stdin: it is done (or gone).
    std::process::exit(0)
}
