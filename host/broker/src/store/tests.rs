//! The store's tests, each run against both backends: SQLite in a
//! temporary folder and PostgreSQL in a database of its own.

use lifeline_protocol::{OperatorProfile, Party, SessionState};

use super::scripts::{NewScript, ScriptChanges, ScriptFile, ScriptSort};
use super::testing::TestDatabase;
use super::*;

/// One backend under test: how to open (and open again) its store.
struct Case {
    dir: tempfile::TempDir,
    pg: Option<(PostgresConfig, TestDatabase)>,
}

impl Case {
    fn open(&self) -> Store {
        match &self.pg {
            None => Store::open(self.dir.path()),
            Some((cfg, _)) => Store::open_postgres(cfg, self.dir.path()),
        }
        .expect("the test store opens")
    }

    fn name(&self) -> &'static str {
        if self.pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }
}

/// SQLite, then PostgreSQL (a fresh database, dropped afterwards).
fn cases() -> Vec<Case> {
    let db = TestDatabase::create().unwrap_or_else(|e| panic!("{e}"));
    let StoreConfig::Postgres(cfg) = db.store_config() else {
        unreachable!("a test database is PostgreSQL")
    };
    vec![
        Case {
            dir: tempfile::tempdir().unwrap(),
            pg: None,
        },
        Case {
            dir: tempfile::tempdir().unwrap(),
            pg: Some((cfg, db)),
        },
    ]
}

fn profile(u: &str) -> OperatorProfile {
    OperatorProfile {
        username: u.into(),
        name: "Alice Smith".into(),
        email: "alice@example.com".into(),
        title: "Support Engineer".into(),
    }
}

fn session(s: &Store, id: &str, operator_id: i64) {
    s.insert_session(&NewSession {
        id,
        operator_id,
        ticket: "T-1",
        end_user: "Mario",
        connection_id: "123456",
        link_token: &format!("tok-{id}"),
        short_code: &format!("short-{id}"),
        expires_at: i64::MAX,
    })
    .unwrap();
}

#[test]
fn operators_sessions_and_events_persist() {
    for case in cases() {
        let id = {
            let s = case.open();
            let id = s.add_operator("h", &profile("alice")).unwrap();
            assert!(matches!(
                s.add_operator("h", &profile("alice")),
                Err(StoreError::DuplicateOperator(_))
            ));
            session(&s, "s1", id);
            let rec = |kind, who, text| s.record("s1", kind, who, text).unwrap();
            assert_eq!(rec("invitation", Party::Operator, "created"), 1);
            assert_eq!(rec("join", Party::Customer, "joined"), 2);
            assert!(s.claim_invitation("s1", "pc", 1, Some("a")).unwrap());
            assert!(!s.claim_invitation("s1", "pc", 2, Some("b")).unwrap());
            // Homed by the claim itself (with `[cluster]`).
            assert_eq!(
                s.nodes_holding_sessions("b").unwrap(),
                vec!["a".to_string()]
            );
            assert_eq!(s.home_node("s1").unwrap().as_deref(), Some("a"));
            s.set_home_node("s1", "c").unwrap();
            assert_eq!(s.home_node("s1").unwrap().as_deref(), Some("c"));
            assert_eq!(s.home_node("nope").unwrap(), None);
            id
        };
        let s = case.open();
        s.checkpoint().unwrap();
        let row = s.session_by_connection_id("123456").unwrap().unwrap();
        assert_eq!((row.operator_id, row.state), (id, SessionState::Waiting));
        assert_eq!(row.customer_host.as_deref(), Some("pc"));
        let ev = s.events("s1").unwrap();
        assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(ev[1].actor, Party::Customer);
        assert_eq!(s.list_sessions(Some(id)).unwrap().len(), 1);
        assert_eq!(s.list_sessions(Some(id + 1)).unwrap().len(), 0);
        assert_eq!(s.list_sessions(None).unwrap().len(), 1);
        assert_eq!(s.live_sessions().unwrap(), vec!["s1".to_string()]);
        s.set_state("s1", SessionState::Ended).unwrap();
        assert!(s.session("s1").unwrap().unwrap().ended_at.is_some());
        assert!(s.live_sessions().unwrap().is_empty(), "{}", case.name());
        // An ended session has no home for requests.
        assert_eq!(s.home_node("s1").unwrap(), None, "{}", case.name());
    }
}

