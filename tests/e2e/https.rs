//! The broker's HTTPS side: join page, short-link redirect, invalid links.

use std::sync::Arc;

use lifeline_core::tls::{self, Trust};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A minimal HTTP/1.1 GET over TLS with the broker's pinned certificate.
async fn get(tb: &TestBroker, path: &str) -> (u16, String, String) {
    let cfg = tls::client_config(&Trust::Pinned(tb.broker.fingerprint)).unwrap();
    let tcp = TcpStream::connect(tb.broker.https_addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(Arc::clone(&cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .ok();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("https://").unwrap();
    format!("/{}", rest.split_once('/').unwrap().1)
}

#[tokio::test]
async fn join_page_short_link_and_invalid_links() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let inv = op
        .invite("T-<7>", "Mario <script>alert(1)</script>", None)
        .await
        .unwrap();
    assert!(
        inv.link
            .starts_with(&format!("https://{}/j/", tb.broker.https_addr))
    );

    let (status, head, body) = get(&tb, &path_of(&inv.link)).await;
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("Alice Smith") && body.contains("Support Engineer"));
    assert!(
        body.contains(&format!("lifeline agent join {}", inv.link)),
        "{body}"
    );
    assert!(
        body.contains("Mario &lt;script&gt;") && !body.contains("<script>"),
        "escaped: {body}"
    );
    assert!(body.contains("T-&lt;7&gt;"));
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store")
    );

    let (status, head, _) = get(&tb, &path_of(&inv.short_link)).await;
    assert_eq!(status, 303);
    assert!(
        head.contains(&format!("location: {}", inv.link))
            || head.contains(&format!("Location: {}", inv.link)),
        "{head}"
    );

    for bad in [
        "/j/forged-token",
        "/s/nope",
        &format!("/j/{}", "x".repeat(500)),
    ] {
        let (status, _, body) = get(&tb, bad).await;
        assert_eq!(status, 404, "{bad}");
        assert!(body.contains("not valid"));
    }
    let (status, _, body) = get(&tb, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("Test broker"));

    // Once used, the link's page no longer offers the session.
    let _agent = spawn_agent(tb.agent_config("a", None, WAIT), &inv.link);
    op.wait_ready(&inv.session_id, WAIT).await.unwrap();
    assert_eq!(get(&tb, &path_of(&inv.link)).await.0, 404);
    assert_eq!(get(&tb, &path_of(&inv.short_link)).await.0, 404);
}
