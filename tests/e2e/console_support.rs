//! What the web console's tests need: a browser (HTTPS requests with a
//! cookie jar, WebSockets) trusting the test broker's self-signed
//! certificate, and a real SMTP server on loopback (aiosmtpd).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use lifeline_core::tls::{self, Trust};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

/// One answer of the broker.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// A browser on the console: the broker's address, the certificate it
/// trusts (the broker's, pinned), and its cookie jar.
pub struct Browser {
    pub addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    /// The `ll_console` cookie, as the jar holds it.
    pub cookie: Option<String>,
    /// The CSRF token from the last login or `me`.
    pub csrf: Option<String>,
}

pub type Socket = WebSocketStream<TlsStream<TcpStream>>;

impl Browser {
    pub fn new(tb: &TestBroker) -> Browser {
        Browser {
            addr: tb.broker.https_addr,
            tls: tls::client_config(&Trust::Pinned(tb.broker.fingerprint)).unwrap(),
            cookie: None,
            csrf: None,
        }
    }

    /// What the browser sends as `Host` (and its pages' origin).
    pub fn host(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    pub fn origin(&self) -> String {
        format!("https://{}", self.host())
    }

    async fn tls_stream(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// One request on a new connection; `Set-Cookie` goes into the jar.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Answer {
        let io = hyper_util::rt::TokioIo::new(self.tls_stream().await);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.host());
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("ll_console={c}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let bytes = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let resp = tokio::time::timeout(
            WAIT,
            sender.send_request(req.body(Full::new(bytes)).unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            if let Some(value) = pair.strip_prefix("ll_console=") {
                let expired = v.contains("Max-Age=0");
                self.cookie = (!value.is_empty() && !expired).then(|| value.to_string());
            }
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.send("GET", path, &[], None).await
    }

    /// A POST with the CSRF token the browser holds.
    pub async fn post(&mut self, path: &str, body: Option<serde_json::Value>) -> Answer {
        let csrf = self.csrf.clone().unwrap_or_default();
        self.send("POST", path, &[("x-csrf-token", &csrf)], body)
            .await
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Answer {
        let body = serde_json::json!({"username": username, "password": password});
        let a = self
            .send("POST", "/console/api/login", &[], Some(body))
            .await;
        if a.status == 200 {
            self.csrf = Some(a.json()["csrf"].as_str().unwrap().to_string());
        }
        a
    }

    /// Opens `/console/ws` with the jar's cookie and `origin`; the HTTP
    /// status when the broker refuses the upgrade.
    pub async fn ws_with(&self, origin: Option<&str>) -> Result<Socket, u16> {
        let url = format!("wss://{}/console/ws", self.host());
        let mut req = url.into_client_request().unwrap();
        let h = req.headers_mut();
        if let Some(c) = &self.cookie {
            h.insert(
                "cookie",
                HeaderValue::from_str(&format!("ll_console={c}")).unwrap(),
            );
        }
        if let Some(o) = origin {
            h.insert("origin", HeaderValue::from_str(o).unwrap());
        }
        let stream = self.tls_stream().await;
        match tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, stream))
            .await
            .unwrap()
        {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
            Err(e) => panic!("WebSocket: {e}"),
        }
    }

    /// A socket past its first message (the CSRF token).
    pub async fn ws(&self) -> Socket {
        let mut ws = self.ws_with(Some(&self.origin())).await.unwrap();
        let hello = serde_json::json!({"csrf": self.csrf.clone().unwrap()});
        ws.send(Ws::text(hello.to_string())).await.unwrap();
        ws
    }
}

/// Sends a JSON text message.
pub async fn send_json(ws: &mut Socket, v: serde_json::Value) {
    ws.send(Ws::text(v.to_string())).await.unwrap();
}

/// The next text message matching `pred` (others are skipped); panics when
/// the socket closes first.
pub async fn next_json(
    ws: &mut Socket,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no matching message in time");
        match m {
            Some(Ok(Ws::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if pred(&v) {
                    return v;
                }
            }
            Some(Ok(Ws::Close(c))) => panic!("socket closed: {c:?}"),
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// The reply to request `id`.
pub async fn reply(ws: &mut Socket, id: u64) -> serde_json::Value {
    next_json(ws, |v| v["type"] == "reply" && v["id"] == id).await["body"].clone()
}

/// Waits for the socket to be closed by the broker; the close code.
pub async fn closed(ws: &mut Socket) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the socket stayed open")
        {
            Some(Ok(Ws::Close(c))) => return c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

// ---------------------------------------------------------------- SMTP

/// The aiosmtpd version `scripts/setup` installs.
pub const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// The Python that has aiosmtpd: `LIFELINE_TEST_PYTHON`, or the venv that
/// `scripts/setup` makes under target/.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("LIFELINE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python3")
}

/// aiosmtpd on a free loopback port, writing every message into a
/// Maildir; killed when dropped.
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: std::process::Child,
}

impl SmtpServer {
    pub async fn start(dir: &Path) -> SmtpServer {
        let py = python();
        let has = std::process::Command::new(&py)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            has,
            "the e-mail test needs aiosmtpd ({AIOSMTPD}) in {}: run scripts/setup, or \
             `python3 -m venv target/test-venv && target/test-venv/bin/pip install {AIOSMTPD}` \
             (or set LIFELINE_TEST_PYTHON to a python3 that has it)",
            py.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        let child = std::process::Command::new(&py)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = SmtpServer {
            port,
            maildir,
            child,
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd did not listen"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        server
    }

    /// The messages delivered so far (raw RFC 5322 text).
    pub fn messages(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else {
            return vec![];
        };
        dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A console tab's end of a session's end-to-end channel, as the page's
/// WebAssembly module runs it (the same state machine): says hello on
/// `ws`, answers with the confirm once the agent replied, and returns the
/// ready end (its code is `sas()`). Messages meanwhile are skipped.
pub async fn tab_channel(ws: &mut Socket, session_id: &str) -> lifeline_protocol::e2e::OperatorEnd {
    use lifeline_protocol::e2e::{OperatorEnd, OperatorIncoming};
    let endpoint: u64 = rand::random();
    let (mut end, hello) = OperatorEnd::start(session_id, endpoint, rand::random()).unwrap();
    send_json(ws, tab_msg(session_id, &hello)).await;
    let reply = next_json(ws, |v| {
        v["type"] == "session"
            && v["msg"]["kind"] == "e2e_reply"
            && v["msg"]["endpoint"] == endpoint
    })
    .await;
    let reply = serde_json::from_value(reply["msg"].clone()).unwrap();
    let OperatorIncoming::Ready { confirm, .. } = end.incoming(reply) else {
        panic!("the agent's answer did not make the channel ready");
    };
    send_json(ws, tab_msg(session_id, &confirm)).await;
    end
}

/// A session message as a tab sends it.
pub fn tab_msg(session_id: &str, msg: &lifeline_protocol::SessionMessage) -> serde_json::Value {
    serde_json::json!({"type": "session", "session_id": session_id, "msg": msg})
}
