//! The script library: scripts with a unique name, an admin-defined
//! category, an execution file and an optional input file, owned by the
//! operator who created them and optionally published to everyone; and
//! turning a list of names into a batch for a session's agent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lifeline_protocol::{ErrorCode, FileUpload, Party, ScriptInfo, ScriptMeta, SessionMessage};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::Shared;
use crate::store::StoreError;

/// Largest execution or input file (enforced here and again on the agent).
pub const MAX_SCRIPT_FILE_BYTES: usize = 1 << 20;
/// Longest script name.
pub const MAX_SCRIPT_NAME_CHARS: usize = 64;
/// Longest file name.
pub const MAX_FILE_NAME_CHARS: usize = 100;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Most scripts in one batch.
pub const MAX_BATCH_SCRIPTS: usize = 50;
/// Default time one script may run on the customer's machine.
pub const DEFAULT_SCRIPT_TIMEOUT_SECS: u64 = 300;
/// Longest time one script may be given.
pub const MAX_SCRIPT_TIMEOUT_SECS: u64 = 3600;

type Failure = (ErrorCode, String);

fn invalid(msg: impl Into<String>) -> Failure {
    (ErrorCode::Invalid, msg.into())
}

fn internal(e: StoreError) -> Failure {
    tracing::error!("script library: {e}");
    (
        ErrorCode::Internal,
        "the broker's database failed; see the broker log".into(),
    )
}

/// A checked file: name and bytes.
struct File {
    name: String,
    data: Vec<u8>,
}

fn check_file(what: &str, f: &FileUpload) -> Result<File, Failure> {
    let n = &f.name;
    if n.is_empty()
        || n.len() > MAX_FILE_NAME_CHARS
        || n.starts_with('.')
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(invalid(format!(
            "{what} name {n:?} is not a plain file name (letters, digits, '.', '_', '-'; at most {MAX_FILE_NAME_CHARS})"
        )));
    }
    let data = B64
        .decode(&f.data_b64)
        .map_err(|_| invalid(format!("{what} {n}: content is not base64")))?;
    if data.len() > MAX_SCRIPT_FILE_BYTES {
        return Err(invalid(format!(
            "{what} {n} has {} bytes; a script file is limited to 1 MB ({MAX_SCRIPT_FILE_BYTES} bytes)",
            data.len()
        )));
    }
    if what == "execution file" && data.is_empty() {
        return Err(invalid(format!("the execution file {n} is empty")));
    }
    Ok(File {
        name: n.clone(),
        data,
    })
}

fn hex_sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

const COLS: &str = "s.name, s.category, s.description, o.username, s.published, s.exec_name, length(s.exec_data), \
    s.input_name, s.exec_data, s.created_at, s.updated_at, s.owner_id, s.id";

fn info(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ScriptInfo, i64, i64)> {
    let exec: Vec<u8> = r.get(8)?;
    Ok((
        ScriptInfo {
            name: r.get(0)?,
            category: r.get(1)?,
            description: r.get(2)?,
            owner: r.get(3)?,
            published: r.get(4)?,
            exec_name: r.get(5)?,
            exec_bytes: r.get::<_, i64>(6)? as u64,
            input_name: r.get(7)?,
            sha256: hex_sha(&exec),
            created_at: lifeline_core::time::millis_to_rfc3339(r.get(9)?),
            updated_at: lifeline_core::time::millis_to_rfc3339(r.get(10)?),
        },
        r.get(11)?,
        r.get(12)?,
    ))
}

