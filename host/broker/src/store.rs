//! The broker's embedded SQLite database (WAL): operators, login tokens,
//! sessions with their invitations, and session report events.
//!
//! All SQL lives here. Calls are short and synchronous under one mutex;
//! slow work (password hashing) happens outside it.

use std::path::Path;
use std::sync::Mutex;

use lifeline_protocol::{OperatorProfile, Party, ReportEvent, SessionState, SessionSummary};
use rusqlite::{Connection, OptionalExtension, params};

/// Database file name inside the broker's data folder.
pub const DB_FILE: &str = "broker.db";

/// Schema version stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS operators (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    title         TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_tokens (
    token_hash  TEXT PRIMARY KEY,
    operator_id INTEGER NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id            TEXT PRIMARY KEY,
    operator_id   INTEGER NOT NULL REFERENCES operators(id),
    ticket        TEXT NOT NULL,
    end_user      TEXT NOT NULL,
    state         TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    link_token    TEXT NOT NULL UNIQUE,
    short_code    TEXT NOT NULL UNIQUE,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    customer_host TEXT,
    created_at    INTEGER NOT NULL,
    ended_at      INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_by_code ON sessions(connection_id);
CREATE INDEX IF NOT EXISTS sessions_by_operator ON sessions(operator_id);
CREATE INDEX IF NOT EXISTS sessions_by_state ON sessions(state, expires_at);
CREATE TABLE IF NOT EXISTS scripts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    category    TEXT NOT NULL,
    description TEXT NOT NULL,
    exec_name   TEXT NOT NULL,
    exec_data   BLOB NOT NULL,
    input_name  TEXT,
    input_data  BLOB,
    owner_id    INTEGER NOT NULL REFERENCES operators(id),
    published   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejoin_tickets (
    ticket_hash TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE TABLE IF NOT EXISTS session_events (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    text       TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
"#;

/// Migrations by the version they bring the schema to; each runs once, in
/// order, when the database is older.
const MIGRATIONS: [(i64, &str); 1] = [(
    3,
    r#"
CREATE TABLE IF NOT EXISTS license_documents (
    serial       TEXT NOT NULL,
    issued       TEXT NOT NULL,
    document     TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (serial, issued)
);
"#,
)];

/// A published license document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRow {
    pub serial: String,
    /// RFC 3339 UTC, seconds (sorts by time).
    pub issued: String,
    pub document: String,
    pub published_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot create the data folder {path}: {source}")]
    Folder {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make the database file {path} owner-only (mode 0600): {source}")]
    FileMode {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "database {path} has schema version {found}, this broker knows version {SCHEMA_VERSION}"
    )]
    Schema {
        path: std::path::PathBuf,
        found: i64,
    },
    #[error("an operator named {0:?} already exists")]
    DuplicateOperator(String),
    #[error("the broker's disk is full: report events are not recorded until space is freed")]
    RecordingPaused,
}

impl StoreError {
    /// True when the write failed (or was skipped) because the disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sql(e) => crate::diskfull::is_disk_full(e),
            StoreError::RecordingPaused => true,
            _ => false,
        }
    }
}

/// An operator row.
#[derive(Debug, Clone)]
pub struct OperatorRow {
    pub id: i64,
    pub password_hash: String,
    pub profile: OperatorProfile,
}

/// A session row with its invitation.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub operator_id: i64,
    pub operator: String,
    pub ticket: String,
    pub end_user: String,
    pub state: SessionState,
    pub connection_id: String,
    pub link_token: String,
    pub short_code: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub customer_host: Option<String>,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

impl SessionRow {
    pub fn summary(&self) -> SessionSummary {
        SessionSummary {
            session_id: self.id.clone(),
            operator: self.operator.clone(),
            ticket: self.ticket.clone(),
            end_user: self.end_user.clone(),
            state: self.state,
            customer_host: self.customer_host.clone(),
            created_at: lifeline_core::time::millis_to_rfc3339(self.created_at),
            ended_at: self.ended_at.map(lifeline_core::time::millis_to_rfc3339),
        }
    }
}

