//! The operator web console over real HTTPS (docs/console-protocol.md): a
//! real broker on port 0 with its self-signed certificate, a browser with a
//! cookie jar and WebSockets, a real agent, and a real SMTP server.

use std::time::Duration;

use futures_util::SinkExt;
use lifeline_core::config::smtp::{SmtpConfig, SmtpTls};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::console_support::*;
use crate::support::*;

const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

#[tokio::test]
async fn console_static_files_and_security_headers() {
    let tb = TestBroker::start().await;
    let mut b = Browser::new(&tb);
    let page = b.get("/console/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type").starts_with("text/html"),
        "{}",
        page.header("content-type")
    );
    assert!(page.text().contains("<html"), "{}", page.text());
    assert_eq!(page.header("content-security-policy"), CSP);
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert_eq!(b.get("/console").await.status, 308);
    // The page pins what it loads (docs/security.md, "Web console"), and the
    // bundle's manifest names the page exactly as served.
    let text = page.text();
    assert!(
        text.contains("src=\"assets/app.js\" integrity=\"sha256-"),
        "{text}"
    );
    assert!(
        text.contains("<meta name=\"lifeline-integrity\" content=\""),
        "{text}"
    );
    let manifest = b.get("/console/assets/manifest.json").await;
    assert_eq!(manifest.status, 200);
    let m = manifest.json();
    use base64::Engine;
    use sha2::Digest;
    let page_hash = format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&page.body))
    );
    assert_eq!(m["index.html"], page_hash.as_str(), "{m}");
    assert_eq!(m["version"], env!("CARGO_PKG_VERSION"));
    let app = b.get("/console/assets/app.js").await;
    let app_hash = format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&app.body))
    );
    assert_eq!(m["files"]["app.js"], app_hash.as_str());
    assert!(text.contains(&format!("src=\"assets/app.js\" integrity=\"{app_hash}\"")));
    // Every file of the console folder, with its content type; the
    // frontend's tooling is not served.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host/broker/console");
    let mut served = 0;
    for rel in files_under(&root) {
        let a = b.get(&format!("/console/assets/{rel}")).await;
        let tooling = rel.starts_with("tests/")
            || rel.starts_with("node_modules/")
            || rel.starts_with("package")
            || rel.ends_with(".sh")
            || rel.split('/').any(|s| s.starts_with('.'));
        if tooling {
            assert_eq!(a.status, 404, "{rel}");
            continue;
        }
        assert_eq!(a.status, 200, "{rel}");
        served += 1;
        let ct = a.header("content-type");
        let want = match rel.rsplit('.').next().unwrap() {
            "js" | "mjs" => "javascript",
            "css" => "text/css",
            "json" => "application/json",
            "html" => "text/html",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "wasm" => "application/wasm",
            _ => "",
        };
        assert!(ct.contains(want), "{rel}: {ct}");
        assert_eq!(a.header("x-content-type-options"), "nosniff", "{rel}");
        let on_disk = std::fs::read(root.join(&rel)).unwrap();
        assert_eq!(a.body, on_disk, "{rel}");
    }
    assert!(served >= 1, "index.html at least");
    for missing in [
        "/console/assets/no-such-file.js",
        "/console/assets/..%2F..%2FCargo.toml",
        "/console/elsewhere",
        "/console/api/nothing",
    ] {
        let a = b.get(missing).await;
        assert_eq!(a.status, 404, "{missing}");
        assert_eq!(a.header("content-security-policy"), CSP, "{missing}");
    }
    let me = b.get("/console/api/me").await;
    assert_eq!(me.status, 401);
    assert_eq!(me.header("cache-control"), "no-store");
    assert!(me.json()["error"].is_string());
}

