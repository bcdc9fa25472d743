//! Script batches from the operator's library. The agent's part: collect
//! the files as they arrive, check them (size, hashes as announced), ask
//! the customer once for the whole batch (names, descriptions, content
//! hashes), then hand the batch to the `scripts` plugin in one call.
//!
//! The plugin owns the run: the order, writing each script's files into a
//! fresh temporary folder, the interpreter, stop-or-continue after a
//! failure. While it runs it reports each script's start and end (see
//! [`port`]), which the agent turns into `ScriptOutput` and `ScriptDone`
//! live; the table it returns, one result per script it ran, becomes the
//! `BatchDone` summary.

mod port;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lifeline_core::consent::{self, ConsentEngine, ConsentRequest, RequestKind};
use lifeline_protocol::{ScriptMeta, SessionMessage};
use lifeline_runtime::{Arg, PluginHost};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, mpsc};

use crate::prompt::InputPrompter;
use port::{BatchPort, ScriptResult};

/// Largest script or input file the agent runs (also enforced on upload).
pub const MAX_SCRIPT_FILE_BYTES: usize = 1 << 20;
/// The plugin that runs scripts.
pub const SCRIPTS_PLUGIN: &str = "scripts";
/// Its host-only command that runs a consented batch.
pub const BATCH_COMMAND: &str = "run";
/// Batches being received at once per session.
pub const MAX_PENDING_BATCHES: usize = 8;

/// A batch whose files are still arriving.
#[derive(Debug)]
struct Pending {
    operator: String,
    scripts: Vec<ScriptMeta>,
    files: Vec<Option<ScriptFiles>>,
    stop_on_failure: bool,
    timeout_secs: u64,
}

/// A script's execution file and input file, checked against their hashes.
type ScriptFiles = (Vec<u8>, Option<Vec<u8>>);

