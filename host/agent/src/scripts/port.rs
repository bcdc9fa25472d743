//! The session port of a batch call, and what the `scripts` plugin reports
//! through it.
//!
//! While the batch runs, each `send_output` of the plugin is one JSON
//! object:
//!
//! - `{"event": "start", "script": N}`: script N (1-based, in the batch's
//!   order) starts; the lines its processes write are its `ScriptOutput`
//!   from then on, and the agent's clock for its duration starts;
//! - `{"event": "done", "script": N, "exit_code": C, "timed_out": B,
//!   "error": "…"}` (`exit_code` and `error` optional): script N ended, sent
//!   on as `ScriptDone`.
//!
//! Any other text is shown as an output line of the script running (or of
//! the plugin between scripts). The call returns `{"results": [ … ]}`: the
//! `done` records of the scripts it ran, in the order it ran them; a result
//! not reported live is sent as `ScriptDone` when the call returns.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use lifeline_protocol::{ScriptMeta, SessionMessage};
use lifeline_runtime::{Capability, Manifest, SessionPort};
use tokio::sync::mpsc;

use super::SCRIPTS_PLUGIN;

/// How one script ended, as the plugin reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ScriptResult {
    /// 1-based, in the batch's order.
    pub script: usize,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    pub error: Option<String>,
}

impl ScriptResult {
    pub fn ok(&self) -> bool {
        self.error.is_none() && !self.timed_out && self.exit_code == Some(0)
    }
}

/// One report of the plugin while the batch runs.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Report {
    Start { script: usize },
    Done(ScriptResult),
}

/// What the agent knows of the batch while it runs.
struct Progress {
    /// The script running (0-based) and since when.
    current: Option<(usize, Instant)>,
    /// Scripts whose `ScriptDone` was sent.
    reported: Vec<bool>,
}

/// The port of a batch call: the batch's consent covers the plugin's
/// temporary folder and processes; what it reports goes to the session.
pub(super) struct BatchPort {
    batch_id: u64,
    names: Vec<String>,
    tx: mpsc::UnboundedSender<SessionMessage>,
    runas: Arc<crate::runas::RunAs>,
    progress: Mutex<Progress>,
}

