//! Script batches from the operator's library: collected as they arrive,
//! consented to once for the whole batch (names, descriptions, content
//! hashes), then run one after another by the `scripts` plugin, each in a
//! fresh temporary folder, with output streaming live into the session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lifeline_core::consent::{self, ConsentEngine, ConsentRequest, RequestKind};
use lifeline_protocol::{ScriptMeta, SessionMessage};
use lifeline_runtime::Arg;
use lifeline_runtime::{Capability, Manifest, PluginHost, SessionPort};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, mpsc};

use crate::prompt::InputPrompter;

/// Largest script or input file the agent runs (also enforced on upload).
pub const MAX_SCRIPT_FILE_BYTES: usize = 1 << 20;
/// The plugin that runs scripts.
pub const SCRIPTS_PLUGIN: &str = "scripts";
/// Batches being received at once per session.
pub const MAX_PENDING_BATCHES: usize = 8;

/// A batch whose files are still arriving.
#[derive(Debug)]
pub struct Pending {
    operator: String,
    scripts: Vec<ScriptMeta>,
    files: Vec<Option<ScriptFiles>>,
    stop_on_failure: bool,
    timeout_secs: u64,
}

/// A script's execution file and input file, checked against their hashes.
type ScriptFiles = (Vec<u8>, Option<Vec<u8>>);

/// Batches of one session.
#[derive(Default)]
pub struct Batches(HashMap<u64, Pending>);

/// Everything a batch run needs from the session.
pub struct Ctx {
    pub session_id: String,
    pub engine: Arc<Mutex<ConsentEngine>>,
    pub prompter: Arc<InputPrompter>,
    pub host: Option<Arc<PluginHost>>,
    pub tx: mpsc::UnboundedSender<SessionMessage>,
    /// Whose identity the scripts take (run-as login).
    pub runas: Arc<crate::runas::RunAs>,
}

impl Batches {
    /// Starts collecting a batch.
    pub fn begin(
        &mut self,
        batch_id: u64,
        operator: String,
        scripts: Vec<ScriptMeta>,
        stop_on_failure: bool,
        timeout_secs: u64,
    ) -> Result<(), String> {
        if self.0.len() >= MAX_PENDING_BATCHES {
            return Err("too many script batches at once".into());
        }
        let files = vec![None; scripts.len()];
        self.0.insert(
            batch_id,
            Pending {
                operator,
                scripts,
                files,
                stop_on_failure,
                timeout_secs,
            },
        );
        Ok(())
    }

    /// Adds one script's files; returns the batch when it is complete.
    pub fn add(
        &mut self,
        batch_id: u64,
        index: usize,
        exec_b64: String,
        input_b64: Option<String>,
    ) -> Result<Option<Pending>, String> {
        let files = match self.check(batch_id, index, &exec_b64, input_b64.as_deref()) {
            Ok(files) => files,
            Err(e) => {
                // A bad file spoils the whole batch: nothing of it runs.
                self.0.remove(&batch_id);
                return Err(e);
            }
        };
        let p = self
            .0
            .get_mut(&batch_id)
            .ok_or("files for an unknown batch")?;
        p.files[index] = Some(files);
        if p.files.iter().all(Option::is_some) {
            return Ok(self.0.remove(&batch_id));
        }
        Ok(None)
    }

    /// Size and hash checks of one script's files; their bytes.
    fn check(
        &self,
        batch_id: u64,
        index: usize,
        exec_b64: &str,
        input_b64: Option<&str>,
    ) -> Result<ScriptFiles, String> {
        let p = self.0.get(&batch_id).ok_or("files for an unknown batch")?;
        let meta = p
            .scripts
            .get(index)
            .ok_or("files for a script not in the batch")?;
        let exec = B64
            .decode(exec_b64)
            .map_err(|_| format!("{}: content is not base64", meta.name))?;
        let input = input_b64
            .map(|i| B64.decode(i))
            .transpose()
            .map_err(|_| format!("{}: input is not base64", meta.name))?;
        if exec.len() > MAX_SCRIPT_FILE_BYTES
            || input
                .as_ref()
                .is_some_and(|i| i.len() > MAX_SCRIPT_FILE_BYTES)
        {
            return Err(format!("script {} is larger than 1 MB: refused", meta.name));
        }
        if hex::encode(Sha256::digest(&exec)) != meta.sha256 {
            return Err(format!(
                "script {} does not match its announced hash: refused",
                meta.name
            ));
        }
        let input_hash = input.as_ref().map(|i| hex::encode(Sha256::digest(i)));
        if input_hash != meta.input_sha256 {
            return Err(format!(
                "the input file of script {} does not match its announced hash: refused",
                meta.name
            ));
        }
        Ok((exec, input))
    }
}

