//! The script library: scripts with a unique name, an admin-defined
//! category, an execution file and an optional input file, owned by the
//! operator who created them and optionally published to everyone; and
//! turning a list of names into a batch for a session's agent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lifeline_protocol::{ErrorCode, FileUpload, Party, ScriptInfo, ScriptMeta, SessionMessage};
use sha2::{Digest, Sha256};

use crate::Shared;
use crate::store::StoreError;
use crate::store::scripts::{NewScript, ScriptChanges, ScriptFile, ScriptSort};

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

impl File {
    fn as_script_file(&self) -> ScriptFile<'_> {
        ScriptFile {
            name: &self.name,
            data: &self.data,
        }
    }
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

/// The SHA-256 of a script file, in hex (what the agent checks).
pub(crate) fn hex_sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
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
        let row = self.store.script_by_name(name).map_err(internal)?;
        Ok(row.map(|r| (r.info, r.owner_id, r.id)))
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
        self.store
            .insert_script(&NewScript {
                name,
                category: &category,
                description,
                exec: exec.as_script_file(),
                input: input.as_ref().map(File::as_script_file),
                owner_id: operator_id,
            })
            .map_err(internal)?;
        self.script_row(name)?
            .map(|r| r.0)
            .ok_or_else(|| internal(crate::store::sql::DbError::NoRow("the new script").into()))
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
        let changes = ScriptChanges {
            category: category.as_deref(),
            description,
            exec: exec.as_ref().map(File::as_script_file),
            input: input.as_ref().map(File::as_script_file),
            remove_input,
        };
        self.store.update_script(id, &changes).map_err(internal)?;
        Ok(self.own_script(operator_id, name, "edit")?.0)
    }

    pub fn script_delete(&self, operator_id: i64, name: &str) -> Result<(), Failure> {
        let (_, id) = self.own_script(operator_id, name, "delete")?;
        self.store.delete_script(id).map_err(internal)?;
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
            .set_script_published(id, published)
            .map_err(internal)?;
        Ok(self.own_script(operator_id, name, "publish")?.0)
    }

    /// The operator's own scripts and the published ones, sorted.
    pub fn script_list(
        &self,
        operator_id: i64,
        sort: &str,
        descending: bool,
    ) -> Result<Vec<ScriptInfo>, Failure> {
        let sort = match sort {
            "name" | "" => ScriptSort::Name,
            "category" => ScriptSort::Category,
            "owner" => ScriptSort::Owner,
            "published" => ScriptSort::Published,
            "updated" => ScriptSort::Updated,
            other => {
                return Err(invalid(format!(
                    "cannot sort by {other:?}; sort by name, category, owner, published or updated"
                )));
            }
        };
        self.store
            .list_scripts(operator_id, sort, descending)
            .map_err(internal)
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
            let (exec, input) = self.store.script_files(id).map_err(internal)?;
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
        if self.registry.agent_tx(session_id).is_none() && self.cluster.is_none() {
            return Err((
                ErrorCode::WrongState,
                "the customer is not in this session".to_string(),
            ));
        }
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
        if self
            .to_agent(session_id, crate::registry::frame(session_id, batch))
            .await
            != Some(true)
        {
            return Err(closed());
        }
        for (index, (exec_b64, input_b64)) in files.into_iter().enumerate() {
            let msg = SessionMessage::ScriptFiles {
                batch_id,
                index,
                exec_b64,
                input_b64,
            };
            if self
                .to_agent(session_id, crate::registry::frame(session_id, msg))
                .await
                != Some(true)
            {
                return Err(closed());
            }
        }
        Ok(batch_id)
    }
}