/// A new invitation to insert.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub operator_id: i64,
    pub ticket: &'a str,
    pub end_user: &'a str,
    pub connection_id: &'a str,
    pub link_token: &'a str,
    pub short_code: &'a str,
    pub expires_at: i64,
}

pub struct Store {
    conn: Mutex<Connection>,
    /// A second connection that only checkpoints the WAL, so the fsync of a
    /// checkpoint never runs inside a request while holding `conn`.
    checkpointer: Mutex<Connection>,
    /// Space set aside for small writes when the disk is full.
    pub reserve: crate::diskfull::DiskReserve,
}

const SESSION_COLS: &str = "s.id, s.operator_id, o.username, s.ticket, s.end_user, s.state, \
    s.connection_id, s.link_token, s.short_code, s.expires_at, s.used_at, s.customer_host, \
    s.created_at, s.ended_at";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    let state: String = r.get(5)?;
    Ok(SessionRow {
        id: r.get(0)?,
        operator_id: r.get(1)?,
        operator: r.get(2)?,
        ticket: r.get(3)?,
        end_user: r.get(4)?,
        state: SessionState::parse(&state).unwrap_or(SessionState::Ended),
        connection_id: r.get(6)?,
        link_token: r.get(7)?,
        short_code: r.get(8)?,
        expires_at: r.get(9)?,
        used_at: r.get(10)?,
        customer_host: r.get(11)?,
        created_at: r.get(12)?,
        ended_at: r.get(13)?,
    })
}

fn party_str(p: Party) -> &'static str {
    match p {
        Party::Operator => "operator",
        Party::Customer => "customer",
        Party::Broker => "broker",
    }
}

pub(crate) fn parse_party(s: &str) -> Party {
    match s {
        "operator" => Party::Operator,
        "customer" => Party::Customer,
        _ => Party::Broker,
    }
}