#[test]
fn tokens_and_a_password_change() {
    for case in cases() {
        let s = case.open();
        let id = s.add_operator("h1", &profile("alice")).unwrap();
        let later = lifeline_core::time::now_millis() + 60_000;
        s.add_token("t1", id, later).unwrap();
        s.add_token("t2", id, later).unwrap();
        s.add_token("old", id, 1).unwrap();
        assert_eq!(s.token_operator("t1").unwrap(), Some(id));
        assert_eq!(s.token_operator("old").unwrap(), None, "expired");
        s.set_password_hash(id, "h2", Some("t2")).unwrap();
        assert_eq!(s.token_operator("t1").unwrap(), None, "{}", case.name());
        assert_eq!(s.token_operator("t2").unwrap(), Some(id));
        s.set_password_hash(id, "h3", None).unwrap();
        assert_eq!(s.token_operator("t2").unwrap(), None);
        let row = s.operator_by_name("alice").unwrap().unwrap();
        assert_eq!(row.password_hash, "h3");
        let mut p = profile("alice");
        p.title = "Lead".into();
        s.update_profile(id, &p).unwrap();
        assert_eq!(s.operator_by_id(id).unwrap().unwrap().profile.title, "Lead");
        s.add_operator("h", &profile("bob")).unwrap();
        let names: Vec<_> = s
            .list_operators()
            .unwrap()
            .into_iter()
            .map(|p| p.username)
            .collect();
        assert_eq!(names, ["alice", "bob"]);
        s.add_token("t3", id, later).unwrap();
        s.delete_token("t3").unwrap();
        assert_eq!(s.token_operator("t3").unwrap(), None);
    }
}

#[test]
fn an_older_database_migrates_and_a_newer_one_is_refused() {
    for case in cases() {
        {
            let s = case.open();
            assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
            let back = if s.is_postgres() {
                "UPDATE schema_version SET version = 2"
            } else {
                "PRAGMA user_version = 2"
            };
            s.batch(&format!(
                "DROP TABLE license_documents; DROP TABLE license_owners; \
                 ALTER TABLE session_events DROP COLUMN agent_seq; \
                 ALTER TABLE sessions DROP COLUMN home_node; {back};"
            ))
            .unwrap();
        }
        let s = case.open();
        assert_eq!(
            s.schema_version().unwrap(),
            SCHEMA_VERSION,
            "{}",
            case.name()
        );
        let row = |issued: &str| LicenseRow {
            serial: "S-1".into(),
            issued: issued.into(),
            document: format!("doc {issued}"),
            published_at: 1,
        };
        assert!(s.insert_license(&row("2026-01-01T00:00:00Z")).unwrap());
        assert!(s.insert_license(&row("2026-05-01T00:00:00Z")).unwrap());
        assert!(!s.insert_license(&row("2026-05-01T00:00:00Z")).unwrap());
        let latest = s.latest_license("S-1").unwrap().unwrap();
        assert_eq!(latest.issued, "2026-05-01T00:00:00Z");
        assert_eq!(s.latest_license("S-2").unwrap(), None);
        assert_eq!(s.license_owner("S-1").unwrap(), None);
        s.set_license_owner("S-1", "ORG-1").unwrap();
        s.set_license_owner("S-1", "ORG-2").unwrap();
        assert_eq!(s.license_owner("S-1").unwrap().as_deref(), Some("ORG-1"));
        let ahead = if s.is_postgres() {
            "UPDATE schema_version SET version = 99"
        } else {
            "PRAGMA user_version = 99"
        };
        s.batch(ahead).unwrap();
        drop(s);
        let Err(e) = (match &case.pg {
            None => Store::open(case.dir.path()),
            Some((cfg, _)) => Store::open_postgres(cfg, case.dir.path()),
        }) else {
            panic!("{}: a newer schema must be refused", case.name())
        };
        assert!(e.to_string().contains("schema version 99"), "{e}");
    }
}

