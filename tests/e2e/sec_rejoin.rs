//! Issue 10, findings 12 and 14 (the parts on the wire): rejoins survive a
//! burst of wrong codes, a rate limit, a proxy and a half-open old link;
//! password changes revoke login tokens; a license is served only to the
//! organisation that owns it; the documented frame limit is the code's.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lifeline_core::client;
use lifeline_core::link::Link;
use lifeline_protocol::{
    ClientRole, ErrorCode, Frame, JoinCredential, Message, Request, Secret, SessionState,
};
use tokio::sync::mpsc;

use crate::raw_e2e::attach_beside_raw_agent;
use crate::reboot::rebooted;
use crate::support::*;

/// A raw agent connection over real TLS (no agent library), as a guesser or
/// an agent whose socket the broker has not seen die yet.
async fn raw_agent(tb: &TestBroker) -> Link {
    client::connect(&tb.endpoint(), ClientRole::Agent)
        .await
        .unwrap()
        .0
}

/// The first error or join answer on a raw agent link.
async fn answer(link: &mut Link) -> Message {
    loop {
        let f = tokio::time::timeout(WAIT, link.rx.recv())
            .await
            .expect("the broker answers")
            .expect("the link stays open until the answer");
        if let Frame::Control(m @ (Message::Error { .. } | Message::Joined { .. })) = f {
            return m;
        }
        if let Frame::Control(m @ Message::RejoinTicket { .. }) = f {
            return m;
        }
    }
}

/// Sends wrong guesses of `credential` from 127.0.0.1 until the broker
/// answers "rate limited" (bounded).
async fn guess_until_limited(tb: &TestBroker, hello: impl Fn() -> Message) {
    for _ in 0..40 {
        let mut link = raw_agent(tb).await;
        link.tx.send(Frame::Control(hello())).await.unwrap();
        if let Message::Error {
            code: ErrorCode::RateLimited,
            ..
        } = answer(&mut link).await
        {
            return;
        }
    }
    panic!("the broker never rate-limited the guesses");
}

/// A running rejoin: its task, what it shows, and its input.
type Rejoining = (
    tokio::task::JoinHandle<Result<Option<lifeline_agent::Outcome>, lifeline_agent::AgentError>>,
    mpsc::UnboundedReceiver<String>,
    mpsc::Sender<String>,
);

/// Runs the agent's rejoin; returns its task and screen.
fn start_rejoin(acfg: lifeline_agent::config::AgentConfig) -> Rejoining {
    let (stx, srx) = mpsc::unbounded_channel();
    let (itx, irx) = mpsc::channel(8);
    let task =
        tokio::spawn(
            async move { lifeline_agent::rejoin(&acfg, Arc::new(Screen(stx)), irx).await },
        );
    (task, srx, itx)
}

/// Waits for a screen line containing `needle`; returns every line seen.
async fn screen_until(srx: &mut mpsc::UnboundedReceiver<String>, needle: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, srx.recv()).await {
            Ok(Some(l)) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
            Ok(None) => panic!("agent stopped before showing {needle:?}: {seen:#?}"),
            Err(_) => panic!("customer never saw {needle:?}: {seen:#?}"),
        }
    }
}

const BACK: &str = "You are back in the session with Alice Smith";