impl Shared {
    fn category(&self, c: &str) -> Result<String, Failure> {
        self.cfg
            .script_categories
            .iter()
            .find(|k| k.eq_ignore_ascii_case(c.trim()))
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "unknown category {c:?}; the site's categories are: {}",
                    self.cfg.script_categories.join(", ")
                ))
            })
    }

    /// A script by name with its owner id and row id.
    fn script_row(&self, name: &str) -> Result<Option<(ScriptInfo, i64, i64)>, Failure> {
        let db = self.store.db();
        let sql = format!(
            "SELECT {COLS} FROM scripts s JOIN operators o ON o.id = s.owner_id WHERE s.name = ?1"
        );
        db.prepare_cached(&sql)
            .and_then(|mut st| st.query_row([name], info).optional())
            .map_err(|e| internal(e.into()))
    }

    /// The script `name` if `operator_id` owns it.
    fn own_script(
        &self,
        operator_id: i64,
        name: &str,
        verb: &str,
    ) -> Result<(ScriptInfo, i64), Failure> {
        match self.script_row(name)? {
            None => Err((
                ErrorCode::NoSuchSession,
                format!("there is no script named {name:?}"),
            )),
            Some((s, owner, _)) if owner != operator_id => Err((
                ErrorCode::Invalid,
                format!(
                    "script {name:?} belongs to {}; only its creator can {verb} it",
                    s.owner
                ),
            )),
            Some((s, _, id)) => Ok((s, id)),
        }
    }

    pub fn script_categories(&self) -> Vec<String> {
        self.cfg.script_categories.clone()
    }

    pub fn script_create(
        &self,
        operator_id: i64,
        name: &str,
        category: &str,
        description: &str,
        exec: &FileUpload,
        input: Option<&FileUpload>,
    ) -> Result<ScriptInfo, Failure> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_SCRIPT_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "a script name has 1 to {MAX_SCRIPT_NAME_CHARS} characters"
            )));
        }
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(invalid(format!(
                "the description is longer than {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        let category = self.category(category)?;
        let exec = check_file("execution file", exec)?;
        let input = input.map(|f| check_file("input file", f)).transpose()?;
        if self.script_row(name)?.is_some() {
            return Err((
                ErrorCode::Invalid,
                format!("a script named {name:?} already exists; choose another name or edit it"),
            ));
        }
        let now = lifeline_core::time::now_millis();
        self.store
            .db()
            .prepare_cached(
                "INSERT INTO scripts (name, category, description, exec_name, exec_data, input_name, input_data, owner_id, published, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    name,
                    category,
                    description,
                    exec.name,
                    exec.data,
                    input.as_ref().map(|f| f.name.clone()),
                    input.as_ref().map(|f| f.data.clone()),
                    operator_id,
                    now
                ])
            })
            .map_err(|e| internal(e.into()))?;
        self.script_row(name)?
            .map(|r| r.0)
            .ok_or_else(|| internal(StoreError::Sql(rusqlite::Error::QueryReturnedNoRows)))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn script_update(
        &self,
        operator_id: i64,
        name: &str,
        category: Option<&str>,
        description: Option<&str>,
        exec: Option<&FileUpload>,
        input: Option<&FileUpload>,
        remove_input: bool,
    ) -> Result<ScriptInfo, Failure> {
        let (_, id) = self.own_script(operator_id, name, "edit")?;
        let category = category.map(|c| self.category(c)).transpose()?;
        if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
            return Err(invalid(format!(
                "the description is longer than {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        let exec = exec.map(|f| check_file("execution file", f)).transpose()?;
        let input = input.map(|f| check_file("input file", f)).transpose()?;
        if remove_input && input.is_some() {
            return Err(invalid("give a new input file or remove it, not both"));
        }
        let db = self.store.db();
        let now = lifeline_core::time::now_millis();
        let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
            db.prepare_cached(sql)
                .and_then(|mut st| st.execute(p))
                .map(|_| ())
        };
        let res = (|| {
            if let Some(c) = &category {
                run("UPDATE scripts SET category = ?2 WHERE id = ?1", &[&id, c])?;
            }
            if let Some(d) = description {
                run(
                    "UPDATE scripts SET description = ?2 WHERE id = ?1",
                    &[&id, &d],
                )?;
            }
            if let Some(f) = &exec {
                run(
                    "UPDATE scripts SET exec_name = ?2, exec_data = ?3 WHERE id = ?1",
                    &[&id, &f.name, &f.data],
                )?;
            }
            if let Some(f) = &input {
                run(
                    "UPDATE scripts SET input_name = ?2, input_data = ?3 WHERE id = ?1",
                    &[&id, &f.name, &f.data],
                )?;
            }
            if remove_input {
                run(
                    "UPDATE scripts SET input_name = NULL, input_data = NULL WHERE id = ?1",
                    &[&id],
                )?;
            }
            run(
                "UPDATE scripts SET updated_at = ?2 WHERE id = ?1",
                &[&id, &now],
            )
        })();
        drop(db);
        res.map_err(|e| internal(e.into()))?;
        Ok(self.own_script(operator_id, name, "edit")?.0)
    }

    pub fn script_delete(&self, operator_id: i64, name: &str) -> Result<(), Failure> {
        let (_, id) = self.own_script(operator_id, name, "delete")?;
        self.store
            .db()
            .prepare_cached("DELETE FROM scripts WHERE id = ?1")
            .and_then(|mut st| st.execute([id]))
            .map_err(|e| internal(e.into()))?;
        Ok(())
    }

    pub fn script_publish(
        &self,
        operator_id: i64,
        name: &str,
        published: bool,
    ) -> Result<ScriptInfo, Failure> {
        let (_, id) = self.own_script(
            operator_id,
            name,
            if published { "publish" } else { "unpublish" },
        )?;
        self.store
            .db()
            .prepare_cached("UPDATE scripts SET published = ?2, updated_at = ?3 WHERE id = ?1")
            .and_then(|mut st| {
                st.execute(params![id, published, lifeline_core::time::now_millis()])
            })
            .map_err(|e| internal(e.into()))?;
        Ok(self.own_script(operator_id, name, "publish")?.0)
    }

    /// The operator's own scripts and the published ones, sorted.
    pub fn script_list(
        &self,
        operator_id: i64,
        sort: &str,
        descending: bool,
    ) -> Result<Vec<ScriptInfo>, Failure> {
        let col = match sort {
            "name" | "" => "s.name COLLATE NOCASE",
            "category" => "s.category COLLATE NOCASE",
            "owner" => "o.username",
            "published" => "s.published",
            "updated" => "s.updated_at",
            other => {
                return Err(invalid(format!(
                    "cannot sort by {other:?}; sort by name, category, owner, published or updated"
                )));
            }
        };
        let dir = if descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {COLS} FROM scripts s JOIN operators o ON o.id = s.owner_id \
             WHERE s.owner_id = ?1 OR s.published = 1 ORDER BY {col} {dir}, s.name COLLATE NOCASE"
        );
        let db = self.store.db();
        let mut st = db.prepare_cached(&sql).map_err(|e| internal(e.into()))?;
        let rows = st
            .query_map([operator_id], info)
            .map_err(|e| internal(e.into()))?;
        rows.map(|r| r.map(|x| x.0))
            .collect::<Result<_, _>>()
            .map_err(|e| internal(e.into()))
    }

    /// Resolves names (own or published scripts) into a batch for the
    /// session's agent and sends it; returns the batch id.
    pub async fn run_scripts(
        &self,
        operator_id: i64,
        operator_name: &str,
        session_id: &str,
        names: &[String],
        stop_on_failure: bool,
        timeout_secs: Option<u64>,
    ) -> Result<u64, Failure> {
        if names.is_empty() || names.len() > MAX_BATCH_SCRIPTS {
            return Err(invalid(format!(
                "run 1 to {MAX_BATCH_SCRIPTS} scripts at a time"
            )));
        }
        let timeout_secs = timeout_secs.unwrap_or(DEFAULT_SCRIPT_TIMEOUT_SECS);
        if timeout_secs == 0 || timeout_secs > MAX_SCRIPT_TIMEOUT_SECS {
            return Err(invalid(format!(
                "a script timeout is 1 to {MAX_SCRIPT_TIMEOUT_SECS} seconds"
            )));
        }
        let mut metas = Vec::new();
        let mut files = Vec::new();
        for name in names {
            let row = self.script_row(name)?;
            let Some((meta, owner, id)) =
                row.filter(|(s, owner, _)| *owner == operator_id || s.published)
            else {
                return Err((
                    ErrorCode::NoSuchSession,
                    format!("no script named {name:?} in your scripts or the shared library"),
                ));
            };
            let _ = owner;
            let (exec, input): (Vec<u8>, Option<Vec<u8>>) = self
                .store
                .db()
                .prepare_cached("SELECT exec_data, input_data FROM scripts WHERE id = ?1")
                .and_then(|mut st| st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(|e| internal(e.into()))?;
            metas.push(ScriptMeta {
                name: meta.name.clone(),
                description: meta.description.clone(),
                sha256: meta.sha256.clone(),
                exec_name: meta.exec_name.clone(),
                input_name: meta.input_name.clone(),
                input_sha256: input.as_deref().map(hex_sha),
            });
            files.push((B64.encode(exec), input.map(|i| B64.encode(i))));
        }
        let agent = self.registry.agent_tx(session_id).ok_or_else(|| {
            (
                ErrorCode::WrongState,
                "the customer is not in this session".to_string(),
            )
        })?;
        let batch_id = u64::from(rand::random::<u32>());
        let listing: Vec<String> = metas
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{}. {} (sha256 {})", i + 1, m.name, &m.sha256[..12]))
            .collect();
        self.record(
            session_id,
            "scripts_run",
            Party::Operator,
            &format!(
                "{operator_name} runs scripts, in order: {}; {} on failure; timeout {timeout_secs} s each (batch {batch_id})",
                listing.join(", "),
                if stop_on_failure { "stop" } else { "continue" }
            ),
        );
        let batch = SessionMessage::ScriptBatch {
            batch_id,
            operator: operator_name.to_string(),
            scripts: metas,
            stop_on_failure,
            timeout_secs,
        };
        let closed = || {
            (
                ErrorCode::WrongState,
                "the customer's connection closed".to_string(),
            )
        };
        if !crate::relay::to(self, &agent, crate::registry::frame(session_id, batch)).await {
            return Err(closed());
        }
        for (index, (exec_b64, input_b64)) in files.into_iter().enumerate() {
            let msg = SessionMessage::ScriptFiles {
                batch_id,
                index,
                exec_b64,
                input_b64,
            };
            if !crate::relay::to(self, &agent, crate::registry::frame(session_id, msg)).await {
                return Err(closed());
            }
        }
        Ok(batch_id)
    }
}
