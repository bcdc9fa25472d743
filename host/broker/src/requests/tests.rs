//! The login property of [`super::dispatch`]: on an anonymous connection,
//! every request but `Login` and `Resume` is answered "log in first".

use std::collections::BTreeSet;
use std::time::Duration;

use lifeline_core::config::BrokerConfig;
use lifeline_protocol::{ErrorCode, FileUpload, MAX_FRAME_BYTES, Request};

use super::dispatch;
use crate::Broker;
use crate::operator_side::Conn;

/// Kinds of request in the protocol.
const KINDS: usize = 20;

/// Which kind `r` is, `0..KINDS`. No catch-all: a new request does not
/// compile here until it is counted, and then the test wants a sample.
fn kind(r: &Request) -> usize {
    use Request as R;
    match r {
        R::Login { .. } => 0,
        R::Resume { .. } => 1,
        R::Logout => 2,
        R::ChangePassword { .. } => 3,
        R::Profile => 4,
        R::UpdateProfile { .. } => 5,
        R::ListSessions { .. } => 6,
        R::CreateInvitation { .. } => 7,
        R::Attach { .. } => 8,
        R::Detach { .. } => 9,
        R::EndSession { .. } => 10,
        R::Report { .. } => 11,
        R::ScriptCreate { .. } => 12,
        R::ScriptUpdate { .. } => 13,
        R::ScriptDelete { .. } => 14,
        R::ScriptPublish { .. } => 15,
        R::ScriptList { .. } => 16,
        R::ScriptCategories => 17,
        R::RunScripts { .. } => 18,
        R::Invitation { .. } => 19,
    }
}

/// One request of every kind.
fn samples() -> Vec<Request> {
    use Request as R;
    let file = || FileUpload {
        name: "run.sh".into(),
        data_b64: "ZWNobyBoaQo=".into(),
    };
    let s = || "s1".to_string();
    vec![
        R::Login {
            username: "nobody".into(),
            password: "not the password".into(),
        },
        R::Resume {
            token: "no such token".into(),
        },
        R::Logout,
        R::ChangePassword {
            old: "old password".into(),
            new: "a new password".into(),
        },
        R::Profile,
        R::UpdateProfile {
            name: Some("Mallory".into()),
            email: None,
            title: None,
        },
        R::ListSessions {
            all: true,
            after: None,
        },
        R::CreateInvitation {
            ticket: "T-1".into(),
            end_user: "Carol".into(),
            ttl_secs: None,
        },
        R::Attach {
            session_id: s(),
            e2e_hello: None,
        },
        R::Detach { session_id: s() },
        R::EndSession {
            session_id: s(),
            reason: String::new(),
        },
        R::Report {
            session_id: s(),
            after_seq: 0,
        },
        R::ScriptCreate {
            name: "hi".into(),
            category: "Diagnostics".into(),
            description: String::new(),
            exec: file(),
            input: None,
        },
        R::ScriptUpdate {
            name: "hi".into(),
            category: None,
            description: None,
            exec: Some(file()),
            input: None,
            remove_input: false,
        },
        R::ScriptDelete { name: "hi".into() },
        R::ScriptPublish {
            name: "hi".into(),
            published: true,
        },
        R::ScriptList {
            sort: "name".into(),
            descending: false,
        },
        R::ScriptCategories,
        R::RunScripts {
            session_id: s(),
            names: vec!["hi".into()],
            stop_on_failure: true,
            timeout_secs: None,
        },
        R::Invitation { session_id: s() },
    ]
}

pub(crate) fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        name: "Test broker".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        https_listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        data_dir: dir.join("broker"),
        cert_names: vec!["localhost".into()],
        tls_files: None,
        invitation_ttl: Duration::from_secs(600),
        rejoin_ttl: Duration::from_secs(900),
        heartbeat: Duration::from_secs(15),
        script_categories: vec!["Diagnostics".into()],
        back_office: None,
        limits: Default::default(),
        smtp: None,
        join: Default::default(),
        store: Default::default(),
        cluster: None,
    }
}

#[tokio::test]
async fn every_request_but_login_and_resume_needs_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(config(dir.path())).await.unwrap();
    let (ours, _theirs) = tokio::io::duplex(64 * 1024);
    let link = lifeline_core::link::spawn_link(ours, Duration::from_secs(15), MAX_FRAME_BYTES);
    let mut conn = Conn::new(1, "127.0.0.1:40000".parse().unwrap());
    let requests = samples();
    let kinds: BTreeSet<usize> = requests.iter().map(kind).collect();
    assert_eq!(kinds, (0..KINDS).collect(), "a sample of every request");
    for req in requests {
        let anonymous = matches!(req, Request::Login { .. } | Request::Resume { .. });
        let what = format!("{req:?}");
        let answer = dispatch(&broker.shared, &mut conn, &link, req).await;
        let log_in_first = matches!(
            &answer,
            Err((ErrorCode::NotLoggedIn, m)) if m.starts_with("log in first")
        );
        assert_eq!(log_in_first, !anonymous, "{what}: {answer:?}");
        assert!(answer.is_err(), "{what}: {answer:?}");
        assert!(conn.operator.is_none() && conn.attached.is_empty());
    }
}

/// `Invitation` reads an open invitation again, for its operator only.
#[tokio::test]
async fn an_open_invitation_is_read_again_by_its_operator_only() {
    use lifeline_protocol::ReplyBody;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let password = "correct horse battery staple";
    for name in ["alice", "bob"] {
        let p = lifeline_protocol::OperatorProfile {
            username: name.into(),
            name: name.into(),
            email: String::new(),
            title: String::new(),
        };
        crate::add_operator(&cfg, &p, password).unwrap();
    }
    let broker = Broker::start(cfg).await.unwrap();
    let (ours, _theirs) = tokio::io::duplex(64 * 1024);
    let link = lifeline_core::link::spawn_link(ours, Duration::from_secs(15), MAX_FRAME_BYTES);
    let peer = "127.0.0.1:40000".parse().unwrap();
    let (mut alice, mut bob) = (Conn::new(1, peer), Conn::new(2, peer));
    for (c, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let login = Request::Login {
            username: name.into(),
            password: password.into(),
        };
        dispatch(&broker.shared, c, &link, login).await.unwrap();
    }
    let create = Request::CreateInvitation {
        ticket: "T-1".into(),
        end_user: "Carol".into(),
        ttl_secs: None,
    };
    let Ok(ReplyBody::Invitation(inv)) = dispatch(&broker.shared, &mut alice, &link, create).await
    else {
        panic!("no invitation")
    };
    let again = |id: &str| Request::Invitation {
        session_id: id.to_string(),
    };
    let answer = dispatch(&broker.shared, &mut alice, &link, again(&inv.session_id)).await;
    assert_eq!(answer, Ok(ReplyBody::Invitation(inv.clone())));
    let answer = dispatch(&broker.shared, &mut bob, &link, again(&inv.session_id)).await;
    assert!(
        matches!(answer, Err((ErrorCode::NoSuchSession, _))),
        "{answer:?}"
    );
    let end = Request::EndSession {
        session_id: inv.session_id.clone(),
        reason: String::new(),
    };
    dispatch(&broker.shared, &mut alice, &link, end)
        .await
        .unwrap();
    let answer = dispatch(&broker.shared, &mut alice, &link, again(&inv.session_id)).await;
    assert!(
        matches!(answer, Err((ErrorCode::WrongState, _))),
        "{answer:?}"
    );
}