/// The session port of a script run: the batch consent covers the plugin's
/// temporary folder and process; output lines go to the session live.
struct ScriptPort {
    batch_id: u64,
    script: String,
    tx: mpsc::UnboundedSender<SessionMessage>,
    runas: Arc<crate::runas::RunAs>,
}

/// Scripts run as the user the operator is logged in as, if any; nothing
/// else native is part of a script batch.
impl lifeline_runtime::Natives for ScriptPort {
    fn identity(&self) -> Option<Arc<lifeline_runtime::Identity>> {
        self.runas.identity()
    }
}

impl SessionPort for ScriptPort {
    fn consent(&self, _plugin: &Manifest, cap: Capability) -> Result<(), String> {
        match cap {
            Capability::FsTemp | Capability::ProcessSpawn => Ok(()),
            other => Err(format!("{other} is not part of the consented script batch")),
        }
    }
    fn output(&self, _plugin: &str, text: &str) {
        self.process_line(_plugin, "output", text);
    }
    fn chat(&self, plugin: &str, text: &str) {
        self.output(plugin, text);
    }
    fn report(&self, plugin: &str, text: &str) {
        self.output(plugin, text);
    }
    /// The session loop drops its receiver when the session ends.
    fn ended(&self) -> bool {
        self.tx.is_closed()
    }
    fn natives(&self) -> Option<&dyn lifeline_runtime::Natives> {
        Some(self)
    }
    fn process_line(&self, _plugin: &str, stream: &str, line: &str) {
        let _ = self.tx.send(SessionMessage::ScriptOutput {
            batch_id: self.batch_id,
            script: self.script.clone(),
            stream: stream.into(),
            line: line.into(),
        });
    }
}

