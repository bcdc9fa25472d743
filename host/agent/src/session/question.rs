//! The operator's own consent questions (`operator ask`): put to the
//! customer in the background, answered, never a grant.

use std::sync::Arc;

use lifeline_core::audit::AuditError;
use lifeline_core::consent::{ConsentRequest, RequestKind};
use lifeline_protocol::SessionMessage;
use lifeline_protocol::types::ConsentDecision;

use super::Session;

impl Session<'_> {
    /// `ConsentRequest`: decided in the background; the answer comes back
    /// as [`super::Event::Answer`].
    pub(super) fn on_question(
        &mut self,
        request_id: u64,
        operator: String,
        plugin: String,
        action: String,
        detail: String,
    ) {
        let req = ConsentRequest {
            session_id: self.sid.clone(),
            operator,
            plugin,
            action,
            detail,
            kind: RequestKind::Question,
        };
        let engine = Arc::clone(&self.engine);
        let prompter = Arc::clone(&self.prompter);
        let answer_tx = self.answer_tx.clone();
        self.deciding.spawn(async move {
            let decided = lifeline_core::consent::decide(&engine, &req, prompter.as_ref()).await;
            match decided {
                Ok(d) => {
                    let answer = SessionMessage::ConsentAnswer {
                        request_id,
                        decision: d.decision,
                        decided_by: d.decided_by.as_str().to_string(),
                        audit_hash: d.audit_hash,
                    };
                    let _ = answer_tx.send(answer).await;
                }
                // An answer the audit log cannot record (a full disk) is
                // no consent: refused, and the operator is told at once
                // instead of waiting out the question's timeout.
                Err(e) => {
                    tracing::error!("consent not recorded, request {request_id} refused: {e}");
                    let answer = SessionMessage::ConsentAnswer {
                        request_id,
                        decision: ConsentDecision::Deny,
                        decided_by: not_recorded(&e),
                        audit_hash: String::new(),
                    };
                    let _ = answer_tx.send(answer).await;
                }
            }
        });
    }

    /// The customer's answer: shown to them and sent to the operator.
    pub(super) async fn on_answer(&mut self, answer: SessionMessage) {
        if let SessionMessage::ConsentAnswer {
            decision,
            decided_by,
            ..
        } = &answer
        {
            self.ui
                .show(&format!("* Consent: {} ({decided_by})", decision.as_str()));
        }
        self.send(answer).await;
    }
}

/// `decided_by` of an answer the audit log could not record: why, without
/// the log's path.
fn not_recorded(e: &AuditError) -> String {
    match e {
        AuditError::Io { source, .. } => format!("not recorded: {source}"),
        AuditError::Tampered { .. } => "not recorded: the audit log does not verify".into(),
    }
}
