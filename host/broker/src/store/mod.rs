//! The broker's storage: operators, login tokens, sessions with their
//! invitations, report events, the script library, rejoin tickets, resume
//! credentials and licenses. One interface, two backends:
//!
//! - SQLite (`sqlite`): `broker.db` in the data folder, WAL, owner-only
//!   files, the disk-full reserve; the embedded default;
//! - PostgreSQL (`postgres`): one database several brokers share
//!   (`[store] kind = "postgres"`), each broker with a few connections on
//!   threads of their own.
//!
//! All SQL lives in this folder, written once (`sql`: `?N` placeholders,
//! neutral values), one file per noun (`operators`, `tokens`, `sessions`,
//! `events`, `scripts`, `tickets`, `licenses`), the schema in `schema`.
//! Calls are short and synchronous; slow work (password hashing) happens
//! outside them.

use std::path::Path;

use lifeline_core::config::BrokerConfig;
use lifeline_core::config::store::{PostgresConfig, StoreConfig};
use lifeline_protocol::{OperatorProfile, Party, SessionState, SessionSummary};

pub mod events;
pub mod homes;
pub mod licenses;
pub mod operators;
pub mod postgres;
pub mod schema;
pub mod scripts;
pub mod sessions;
pub(crate) mod sql;
pub mod sqlite;
pub mod testing;
#[cfg(test)]
mod tests;
pub mod tickets;
pub mod tokens;

pub use licenses::LicenseRow;
pub use schema::SCHEMA_VERSION;
pub use sessions::{NewSession, SessionRow};
pub use sqlite::DB_FILE;

use sql::{DbError, Outcome, Row, Stmt};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbError),
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
        "database {place} has schema version {found}, this broker knows version {SCHEMA_VERSION}"
    )]
    Schema { place: String, found: i64 },
    #[error("cannot use the PostgreSQL database {place}: {source}")]
    Connect { place: String, source: DbError },
    #[error("[store] url is not a PostgreSQL URL: {0}")]
    Url(DbError),
    #[error("cannot start the store's threads: {0}")]
    Threads(String),
    #[error("{0:?} is not a plain database name (a-z, 0-9, _)")]
    Name(String),
    #[error("an operator named {0:?} already exists")]
    DuplicateOperator(String),
    #[error("the broker's disk is full: report events are not recorded until space is freed")]
    RecordingPaused,
    #[error(
        "session {session}'s report holds {max} events, the most any broker records for one session"
    )]
    ReportFull { session: String, max: u64 },
}

impl StoreError {
    /// True when the write failed (or was skipped) because the disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Db(e) => e.is_disk_full(),
            StoreError::RecordingPaused => true,
            _ => false,
        }
    }
}

/// The backend a store runs on.
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

pub struct Store {
    backend: Backend,
    /// Space set aside for small writes when the disk is full.
    pub reserve: crate::diskfull::DiskReserve,
}

impl Store {
    /// Opens (creating on first start) the SQLite database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let backend = Backend::Sqlite(sqlite::Sqlite::open(data_dir)?);
        Ok(Store {
            backend,
            reserve: crate::diskfull::DiskReserve::new(data_dir),
        })
    }

    /// Opens the PostgreSQL database `pg` names (creating the schema on
    /// first use); `data_dir` holds the disk reserve.
    pub fn open_postgres(pg: &PostgresConfig, data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Folder {
            path: data_dir.to_owned(),
            source,
        })?;
        let pg = postgres::Postgres::open(postgres::config(pg)?)?;
        tracing::info!(database = %pg.place, "the store is PostgreSQL");
        let backend = Backend::Postgres(pg);
        Ok(Store {
            backend,
            reserve: crate::diskfull::DiskReserve::new(data_dir),
        })
    }

    /// Opens the store the broker's `[store]` names.
    pub fn open_config(cfg: &BrokerConfig) -> Result<Self, StoreError> {
        match &cfg.store {
            StoreConfig::Sqlite => Store::open(&cfg.data_dir),
            StoreConfig::Postgres(pg) => Store::open_postgres(pg, &cfg.data_dir),
        }
    }

    /// Which backend, for messages: `SQLite` or `PostgreSQL user@host:port/db`.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(_) => "SQLite".into(),
            Backend::Postgres(p) => format!("PostgreSQL {}", p.place),
        }
    }

    /// The schema version the database holds.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(s) => s.schema_version()?,
            Backend::Postgres(p) => p.schema_version()?,
        })
    }

    /// Runs statements (several: in one transaction).
    pub(crate) fn run(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(s) => s.run(&stmts)?,
            Backend::Postgres(p) => p.run(stmts)?,
        })
    }

    /// Runs one statement: its outcome.
    pub(crate) fn one(&self, stmt: Stmt) -> Result<Outcome, StoreError> {
        Ok(self.run(vec![stmt])?.pop().unwrap_or_default())
    }

    /// The rows of one query.
    pub(crate) fn rows(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
        Ok(self.one(stmt)?.rows)
    }

    /// The first row of one query, if any.
    pub(crate) fn row(&self, stmt: Stmt) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(stmt)?.into_iter().next())
    }

    /// Rows changed by one statement.
    pub(crate) fn changed(&self, stmt: Stmt) -> Result<u64, StoreError> {
        Ok(self.one(stmt)?.changed)
    }

    /// Runs a small write that must work on a full disk (logins, joins,
    /// state changes): when the disk is full, frees the reserve and tries
    /// once more.
    pub(crate) fn essential(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, StoreError> {
        match self.run(stmts.clone()) {
            Err(e) if e.is_disk_full() && self.reserve.release() => self.run(stmts),
            other => other,
        }
    }

    /// Rows changed by the last of `stmts`, run as an essential write.
    pub(crate) fn essential_changed(&self, stmts: Vec<Stmt>) -> Result<u64, StoreError> {
        Ok(self
            .essential(stmts)?
            .pop()
            .map(|o| o.changed)
            .unwrap_or_default())
    }

    /// Copies SQLite's WAL into the database (PASSIVE: never blocks
    /// writers); nothing to do for PostgreSQL. Call periodically from a
    /// blocking thread.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.checkpoint()?),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Raw SQL on the backend (tests: making an old database).
    #[cfg(test)]
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.batch(sql)?,
            Backend::Postgres(p) => p.batch(sql)?,
        }
        Ok(())
    }

    /// True on PostgreSQL (tests that differ in their setup).
    #[cfg(test)]
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }
}

/// An operator row.
#[derive(Debug, Clone)]
pub struct OperatorRow {
    pub id: i64,
    pub password_hash: String,
    pub profile: OperatorProfile,
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

/// A session state read back (an unknown one reads as ended).
fn state(s: &str) -> SessionState {
    SessionState::parse(s).unwrap_or(SessionState::Ended)
}
