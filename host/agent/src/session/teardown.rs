//! Closing a session, however it ended: the long-lived plugins hear
//! `ending` and stop, screen shares close (the indicator goes), streams
//! close, plugin calls still running see the end, a run-as login ends, and
//! the audit log records the end.

use std::sync::Arc;

use lifeline_core::consent::ConsentEngine;
use lifeline_protocol::SessionMessage;
use tokio::sync::{Mutex, mpsc};

use super::Session;
use crate::{AgentError, Outcome, runas::RunAs};

impl Session<'_> {
    pub(super) async fn close(
        mut self,
        result: Result<Outcome, AgentError>,
    ) -> Result<Outcome, AgentError> {
        let (by, reason) = match &result {
            Ok(o) => (o.ended_by.to_string(), o.reason.clone()),
            Err(e) => ("connection".to_string(), e.to_string()),
        };
        let svc = Arc::clone(&self.services);
        let why = reason.clone();
        let _ = tokio::task::spawn_blocking(move || svc.stop(&why)).await;
        // Every share ends (keys still pressed are released, the indicator
        // is removed); blocking: it waits for the X server.
        let screen = Arc::clone(&self.screen);
        let _ = tokio::task::spawn_blocking(move || screen.close_all()).await;
        self.streams.close_all("the session ended");
        // Plugin calls still running see the session end (`SessionPort::ended`):
        // the processes they spawned are killed.
        drop(self.plug_rx);
        self.deciding.abort_all();
        while self.deciding.join_next().await.is_some() {}
        if self.suspended.is_some() || self.runas.identity().is_some() {
            end_run_as(
                &self.runas,
                &self.engine,
                &self.sid,
                "the session ended",
                &self.plug_tx,
            )
            .await;
            self.ui.show("* The operator's login as another user ended with the session. Your access is restored.");
        }
        let mut engine = self.engine.lock().await;
        engine.end_session(&self.sid);
        engine.audit().append(&serde_json::json!({
            "event": "end", "session": self.sid, "by": by, "reason": reason,
        }))?;
        drop(engine);
        // Let the writer flush a final End before the link is dropped.
        drop(self.link.tx);
        result
    }
}

/// Ends a run-as login from the agent's side (operator left, session over):
/// the customer's access comes back, the audit log and the session say so.
async fn end_run_as(
    runas: &Arc<RunAs>,
    engine: &Arc<Mutex<ConsentEngine>>,
    sid: &str,
    why: &str,
    tx: &mpsc::UnboundedSender<SessionMessage>,
) {
    let r = Arc::clone(runas);
    let user = tokio::task::spawn_blocking(move || r.logout())
        .await
        .ok()
        .flatten()
        .map(|l| l.user);
    if let Some(user) = user {
        let entry = serde_json::json!({
            "event": "run_as_logout", "session": sid, "user": user, "by": why,
        });
        if let Err(e) = engine.lock().await.audit().append(&entry) {
            tracing::error!("audit entry not written: {e}");
        }
        let _ = tx.send(SessionMessage::Access {
            suspended: false,
            user,
            detail: why.to_string(),
        });
    }
}
