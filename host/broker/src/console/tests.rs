//! The console's pieces that need no browser: message translation, cookie
//! and origin checks, the invitation e-mail's text, and the cookie-session
//! table's bounds (with in-memory connections to a real broker). The whole
//! console over real HTTPS is tested in `tests/e2e/console_http.rs`.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use lifeline_protocol::{
    ErrorCode, Frame, InvitationInfo, Message, OperatorProfile, ReplyBody, Request, Secret,
};

use super::bridge::{from_binary, from_text};
use super::conn::Requester;
use super::sessions::{Console, Ended};
use super::{auth, mail};
use crate::Broker;

#[test]
fn browser_text_is_forwarded_or_refused() {
    let list = r#"{"type":"request","id":7,"body":{"op":"list_sessions","all":false}}"#;
    assert!(matches!(
        from_text(list),
        Ok(Frame::Control(Message::Request {
            id: 7,
            body: Request::ListSessions { all: false, .. }
        }))
    ));
    let chat = r#"{"type":"session","session_id":"s1","msg":{"kind":"chat","from":"operator","text":"hi"}}"#;
    assert!(matches!(
        from_text(chat),
        Ok(Frame::Control(Message::Session { .. }))
    ));
    for op in [
        r#"{"op":"login","username":"a","password":"b"}"#,
        r#"{"op":"resume","token":"t"}"#,
        r#"{"op":"logout"}"#,
    ] {
        let text = format!(r#"{{"type":"request","id":3,"body":{op}}}"#);
        match from_text(&text).map_err(|m| *m) {
            Err(Message::Reply {
                id: 3,
                body: ReplyBody::Error { code, message },
            }) => {
                assert_eq!(code, ErrorCode::BadMessage);
                assert!(message.contains("/console/api/login"), "{message}");
            }
            other => panic!("{op}: {other:?}"),
        }
    }
    for bad in [
        "not json",
        r#"{"type":"ping","nonce":1}"#,
        r#"{"type":"hello","protocol":"lifeline","version":1,"role":"operator","software":"x"}"#,
    ] {
        assert!(
            matches!(
                from_text(bad).map_err(|m| *m),
                Err(Message::Error {
                    code: ErrorCode::BadMessage,
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn browser_binary_is_session_data() {
    let mut b = vec![3u8];
    b.extend_from_slice(b"abc");
    b.extend_from_slice(&[9, 8, 7]);
    assert_eq!(
        from_binary(&b),
        Ok(Frame::SessionData {
            session: "abc".into(),
            payload: vec![9, 8, 7]
        })
    );
    for bad in [
        &[][..],
        &[0u8, 1][..],
        &[5u8, b'a'][..],
        &[65u8; 80][..],
        &[1u8, 0xff][..],
    ] {
        assert!(from_binary(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_console_cookie_is_found_among_others() {
    let mut h = HeaderMap::new();
    h.append(
        header::COOKIE,
        HeaderValue::from_static("a=1; ll_console=abc"),
    );
    assert_eq!(auth::cookie_id(&h), Some("abc"));
    let mut h = HeaderMap::new();
    h.append(header::COOKIE, HeaderValue::from_static("x_ll_console=1"));
    h.append(header::COOKIE, HeaderValue::from_static("ll_console="));
    assert_eq!(auth::cookie_id(&h), None);
    let c = auth::set_cookie("ID");
    for flag in [
        "ll_console=ID",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/console",
    ] {
        assert!(c.contains(flag), "{c}");
    }
}

#[test]
fn the_origin_must_be_https_and_the_host_used() {
    let check = |origin: Option<&'static str>, host: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        auth::same_origin(&h)
    };
    assert!(check(
        Some("https://support.example.com:7444"),
        "support.example.com:7444"
    ));
    assert!(check(
        Some("https://Support.Example.com"),
        "support.example.com"
    ));
    assert!(!check(
        Some("http://support.example.com:7444"),
        "support.example.com:7444"
    ));
    assert!(!check(
        Some("https://evil.example"),
        "support.example.com:7444"
    ));
    assert!(!check(
        Some("https://support.example.com"),
        "support.example.com:7444"
    ));
    assert!(!check(Some("null"), "support.example.com"));
    assert!(!check(None, "support.example.com"));
}

#[test]
fn retry_after_is_read_from_the_limiter_message() {
    assert_eq!(
        crate::retry_after_secs("too many failed logins from this address; try again in 42 s"),
        42
    );
    assert_eq!(crate::retry_after_secs("the broker is busy"), 1);
}

#[test]
fn the_invitation_mail_has_every_way_in() {
    let op = OperatorProfile {
        username: "alice".into(),
        name: "Alice Smith".into(),
        email: "alice@example.com".into(),
        title: "Support Engineer".into(),
    };
    let inv = InvitationInfo {
        session_id: "s1".into(),
        ticket: "T-7\r\nBcc: x@evil".into(),
        end_user: "Mario".into(),
        connection_id: "123456".into(),
        link: "https://b.example/j/tok".into(),
        short_link: "https://b.example/s/abc".into(),
        expires_at: "2030-01-01T00:00:00Z".into(),
    };
    let text = mail::body("Example Support", &op, &inv);
    for part in [
        "Hello Mario",
        "Alice Smith, Support Engineer of Example Support",
        "https://b.example/j/tok",
        "lifeline agent join https://b.example/j/tok",
        "https://b.example/s/abc",
        "123456",
        "2030-01-01T00:00:00Z",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let subject = mail::subject(&inv);
    assert!(
        !subject.contains('\n') && !subject.contains('\r'),
        "{subject}"
    );
}

fn profile() -> OperatorProfile {
    OperatorProfile {
        username: "alice".into(),
        name: "Alice".into(),
        email: String::new(),
        title: String::new(),
    }
}

async fn broker(dir: &std::path::Path) -> Broker {
    let cfg = crate::requests::tests::config(dir);
    Broker::start(cfg).await.expect("broker starts")
}

#[tokio::test]
async fn the_table_is_bounded_and_drops_the_longest_idle() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let peer = "127.0.0.1:40000".parse().unwrap();
    let table = Console::with_capacity(2);
    let mut cookies = Vec::new();
    let mut watches = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let conn = Requester::open(&b.shared, peer);
        let (c, s) = table.insert(conn, Secret::new("t"), profile(), peer);
        watches.push(s.ended());
        cookies.push(c);
        sessions.push(s);
    }
    // The first one is used again: the second is now idle the longest.
    tokio::time::sleep(Duration::from_millis(5)).await;
    sessions[0].touch();
    let conn = Requester::open(&b.shared, peer);
    let (third, _) = table.insert(conn, Secret::new("t"), profile(), peer);
    assert_eq!(table.len(), 2);
    assert!(table.get(&cookies[0]).is_some());
    assert!(table.get(&cookies[1]).is_none());
    assert!(table.get(&third).is_some());
    assert_eq!(*watches[1].borrow(), Ended::Evicted);
    assert_eq!(*watches[0].borrow(), Ended::Open);
    assert_ne!(cookies[0], third);
    assert_eq!(cookies[0].len(), 43, "256 random bits, base64url");
}

#[tokio::test]
async fn idle_and_old_sessions_expire() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let peer = "127.0.0.1:40000".parse().unwrap();
    let table = Console::default();
    let open = |table: &Console| {
        let conn = Requester::open(&b.shared, peer);
        table.insert(conn, Secret::new("t"), profile(), peer)
    };
    let now = Instant::now();
    let idle = super::CONSOLE_SESSION_IDLE;
    let max = super::CONSOLE_SESSION_MAX;

    let (cookie, s) = open(&table);
    let ended = s.ended();
    let minute = Duration::from_secs(60);
    assert!(table.get_at(&cookie, now + idle - minute).is_some());
    assert!(table.get_at(&cookie, now + idle + minute).is_none());
    assert_eq!(*ended.borrow(), Ended::Expired);

    // Used all along, but past the maximum age.
    let (cookie, s) = open(&table);
    s.touch_at(now + max);
    table.sweep_at(now + max - minute);
    assert_eq!(table.len(), 1);
    table.sweep_at(now + max + minute);
    assert!(table.is_empty());
    assert!(table.get(&cookie).is_none());

    let (cookie, _) = open(&table);
    assert!(table.remove(&cookie).is_some());
    assert!(table.get(&cookie).is_none());
}

#[tokio::test]
async fn a_bad_smtp_sender_stops_the_broker_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::requests::tests::config(dir.path());
    cfg.smtp = Some(lifeline_core::config::smtp::SmtpConfig {
        host: "127.0.0.1".into(),
        port: 25,
        tls: lifeline_core::config::smtp::SmtpTls::None,
        from: "not an address".into(),
        credentials: None,
    });
    let err = Broker::start(cfg).await.err().expect("refused");
    assert!(err.to_string().contains("[smtp] from"), "{err}");
}