#[tokio::test]
async fn burst_of_wrong_codes_does_not_block_a_rejoin() {
    let (tb, op, sid, acfg) = rebooted(Duration::from_secs(900)).await;
    // Wrong connection IDs over the wire from the rebooting customer's own
    // address, and a botnet's worth from elsewhere: the join budget is gone.
    guess_until_limited(&tb, || Message::Join {
        credential: JoinCredential::ConnectionId("000000".into()),
        host: "guesser".into(),
    })
    .await;
    for i in 0..64u8 {
        let _ = tb
            .broker
            .shared
            .join_limiter
            .acquire(IpAddr::from([10, 9, 0, i]));
    }
    let (task, mut srx, _itx) = start_rejoin(acfg);
    let seen = screen_until(&mut srx, BACK).await;
    assert!(
        seen.iter().all(|l| !l.contains("too many")),
        "the rejoin did not pay from the join budget: {seen:#?}"
    );
    op.chat(&sid, "welcome back").await.unwrap();
    screen_until(&mut srx, "welcome back").await;
    op.end(&sid, "done").await.unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn rate_limited_rejoin_keeps_its_ticket_and_retries() {
    let (tb, op, sid, acfg) = rebooted(Duration::from_secs(900)).await;
    // Forged tickets from the same address use up its rejoin allowance.
    guess_until_limited(&tb, || Message::Rejoin {
        ticket: Secret::new(format!("rj_{}", lifeline_broker::accounts::new_token())),
        host: "guesser".into(),
    })
    .await;
    let ticket = lifeline_agent::reboot::ticket_path(&acfg.data_dir);
    let (task, mut srx, _itx) = start_rejoin(acfg);
    let seen = screen_until(&mut srx, "Cannot rejoin yet").await;
    assert!(
        seen.last()
            .unwrap()
            .contains("too many invalid rejoin tickets"),
        "{seen:#?}"
    );
    assert!(ticket.exists(), "a rate-limited rejoin keeps the ticket");
    // The allowance refills; the agent tries again by itself.
    screen_until(&mut srx, BACK).await;
    assert!(!ticket.exists(), "a used ticket is removed");
    op.end(&sid, "done").await.unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn transient_refusals_keep_the_ticket_until_it_expires() {
    // A broker that is not there: the agent keeps trying, and only the
    // ticket's own expiry ends the attempts (then the ticket goes).
    let dir = tempfile::tempdir().unwrap();
    let tb = TestBroker::start().await;
    let mut acfg = tb.agent_config("agent", None, Duration::from_secs(20));
    acfg.endpoint.address = "127.0.0.1:1".into();
    acfg.data_dir = dir.path().join("agent");
    std::fs::create_dir_all(&acfg.data_dir).unwrap();
    lifeline_agent::reboot::save(
        &acfg.data_dir,
        &lifeline_agent::reboot::SavedTicket {
            ticket: Secret::new("rj_x"),
            session_id: "s".into(),
            operator: "Alice Smith".into(),
            expires_at: lifeline_core::time::now_millis() + 2500,
            saved_at: lifeline_core::time::now_rfc3339(),
            customer_uid: None,
        },
    )
    .unwrap();
    let ticket = lifeline_agent::reboot::ticket_path(&acfg.data_dir);
    let (task, mut srx, _itx) = start_rejoin(acfg);
    screen_until(&mut srx, "Cannot rejoin yet").await;
    assert!(ticket.exists());
    let err = tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expired") && err.contains("cannot reach the broker"),
        "{err}"
    );
    assert!(!ticket.exists());
}

#[tokio::test]
async fn rejoin_goes_through_the_session_proxy() {
    use crate::license_support::{PROXY_PASSWORD, Tinyproxy};
    let (tb, op, sid, mut acfg) = rebooted(Duration::from_secs(900)).await;
    let proxy = Tinyproxy::start();
    acfg.remote_service = Some(
        lifeline_agent::config::remote_service::RemoteServiceConfig {
            enabled: false,
            back_office: "https://127.0.0.1:1".into(),
            organisation_id: "ORG".into(),
            verification_code: Secret::new("x"),
            vendor_keys: vec![],
            check_interval: Duration::from_secs(3600),
            license_file: tb.dir.path().join("license.toml"),
            mode: lifeline_agent::config::remote_service::LicenseMode::Remote,
            download_folder: tb.dir.path().join("downloads"),
            proxy: proxy.setting(PROXY_PASSWORD),
            service_account: None,
        },
    );
    let (task, mut srx, _itx) = start_rejoin(acfg);
    screen_until(&mut srx, BACK).await;
    let log = proxy.log();
    let port = tb.broker.addr.port();
    assert!(
        log.lines()
            .any(|l| l.contains("CONNECT") && l.contains(&format!("127.0.0.1:{port}"))),
        "the rejoin went through the proxy to port {port}:\n{log}"
    );
    op.end(&sid, "done").await.unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn rejoin_before_the_old_link_died_keeps_the_session() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let inv = op.invite("T-HALF", "Mario Rossi", None).await.unwrap();
    let sid = inv.session_id.clone();
    // The agent before the reboot, as raw frames.
    let mut old = raw_agent(&tb).await;
    old.tx
        .send(Frame::Control(Message::Join {
            credential: JoinCredential::ConnectionId(inv.connection_id.clone()),
            host: "pc-1".into(),
        }))
        .await
        .unwrap();
    assert!(matches!(answer(&mut old).await, Message::Joined { .. }));
    op.wait_ready(&sid, WAIT).await.unwrap();
    attach_beside_raw_agent(&op, &sid, &mut old).await;
    old.tx
        .send(Frame::Control(Message::RejoinTicketRequest {
            detail: "updates".into(),
        }))
        .await
        .unwrap();
    let Message::RejoinTicket { ticket, expires_at } = answer(&mut old).await else {
        panic!("no ticket");
    };
    // The machine restarts; its old socket stays open (half-open: the
    // broker has not noticed) while the new agent rejoins.
    let acfg = tb.agent_config("agent", None, Duration::from_secs(20));
    std::fs::create_dir_all(&acfg.data_dir).unwrap();
    lifeline_agent::reboot::save(
        &acfg.data_dir,
        &lifeline_agent::reboot::SavedTicket {
            ticket,
            session_id: sid.clone(),
            operator: "Alice Smith".into(),
            expires_at,
            saved_at: lifeline_core::time::now_rfc3339(),
            customer_uid: None,
        },
    )
    .unwrap();
    let (task, mut srx, _itx) = start_rejoin(acfg);
    screen_until(&mut srx, BACK).await;
    // The broker lets go of the superseded connection by itself.
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Some(_frame) = tokio::time::timeout_at(deadline, old.rx.recv())
        .await
        .expect("the broker closes the superseded agent connection")
    {}
    drop(old);
    // The rejoined session is untouched: chat flows, state is connected.
    op.chat(&sid, "still here?").await.unwrap();
    screen_until(&mut srx, "still here?").await;
    let list = op.sessions(false).await.unwrap();
    let s = list.iter().find(|s| s.session_id == sid).unwrap();
    assert_eq!(s.state, SessionState::Connected);
    let (_, events) = op.report(&sid).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| e.text.contains("customer connection lost")),
        "{events:?}"
    );
    op.end(&sid, "done").await.unwrap();
    let outcome = task.await.unwrap().unwrap().unwrap();
    assert_eq!(outcome.session.session_id, sid);
}