impl BatchPort {
    pub(super) fn new(
        batch_id: u64,
        metas: &[ScriptMeta],
        tx: mpsc::UnboundedSender<SessionMessage>,
        runas: Arc<crate::runas::RunAs>,
    ) -> Self {
        BatchPort {
            batch_id,
            names: metas.iter().map(|m| m.name.clone()).collect(),
            tx,
            runas,
            progress: Mutex::new(Progress {
                current: None,
                reported: vec![false; metas.len()],
            }),
        }
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Script `script` (1-based) starts.
    fn start(&self, script: usize) {
        if (1..=self.names.len()).contains(&script) {
            self.progress().current = Some((script - 1, Instant::now()));
        }
    }

    /// Script `r.script` ended: `ScriptDone`, once per script.
    fn done(&self, r: &ScriptResult) {
        let Some(i) = r.script.checked_sub(1).filter(|i| *i < self.names.len()) else {
            return;
        };
        let duration_ms = {
            let mut p = self.progress();
            if std::mem::replace(&mut p.reported[i], true) {
                return;
            }
            match p.current.take_if(|(c, _)| *c == i) {
                Some((_, since)) => since.elapsed().as_millis() as u64,
                None => 0,
            }
        };
        let _ = self.tx.send(SessionMessage::ScriptDone {
            batch_id: self.batch_id,
            script: self.names[i].clone(),
            exit_code: r.exit_code,
            duration_ms,
            timed_out: r.timed_out,
            error: r.error.clone(),
        });
    }

    /// The call returned these results: those not reported live are sent.
    pub(super) fn finish(&self, results: &[ScriptResult]) {
        for r in results {
            self.done(r);
        }
    }

    /// The call failed (`why`): the script running, if any, failed with
    /// it. Returns the names of the scripts that never ended.
    pub(super) fn failed(&self, why: &str) -> Vec<&str> {
        let running = self.progress().current.map(|(i, _)| i);
        if let Some(i) = running {
            self.done(&ScriptResult {
                script: i + 1,
                exit_code: None,
                timed_out: false,
                error: Some(why.to_string()),
            });
        }
        let p = self.progress();
        self.names
            .iter()
            .zip(&p.reported)
            .filter(|(_, done)| !**done)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// A line for the operator, of the script running (or of the plugin).
    fn line(&self, stream: &str, line: &str) {
        let current = self.progress().current.map(|(i, _)| i);
        let script = match current {
            Some(i) => self.names[i].clone(),
            None => SCRIPTS_PLUGIN.to_string(),
        };
        let _ = self.tx.send(SessionMessage::ScriptOutput {
            batch_id: self.batch_id,
            script,
            stream: stream.into(),
            line: line.into(),
        });
    }
}

/// Scripts run as the user the operator is logged in as, if any; nothing
/// else native is part of a script batch.
impl lifeline_runtime::Natives for BatchPort {
    fn identity(&self) -> Option<Arc<lifeline_runtime::Identity>> {
        self.runas.identity()
    }
}

impl SessionPort for BatchPort {
    fn consent(&self, _plugin: &Manifest, cap: Capability) -> Result<(), String> {
        match cap {
            Capability::FsTemp | Capability::ProcessSpawn => Ok(()),
            other => Err(format!("{other} is not part of the consented script batch")),
        }
    }
    /// The plugin's reports; other text is an output line.
    fn output(&self, _plugin: &str, text: &str) {
        match serde_json::from_str::<Report>(text) {
            Ok(Report::Start { script }) => self.start(script),
            Ok(Report::Done(r)) => self.done(&r),
            Err(_) => self.line("output", text),
        }
    }
    fn chat(&self, _plugin: &str, text: &str) {
        self.line("output", text);
    }
    fn report(&self, _plugin: &str, text: &str) {
        self.line("output", text);
    }
    /// The session loop drops its receiver when the session ends.
    fn ended(&self) -> bool {
        self.tx.is_closed()
    }
    fn natives(&self) -> Option<&dyn lifeline_runtime::Natives> {
        Some(self)
    }
    fn process_line(&self, _plugin: &str, stream: &str, line: &str) {
        self.line(stream, line);
    }
}

/// The results the call returned (`{"results": [ … ]}`), each for a script
/// of the batch (1 to `total`), at most once.
pub(super) fn parse_results(answer: &str, total: usize) -> Result<Vec<ScriptResult>, String> {
    let v: serde_json::Value =
        serde_json::from_str(answer).map_err(|e| format!("not JSON ({e}): {answer:.200}"))?;
    let results: Vec<ScriptResult> = match &v["results"] {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|r| serde_json::from_value(r.clone()).map_err(|e| format!("a result: {e}")))
            .collect::<Result<_, _>>()?,
        // Lua's empty table: nothing ran.
        serde_json::Value::Object(m) if m.is_empty() => Vec::new(),
        _ => return Err("no \"results\" list".into()),
    };
    let mut seen = vec![false; total];
    for r in &results {
        let Some(slot) = r.script.checked_sub(1).and_then(|i| seen.get_mut(i)) else {
            return Err(format!("a result for script {} of {total}", r.script));
        };
        if std::mem::replace(slot, true) {
            return Err(format!("two results for script {}", r.script));
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(names: &[&str]) -> (BatchPort, mpsc::UnboundedReceiver<SessionMessage>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let metas: Vec<ScriptMeta> = names
            .iter()
            .map(|n| ScriptMeta {
                name: n.to_string(),
                description: String::new(),
                sha256: String::new(),
                exec_name: "x.sh".into(),
                input_name: None,
                input_sha256: None,
            })
            .collect();
        let runas = Arc::new(crate::runas::RunAs::new(
            Default::default(),
            std::path::Path::new("/nonexistent"),
        ));
        (BatchPort::new(7, &metas, tx, runas), rx)
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<SessionMessage>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(m) = rx.try_recv() {
            seen.push(match m {
                SessionMessage::ScriptOutput { script, line, .. } => format!("[{script}] {line}"),
                SessionMessage::ScriptDone {
                    script,
                    exit_code,
                    error,
                    ..
                } => format!("done {script} {exit_code:?} {error:?}"),
                other => format!("{other:?}"),
            });
        }
        seen
    }

    #[test]
    fn reports_label_lines_and_end_scripts_once() {
        let (p, mut rx) = port(&["a", "b"]);
        p.output("scripts", "before anything");
        p.output("scripts", r#"{"event":"start","script":2}"#);
        p.process_line("scripts", "stdout", "from b");
        p.output("scripts", "a marker");
        p.output(
            "scripts",
            r#"{"event":"done","script":2,"exit_code":0,"timed_out":false}"#,
        );
        p.output("scripts", r#"{"event":"done","script":2,"exit_code":1}"#);
        p.output("scripts", r#"{"event":"start","script":9}"#);
        p.process_line("scripts", "stdout", "between");
        let done = parse_results(
            r#"{"results":[{"script":2,"exit_code":0},{"script":1,"error":"boom"}]}"#,
            2,
        )
        .unwrap();
        p.finish(&done);
        assert_eq!(
            drain(&mut rx),
            [
                "[scripts] before anything",
                "[b] from b",
                "[b] a marker",
                "done b Some(0) None",
                "[scripts] between",
                "done a None Some(\"boom\")",
            ]
        );
    }

    #[test]
    fn a_failed_call_fails_the_running_script() {
        let (p, mut rx) = port(&["a", "b", "c"]);
        p.output("scripts", r#"{"event":"start","script":1}"#);
        p.output("scripts", r#"{"event":"done","script":1,"exit_code":0}"#);
        p.output("scripts", r#"{"event":"start","script":2}"#);
        assert_eq!(p.failed("plugin error: boom"), ["c"]);
        assert_eq!(
            drain(&mut rx),
            [
                "done a Some(0) None",
                "done b None Some(\"plugin error: boom\")"
            ]
        );
    }

    #[test]
    fn results_must_name_the_batchs_scripts_once() {
        assert_eq!(parse_results(r#"{"results":{}}"#, 2).unwrap(), []);
        for (answer, why) in [
            (r#"{"results":[{"script":3}]}"#, "script 3 of 2"),
            (r#"{"results":[{"script":0}]}"#, "script 0 of 2"),
            (
                r#"{"results":[{"script":1},{"script":1}]}"#,
                "two results for script 1",
            ),
            (r#"{"exit_code":0}"#, "no \"results\" list"),
            ("done", "not JSON"),
        ] {
            let err = parse_results(answer, 2).unwrap_err();
            assert!(err.contains(why), "{answer}: {err}");
        }
    }
}