/// Asks consent for the batch, then runs its scripts in order (blocking:
/// call from a blocking thread).
pub fn run(batch_id: u64, p: Pending, ctx: Ctx, rt: tokio::runtime::Handle) {
    let done = |ok: bool, summary: String| {
        let _ = ctx.tx.send(SessionMessage::BatchDone {
            batch_id,
            ok,
            summary,
        });
    };
    let Some(host) = ctx
        .host
        .clone()
        .filter(|h| h.manifest(SCRIPTS_PLUGIN).is_some())
    else {
        return done(false, "this agent has no scripts plugin".into());
    };
    let listing: Vec<String> = p
        .scripts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let desc = if s.description.is_empty() {
                String::new()
            } else {
                format!(" — {}", s.description)
            };
            let input = match (&s.input_name, &s.input_sha256) {
                (Some(n), Some(h)) => format!("\n     input file {n}, sha256 {h}"),
                _ => String::new(),
            };
            format!(
                "  {}. {}{desc}\n     sha256 {}{input}",
                i + 1,
                s.name,
                s.sha256
            )
        })
        .collect();
    let req = ConsentRequest {
        session_id: ctx.session_id.clone(),
        operator: p.operator.clone(),
        plugin: SCRIPTS_PLUGIN.into(),
        action: lifeline_core::capability::Capability::ScriptRun
            .name()
            .into(),
        detail: format!(
            "run {} script(s) on this computer, in this order:\n{}",
            p.scripts.len(),
            listing.join("\n")
        ),
        kind: RequestKind::Capability,
    };
    let decided = rt.block_on(consent::decide(&ctx.engine, &req, ctx.prompter.as_ref()));
    let d = match decided {
        Ok(d) => d,
        Err(e) => return done(false, format!("the consent could not be recorded: {e}")),
    };
    let _ = ctx.tx.send(SessionMessage::ConsentDecided {
        plugin: SCRIPTS_PLUGIN.into(),
        action: lifeline_core::capability::Capability::ScriptRun
            .name()
            .into(),
        decision: d.decision,
        decided_by: d.decided_by.as_str().into(),
        audit_hash: d.audit_hash,
    });
    if !d.decision.is_allowed() {
        return done(
            false,
            format!(
                "the scripts were not run: denied ({})",
                d.decided_by.as_str()
            ),
        );
    }
    let total = p.scripts.len();
    let mut succeeded = 0;
    for (i, (meta, files)) in p.scripts.iter().zip(p.files).enumerate() {
        let (exec, input) = files.expect("a batch runs only once complete");
        // The files travel to the plugin as bytes (WIT `list<u8>`).
        let args = vec![
            Arg::Text(meta.exec_name.clone()),
            Arg::Bytes(exec),
            Arg::Text(meta.input_name.clone().unwrap_or_default()),
            Arg::Bytes(input.unwrap_or_default()),
            Arg::Text(p.timeout_secs.to_string()),
        ];
        let port = Arc::new(ScriptPort {
            batch_id,
            script: meta.name.clone(),
            tx: ctx.tx.clone(),
            runas: Arc::clone(&ctx.runas),
        });
        let started = Instant::now();
        let result = host.call(SCRIPTS_PLUGIN, "run", &args, port);
        let duration_ms = started.elapsed().as_millis() as u64;
        let (exit_code, timed_out, error) = match &result {
            Ok(json) => {
                let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                (
                    v["exit_code"].as_i64().map(|c| c as i32),
                    v["timed_out"].as_bool().unwrap_or(false),
                    None,
                )
            }
            Err(e) => (None, false, Some(e.to_string())),
        };
        let ok = error.is_none() && !timed_out && exit_code == Some(0);
        succeeded += usize::from(ok);
        let _ = ctx.tx.send(SessionMessage::ScriptDone {
            batch_id,
            script: meta.name.clone(),
            exit_code,
            duration_ms,
            timed_out,
            error,
        });
        if !ok && p.stop_on_failure && i + 1 < total {
            let rest: Vec<&str> = p.scripts[i + 1..].iter().map(|s| s.name.as_str()).collect();
            return done(
                false,
                format!(
                    "stopped after {} failed; not run: {}",
                    meta.name,
                    rest.join(", ")
                ),
            );
        }
    }
    done(
        succeeded == total,
        format!("{succeeded} of {total} script(s) succeeded"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, data: &[u8]) -> ScriptMeta {
        ScriptMeta {
            name: name.into(),
            description: String::new(),
            sha256: hex::encode(Sha256::digest(data)),
            exec_name: "x.sh".into(),
            input_name: None,
            input_sha256: None,
        }
    }

    #[test]
    fn files_are_checked_before_anything_runs() {
        let mut b = Batches::default();
        let ok = b"#!/bin/sh\necho hi\n".to_vec();
        let big = vec![b'x'; MAX_SCRIPT_FILE_BYTES + 1];
        b.begin(
            1,
            "op".into(),
            vec![meta("a", &ok), meta("big", &big)],
            true,
            10,
        )
        .unwrap();
        assert!(b.add(1, 0, B64.encode(&ok), None).unwrap().is_none());
        let err = b.add(1, 1, B64.encode(&big), None).unwrap_err();
        assert!(err.contains("larger than 1 MB"), "{err}");
        assert!(
            b.add(1, 0, B64.encode(&ok), None).is_err(),
            "the refused batch is gone"
        );
        b.begin(2, "op".into(), vec![meta("a", &ok)], true, 10)
            .unwrap();
        let err = b.add(2, 0, B64.encode(b"tampered"), None).unwrap_err();
        assert!(err.contains("does not match its announced hash"), "{err}");
        b.begin(3, "op".into(), vec![meta("a", &ok)], true, 10)
            .unwrap();
        assert!(b.add(3, 0, B64.encode(&ok), None).unwrap().is_some());
        // The input file is bound to its announced hash too.
        let mut with_input = meta("a", &ok);
        with_input.input_name = Some("list.txt".into());
        with_input.input_sha256 = Some(hex::encode(Sha256::digest(b"hosts")));
        b.begin(4, "op".into(), vec![with_input.clone()], true, 10)
            .unwrap();
        let err = b
            .add(4, 0, B64.encode(&ok), Some(B64.encode(b"other hosts")))
            .unwrap_err();
        assert!(err.contains("input file of script a"), "{err}");
        b.begin(5, "op".into(), vec![with_input.clone()], true, 10)
            .unwrap();
        assert!(b.add(5, 0, B64.encode(&ok), None).is_err(), "input missing");
        b.begin(6, "op".into(), vec![with_input], true, 10).unwrap();
        assert!(
            b.add(6, 0, B64.encode(&ok), Some(B64.encode(b"hosts")))
                .unwrap()
                .is_some()
        );
    }
}