#[tokio::test]
async fn password_change_and_reset_revoke_login_tokens() {
    let tb = TestBroker::start().await;
    let mut a = lifeline_operator::Client::connect(&tb.endpoint())
        .await
        .unwrap();
    let token_a = a.login("alice", PASSWORD).await.unwrap();
    let mut b = lifeline_operator::Client::connect(&tb.endpoint())
        .await
        .unwrap();
    let token_b = b.login("alice", PASSWORD).await.unwrap();
    let resumes = |token: String| {
        let ep = tb.endpoint();
        async move {
            let c = lifeline_operator::Client::connect(&ep).await.unwrap();
            c.request(Request::Resume { token }).await.is_ok()
        }
    };
    assert!(resumes(token_b.clone()).await);
    let new_pw = "a brand new passphrase 42";
    a.request(Request::ChangePassword {
        old: PASSWORD.into(),
        new: new_pw.into(),
    })
    .await
    .unwrap();
    assert!(
        !resumes(token_b).await,
        "another client's token dies with the old password"
    );
    assert!(
        resumes(token_a.clone()).await,
        "the client that changed the password stays logged in"
    );
    lifeline_broker::reset_password(&tb.broker.shared.cfg, "alice", "reset by the admin 7")
        .unwrap();
    assert!(
        !resumes(token_a).await,
        "an admin reset revokes every token"
    );
}

#[tokio::test]
async fn a_license_is_served_only_to_its_organisation() {
    use crate::license_support::*;
    use lifeline_agent::config::remote_service::LicenseMode;
    use lifeline_core::config::back_office::{BackOfficeConfig, CodeCheck, Organisation};
    use lifeline_core::proxy::ProxySetting;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = broker_config(dir.path(), Duration::from_secs(15));
    let hash = lifeline_broker::accounts::hash_password(CODE).unwrap();
    cfg.back_office = Some(BackOfficeConfig {
        vendor_keys: vec![lifeline_license::document::public_key_string(
            &vendor().verifying_key(),
        )],
        organisations: ["ORG-OWNER", ORG]
            .map(|id| Organisation {
                id: id.into(),
                code: CodeCheck::Argon2(hash.clone()),
            })
            .to_vec(),
    });
    let broker = lifeline_broker::Broker::start(cfg).await.unwrap();
    let office = Office {
        tb: TestBroker { dir, broker },
    };
    let f = office.tb.dir.path().join("new.toml");
    std::fs::write(&f, new_license().to_toml()).unwrap();
    let shared_cfg = &office.tb.broker.shared.cfg;
    let err = lifeline_broker::back_office::publish(shared_cfg, &f)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--organisation"), "{err}");
    lifeline_broker::back_office::publish_for(shared_cfg, &f, Some("ORG-OWNER")).unwrap();
    let err = lifeline_broker::back_office::publish_for(shared_cfg, &f, Some(ORG))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("belongs to organisation \"ORG-OWNER\""),
        "{err}"
    );

    // ORG is valid, but the serial is not its own: nothing published.
    let path = format!("/license/v1/licenses/{SERIAL}");
    let other = office.back_office(&office.remote_service(
        "other",
        LicenseMode::Remote,
        ProxySetting::None,
    ));
    let p = path.clone();
    let reply = tokio::task::spawn_blocking(move || other.get(&p))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, 404, "another organisation's serial");
    let mut rs = office.remote_service("owner", LicenseMode::Remote, ProxySetting::None);
    rs.organisation_id = "ORG-OWNER".into();
    let owner = office.back_office(&rs);
    let reply = tokio::task::spawn_blocking(move || owner.get(&path))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        lifeline_license::License::parse_bytes(std::path::Path::new("reply"), &reply.body).unwrap(),
        new_license()
    );
}

#[test]
fn documented_frame_limits_are_the_code_constants() {
    let doc = include_str!("../../docs/architecture.md");
    let frame = format!(
        "| `MAX_FRAME_BYTES` | {} MiB |",
        lifeline_protocol::MAX_FRAME_BYTES >> 20
    );
    let handshake = format!(
        "| `MAX_HANDSHAKE_FRAME_BYTES` | {} KiB |",
        lifeline_protocol::MAX_HANDSHAKE_FRAME_BYTES >> 10
    );
    assert!(doc.contains(&frame), "docs/architecture.md lacks {frame:?}");
    assert!(
        doc.contains(&handshake),
        "docs/architecture.md lacks {handshake:?}"
    );
    assert!(doc.contains(&format!(
        "`MAX_FRAME_BYTES` = {} MiB",
        lifeline_protocol::MAX_FRAME_BYTES >> 20
    )));
}
