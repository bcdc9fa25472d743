//! The embedded backend: `broker.db` in the data folder (SQLite, WAL,
//! owner-only files), one connection under a mutex for requests and a
//! second one that only checkpoints the WAL.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::StoreError;
use super::schema::{Dialect, SCHEMA_VERSION};
use super::sql::{DbError, Outcome, Row, Stmt, Value};

/// Database file name inside the broker's data folder.
pub const DB_FILE: &str = "broker.db";

/// How long a statement waits for another connection's lock (the
/// checkpointer, an admin command) before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Sqlite {
    conn: Mutex<Connection>,
    /// A second connection that only checkpoints the WAL, so the fsync of a
    /// checkpoint never runs inside a request while holding `conn`.
    checkpointer: Mutex<Connection>,
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Bytes(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

fn value(v: ValueRef<'_>) -> Result<Value, DbError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Int(f as i64),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|_| DbError::NotUtf8("SQLite text"))?
                .to_string(),
        ),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    })
}

fn one(c: &Connection, s: &Stmt) -> Result<Outcome, DbError> {
    let mut st = c.prepare_cached(&s.sql)?;
    let params = rusqlite::params_from_iter(s.params.iter());
    if st.column_count() == 0 {
        let changed = st.execute(params)? as u64;
        return Ok(Outcome {
            rows: Vec::new(),
            changed,
        });
    }
    let width = st.column_count();
    let mut rows = st.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let row = (0..width)
            .map(|i| value(r.get_ref(i)?))
            .collect::<Result<Vec<_>, DbError>>()?;
        out.push(Row(row));
    }
    let changed = out.len() as u64;
    Ok(Outcome { rows: out, changed })
}

fn version(c: &Connection) -> Result<i64, DbError> {
    Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

impl Sqlite {
    /// Opens (creating on first start) `broker.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Sqlite, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Folder {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        crate::db_files::make_private(&path)?;
        let db = |e: rusqlite::Error| StoreError::Db(e.into());
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        prepare(&conn, &path)?;
        // Checkpoints happen in `checkpoint`, off the request path.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(db)?;
        let checkpointer = Connection::open(&path).map_err(db)?;
        checkpointer.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
            checkpointer: Mutex::new(checkpointer),
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .expect("store lock is never poisoned: no panics while held")
    }

    /// Runs the statements; more than one run in one transaction.
    pub fn run(&self, stmts: &[Stmt]) -> Result<Vec<Outcome>, DbError> {
        let mut db = self.db();
        if let [s] = stmts {
            return Ok(vec![one(&db, s)?]);
        }
        let tx = db.transaction()?;
        let out = stmts
            .iter()
            .map(|s| one(&tx, s))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(out)
    }

    /// Copies the WAL into the database (PASSIVE: never blocks writers).
    pub fn checkpoint(&self) -> Result<(), DbError> {
        let c = self
            .checkpointer
            .lock()
            .expect("checkpointer lock is never poisoned");
        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The schema version in `PRAGMA user_version`.
    pub fn schema_version(&self) -> Result<i64, DbError> {
        version(&self.db())
    }

    /// Runs raw SQL (tests: making an old database).
    #[cfg(test)]
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        Ok(self.db().execute_batch(sql)?)
    }
}

/// Pauses between attempts to set up a database another process is
/// setting up at the same moment (bounded by [`BUSY_TIMEOUT`] in all).
const SETUP_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

/// WAL, the connection's settings and the migrations. Another process
/// opening the same new file at this moment (the broker starting while
/// `broker add-operator` runs) can make SQLite answer "busy" at once
/// instead of waiting (its deadlock avoidance while the journal mode
/// changes): the steps are tried again until [`BUSY_TIMEOUT`].
fn prepare(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let give_up = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match prepare_once(conn, path) {
            Err(StoreError::Db(DbError::Sqlite(e)))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(SETUP_RETRY);
            }
            other => return other,
        }
    }
}

fn prepare_once(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let db = |e: rusqlite::Error| StoreError::Db(e.into());
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(db)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    migrate(conn, path)
}

/// Brings the schema to [`SCHEMA_VERSION`]; a newer database is refused.
/// Two processes may open a new database at once (the broker starting
/// while `broker add-operator` runs): the version is read and the
/// migrations run inside one write transaction (`BEGIN IMMEDIATE`), so the
/// second waits (`BUSY_TIMEOUT`) and then finds the schema current; a
/// migration that is not idempotent (`ALTER TABLE … ADD COLUMN`) runs once.
fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let db = |e: rusqlite::Error| StoreError::Db(e.into());
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
    let result = migrate_locked(conn, path);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end).map_err(db)?;
    result
}

fn migrate_locked(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Schema {
            place: PathBuf::from(path).display().to_string(),
            found,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch(&Dialect::Sqlite.upgrade(found))
        .map_err(|e| StoreError::Db(e.into()))?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(|e| StoreError::Db(e.into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_opening_a_new_database_at_once_migrate_it_once() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let opened: Vec<Result<Sqlite, StoreError>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| Sqlite::open(dir.path())))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for db in opened {
                let db = db.expect("every opener gets the database");
                assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
            }
        }
    }
}
