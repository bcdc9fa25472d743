//! The shared backend: a PostgreSQL database several brokers can use.
//!
//! The store's API is synchronous (the broker calls it from async code and
//! under the registry's lock), and the `postgres` crate's blocking client
//! runs a runtime of its own, which must not start inside the broker's.
//! So each connection lives on a thread of its own
//! ([`POSTGRES_CONNECTIONS`] of them); a call sends its statements to
//! whichever thread is free over a channel and blocks on the reply, as a
//! SQLite call blocks on its disk. A connection that broke is opened again
//! by the next job on its thread.

use std::collections::HashMap;
use std::error::Error;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, GenericClient, NoTls, Statement};

use super::StoreError;
use super::schema::{Dialect, SCHEMA_VERSION};
use super::sql::{DbError, Outcome, Row, Stmt, Value, dollar_placeholders};

/// Connections (and threads) one broker keeps to PostgreSQL. Enough for the
/// store's short statements to overlap; the server's own limit
/// (`max_connections`, 100 by default) must cover every node's.
pub const POSTGRES_CONNECTIONS: usize = 4;
/// How long opening a connection may take when the URL sets no
/// `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock brokers take while one of them migrates the schema,
/// so nodes starting together do not create the same tables at once.
const MIGRATION_LOCK: i64 = 0x4c69_6665_6c69_6e65; // "Lifeline"

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// One connection, on its thread, with its prepared statements.
pub(crate) struct Conn {
    config: Config,
    client: Option<Client>,
    prepared: HashMap<String, Statement>,
}

impl Conn {
    /// The open connection, opened (again) when missing or broken.
    fn client(&mut self) -> Result<&mut Client, DbError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.prepared.clear();
            self.client = Some(self.config.connect(NoTls)?);
        }
        Ok(self.client.as_mut().expect("connected just above"))
    }

    fn run(&mut self, stmts: &[Stmt]) -> Result<Vec<Outcome>, DbError> {
        let res = self.run_once(stmts);
        if res.is_err() {
            // A failed statement may have been planned against a schema
            // that changed since: prepare again next time.
            self.prepared.clear();
        }
        res
    }

    fn run_once(&mut self, stmts: &[Stmt]) -> Result<Vec<Outcome>, DbError> {
        self.client()?;
        let Conn {
            client, prepared, ..
        } = self;
        let client = client.as_mut().expect("connected by client()");
        if let [s] = stmts {
            return Ok(vec![one(client, prepared, s)?]);
        }
        let mut tx = client.transaction()?;
        let out = stmts
            .iter()
            .map(|s| one(&mut tx, prepared, s))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(out)
    }
}