#[tokio::test]
async fn console_login_csrf_websocket_report_and_logout() {
    let tb = TestBroker::start().await;
    let mut b = Browser::new(&tb);

    // Logging in.
    let wrong = b.login("alice", "not the password").await;
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(wrong.json()["error"].as_str().unwrap().contains("wrong"));
    assert!(b.cookie.is_none());
    let ok = b.login("alice", PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["profile"]["username"], "alice");
    assert_eq!(ok.header("cache-control"), "no-store");
    let set = ok.header("set-cookie");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(flag), "{flag}: {set}");
    }
    let cookie = b.cookie.clone().expect("a cookie");
    assert!(cookie.len() >= 43, "256 random bits: {cookie}");
    assert!(
        !ok.text().contains(&cookie),
        "the cookie is not in the body"
    );
    let csrf = b.csrf.clone().unwrap();
    let me = b.get("/console/api/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["csrf"], csrf.as_str());
    assert_eq!(me.json()["profile"]["name"], "Alice Smith");

    // CSRF: missing or wrong → 403, and nothing happened.
    let none = b.send("POST", "/console/api/logout", &[], None).await;
    assert_eq!(none.status, 403);
    let bad = b
        .send(
            "POST",
            "/console/api/logout",
            &[("x-csrf-token", "forged")],
            None,
        )
        .await;
    assert_eq!(bad.status, 403);
    let mail = b
        .send(
            "POST",
            "/console/api/invitations/x/email",
            &[],
            Some(serde_json::json!({"to": "a@example.com"})),
        )
        .await;
    assert_eq!(mail.status, 403);
    assert_eq!(b.get("/console/api/me").await.status, 200);
    // No [smtp] on this broker: 409, the console offers mailto: instead.
    let mail = b
        .post(
            "/console/api/invitations/x/email",
            Some(serde_json::json!({"to": "a@example.com"})),
        )
        .await;
    assert_eq!(mail.status, 409, "{}", mail.text());

    // WebSocket refusals: no cookie, wrong or no Origin, wrong first message.
    let stranger = Browser::new(&tb);
    assert_eq!(stranger.ws_with(Some(&b.origin())).await.err(), Some(401));
    assert_eq!(
        b.ws_with(Some("https://evil.example")).await.err(),
        Some(403)
    );
    assert_eq!(
        b.ws_with(Some(&format!("http://{}", b.host()))).await.err(),
        Some(403)
    );
    assert_eq!(b.ws_with(None).await.err(), Some(403));
    let mut ws = b.ws_with(Some(&b.origin())).await.unwrap();
    ws.send(Ws::text(r#"{"csrf":"forged"}"#)).await.unwrap();
    assert_eq!(closed(&mut ws).await, Some(1008));
    let mut ws = b.ws_with(Some(&b.origin())).await.unwrap();
    send_json(
        &mut ws,
        serde_json::json!({"type":"request","id":1,"body":{"op":"list_sessions","all":false}}),
    )
    .await;
    assert_eq!(closed(&mut ws).await, Some(1008));

    // The operator protocol over the socket.
    let mut ws = b.ws().await;
    send_json(
        &mut ws,
        serde_json::json!({"type":"request","id":1,"body":{"op":"list_sessions","all":false}}),
    )
    .await;
    let sessions = reply(&mut ws, 1).await;
    assert_eq!(sessions["result"], "sessions", "{sessions}");
    send_json(
        &mut ws,
        serde_json::json!({"type":"request","id":2,"body":{"op":"create_invitation","ticket":"T-42","end_user":"Mario Rossi","ttl_secs":null}}),
    )
    .await;
    let inv = reply(&mut ws, 2).await;
    assert_eq!(inv["result"], "invitation", "{inv}");
    let sid = inv["session_id"].as_str().unwrap().to_string();
    let code = inv["connection_id"].as_str().unwrap().to_string();
    assert!(inv["link"].as_str().unwrap().contains("/j/"));
    send_json(
        &mut ws,
        serde_json::json!({"type":"request","id":3,"body":{"op":"logout"}}),
    )
    .await;
    let refused = reply(&mut ws, 3).await;
    assert_eq!(refused["result"], "error", "{refused}");

    // A customer joins: the broker pushes it to the socket.
    let mut agent = spawn_agent(tb.agent_config("agent", None, WAIT), &code);
    let ready = next_json(&mut ws, |v| {
        v["type"] == "session" && v["session_id"] == sid.as_str()
    })
    .await;
    assert_eq!(ready["msg"]["kind"], "state", "{ready}");
    assert_eq!(ready["msg"]["state"], "waiting", "{ready}");
    send_json(
        &mut ws,
        serde_json::json!({"type":"request","id":4,"body":{"op":"attach","session_id":sid}}),
    )
    .await;
    assert_eq!(reply(&mut ws, 4).await["result"], "attached");
    agent.sees("is connected").await;
    // Content in the clear is refused by the broker: it goes sealed.
    send_json(
        &mut ws,
        serde_json::json!({"type":"session","session_id":sid,"msg":{"kind":"chat","from":"operator","text":"hello in the clear"}}),
    )
    .await;
    let err = next_json(&mut ws, |v| v["type"] == "error").await;
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("sealed end to end"),
        "{err}"
    );
    let mut end = tab_channel(&mut ws, &sid).await;
    agent.sees(end.sas().expect("ready")).await;
    let chat = lifeline_protocol::SessionMessage::Chat {
        from: lifeline_protocol::Party::Operator,
        text: "hello from the browser".into(),
    };
    send_json(&mut ws, tab_msg(&sid, &end.seal(&chat).unwrap())).await;
    agent.sees("hello from the browser").await;
    // Session data for a session this socket is not attached to: refused
    // by the broker's own rules, the socket stays.
    let mut data = vec![5u8];
    data.extend_from_slice(b"other");
    data.extend_from_slice(&[1, 2, 3]);
    ws.send(Ws::binary(data)).await.unwrap();
    let err = next_json(&mut ws, |v| v["type"] == "error").await;
    assert_eq!(err["code"], "wrong_state", "{err}");

    // The report, as the CLI writes it.
    let op = tb.operator("alice").await;
    let (summary, events) = op.report(&sid).await.unwrap();
    let txt = b
        .get(&format!("/console/api/sessions/{sid}/report?format=txt"))
        .await;
    assert_eq!(txt.status, 200, "{}", txt.text());
    assert!(txt.header("content-type").starts_with("text/plain"));
    assert!(txt.header("content-disposition").starts_with("attachment"));
    assert_eq!(
        txt.text(),
        lifeline_operator::report::to_text(&summary, &events)
    );
    assert!(txt.text().contains("hello from the browser"));
    let json = b
        .get(&format!("/console/api/sessions/{sid}/report?format=json"))
        .await;
    assert_eq!(json.status, 200);
    assert!(json.header("content-type").starts_with("application/json"));
    let want: serde_json::Value =
        serde_json::from_str(&lifeline_operator::report::to_json(&summary, &events)).unwrap();
    assert_eq!(json.json(), want);
    let bad_format = b
        .get(&format!("/console/api/sessions/{sid}/report?format=xml"))
        .await;
    assert_eq!(bad_format.status, 400);
    assert_eq!(
        b.get("/console/api/sessions/nosuch/report").await.status,
        404
    );
    let mut bob = Browser::new(&tb);
    assert_eq!(bob.login("bob", PASSWORD).await.status, 200);
    let not_his = bob
        .get(&format!("/console/api/sessions/{sid}/report?format=txt"))
        .await;
    assert_eq!(not_his.status, 404, "{}", not_his.text());

    // Logout ends the cookie session, its sockets and the broker login.
    assert_eq!(b.post("/console/api/logout", None).await.status, 204);
    assert_eq!(closed(&mut ws).await, Some(1008));
    assert!(b.cookie.is_none(), "the cookie was cleared");
    b.cookie = Some(cookie);
    assert_eq!(b.get("/console/api/me").await.status, 401);
    assert_eq!(b.ws_with(Some(&b.origin())).await.err(), Some(401));
    // The session goes on for the CLI client.
    assert_eq!(op.report(&sid).await.unwrap().0.session_id, sid);
}

#[tokio::test]
async fn console_sockets_per_login_are_bounded() {
    let tb = TestBroker::start().await;
    let mut b = Browser::new(&tb);
    assert_eq!(b.login("alice", PASSWORD).await.status, 200);
    let mut open = Vec::new();
    for _ in 0..lifeline_broker::console::CONSOLE_SOCKETS_PER_SESSION {
        open.push(b.ws().await);
    }
    assert_eq!(b.ws_with(Some(&b.origin())).await.err(), Some(429));
    // Another login has its own places.
    let mut other = Browser::new(&tb);
    assert_eq!(other.login("alice", PASSWORD).await.status, 200);
    let mut ws = other.ws().await;
    send_json(
        &mut ws,
        serde_json::json!({"type":"request","id":9,"body":{"op":"profile"}}),
    )
    .await;
    assert_eq!(reply(&mut ws, 9).await["result"], "profile");
    assert_eq!(b.post("/console/api/logout", None).await.status, 204);
    for ws in &mut open {
        assert_eq!(closed(ws).await, Some(1008));
    }
}

#[tokio::test]
async fn console_login_is_rate_limited_per_address() {
    let tb = TestBroker::start().await;
    let mut b = Browser::new(&tb);
    let burst = lifeline_broker::LOGIN_BURST as usize;
    for i in 0..burst {
        let a = b.login("alice", "wrong password").await;
        assert_eq!(a.status, 401, "attempt {i}: {}", a.text());
    }
    let limited = b.login("alice", "wrong password").await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    let secs = limited.json()["retry_after_secs"].as_u64().unwrap();
    assert!(secs >= 1, "{secs}");
    assert_eq!(limited.header("retry-after"), secs.to_string());
    // The right password waits too: the limiter is the operator
    // protocol's own, keyed by the browser's address.
    assert_eq!(b.login("alice", PASSWORD).await.status, 429);
}

#[tokio::test]
async fn console_drops_a_browser_that_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = broker_config(dir.path(), Duration::from_secs(15));
    cfg.limits.write_timeout = Duration::from_secs(1);
    lifeline_broker::add_operator(&cfg, &profile("alice", "Alice Smith"), PASSWORD).unwrap();
    let broker = lifeline_broker::Broker::start(cfg).await.unwrap();
    let tb = TestBroker { dir, broker };
    let mut b = Browser::new(&tb);
    assert_eq!(b.login("alice", PASSWORD).await.status, 200);
    let mut ws = b.ws().await;
    // Requests, never a reply read: the replies pile up until the broker
    // gives up on the browser, which then cannot send either.
    let flood = async {
        for id in 0..1_000_000u64 {
            let req = serde_json::json!({"type":"request","id":id,"body":{"op":"profile"}});
            if ws.send(Ws::text(req.to_string())).await.is_err() {
                return id;
            }
        }
        panic!("the broker took a million requests from a browser that reads nothing");
    };
    let sent = tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("the broker never dropped the browser");
    assert!(sent > 0);
    // The login is still good for a browser that reads.
    let mut ws = b.ws().await;
    send_json(
        &mut ws,
        serde_json::json!({"type":"request","id":1,"body":{"op":"profile"}}),
    )
    .await;
    assert_eq!(reply(&mut ws, 1).await["result"], "profile");
}

