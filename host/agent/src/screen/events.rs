//! Where what happens to a share goes: the session report, the
//! customer's terminal, the consent engine (a withdrawal) and the audit log.

use std::sync::Arc;

use lifeline_core::consent::ConsentEngine;
use lifeline_protocol::SessionMessage;
use lifeline_runtime::Capability;
use tokio::sync::{Mutex, mpsc};

use crate::CustomerUi;
use crate::channel::CustomerEvent;

/// What a session's screen tells the rest of the session.
pub trait ShareEvents: Send + Sync {
    /// A line of the session report, for plugin call `call_id`.
    fn report(&self, call_id: u64, plugin: &str, line: &str);
    /// A line on the customer's terminal.
    fn customer(&self, line: &str);
    /// A structured event for the customer (by default: its text).
    fn customer_event(&self, ev: CustomerEvent) {
        if let Some(text) = ev.text() {
            self.customer(&text);
        }
    }
    /// The customer withdrew `capabilities` of `plugin` (the indicator's
    /// Stop): "allow for this session" grants of them are forgotten.
    /// Called on the indicator's thread.
    fn withdrawn(&self, plugin: &str, capabilities: &[Capability]);
}

/// The session's [`ShareEvents`]: report lines as `PluginOutput` on the
/// "report" stream (as [`crate::plugins::AgentPort`] sends them), the
/// customer's UI, the consent engine and its audit log.
pub struct SessionEvents {
    pub session_id: String,
    pub tx: mpsc::UnboundedSender<SessionMessage>,
    pub ui: Arc<dyn CustomerUi>,
    pub engine: Arc<Mutex<ConsentEngine>>,
    pub rt: tokio::runtime::Handle,
}

impl ShareEvents for SessionEvents {
    fn report(&self, call_id: u64, plugin: &str, line: &str) {
        let _ = self.tx.send(SessionMessage::PluginOutput {
            call_id,
            plugin: plugin.to_string(),
            stream: "report".to_string(),
            text: line.to_string(),
        });
    }

    fn customer(&self, line: &str) {
        self.ui.show(line);
    }

    fn customer_event(&self, ev: CustomerEvent) {
        self.ui.event(&ev);
    }

    fn withdrawn(&self, plugin: &str, capabilities: &[Capability]) {
        let names: Vec<&'static str> = capabilities.iter().map(|c| c.name()).collect();
        let engine = Arc::clone(&self.engine);
        let (sid, plugin) = (self.session_id.clone(), plugin.to_string());
        let work = async move {
            let mut e = engine.lock().await;
            e.withdraw(&sid, &plugin, &names);
            let entry = serde_json::json!({
                "event": "consent_withdrawn", "session": sid, "plugin": plugin,
                "capabilities": names, "by": "customer (screen-sharing indicator)",
            });
            if let Err(err) = e.audit().append(&entry) {
                tracing::error!("audit entry not written: {err}");
            }
        };
        // On the indicator's thread: done before the next consent check
        // can see the grant. (From a runtime thread it cannot block.)
        if tokio::runtime::Handle::try_current().is_ok() {
            self.rt.spawn(work);
        } else {
            self.rt.block_on(work);
        }
    }
}
