//! The customer channel on a unix socket: the agent service (root, no
//! terminal after a restart) offers it; the desktop user's `lifeline agent
//! window` connects and shows it in the browser.
//!
//! Newline-delimited JSON: the service writes [`CustomerEvent`]s (first
//! what a new window must see), the client writes [`CustomerCommand`]s; a
//! line is at most [`MAX_LINE_BYTES`] long. A malformed command is
//! answered with a `refused` event naming the problem; a line too long
//! closes the connection. The socket file is mode 0600, owned by the
//! desktop user who joined when the service runs as root; each client's
//! uid (`SO_PEERCRED`) must be one of the allowed accounts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::{CommandRequest, CustomerEvent, Hub, MAX_LINE_BYTES, parse};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot offer the customer's window on {path}: {source}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the agent service at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the agent service refused this window: {0}")]
    Refused(String),
    #[error("the agent service sent a line that is not an event: {0}")]
    BadEvent(String),
}

/// The accounts whose windows may connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed(pub Vec<u32>);

impl Allowed {
    /// Root, the desktop user who joined (if known) and `users` (names
    /// that do not exist are skipped with a warning).
    pub fn resolve(joined_by: Option<u32>, users: &[String]) -> Allowed {
        let mut uids = vec![0];
        uids.extend(joined_by);
        for name in users {
            match nix::unistd::User::from_name(name) {
                Ok(Some(u)) => uids.push(u.uid.as_raw()),
                _ => tracing::warn!("[customer] users: no account {name:?} on this computer"),
            }
        }
        uids.sort_unstable();
        uids.dedup();
        Allowed(uids)
    }

    /// Why `uid` may not connect, if it may not.
    pub fn check(&self, uid: u32) -> Result<(), String> {
        if self.0.contains(&uid) {
            Ok(())
        } else {
            Err(format!(
                "uid {uid} is not one of the customer accounts allowed to see this session (set [customer] users in the agent's configuration)"
            ))
        }
    }
}

/// The service's socket; removed when dropped.
pub struct Server {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Offers `hub` on `path` to the `allowed` accounts; the socket file goes
/// to `owner` (when this process may give it away).
pub fn serve(
    path: &Path,
    hub: Arc<Hub>,
    allowed: Allowed,
    owner: Option<u32>,
) -> Result<Server, SocketError> {
    let err = |source| SocketError::Listen {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // A socket left by a run that was killed.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    if let Some(uid) = owner.filter(|_| nix::unistd::geteuid().is_root()) {
        std::os::unix::fs::chown(path, Some(uid), None).map_err(err)?;
    }
    let allowed = Arc::new(allowed);
    // The clients are this task's: when the server goes, they go too and
    // the windows see the end of the socket.
    let task = tokio::spawn(async move {
        let mut clients = tokio::task::JoinSet::new();
        loop {
            while clients.try_join_next().is_some() {}
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (hub, allowed) = (Arc::clone(&hub), Arc::clone(&allowed));
            clients.spawn(client(stream, hub, allowed));
        }
    });
    Ok(Server {
        path: path.to_path_buf(),
        task,
    })
}

async fn write_event(w: &mut (impl AsyncWriteExt + Unpin), ev: &CustomerEvent) -> bool {
    let Ok(mut line) = serde_json::to_vec(ev) else {
        return false;
    };
    line.push(b'\n');
    w.write_all(&line).await.is_ok()
}

/// One line of at most [`MAX_LINE_BYTES`]; `Ok(None)` at the end,
/// `Err` for a longer line.
async fn read_line<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    buf: &mut String,
) -> Result<Option<()>, String> {
    buf.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    match r.take(limit).read_line(buf).await {
        Ok(0) => Ok(None),
        Ok(_) if !buf.ends_with('\n') && buf.len() > MAX_LINE_BYTES => Err(format!(
            "a line is longer than {MAX_LINE_BYTES} bytes: connection closed"
        )),
        Ok(_) => Ok(Some(())),
        Err(e) => Err(format!("reading failed: {e}")),
    }
}