/// The files under `root`, as paths relative to it.
fn files_under(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                // The frontend's npm install: not the console's files.
                if !p.ends_with("node_modules") {
                    dirs.push(p);
                }
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push(rel);
            }
        }
    }
    out
}

/// A test broker whose `[smtp]` is `smtp` on loopback.
async fn broker_with_smtp(smtp: &SmtpServer) -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = broker_config(dir.path(), Duration::from_secs(15));
    cfg.smtp = Some(SmtpConfig {
        host: "127.0.0.1".into(),
        port: smtp.port,
        tls: SmtpTls::None,
        from: "Test Support <support@example.com>".into(),
        credentials: None,
    });
    lifeline_broker::add_operator(&cfg, &profile("alice", "Alice Smith"), PASSWORD).unwrap();
    lifeline_broker::add_operator(&cfg, &profile("bob", "Bob Jones"), PASSWORD).unwrap();
    let broker = lifeline_broker::Broker::start(cfg).await.unwrap();
    TestBroker { dir, broker }
}

#[tokio::test]
async fn console_sends_the_invitation_by_email() {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(mail_dir.path()).await;
    let tb = broker_with_smtp(&smtp).await;
    let op = tb.operator("alice").await;
    let inv = op.invite("T-77", "Mario Rossi", None).await.unwrap();
    let mut b = Browser::new(&tb);
    assert_eq!(b.login("alice", PASSWORD).await.status, 200);
    let path = format!("/console/api/invitations/{}/email", inv.session_id);

    for bad in [
        "not an address",
        "a@b@c",
        "x@example.com\r\nBcc: y@example.com",
    ] {
        let a = b.post(&path, Some(serde_json::json!({ "to": bad }))).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.text());
        assert!(
            a.json()["error"]
                .as_str()
                .unwrap()
                .contains("e-mail address")
        );
    }
    let a = b.post(&path, Some(serde_json::json!({"nope": 1}))).await;
    assert_eq!(a.status, 400);

    let sent = b
        .post(&path, Some(serde_json::json!({"to": "mario@example.com"})))
        .await;
    assert_eq!(sent.status, 204, "{}", sent.text());
    let deadline = tokio::time::Instant::now() + WAIT;
    let msg = loop {
        if let Some(m) = smtp.messages().pop() {
            break m;
        }
        assert!(tokio::time::Instant::now() < deadline, "no e-mail arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let header = |name: &str| {
        msg.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name}: {msg}"))
            .to_string()
    };
    assert!(header("to").contains("mario@example.com"), "{msg}");
    assert!(header("from").contains("support@example.com"), "{msg}");
    assert!(header("subject").contains("T-77"), "{msg}");
    assert!(header("reply-to").contains("alice@example.com"), "{msg}");
    assert!(msg.contains(&inv.link), "{msg}");
    assert!(msg.contains(&inv.short_link), "{msg}");
    assert!(msg.contains(&inv.connection_id), "{msg}");
    let kinds = report_kinds(&op, &inv.session_id).await;
    assert!(kinds.contains(&"invitation_email".to_string()), "{kinds:?}");

    // Only one's own invitations, and only while they can be used.
    let bobs = tb.operator("bob").await;
    let other = bobs.invite("T-78", "Luigi", None).await.unwrap();
    let a = b
        .post(
            &format!("/console/api/invitations/{}/email", other.session_id),
            Some(serde_json::json!({"to": "luigi@example.com"})),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text());
    op.end(&inv.session_id, "done").await.unwrap();
    let a = b
        .post(&path, Some(serde_json::json!({"to": "mario@example.com"})))
        .await;
    assert_eq!(a.status, 409, "{}", a.text());
    assert_eq!(smtp.messages().len(), 1);
}
