//! The one way store methods speak SQL, whatever the backend: statements
//! written once with `?N` placeholders (translated to `$N` for
//! PostgreSQL), values and rows of a neutral [`Value`], and errors sorted
//! by what the store must tell apart (a unique key taken, a full disk).

use std::borrow::Cow;

/// A value passed to or read from SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}

impl From<&Vec<u8>> for Value {
    fn from(v: &Vec<u8>) -> Self {
        Value::Bytes(v.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The values of a statement: `vals![a, b, c]`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::store::sql::Value::from($v)),*]
    };
}
pub(crate) use vals;

/// One row of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    fn wrong(&self, i: usize, expected: &'static str) -> DbError {
        DbError::Column {
            index: i,
            expected,
            found: self.at(i).kind(),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.at(i) {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            _ => Err(self.wrong(i, "an integer")),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?.ok_or_else(|| self.wrong(i, "an integer"))
    }

    pub fn flag(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.int(i)? != 0)
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.at(i) {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(i, "text")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?.ok_or_else(|| self.wrong(i, "text"))
    }

    pub fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        match self.at(i) {
            Value::Null => Ok(None),
            Value::Bytes(v) => Ok(Some(v.clone())),
            Value::Text(v) => Ok(Some(v.clone().into_bytes())),
            _ => Err(self.wrong(i, "bytes")),
        }
    }

    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, DbError> {
        self.opt_bytes(i)?.ok_or_else(|| self.wrong(i, "bytes"))
    }
}

/// One statement and its values. Placeholders are `?1`, `?2`, …
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: Cow<'static, str>,
    pub params: Vec<Value>,
}

impl Stmt {
    pub fn new(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Stmt {
        Stmt {
            sql: sql.into(),
            params,
        }
    }
}

/// What one statement gave: its rows (a query, or `RETURNING`) and the
/// number of rows it changed.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub changed: u64,
}

/// A database error of either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", with_causes(.0))]
    Postgres(#[from] postgres::Error),
    #[error("column {index} holds {found}, expected {expected}")]
    Column {
        index: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("a {0} value cannot be read as text (not UTF-8)")]
    NotUtf8(&'static str),
    #[error("the database returned no row for {0}")]
    NoRow(&'static str),
    #[error("the PostgreSQL connection threads stopped")]
    PoolStopped,
}

/// An error and its causes ("error connecting to server: Connection
/// refused"), which the `postgres` crate's message alone leaves out.
fn with_causes(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

impl DbError {
    /// True when a unique or primary key already holds the value.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    /// True when the write failed because the disk (or its quota) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }
}

/// `?N` placeholders as PostgreSQL's `$N`. The store's SQL has no `?`
/// anywhere else (no string literal holds one).
pub fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_translate() {
        assert_eq!(
            dollar_placeholders("a = ?1 AND (?2 IS NULL OR b > ?12)"),
            "a = $1 AND ($2 IS NULL OR b > $12)"
        );
    }

    #[test]
    fn rows_read_typed_or_say_why_not() {
        let r = Row(vals![1i64, "x", Option::<i64>::None, &b"ab".to_vec()]);
        assert_eq!(r.int(0).unwrap(), 1);
        assert_eq!(r.text(1).unwrap(), "x");
        assert_eq!(r.opt_int(2).unwrap(), None);
        assert_eq!(r.bytes(3).unwrap(), b"ab");
        let e = r.int(1).unwrap_err().to_string();
        assert_eq!(e, "column 1 holds text, expected an integer");
    }
}
