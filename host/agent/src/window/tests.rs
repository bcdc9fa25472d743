//! The window server's defences over a real loopback connection: the Host
//! check, the single-use launch token, the cookie and the Origin of the
//! WebSocket.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Window, WindowOptions};
use crate::channel::Hub;

/// Sends a raw HTTP/1.1 request; returns the answer's head (status line
/// and headers).
async fn head(port: u16, request: String) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_string();
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

fn status(head: &str) -> u16 {
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn get(host: &str, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

fn upgrade(port: u16, extra: &str) -> String {
    get(
        &format!("127.0.0.1:{port}"),
        "/ws",
        &format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}"
        ),
    )
    .replace("Connection: close\r\n", "")
}

fn open(port: u16, token: &str) -> String {
    let body = format!("token={token}");
    format!(
        "POST /open HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn host_token_cookie_and_origin_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _commands) = Hub::new(None);
    let opts = WindowOptions {
        no_browser: true,
        runtime_dir: Some(dir.path().to_path_buf()),
        ..WindowOptions::default()
    };
    let w = Window::start(Arc::clone(&hub), &opts).await.unwrap();
    let port = w.addr.port();
    let page = std::fs::read_to_string(&w.launcher).unwrap();
    let token = page
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();

    // DNS rebinding: another name for 127.0.0.1.
    let h = head(port, get(&format!("evil.example:{port}"), "/", "")).await;
    assert_eq!(status(&h), 403, "{h}");
    let h = head(port, get(&format!("localhost:{port}"), "/", "")).await;
    assert_eq!(status(&h), 200, "{h}");
    assert!(h.contains("default-src 'none'"), "{h}");

    // The socket needs the cookie, which only the token buys, once.
    assert_eq!(status(&head(port, upgrade(port, "")).await), 403);
    assert_eq!(status(&head(port, open(port, &"0".repeat(64))).await), 403);
    let h = head(port, open(port, &token)).await;
    assert_eq!(status(&h), 303, "{h}");
    let cookie = h
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(
        !w.launcher.exists(),
        "the launcher file is deleted once used"
    );
    assert_eq!(status(&head(port, open(port, &token)).await), 403);
    let pair = cookie.split(';').next().unwrap();
    let foreign = format!("Cookie: {pair}\r\nOrigin: http://evil.example\r\n");
    assert_eq!(status(&head(port, upgrade(port, &foreign)).await), 403);
    let own = format!("Cookie: {pair}\r\nOrigin: http://127.0.0.1:{port}\r\n");
    assert_eq!(status(&head(port, upgrade(port, &own)).await), 101);
}
