//! A whole session on a broker whose `[store]` is PostgreSQL: invitation,
//! join, chat both ways, end and report; a second broker on the same
//! database (another node, or the same one restarted) reads it all back;
//! `lifeline config check` takes the `[store]` table and names its errors.
//! The database is a fresh one per test (`lifeline_broker::store::testing`),
//! dropped afterwards.

use std::time::Duration;

use lifeline_broker::Broker;
use lifeline_broker::store::testing::TestDatabase;
use lifeline_core::config::BrokerConfig;
use lifeline_protocol::{Party, SessionMessage, SessionState};

use crate::processes::{fails, ok, p, write};
use crate::support::*;

/// A broker file on `url`, listening on port 0 in `dir`.
fn broker_file(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let f = dir.join("broker.toml");
    write(
        &f,
        &format!(
            "[broker]\nlisten = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\ndata_dir = \"broker\"\n\
             script_categories = [\"Diagnostics\"]\n\n[store]\nkind = \"postgres\"\nurl = \"{url}\"\n"
        ),
    );
    f
}

async fn start(cfg: &BrokerConfig, dir: tempfile::TempDir) -> TestBroker {
    let broker = Broker::start(cfg.clone()).await.unwrap();
    TestBroker { dir, broker }
}

#[tokio::test]
async fn a_whole_session_on_postgres_and_another_broker_reads_it_back() {
    let db = TestDatabase::create().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let file = broker_file(dir.path(), &db.url());
    assert!(ok(&["config", "check", p(&file)], None).contains("valid"));
    let cfg = BrokerConfig::load(&file).unwrap();
    lifeline_broker::add_operator(&cfg, &profile("alice", "Alice Smith"), PASSWORD).unwrap();
    let data_dir = cfg.data_dir.clone();
    let tb = start(&cfg, dir).await;
    assert!(tb.broker.shared.store.describe().starts_with("PostgreSQL"));

    let op = tb.operator("alice").await;
    let agent_cfg = tb.agent_config("agent", None, Duration::from_secs(20));
    let (sid, mut agent) = connected_session(&tb, &op, agent_cfg).await;
    op.chat(&sid, "Hello Mario").await.unwrap();
    agent.sees("[Alice Smith] Hello Mario").await;
    agent
        .input
        .send("The printer is jammed".into())
        .await
        .unwrap();
    let msg = operator_sees(&op, |m| matches!(m, SessionMessage::Chat { .. })).await;
    assert_eq!(
        msg,
        SessionMessage::Chat {
            from: Party::Customer,
            text: "The printer is jammed".into()
        }
    );
    op.end(&sid, "fixed").await.unwrap();
    tokio::time::timeout(WAIT, agent.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let (summary, events) = op.report(&sid).await.unwrap();
    assert_eq!(summary.state, SessionState::Ended);
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["invitation", "join", "connect", "chat", "chat", "end"]
    );
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(
        !data_dir.join(lifeline_broker::store::DB_FILE).exists(),
        "no SQLite database beside a PostgreSQL store"
    );

    // Another broker on the same database: the account, the session and
    // its report are there.
    drop(op);
    let other_dir = tempfile::tempdir().unwrap();
    let mut other_cfg = cfg.clone();
    other_cfg.data_dir = other_dir.path().join("broker");
    let other = start(&other_cfg, other_dir).await;
    let op2 = other.operator("alice").await;
    let sessions = op2.sessions(false).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].session_id, sid);
    let (summary2, events2) = op2.report(&sid).await.unwrap();
    assert_eq!(summary2.state, SessionState::Ended);
    assert_eq!(events2, events);
    drop((op2, other, tb));
}

#[test]
fn config_check_names_store_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = broker_file(
        dir.path(),
        "postgres://lifeline:hunter2@db.example.com/lifeline",
    );
    let err = fails(&["config", "check", p(&f)]);
    assert!(
        err.contains("broker.toml:9: `store.url`") && err.contains("password_file"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2"),
        "the password is not repeated: {err}"
    );
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replace("kind = \"postgres\"", "kind = \"oracle\"");
    write(&f, &text);
    let err = fails(&["config", "check", p(&f)]);
    assert!(
        err.contains("`store.kind`") && err.contains("\"sqlite\""),
        "{err}"
    );
}