fn one(
    c: &mut impl GenericClient,
    prepared: &mut HashMap<String, Statement>,
    s: &Stmt,
) -> Result<Outcome, DbError> {
    let st = match prepared.get(s.sql.as_ref()) {
        Some(st) => st.clone(),
        None => {
            let st = c.prepare(&dollar_placeholders(&s.sql))?;
            prepared.insert(s.sql.to_string(), st.clone());
            st
        }
    };
    let params: Vec<&(dyn ToSql + Sync)> = s.params.iter().map(|v| v as _).collect();
    if st.columns().is_empty() {
        let changed = c.execute(&st, &params)?;
        return Ok(Outcome {
            rows: Vec::new(),
            changed,
        });
    }
    let rows = c
        .query(&st, &params)?
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get::<_, Value>(i))
                .collect::<Result<Vec<_>, _>>()
                .map(Row)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let changed = rows.len() as u64;
    Ok(Outcome { rows, changed })
}

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(v) => v.as_str().to_sql(ty, out),
            Value::Bytes(v) => v.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql` (the inner types check again).
        true
    }

    to_sql_checked!();
}

impl<'a> postgres::types::FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Bytes(Vec::<u8>::from_sql(ty, raw)?),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2 | Type::INT4 | Type::INT8 | Type::BOOL | Type::BYTEA
        ) || <String as postgres::types::FromSql>::accepts(ty)
    }
}

/// The connection threads and the queue of jobs they take from.
pub(crate) struct Postgres {
    jobs: Sender<Job>,
    /// Where the database is, for messages: host, port and database, never
    /// the password.
    pub place: String,
}

/// Parses the URL and adds the password (from `password_file`).
pub fn config(pg: &lifeline_core::config::store::PostgresConfig) -> Result<Config, StoreError> {
    let mut config: Config = pg
        .url
        .expose()
        .parse()
        .map_err(|e| StoreError::Url(DbError::Postgres(e)))?;
    if let Some(p) = &pg.password {
        config.password(p.expose());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// `user@host:port/database` of a configuration (no password).
pub fn place(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

impl Postgres {
    /// Starts the connection threads, checks that the database answers and
    /// brings its schema to [`SCHEMA_VERSION`].
    pub fn open(config: Config) -> Result<Postgres, StoreError> {
        let place = place(&config);
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..POSTGRES_CONNECTIONS {
            let queue = Arc::clone(&queue);
            let config = config.clone();
            std::thread::Builder::new()
                .name(format!("lifeline-pg-{i}"))
                .spawn(move || serve(config, &queue))
                .map_err(|e| StoreError::Threads(e.to_string()))?;
        }
        let pg = Postgres { jobs, place };
        pg.call(migrate)?.map_err(|e| match e {
            Migration::Db(source) => StoreError::Connect {
                place: pg.place.clone(),
                source,
            },
            Migration::Newer(found) => StoreError::Schema {
                place: pg.place.clone(),
                found,
            },
        })?;
        Ok(pg)
    }

    /// Runs `f` on a free connection's thread and waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> T + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = sync_channel(1);
        let job: Job = Box::new(move |c| {
            let _ = tx.send(f(c));
        });
        self.jobs.send(job).map_err(|_| DbError::PoolStopped)?;
        rx.recv().map_err(|_| DbError::PoolStopped)
    }

    /// Runs the statements; more than one run in one transaction.
    pub fn run(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>, DbError> {
        self.call(move |c| c.run(&stmts))?
    }

    /// The schema version in `schema_version`.
    pub fn schema_version(&self) -> Result<i64, DbError> {
        self.call(|c| read_version(c.client()?))?
    }

    /// Runs raw SQL (tests: making an old database).
    #[cfg(test)]
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        let sql = sql.to_string();
        self.call(move |c| {
            c.prepared.clear();
            Ok(c.client()?.batch_execute(&sql)?)
        })?
    }
}

/// One connection thread: takes jobs until the store is dropped.
fn serve(config: Config, queue: &Mutex<Receiver<Job>>) {
    let mut conn = Conn {
        config,
        client: None,
        prepared: HashMap::new(),
    };
    loop {
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut conn),
            Err(_) => return,
        }
    }
}

enum Migration {
    Db(DbError),
    Newer(i64),
}

impl From<postgres::Error> for Migration {
    fn from(e: postgres::Error) -> Self {
        Migration::Db(e.into())
    }
}

fn read_version(c: &mut impl GenericClient) -> Result<i64, DbError> {
    c.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let row = c.query_opt("SELECT MAX(version) FROM schema_version", &[])?;
    Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)).unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction, under the
/// migration lock; a newer database is refused.
fn migrate(c: &mut Conn) -> Result<(), Migration> {
    let client = c.client().map_err(Migration::Db)?;
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let found = read_version(&mut tx).map_err(Migration::Db)?;
    if found > SCHEMA_VERSION {
        return Err(Migration::Newer(found));
    }
    if found < SCHEMA_VERSION {
        tx.batch_execute(&Dialect::Postgres.upgrade(found))?;
        tx.execute("DELETE FROM schema_version", &[])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Runs `f` with a connection to `url` on a thread of its own (never on
/// the caller's runtime), for creating and dropping databases.
fn admin<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
) -> Result<T, StoreError> {
    let config: Config = url
        .parse()
        .map_err(|e| StoreError::Url(DbError::Postgres(e)))?;
    let place = place(&config);
    let work = std::thread::spawn(move || {
        let mut client = config.connect(NoTls)?;
        f(&mut client)
    });
    work.join()
        .map_err(|_| StoreError::Threads("the PostgreSQL admin thread panicked".into()))?
        .map_err(|e| StoreError::Connect {
            place,
            source: e.into(),
        })
}

/// True for a database name that needs no quoting: lower-case ASCII
/// letters, digits and `_`, starting with a letter, at most 63 bytes.
fn plain_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Creates an empty database `name` on the server `admin_url` reaches
/// (tests, and an admin preparing a server).
pub fn create_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    if !plain_name(name) {
        return Err(StoreError::Name(name.to_string()));
    }
    let sql = format!("CREATE DATABASE {name}");
    admin(admin_url, move |c| c.batch_execute(&sql))
}

/// Drops the database `name`, closing its connections first.
pub fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    if !plain_name(name) {
        return Err(StoreError::Name(name.to_string()));
    }
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    admin(admin_url, move |c| c.batch_execute(&sql))
}