#[test]
fn rejoin_tickets_and_resume_credentials_are_single_use() {
    for case in cases() {
        let s = case.open();
        let op = s.add_operator("h", &profile("alice")).unwrap();
        session(&s, "s1", op);
        s.insert_rejoin_ticket("rj", "s1", 1, 100).unwrap();
        s.insert_rejoin_ticket("rj2", "s1", 1, 200).unwrap();
        let t = s.rejoin_ticket("rj").unwrap().unwrap();
        assert_eq!(
            (t.session_id.as_str(), t.expires_at, t.used_at),
            ("s1", 100, None)
        );
        assert_eq!(s.rejoin_deadline("s1").unwrap(), Some(200));
        assert!(s.use_rejoin_ticket("rj2", 5).unwrap());
        assert!(!s.use_rejoin_ticket("rj2", 6).unwrap());
        assert_eq!(s.rejoin_deadline("s1").unwrap(), Some(100));
        assert_eq!(s.rejoin_deadline("nope").unwrap(), None);
        assert!(s.rejoin_ticket("unknown").unwrap().is_none());
        s.insert_resume_credential("c1", "s1", 1, 100).unwrap();
        s.insert_resume_credential("c2", "s1", 2, 100).unwrap();
        let c1 = s.resume_credential("c1").unwrap().unwrap();
        assert_eq!(
            c1.used_at,
            Some(2),
            "{}: a newer credential retires the older",
            case.name()
        );
        assert!(s.use_resume_credential("c2", 3).unwrap());
        assert!(!s.use_resume_credential("c2", 4).unwrap());
    }
}

#[test]
fn scripts_are_found_without_case_listed_and_edited() {
    for case in cases() {
        let s = case.open();
        let alice = s.add_operator("h", &profile("alice")).unwrap();
        let bob = s.add_operator("h", &profile("bob")).unwrap();
        let exec = ScriptFile {
            name: "run.sh",
            data: b"echo hi\n",
        };
        let new = |name, owner_id| NewScript {
            name,
            category: "Network",
            description: "d",
            exec,
            input: None,
            owner_id,
        };
        s.insert_script(&new("Ping", alice)).unwrap();
        s.insert_script(&new("arp", bob)).unwrap();
        assert!(
            s.insert_script(&new("PING", bob)).is_err(),
            "{}",
            case.name()
        );
        let ping = s.script_by_name("ping").unwrap().unwrap();
        assert_eq!((ping.info.name.as_str(), ping.owner_id), ("Ping", alice));
        assert_eq!(ping.info.exec_bytes, 8);
        let names = |who| {
            s.list_scripts(who, ScriptSort::Name, false)
                .unwrap()
                .into_iter()
                .map(|i| i.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(alice), ["Ping"]);
        s.set_script_published(ping.id, true).unwrap();
        assert_eq!(names(bob), ["arp", "Ping"], "{}", case.name());
        let changes = ScriptChanges {
            description: Some("new"),
            input: Some(ScriptFile {
                name: "in.txt",
                data: &[0, 1, 2],
            }),
            ..Default::default()
        };
        s.update_script(ping.id, &changes).unwrap();
        assert_eq!(
            s.script_files(ping.id).unwrap(),
            (b"echo hi\n".to_vec(), Some(vec![0, 1, 2]))
        );
        let edited = s.script_by_name("Ping").unwrap().unwrap().info;
        assert_eq!(
            (edited.description.as_str(), edited.input_name.as_deref()),
            ("new", Some("in.txt"))
        );
        let removed = ScriptChanges {
            remove_input: true,
            ..Default::default()
        };
        s.update_script(ping.id, &removed).unwrap();
        assert_eq!(s.script_files(ping.id).unwrap().1, None);
        s.delete_script(ping.id).unwrap();
        assert!(s.script_by_name("ping").unwrap().is_none());
    }
}

#[test]
fn events_recorded_at_once_get_distinct_numbers() {
    /// Writers recording into one session at the same time, and events each.
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    for case in cases() {
        let s = case.open();
        let op = s.add_operator("h", &profile("alice")).unwrap();
        session(&s, "s1", op);
        std::thread::scope(|scope| {
            for w in 0..WRITERS {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..EACH {
                        s.record("s1", "chat", Party::Operator, &format!("{w}.{i}"))
                            .unwrap();
                    }
                });
            }
        });
        let seqs: Vec<u64> = s.events("s1").unwrap().iter().map(|e| e.seq).collect();
        let want: Vec<u64> = (1..=(WRITERS * EACH) as u64).collect();
        assert_eq!(seqs, want, "{}", case.name());
    }
}