/// A batch with every file received and checked.
#[derive(Debug)]
pub struct Batch {
    operator: String,
    scripts: Vec<(ScriptMeta, ScriptFiles)>,
    stop_on_failure: bool,
    timeout_secs: u64,
}

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
    ) -> Result<Option<Batch>, String> {
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
        if p.files.iter().any(Option::is_none) {
            return Ok(None);
        }
        Ok(self.0.remove(&batch_id).and_then(Pending::complete))
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

impl Pending {
    /// The batch, once every script's files are here.
    fn complete(self) -> Option<Batch> {
        let files: Option<Vec<ScriptFiles>> = self.files.into_iter().collect();
        Some(Batch {
            operator: self.operator,
            scripts: self.scripts.into_iter().zip(files?).collect(),
            stop_on_failure: self.stop_on_failure,
            timeout_secs: self.timeout_secs,
        })
    }
}

/// Asks consent for the batch, then has the `scripts` plugin run it
/// (blocking: call from a blocking thread). Ends with `BatchDone`.
pub fn run(batch_id: u64, batch: Batch, ctx: Ctx, rt: tokio::runtime::Handle) {
    let (ok, summary) = consent_and_run(batch_id, batch, &ctx, &rt);
    let _ = ctx.tx.send(SessionMessage::BatchDone {
        batch_id,
        ok,
        summary,
    });
}

fn consent_and_run(
    batch_id: u64,
    batch: Batch,
    ctx: &Ctx,
    rt: &tokio::runtime::Handle,
) -> (bool, String) {
    // Nothing is asked, and nothing runs, without the plugin.
    let Some(host) = ctx
        .host
        .clone()
        .filter(|h| h.manifest(SCRIPTS_PLUGIN).is_some())
    else {
        return (
            false,
            format!(
                "this agent has no {SCRIPTS_PLUGIN} plugin: nothing was run (install plugins/{SCRIPTS_PLUGIN} among the agent's plugins)"
            ),
        );
    };
    if let Err(why) = consent(&batch, ctx, rt) {
        return (false, why);
    }
    let metas: Vec<ScriptMeta> = batch.scripts.iter().map(|(m, _)| m.clone()).collect();
    let port = Arc::new(BatchPort::new(
        batch_id,
        &metas,
        ctx.tx.clone(),
        Arc::clone(&ctx.runas),
    ));
    let args = call_args(batch);
    match host.call(SCRIPTS_PLUGIN, BATCH_COMMAND, &args, port.clone()) {
        Ok(answer) => match port::parse_results(&answer, metas.len()) {
            Ok(results) => {
                port.finish(&results);
                summarize(&metas, &results)
            }
            Err(why) => (
                false,
                format!("the {SCRIPTS_PLUGIN} plugin's answer is not usable: {why}"),
            ),
        },
        Err(e) => {
            let why = format!("the {SCRIPTS_PLUGIN} plugin failed: {e}");
            let not_run = port.failed(&why);
            (false, with_not_run(why, &not_run))
        }
    }
}

/// Asks the customer once for the whole batch; `Err` is the summary when
/// it may not run.
fn consent(batch: &Batch, ctx: &Ctx, rt: &tokio::runtime::Handle) -> Result<(), String> {
    let action = lifeline_core::capability::Capability::ScriptRun.name();
    let req = ConsentRequest {
        session_id: ctx.session_id.clone(),
        operator: batch.operator.clone(),
        plugin: SCRIPTS_PLUGIN.into(),
        action: action.into(),
        detail: format!(
            "run {} script(s) on this computer, in this order:\n{}",
            batch.scripts.len(),
            listing(batch)
        ),
        kind: RequestKind::Capability,
    };
    let decided = rt.block_on(consent::decide(&ctx.engine, &req, ctx.prompter.as_ref()));
    let d = decided.map_err(|e| format!("the consent could not be recorded: {e}"))?;
    let _ = ctx.tx.send(SessionMessage::ConsentDecided {
        plugin: SCRIPTS_PLUGIN.into(),
        action: action.into(),
        decision: d.decision,
        decided_by: d.decided_by.as_str().into(),
        audit_hash: d.audit_hash,
    });
    if !d.decision.is_allowed() {
        let by = d.decided_by.as_str();
        return Err(format!("the scripts were not run: denied ({by})"));
    }
    Ok(())
}

/// What the customer consents to: every script's name, description and
/// the hashes of its files, in the batch's order.
fn listing(batch: &Batch) -> String {
    let lines: Vec<String> = batch
        .scripts
        .iter()
        .enumerate()
        .map(|(i, (s, _))| {
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
    lines.join("\n")
}

/// The plugin's arguments: `stop_on_failure`, `timeout_secs`, then five per
/// script in the batch's order: name, execution file name, execution file
/// (bytes, WIT `list<u8>`), input file name ("" for none), input file.
fn call_args(batch: Batch) -> Vec<Arg> {
    let mut args = vec![
        Arg::Text(batch.stop_on_failure.to_string()),
        Arg::Text(batch.timeout_secs.to_string()),
    ];
    for (meta, (exec, input)) in batch.scripts {
        args.extend([
            Arg::Text(meta.name),
            Arg::Text(meta.exec_name),
            Arg::Bytes(exec),
            Arg::Text(meta.input_name.unwrap_or_default()),
            Arg::Bytes(input.unwrap_or_default()),
        ]);
    }
    args
}

/// `BatchDone` from the plugin's results (in the order it ran them).
fn summarize(metas: &[ScriptMeta], results: &[ScriptResult]) -> (bool, String) {
    let total = metas.len();
    let succeeded = results.iter().filter(|r| r.ok()).count();
    let not_run: Vec<&str> = metas
        .iter()
        .enumerate()
        .filter(|(i, _)| !results.iter().any(|r| r.script == i + 1))
        .map(|(_, m)| m.name.as_str())
        .collect();
    let counted = format!("{succeeded} of {total} script(s) succeeded");
    match results.last() {
        _ if not_run.is_empty() => (succeeded == total, counted),
        Some(last) if !last.ok() => {
            let failed = &metas[last.script - 1].name;
            let why = format!("stopped after {failed} failed");
            (false, with_not_run(why, &not_run))
        }
        _ => (false, with_not_run(counted, &not_run)),
    }
}

fn with_not_run(summary: String, not_run: &[&str]) -> String {
    if not_run.is_empty() {
        summary
    } else {
        format!("{summary}; not run: {}", not_run.join(", "))
    }
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

    fn result(script: usize, exit_code: i32) -> ScriptResult {
        ScriptResult {
            script,
            exit_code: Some(exit_code),
            timed_out: false,
            error: None,
        }
    }

    #[test]
    fn the_summary_follows_the_plugins_results() {
        let metas = [meta("a", b"a"), meta("b", b"b"), meta("c", b"c")];
        let all = [result(1, 0), result(2, 0), result(3, 0)];
        assert_eq!(
            summarize(&metas, &all),
            (true, "3 of 3 script(s) succeeded".into())
        );
        let kept_going = [result(1, 3), result(2, 0), result(3, 0)];
        assert_eq!(
            summarize(&metas, &kept_going),
            (false, "2 of 3 script(s) succeeded".into())
        );
        // The plugin's order, and its stop after a failure.
        let stopped = [result(3, 0), result(1, 3)];
        assert_eq!(
            summarize(&metas, &stopped),
            (false, "stopped after a failed; not run: b".into())
        );
        let skipped = [result(2, 0)];
        assert_eq!(
            summarize(&metas, &skipped),
            (false, "1 of 3 script(s) succeeded; not run: a, c".into())
        );
    }

    #[test]
    fn the_plugin_gets_the_batch_in_one_call() {
        let mut b = Batches::default();
        let (x, y) = (b"#!/bin/sh\necho x\n".to_vec(), b"echo y\n".to_vec());
        let mut second = meta("y", &y);
        second.input_name = Some("in.txt".into());
        second.input_sha256 = Some(hex::encode(Sha256::digest(b"data")));
        b.begin(1, "op".into(), vec![meta("x", &x), second], false, 7)
            .unwrap();
        assert!(
            b.add(1, 1, B64.encode(&y), Some(B64.encode(b"data")))
                .unwrap()
                .is_none()
        );
        let batch = b.add(1, 0, B64.encode(&x), None).unwrap().unwrap();
        let text = |a: &Arg| match a {
            Arg::Text(t) => t.clone(),
            Arg::Bytes(b) => format!("bytes:{}", String::from_utf8_lossy(b)),
        };
        let args: Vec<String> = call_args(batch).iter().map(text).collect();
        assert_eq!(
            args,
            [
                "false",
                "7",
                "x",
                "x.sh",
                "bytes:#!/bin/sh\necho x\n",
                "",
                "bytes:",
                "y",
                "x.sh",
                "bytes:echo y\n",
                "in.txt",
                "bytes:data",
            ]
        );
    }
}
