//! The script library's rows: scripts with a unique name (compared without
//! case), files as bytes, an owner and a published flag.

use lifeline_protocol::ScriptInfo;

use super::sql::{DbError, Row, Stmt, Value, vals};
use super::{Store, StoreError};

/// A script with its owner's and its own row id.
#[derive(Debug, Clone)]
pub struct ScriptRow {
    pub info: ScriptInfo,
    pub owner_id: i64,
    pub id: i64,
}

/// A file of a script: name and bytes.
#[derive(Debug, Clone, Copy)]
pub struct ScriptFile<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

/// A new script.
#[derive(Debug, Clone, Copy)]
pub struct NewScript<'a> {
    pub name: &'a str,
    pub category: &'a str,
    pub description: &'a str,
    pub exec: ScriptFile<'a>,
    pub input: Option<ScriptFile<'a>>,
    pub owner_id: i64,
}

/// What an edit changes (`None`: unchanged).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptChanges<'a> {
    pub category: Option<&'a str>,
    pub description: Option<&'a str>,
    pub exec: Option<ScriptFile<'a>>,
    pub input: Option<ScriptFile<'a>>,
    pub remove_input: bool,
}

/// The orders a script list can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptSort {
    Name,
    Category,
    Owner,
    Published,
    Updated,
}

impl ScriptSort {
    fn column(self) -> &'static str {
        match self {
            ScriptSort::Name => "lower(s.name)",
            ScriptSort::Category => "lower(s.category)",
            ScriptSort::Owner => "o.username",
            ScriptSort::Published => "s.published",
            ScriptSort::Updated => "s.updated_at",
        }
    }
}

const COLS: &str = "s.name, s.category, s.description, o.username, s.published, s.exec_name, length(s.exec_data), \
    s.input_name, s.exec_data, s.created_at, s.updated_at, s.owner_id, s.id";

fn script_row(r: &Row) -> Result<ScriptRow, DbError> {
    Ok(ScriptRow {
        info: ScriptInfo {
            name: r.text(0)?,
            category: r.text(1)?,
            description: r.text(2)?,
            owner: r.text(3)?,
            published: r.flag(4)?,
            exec_name: r.text(5)?,
            exec_bytes: r.int(6)? as u64,
            input_name: r.opt_text(7)?,
            sha256: crate::library::hex_sha(&r.bytes(8)?),
            created_at: lifeline_core::time::millis_to_rfc3339(r.int(9)?),
            updated_at: lifeline_core::time::millis_to_rfc3339(r.int(10)?),
        },
        owner_id: r.int(11)?,
        id: r.int(12)?,
    })
}

fn set(id: i64, assignments: &str, values: Vec<Value>) -> Stmt {
    let mut params = vec![Value::from(id)];
    params.extend(values);
    Stmt::new(
        format!("UPDATE scripts SET {assignments} WHERE id = ?1"),
        params,
    )
}

impl Store {
    /// A script by name (without case).
    pub fn script_by_name(&self, name: &str) -> Result<Option<ScriptRow>, StoreError> {
        let sql = format!(
            "SELECT {COLS} FROM scripts s JOIN operators o ON o.id = s.owner_id \
             WHERE lower(s.name) = lower(?1)"
        );
        let row = self.row(Stmt::new(sql, vals![name]))?;
        Ok(row.map(|r| script_row(&r)).transpose()?)
    }

    pub fn insert_script(&self, s: &NewScript<'_>) -> Result<(), StoreError> {
        self.one(Stmt::new(
            "INSERT INTO scripts (name, category, description, exec_name, exec_data, input_name, input_data, owner_id, published, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?9)",
            vals![
                s.name,
                s.category,
                s.description,
                s.exec.name,
                s.exec.data,
                s.input.map(|f| f.name),
                s.input.map(|f| f.data),
                s.owner_id,
                lifeline_core::time::now_millis()
            ],
        ))?;
        Ok(())
    }

    /// Applies an edit in one transaction and stamps the update time.
    pub fn update_script(&self, id: i64, c: &ScriptChanges<'_>) -> Result<(), StoreError> {
        let mut stmts = Vec::new();
        if let Some(v) = c.category {
            stmts.push(set(id, "category = ?2", vals![v]));
        }
        if let Some(v) = c.description {
            stmts.push(set(id, "description = ?2", vals![v]));
        }
        if let Some(f) = c.exec {
            stmts.push(set(
                id,
                "exec_name = ?2, exec_data = ?3",
                vals![f.name, f.data],
            ));
        }
        if let Some(f) = c.input {
            stmts.push(set(
                id,
                "input_name = ?2, input_data = ?3",
                vals![f.name, f.data],
            ));
        }
        if c.remove_input {
            stmts.push(set(id, "input_name = NULL, input_data = NULL", vec![]));
        }
        let now = lifeline_core::time::now_millis();
        stmts.push(set(id, "updated_at = ?2", vals![now]));
        self.run(stmts)?;
        Ok(())
    }

    pub fn delete_script(&self, id: i64) -> Result<(), StoreError> {
        self.one(Stmt::new("DELETE FROM scripts WHERE id = ?1", vals![id]))?;
        Ok(())
    }

    pub fn set_script_published(&self, id: i64, published: bool) -> Result<(), StoreError> {
        let now = lifeline_core::time::now_millis();
        self.one(set(
            id,
            "published = ?2, updated_at = ?3",
            vals![published, now],
        ))?;
        Ok(())
    }

    /// The operator's own scripts and the published ones, sorted.
    pub fn list_scripts(
        &self,
        operator_id: i64,
        sort: ScriptSort,
        descending: bool,
    ) -> Result<Vec<ScriptInfo>, StoreError> {
        let dir = if descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {COLS} FROM scripts s JOIN operators o ON o.id = s.owner_id \
             WHERE s.owner_id = ?1 OR s.published = 1 ORDER BY {} {dir}, lower(s.name)",
            sort.column()
        );
        let rows = self.rows(Stmt::new(sql, vals![operator_id]))?;
        Ok(rows
            .iter()
            .map(|r| script_row(r).map(|s| s.info))
            .collect::<Result<_, _>>()?)
    }

    /// A script's execution file and input file.
    pub fn script_files(&self, id: i64) -> Result<(Vec<u8>, Option<Vec<u8>>), StoreError> {
        let row = self
            .row(Stmt::new(
                "SELECT exec_data, input_data FROM scripts WHERE id = ?1",
                vals![id],
            ))?
            .ok_or(DbError::NoRow("the script's files"))?;
        Ok((row.bytes(0)?, row.opt_bytes(1)?))
    }
}