impl Store {
    /// Opens (creating on first start) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Folder {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        crate::db_files::make_private(&path)?;
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Schema {
                path,
                found: version,
            });
        }
        conn.execute_batch(SCHEMA)?;
        for (to, sql) in MIGRATIONS {
            if version < to {
                conn.execute_batch(sql)?;
            }
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        // Checkpoints happen in `checkpoint`, off the request path.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Connection::open(&path)?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Store {
            conn: Mutex::new(conn),
            checkpointer: Mutex::new(checkpointer),
            reserve: crate::diskfull::DiskReserve::new(data_dir),
        })
    }

    /// Runs a small write that must work on a full disk (logins, joins,
    /// state changes): when the disk is full, frees the reserve and tries
    /// once more.
    pub(crate) fn essential<T>(
        &self,
        write: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let db = self.db();
        match write(&db) {
            Err(e) if crate::diskfull::is_disk_full(&e) && self.reserve.release() => {
                Ok(write(&db)?)
            }
            other => Ok(other?),
        }
    }

    /// Copies the WAL into the database (PASSIVE: never blocks writers).
    /// Call periodically from a blocking thread.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let c = self
            .checkpointer
            .lock()
            .expect("checkpointer lock is never poisoned");
        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    pub(crate) fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .expect("store lock is never poisoned: no panics while held")
    }

    // ------------------------------------------------------------ licenses

    /// The newest license published for `serial` (by issue time).
    pub fn latest_license(&self, serial: &str) -> Result<Option<LicenseRow>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT serial, issued, document, published_at FROM license_documents
                 WHERE serial = ?1 ORDER BY issued DESC LIMIT 1",
                params![serial],
                |r| {
                    Ok(LicenseRow {
                        serial: r.get(0)?,
                        issued: r.get(1)?,
                        document: r.get(2)?,
                        published_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Stores a license; false when one with the same serial and issue time
    /// is already there (it is left unchanged).
    pub fn insert_license(&self, row: &LicenseRow) -> Result<bool, StoreError> {
        let n = self.db().execute(
            "INSERT OR IGNORE INTO license_documents (serial, issued, document, published_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![row.serial, row.issued, row.document, row.published_at],
        )?;
        Ok(n == 1)
    }

    // ------------------------------------------------------------ operators

    pub fn add_operator(&self, hash: &str, p: &OperatorProfile) -> Result<i64, StoreError> {
        let db = self.db();
        let res = db.prepare_cached(
            "INSERT INTO operators (username, password_hash, name, email, title, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(
            params![p.username, hash, p.name, p.email, p.title, lifeline_core::time::now_millis()],
        );
        match res {
            Ok(_) => Ok(db.last_insert_rowid()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::DuplicateOperator(p.username.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn operator_where(
        &self,
        clause: &str,
        arg: &dyn rusqlite::ToSql,
    ) -> Result<Option<OperatorRow>, StoreError> {
        let db = self.db();
        let sql = format!(
            "SELECT id, password_hash, username, name, email, title FROM operators WHERE {clause}"
        );
        Ok(db
            .prepare_cached(&sql)?
            .query_row([arg], |r| {
                Ok(OperatorRow {
                    id: r.get(0)?,
                    password_hash: r.get(1)?,
                    profile: OperatorProfile {
                        username: r.get(2)?,
                        name: r.get(3)?,
                        email: r.get(4)?,
                        title: r.get(5)?,
                    },
                })
            })
            .optional()?)
    }

    pub fn operator_by_name(&self, username: &str) -> Result<Option<OperatorRow>, StoreError> {
        self.operator_where("username = ?1", &username)
    }

    pub fn operator_by_id(&self, id: i64) -> Result<Option<OperatorRow>, StoreError> {
        self.operator_where("id = ?1", &id)
    }

    pub fn list_operators(&self) -> Result<Vec<OperatorProfile>, StoreError> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT username, name, email, title FROM operators ORDER BY username",
        )?;
        let rows = st.query_map([], |r| {
            Ok(OperatorProfile {
                username: r.get(0)?,
                name: r.get(1)?,
                email: r.get(2)?,
                title: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets an operator's password hash and, in the same transaction,
    /// revokes every login token of that operator except `keep` (the
    /// token of the connection that changed its own password, if any).
    pub fn set_password_hash(
        &self,
        id: i64,
        hash: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute(
            "UPDATE operators SET password_hash = ?2 WHERE id = ?1",
            params![id, hash],
        )?;
        tx.execute(
            "DELETE FROM login_tokens WHERE operator_id = ?1 AND token_hash IS NOT ?2",
            params![id, keep],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn update_profile(&self, id: i64, p: &OperatorProfile) -> Result<(), StoreError> {
        self.db()
            .prepare_cached("UPDATE operators SET name = ?2, email = ?3, title = ?4 WHERE id = ?1")?
            .execute(params![id, p.name, p.email, p.title])?;
        Ok(())
    }

    // ------------------------------------------------------------ login tokens

    pub fn add_token(
        &self,
        token_hash: &str,
        operator_id: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.essential(|db| {
            db.prepare_cached("DELETE FROM login_tokens WHERE expires_at < ?1")?
                .execute([lifeline_core::time::now_millis()])?;
            db.prepare_cached(
                "INSERT INTO login_tokens (token_hash, operator_id, expires_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![token_hash, operator_id, expires_at])
        })?;
        Ok(())
    }

    /// The operator a live token belongs to.
    pub fn token_operator(&self, token_hash: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .db()
            .prepare_cached(
                "SELECT operator_id FROM login_tokens WHERE token_hash = ?1 AND expires_at >= ?2",
            )?
            .query_row(
                params![token_hash, lifeline_core::time::now_millis()],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn delete_token(&self, token_hash: &str) -> Result<(), StoreError> {
        self.essential(|db| {
            db.prepare_cached("DELETE FROM login_tokens WHERE token_hash = ?1")?
                .execute([token_hash])
        })?;
        Ok(())
    }

    // ------------------------------------------------------------ sessions

    pub fn insert_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        let now = lifeline_core::time::now_millis();
        self.essential(|db| {
            db.prepare_cached(
                "INSERT INTO sessions (id, operator_id, ticket, end_user, state, connection_id, link_token, short_code, expires_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, 'invited', ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                s.id,
                s.operator_id,
                s.ticket,
                s.end_user,
                s.connection_id,
                s.link_token,
                s.short_code,
                s.expires_at,
                now
            ])
        })?;
        Ok(())
    }

    fn session_where(
        &self,
        clause: &str,
        arg: &dyn rusqlite::ToSql,
    ) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions s JOIN operators o ON o.id = s.operator_id WHERE {clause} \
             ORDER BY (s.state = 'invited') DESC, s.created_at DESC LIMIT 1"
        );
        Ok(self
            .db()
            .prepare_cached(&sql)?
            .query_row([arg], session_row)
            .optional()?)
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("s.id = ?1", &id)
    }

    /// The newest session with this connection ID (a live one first).
    pub fn session_by_connection_id(&self, code: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("s.connection_id = ?1", &code)
    }

    pub fn session_by_link_token(&self, token: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("s.link_token = ?1", &token)
    }

    pub fn session_by_short_code(&self, code: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("s.short_code = ?1", &code)
    }

    /// True when a live (invited, unexpired) invitation holds this code.
    pub fn connection_id_in_use(&self, code: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self
            .db()
            .prepare_cached(
                "SELECT 1 FROM sessions WHERE connection_id = ?1 AND state = 'invited' AND expires_at >= ?2",
            )?
            .query_row(
                params![code, now],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Marks the invitation used, atomically: false when it already was.
    pub fn claim_invitation(&self, id: &str, host: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.essential(|db| {
            db.prepare_cached(
                "UPDATE sessions SET used_at = ?2, customer_host = ?3, state = 'waiting' \
                 WHERE id = ?1 AND used_at IS NULL AND state = 'invited' AND expires_at >= ?2",
            )?
            .execute(params![id, now, host])
        })?;
        Ok(n == 1)
    }

    pub fn set_state(&self, id: &str, state: SessionState) -> Result<(), StoreError> {
        let ended = (state == SessionState::Ended).then(lifeline_core::time::now_millis);
        self.essential(|db| {
            db.prepare_cached(
                "UPDATE sessions SET state = ?2, ended_at = COALESCE(ended_at, ?3) WHERE id = ?1",
            )?
            .execute(params![id, state.as_str(), ended])
        })?;
        Ok(())
    }

    /// Invitations past their expiry that nobody used.
    pub fn expired_invitations(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT id FROM sessions WHERE state = 'invited' AND expires_at < ?1",
        )?;
        let ids = st.query_map([now], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// Sessions left live by a broker that stopped: they cannot resume.
    pub fn live_sessions(&self) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        let mut st =
            db.prepare_cached("SELECT id FROM sessions WHERE state NOT IN ('invited', 'ended')")?;
        let ids = st.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// Sessions of one operator, or of all, newest first.
    pub fn list_sessions(&self, operator_id: Option<i64>) -> Result<Vec<SessionRow>, StoreError> {
        let db = self.db();
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE (?1 IS NULL OR s.operator_id = ?1) ORDER BY s.created_at DESC, s.id"
        );
        let mut st = db.prepare_cached(&sql)?;
        let rows = st.query_map([operator_id], session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to [`crate::quota::PAGE_ROWS`] + 1 sessions (newest first) that
    /// sort after `after`.
    pub(crate) fn session_rows_after(
        &self,
        operator_id: Option<i64>,
        after: Option<&crate::pages::SessionCursor>,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let db = self.db();
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE (?1 IS NULL OR s.operator_id = ?1) \
             AND (?2 IS NULL OR s.created_at < ?2 OR (s.created_at = ?2 AND s.id > ?3)) \
             ORDER BY s.created_at DESC, s.id LIMIT ?4"
        );
        let mut st = db.prepare_cached(&sql)?;
        let rows = st.query_map(
            params![
                operator_id,
                after.map(|c| c.created_at),
                after.map(|c| c.id.as_str()),
                crate::quota::PAGE_ROWS as i64 + 1
            ],
            session_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ------------------------------------------------------------ report events

    /// Appends an event to a session's report; returns its sequence number.
    /// On a full disk the event is not written ([`StoreError::is_disk_full`])
    /// and the reserve is freed for the small writes.
    pub fn record(
        &self,
        session: &str,
        kind: &str,
        actor: Party,
        text: &str,
    ) -> Result<u64, StoreError> {
        if self.reserve.is_full() {
            return Err(StoreError::RecordingPaused);
        }
        let res = self.insert_event(session, kind, actor, text);
        if let Err(e) = &res
            && e.is_disk_full()
        {
            self.reserve.release();
        }
        res
    }

    fn insert_event(
        &self,
        session: &str,
        kind: &str,
        actor: Party,
        text: &str,
    ) -> Result<u64, StoreError> {
        let db = self.db();
        let seq: i64 = db.prepare_cached(
            "INSERT INTO session_events (session_id, seq, at, kind, actor, text) \
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM session_events WHERE session_id = ?1 \
             RETURNING seq",
        )?
        .query_row(
            params![session, lifeline_core::time::now_millis(), kind, party_str(actor), text],
            |r| r.get(0),
        )?;
        Ok(seq as u64)
    }

    pub fn events(&self, session: &str) -> Result<Vec<ReportEvent>, StoreError> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT seq, at, kind, actor, text FROM session_events WHERE session_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([session], |r| {
            let at: i64 = r.get(1)?;
            let actor: String = r.get(3)?;
            Ok(ReportEvent {
                seq: r.get::<_, i64>(0)? as u64,
                at: lifeline_core::time::millis_to_rfc3339(at),
                kind: r.get(2)?,
                actor: parse_party(&actor),
                text: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(u: &str) -> OperatorProfile {
        OperatorProfile {
            username: u.into(),
            name: "Alice Smith".into(),
            email: "alice@example.com".into(),
            title: "Support Engineer".into(),
        }
    }

    #[test]
    fn operators_sessions_and_events_persist() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let s = Store::open(dir.path()).unwrap();
            let id = s.add_operator("h", &profile("alice")).unwrap();
            assert!(matches!(
                s.add_operator("h", &profile("alice")),
                Err(StoreError::DuplicateOperator(_))
            ));
            s.insert_session(&NewSession {
                id: "s1",
                operator_id: id,
                ticket: "T-1",
                end_user: "Mario",
                connection_id: "123456",
                link_token: "tok",
                short_code: "short",
                expires_at: i64::MAX,
            })
            .unwrap();
            assert_eq!(
                s.record("s1", "invitation", Party::Operator, "created")
                    .unwrap(),
                1
            );
            assert_eq!(
                s.record("s1", "join", Party::Customer, "joined").unwrap(),
                2
            );
            assert!(s.claim_invitation("s1", "pc", 1).unwrap());
            assert!(!s.claim_invitation("s1", "pc", 2).unwrap());
            id
        };
        let s = Store::open(dir.path()).unwrap();
        s.checkpoint().unwrap();
        let row = s.session_by_connection_id("123456").unwrap().unwrap();
        assert_eq!((row.operator_id, row.state), (id, SessionState::Waiting));
        let ev = s.events("s1").unwrap();
        assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(s.list_sessions(Some(id)).unwrap().len(), 1);
        assert_eq!(s.list_sessions(Some(id + 1)).unwrap().len(), 0);
    }

    #[test]
    fn version_2_database_migrates_to_licenses() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            let db = s.db();
            db.execute_batch("DROP TABLE license_documents; PRAGMA user_version = 2;")
                .unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
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
        let v: i64 = s
            .db()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }
}
