//! Script batches from the operator's library: announced with
//! `ScriptBatch`, their files arriving one `ScriptFiles` per script; a
//! complete batch is consented to and run by [`crate::scripts::run`] on a
//! blocking thread.

use std::sync::Arc;

use lifeline_protocol::{ScriptMeta, SessionMessage};

use super::Session;
use crate::scripts;

impl Session<'_> {
    /// `ScriptBatch`: the customer sees what is coming; the files follow.
    pub(super) fn on_script_batch(
        &mut self,
        batch_id: u64,
        operator: String,
        metas: Vec<ScriptMeta>,
        stop_on_failure: bool,
        timeout_secs: u64,
    ) {
        let names: Vec<&str> = metas.iter().map(|s| s.name.as_str()).collect();
        self.ui.show(&format!(
            "* {operator} wants to run {} script(s): {}",
            names.len(),
            names.join(", ")
        ));
        let begun = self
            .batches
            .begin(batch_id, operator, metas, stop_on_failure, timeout_secs);
        if let Err(summary) = begun {
            self.refuse_batch(batch_id, summary);
        }
    }

    /// `ScriptFiles`: checked; the last one starts the batch.
    pub(super) fn on_script_files(
        &mut self,
        batch_id: u64,
        index: usize,
        exec_b64: String,
        input_b64: Option<String>,
    ) {
        match self.batches.add(batch_id, index, exec_b64, input_b64) {
            Ok(None) => {}
            Ok(Some(pending)) => {
                let ctx = scripts::Ctx {
                    session_id: self.sid.clone(),
                    engine: Arc::clone(&self.engine),
                    prompter: Arc::clone(&self.prompter),
                    host: self.plugin_host.clone(),
                    tx: self.plug_tx.clone(),
                    runas: Arc::clone(&self.runas),
                };
                let rt = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || scripts::run(batch_id, pending, ctx, rt));
            }
            Err(summary) => self.refuse_batch(batch_id, summary),
        }
    }

    fn refuse_batch(&self, batch_id: u64, summary: String) {
        let _ = self.plug_tx.send(SessionMessage::BatchDone {
            batch_id,
            ok: false,
            summary,
        });
    }
}
