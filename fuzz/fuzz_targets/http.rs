//! The broker's HTTPS routes (host/broker/src/https.rs: join page
//! `/j/{token}`, short link `/s/{code}`, the license back office, the web
//! console's login and API), driven in-process: the real axum router of a
//! real broker (started once per process on loopback port 0, with its
//! SQLite store in a scratch folder, a back office organisation and an
//! operator account), one `oneshot` per request.
//!
//! The input is HTTP/1.1 request text: a request line, header lines, an
//! empty line, then the body (`content-length` bytes, or the rest of the
//! input); further requests may follow. `{{cookie}}` and `{{csrf}}` in the
//! input are replaced by the console cookie and CSRF token of a login done
//! at start, so the fuzzer reaches what needs a logged-in operator;
//! `{{token}}`, `{{short}}` and `{{session}}` by the link token, short
//! code and session ID of an open invitation made at start.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use libfuzzer_sys::fuzz_target;
use lifeline_broker::Broker;
use lifeline_broker::back_office::Peer;
use lifeline_broker::console::HttpsConn;
use lifeline_core::config::BrokerConfig;
use lifeline_protocol::OperatorProfile;
use tower::ServiceExt;

/// Most requests replayed from one input.
const MAX_REQUESTS_PER_INPUT: usize = 4;
/// Most bytes of a response body read.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The operator account the harness logs in with.
const USERNAME: &str = "fuzz";
const PASSWORD: &str = "fuzz operator password";
/// The back office organisation and its verification code.
pub const ORGANISATION: &str = "acme";
pub const CODE: &str = "fuzz-verification-code";
/// Where requests come from.
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);

struct Harness {
    broker: Broker,
    app: Router,
    cookie: String,
    csrf: String,
    token: String,
    short: String,
    session: String,
}

fn config() -> BrokerConfig {
    let dir = lifeline_fuzz::scratch();
    let code_file = dir.join("code");
    std::fs::write(&code_file, CODE).expect("the verification code file");
    std::fs::set_permissions(&code_file, std::fs::Permissions::from_mode(0o600))
        .expect("the verification code file is private");
    let vendor =
        lifeline_license::document::public_key_string(&lifeline_fuzz::fuzz_key().verifying_key());
    let text = format!(
        r#"
[broker]
name = "Fuzz broker"
listen = "127.0.0.1:0"
https_listen = "127.0.0.1:0"
data_dir = "broker"
cert_names = ["localhost"]
script_categories = ["Diagnostics"]

[back_office]
vendor_keys = ["{vendor}"]
[[back_office.organisations]]
id = "{ORGANISATION}"
verification_code_file = "code"
"#
    );
    BrokerConfig::parse(&dir.join("broker.toml"), &text).expect("the harness's broker config")
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        lifeline_fuzz::runtime().block_on(async {
            let cfg = config();
            let profile = OperatorProfile {
                username: USERNAME.into(),
                name: "Fuzz Operator".into(),
                email: "fuzz@example.com".into(),
                title: String::new(),
            };
            lifeline_broker::add_operator(&cfg, &profile, PASSWORD).expect("the operator account");
            let broker = Broker::start(cfg).await.expect("the broker starts");
            let app = lifeline_broker::https::router(Arc::clone(&broker.shared));
            let mut h = Harness {
                broker,
                app,
                cookie: String::new(),
                csrf: String::new(),
                token: String::new(),
                short: String::new(),
                session: String::new(),
            };
            let shared = &h.broker.shared;
            let operator = shared
                .store
                .operator_by_name(USERNAME)
                .expect("the store answers")
                .expect("the operator exists");
            let inv = shared
                .create_invitation(operator.id, &profile, "T-1", "Customer", None)
                .expect("an invitation");
            let last = |url: &str| url.rsplit('/').next().unwrap_or_default().to_string();
            h.token = last(&inv.link);
            h.short = last(&inv.short_link);
            h.session = inv.session_id;
            let body = format!(r#"{{"username":"{USERNAME}","password":"{PASSWORD}"}}"#);
            let login = Request::post("/console/api/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("the login request");
            let r = send(&h, login).await.expect("the login is answered");
            let cookie = r
                .headers()
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .expect("the login sets a cookie")
                .to_string();
            let body = axum::body::to_bytes(r.into_body(), MAX_RESPONSE_BYTES)
                .await
                .expect("the login's body");
            let me: serde_json::Value = serde_json::from_slice(&body).expect("the login's JSON");
            h.csrf = me["csrf"].as_str().expect("a CSRF token").to_string();
            h.cookie = cookie;
            h
        })
    })
}

async fn send(h: &Harness, req: Request<Body>) -> Option<axum::response::Response> {
    let permit = h.broker.shared.https_conns.admit(PEER.ip()).ok()?;
    let app = h
        .app
        .clone()
        .layer(axum::Extension(Peer(PEER.ip())))
        .layer(axum::Extension(HttpsConn {
            peer: PEER,
            permit: Arc::new(permit),
        }));
    Some(app.oneshot(req).await.expect("the router is infallible"))
}

/// `text` with the placeholders replaced.
fn fill(h: &Harness, text: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(text);
    if !s.contains("{{") {
        return text.to_vec();
    }
    s.replace("{{cookie}}", &h.cookie)
        .replace("{{csrf}}", &h.csrf)
        .replace("{{token}}", &h.token)
        .replace("{{short}}", &h.short)
        .replace("{{session}}", &h.session)
        .into_bytes()
}

/// The next request of `input` and what follows it; `None` at the end or
/// when the request line is no request.
fn next_request(input: &[u8]) -> Option<(Request<Body>, &[u8])> {
    let head_end = input.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, rest) = match head_end {
        Some(i) => (&input[..i], &input[i + 4..]),
        None => (input, &input[input.len()..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut words = lines.next()?.split(' ');
    let method = Method::from_bytes(words.next()?.as_bytes()).ok()?;
    let mut b = Request::builder().method(method).uri(words.next()?);
    let mut body_len = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        if name == header::CONTENT_LENGTH {
            body_len = value.to_str().ok().and_then(|v| v.parse::<usize>().ok());
        }
        b = b.header(name, value);
    }
    let n = body_len.unwrap_or(rest.len()).min(rest.len());
    let (body, rest) = rest.split_at(n);
    let req = b.body(Body::from(body.to_vec())).ok()?;
    Some((req, rest))
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let data = fill(h, data);
    lifeline_fuzz::runtime().block_on(async {
        let mut rest = data.as_slice();
        for _ in 0..MAX_REQUESTS_PER_INPUT {
            let Some((req, tail)) = next_request(rest) else {
                break;
            };
            rest = tail;
            if let Some(r) = send(h, req).await {
                let _ = axum::body::to_bytes(r.into_body(), MAX_RESPONSE_BYTES).await;
            }
            if rest.is_empty() {
                break;
            }
        }
    });
});