/// One window: the peer's uid is checked, then events out, commands in.
async fn client(stream: UnixStream, hub: Arc<Hub>, allowed: Arc<Allowed>) {
    let uid = stream.peer_cred().map(|c| c.uid());
    let (r, mut w) = stream.into_split();
    let verdict = match uid {
        Ok(uid) => allowed.check(uid),
        Err(e) => Err(format!("the peer's credentials are unknown: {e}")),
    };
    if let Err(message) = verdict {
        tracing::warn!("customer socket: {message}");
        write_event(&mut w, &CustomerEvent::Refused { message }).await;
        return;
    }
    let mut r = BufReader::new(r);
    let mut sub = hub.subscribe();
    for ev in &sub.backlog {
        if !write_event(&mut w, ev).await {
            return;
        }
    }
    let mut line = String::new();
    loop {
        tokio::select! {
            ev = sub.events.recv() => match ev {
                Ok(ev) => if !write_event(&mut w, &ev).await { return },
                Err(RecvError::Lagged(_)) => {
                    sub = hub.subscribe();
                    for ev in &sub.backlog {
                        if !write_event(&mut w, ev).await { return }
                    }
                }
                Err(RecvError::Closed) => return,
            },
            got = read_line(&mut r, &mut line) => {
                let outcome = match got {
                    Ok(None) => return,
                    Err(message) => {
                        write_event(&mut w, &CustomerEvent::Refused { message }).await;
                        return;
                    }
                    Ok(Some(())) => match parse(line.trim_end()) {
                        Ok(cmd) => hub.command(cmd).await,
                        Err(e) => Err(e.to_string()),
                    },
                };
                if let Err(message) = outcome
                    && !write_event(&mut w, &CustomerEvent::Refused { message }).await
                {
                    return;
                }
            }
        }
    }
}

/// Connects to the service's socket at `path`.
pub async fn connect(path: &Path) -> Result<UnixStream, SocketError> {
    UnixStream::connect(path)
        .await
        .map_err(|source| SocketError::Connect {
            path: path.to_path_buf(),
            source,
        })
}

/// The window's side: the service's events go into `hub` (which the
/// window serves), the window's commands from `commands` to the service.
/// Returns when the service closes the socket.
pub async fn relay(
    stream: UnixStream,
    hub: Arc<Hub>,
    mut commands: mpsc::Receiver<CommandRequest>,
) -> Result<(), SocketError> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    let mut first = true;
    loop {
        tokio::select! {
            got = read_line(&mut r, &mut line) => {
                match got {
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(SocketError::BadEvent(e)),
                    Ok(Some(())) => {}
                }
                let ev: CustomerEvent = serde_json::from_str(line.trim_end())
                    .map_err(|e| SocketError::BadEvent(e.to_string()))?;
                if let (true, CustomerEvent::Refused { message }) = (first, &ev) {
                    return Err(SocketError::Refused(message.clone()));
                }
                first = false;
                hub.publish(ev);
            }
            Some(req) = commands.recv() => {
                let mut json = serde_json::to_vec(&req.command).expect("a command always serialises");
                json.push(b'\n');
                let sent = w.write_all(&json).await.map_err(|e| e.to_string());
                // A refusal comes back as an event.
                let _ = req.reply.send(sent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CustomerUi;

    /// The current account is refused when it is not in the list, and the
    /// refusal names the uid and the setting.
    #[tokio::test]
    async fn a_client_whose_uid_is_not_allowed_is_refused() {
        let me = nix::unistd::getuid().as_raw();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customer.sock");
        let (hub, _rx) = Hub::new(None);
        let others = Allowed(vec![me.wrapping_add(1)]);
        let server = serve(&path, Arc::clone(&hub), others, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (window, cmds) = Hub::new(None);
        let stream = connect(&path).await.unwrap();
        let err = relay(stream, window, cmds).await.unwrap_err().to_string();
        assert!(err.contains(&format!("uid {me} is not one of")), "{err}");
        drop(server);
        assert!(!path.exists(), "the socket goes with the server");

        // Allowed: events flow, and a malformed command is answered.
        let server = serve(&path, Arc::clone(&hub), Allowed(vec![me]), None).unwrap();
        hub.show("hello");
        let stream = UnixStream::connect(&path).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert_eq!(line, "{\"type\":\"line\",\"text\":\"hello\"}\n");
        w.write_all(b"{\"type\":\"dance\"}\n").await.unwrap();
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert!(
            line.contains("\"refused\"") && line.contains("not a command"),
            "{line}"
        );
        drop(server);
    }
}