#[test]
fn pages_cut_long_texts_and_follow_cursors() {
    use crate::quota::{MAX_RECORDED_TEXT_CHARS, PAGE_ROWS};
    for case in cases() {
        let s = case.open();
        let op = s.add_operator("h", &profile("alice")).unwrap();
        for i in 0..=PAGE_ROWS {
            session(&s, &format!("{i:04x}"), op);
        }
        let long = "x".repeat(MAX_RECORDED_TEXT_CHARS * 2);
        s.record("0000", "chat", Party::Customer, &long).unwrap();
        let page = s.events_page("0000", 0).unwrap();
        assert!(
            page.items[0].text.contains("more characters not shown"),
            "{}",
            case.name()
        );
        assert!(page.items[0].text.chars().count() < long.len());
        let first = s.sessions_page(Some(op), None).unwrap();
        let mut seen = first.items.len();
        let mut next = first.next;
        while let Some(cursor) = next {
            let page = s.sessions_page(Some(op), Some(&cursor)).unwrap();
            seen += page.items.len();
            next = page.next;
        }
        assert_eq!(seen, PAGE_ROWS + 1, "{}", case.name());
        assert_eq!(s.live_connection_ids(0).unwrap(), (PAGE_ROWS + 1) as u64);
        assert!(s.connection_id_in_use("123456", 0).unwrap());
        assert!(s.expired_invitations(0).unwrap().is_empty());
    }
}

#[test]
fn no_broker_records_past_the_session_s_event_limit() {
    // A node recording for a session homed on another node does not see
    // its quota; the store holds the limit for every node.
    use super::events::MAX_SESSION_EVENTS;
    for case in cases() {
        let s = case.open();
        let op = s.add_operator("h", &profile("alice")).unwrap();
        session(&s, "s1", op);
        // The report is two events short of full.
        let near = sql::Stmt::new(
            "INSERT INTO session_events (session_id, seq, at, kind, actor, text) \
             VALUES (?1, ?2, 0, 'chat', 'operator', 'x')",
            sql::vals!["s1", (MAX_SESSION_EVENTS - 2) as i64],
        );
        s.run(vec![near]).unwrap();
        let seq = s.record("s1", "chat", Party::Operator, "one more").unwrap();
        assert_eq!(seq, MAX_SESSION_EVENTS - 1, "{}", case.name());
        let seq = s.record("s1", "quota", Party::Broker, "the last").unwrap();
        assert_eq!(seq, MAX_SESSION_EVENTS, "{}", case.name());
        let err = s
            .record("s1", "connect", Party::Operator, "past the limit")
            .unwrap_err();
        assert!(
            matches!(err, StoreError::ReportFull { max, .. } if max == MAX_SESSION_EVENTS),
            "{}: {err}",
            case.name()
        );
        assert!(err.to_string().contains("s1"), "{err}");
        // Another session is not affected.
        session(&s, "s2", op);
        assert_eq!(s.record("s2", "join", Party::Customer, "hi").unwrap(), 1);
    }
}
