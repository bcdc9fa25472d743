//! The back office client against a real TLS server on 127.0.0.1 port 0
//! (the broker's own TLS setup, pinned by fingerprint) that answers with
//! canned, sometimes hostile, bytes: limits and checks hold, errors are
//! clear, nothing panics.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc;

use lifeline_core::tls::{Trust, load_or_create_identity, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Serves one TLS connection with `reply`; sends back the request head.
fn server(reply: Vec<u8>) -> (BackOffice, mpsc::Receiver<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let id = load_or_create_identity(dir.path(), None, &["localhost".into()]).unwrap();
    let trust = Trust::Pinned(id.fingerprint);
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&id).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = tls.write_all(&reply).await;
            let _ = tls.shutdown().await;
        });
    });
    let bo = BackOffice {
        url: format!("https://127.0.0.1:{port}"),
        trust,
        proxy: ProxySetting::None,
        organisation_id: "ORG-1".into(),
        code: Secret::new("code-5e1d"),
        timeout: Duration::from_secs(10),
    };
    (bo, rx, dir)
}

#[test]
fn a_reply_is_read_and_the_request_carries_the_organisation() {
    let (bo, seen, _dir) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec());
    // The pinned certificate is trusted whatever name it carries.
    assert_eq!(bo.hello().unwrap(), "hello");
    let head = seen.recv().unwrap();
    assert!(head.starts_with("GET /license/v1/hello HTTP/1.1"), "{head}");
    assert!(head.contains("x-lifeline-organisation: ORG-1"), "{head}");
    assert!(
        head.contains("x-lifeline-verification-code: code-5e1d"),
        "{head}"
    );
}

#[test]
fn chunked_replies_and_hostile_sizes_are_clear_errors_not_panics() {
    let (bo, _, _dir) = server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
            .to_vec(),
    );
    assert_eq!(bo.get("/x").unwrap().body, b"hello");
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for body in [
        &b"ffffffffffffffff\r\nab\r\n0\r\n\r\n"[..],
        &b"fffffffffffffffff\r\nab\r\n"[..],
        &b"5\r\nab"[..],
        &b"2\r\nabXY0\r\n\r\n"[..],
    ] {
        let (bo, _, _dir) = server([head.as_slice(), body].concat());
        let err = bo.get("/x").unwrap_err().to_string();
        assert!(
            err.contains("talking to the back office") || err.contains("larger than"),
            "{err}"
        );
        assert!(!err.contains("code-5e1d"), "{err}");
    }
    let (bo, _, _dir) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhello".to_vec());
    assert!(bo.get("/x").is_err());
    let (bo, _, _dir) = server(b"garbage\r\n\r\n".to_vec());
    assert!(bo.get("/x").is_err());
}

#[test]
fn replies_beyond_the_limit_are_refused() {
    let body = vec![b'a'; MAX_REPLY_BYTES + 1];
    let reply = [
        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes(),
        body,
    ]
    .concat();
    let (bo, _, _dir) = server(reply);
    let err = bo.get("/x").unwrap_err().to_string();
    assert!(
        err.contains(&format!("reply larger than {MAX_REPLY_BYTES} bytes")),
        "{err}"
    );
}

#[test]
fn statuses_and_paths_are_checked() {
    let (bo, _, _dir) =
        server(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 9\r\n\r\nwrong code".to_vec());
    let err = bo.get("/x").unwrap_err();
    assert!(
        matches!(err, FetchError::Unauthorized { status: 403, .. }),
        "{err}"
    );
    let (bo, _, _dir) = server(Vec::new());
    // A path that would move the request elsewhere, or inject a header, is
    // refused before connecting.
    for path in ["@evil.example/x", "x", "/a b\r\nx-injected: 1"] {
        assert!(
            matches!(bo.get(path), Err(FetchError::BadPath(_))),
            "{path:?}"
        );
    }
}

#[test]
fn the_timeout_bounds_the_whole_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bo = BackOffice {
        url: format!("https://127.0.0.1:{port}"),
        trust: Trust::Pinned(lifeline_core::tls::Fingerprint([1; 32])),
        proxy: ProxySetting::None,
        organisation_id: "ORG-1".into(),
        code: Secret::new("c"),
        timeout: Duration::from_millis(300),
    };
    // Accepted by the kernel, never answered.
    let err = bo.get("/x").unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    drop(listener);
}
