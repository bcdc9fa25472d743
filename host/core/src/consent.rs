//! The consent engine: every privileged action is asked for, decided by the
//! customer (or an unattended policy), remembered for the session when the
//! customer says so, and written to the agent's audit log.
//!
//! Decision order for a request:
//! 1. an "allow for this session" grant for the same plugin and capability
//!    answers at once (and is still logged);
//! 2. the policy, when configured, allows or denies by capability;
//! 3. otherwise ("ask", or no policy) the prompter asks the customer; no
//!    answer within the timeout counts as deny.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use lifeline_protocol::ConsentDecision;
use serde::Serialize;

use crate::audit::{AuditError, AuditLog};

/// A policy rule for one capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Allow,
    Deny,
    Ask,
}

impl Rule {
    pub fn parse(s: &str) -> Option<Rule> {
        match s {
            "allow" => Some(Rule::Allow),
            "deny" => Some(Rule::Deny),
            "ask" => Some(Rule::Ask),
            _ => None,
        }
    }
}

/// Unattended-machine policy: a rule per capability and a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default: Rule,
    pub rules: BTreeMap<String, Rule>,
}

impl Policy {
    pub fn rule_for(&self, capability: &str) -> Rule {
        self.rules.get(capability).copied().unwrap_or(self.default)
    }
}

/// True for names like `system.info` or `script.run`.
pub fn is_capability_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        })
}

/// What is asked of the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentRequest {
    pub session_id: String,
    /// Display name of the operator asking.
    pub operator: String,
    pub plugin: String,
    /// The capability, e.g. `system.info`.
    pub action: String,
    /// Human-readable detail of what will happen.
    pub detail: String,
}

/// Who made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    Customer,
    Policy,
    /// An earlier "allow for this session".
    SessionGrant,
    /// No answer in time.
    Timeout,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Customer => "customer",
            DecidedBy::Policy => "policy",
            DecidedBy::SessionGrant => "session grant",
            DecidedBy::Timeout => "timeout",
        }
    }
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub decision: ConsentDecision,
    pub decided_by: DecidedBy,
    /// Hash of the audit-log entry that records it.
    pub audit_hash: String,
}

/// Asks the customer. Returns `None` when no answer came within `timeout`.
pub trait Prompter: Send + Sync {
    fn ask<'a>(
        &'a self,
        request: &'a ConsentRequest,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Option<ConsentDecision>> + Send + 'a>>;
}

/// Per-agent consent engine.
pub struct ConsentEngine {
    policy: Option<Policy>,
    timeout: Duration,
    audit: AuditLog,
    /// (session, plugin, capability) granted for the rest of the session.
    grants: HashSet<(String, String, String)>,
}

impl ConsentEngine {
    pub fn new(policy: Option<Policy>, timeout: Duration, audit: AuditLog) -> Self {
        ConsentEngine {
            policy,
            timeout,
            audit,
            grants: HashSet::new(),
        }
    }

    /// Decides `req`, asking `prompter` when needed, and logs the decision.
    pub async fn decide(
        &mut self,
        req: &ConsentRequest,
        prompter: &dyn Prompter,
    ) -> Result<Decision, AuditError> {
        let key = (
            req.session_id.clone(),
            req.plugin.clone(),
            req.action.clone(),
        );
        let (decision, decided_by) = if self.grants.contains(&key) {
            (ConsentDecision::AllowSession, DecidedBy::SessionGrant)
        } else {
            match self.policy.as_ref().map(|p| p.rule_for(&req.action)) {
                Some(Rule::Allow) => (ConsentDecision::AllowOnce, DecidedBy::Policy),
                Some(Rule::Deny) => (ConsentDecision::Deny, DecidedBy::Policy),
                Some(Rule::Ask) | None => match prompter.ask(req, self.timeout).await {
                    Some(d) => (d, DecidedBy::Customer),
                    None => (ConsentDecision::Deny, DecidedBy::Timeout),
                },
            }
        };
        if decision == ConsentDecision::AllowSession {
            self.grants.insert(key);
        }
        let audit_hash = self.audit.append(&serde_json::json!({
            "event": "consent",
            "session": req.session_id,
            "operator": req.operator,
            "plugin": req.plugin,
            "action": req.action,
            "detail": req.detail,
            "decision": decision.as_str(),
            "decided_by": decided_by.as_str(),
        }))?;
        Ok(Decision {
            decision,
            decided_by,
            audit_hash,
        })
    }

    /// Forgets the grants of a session that ended.
    pub fn end_session(&mut self, session_id: &str) {
        self.grants.retain(|(s, _, _)| s != session_id);
    }

    /// The audit log, for other agent events (join, end).
    pub fn audit(&mut self) -> &mut AuditLog {
        &mut self.audit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Option<ConsentDecision>);
    impl Prompter for Fixed {
        fn ask<'a>(
            &'a self,
            _r: &'a ConsentRequest,
            _t: Duration,
        ) -> Pin<Box<dyn Future<Output = Option<ConsentDecision>> + Send + 'a>> {
            Box::pin(async move { self.0 })
        }
    }

    fn req(action: &str) -> ConsentRequest {
        ConsentRequest {
            session_id: "S1".into(),
            operator: "Alice".into(),
            plugin: "sysinfo".into(),
            action: action.into(),
            detail: "read system information".into(),
        }
    }

    #[tokio::test]
    async fn session_grant_timeout_and_policy() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit.log")).unwrap();
        let mut e = ConsentEngine::new(None, Duration::from_secs(1), log);
        let d = e
            .decide(
                &req("system.info"),
                &Fixed(Some(ConsentDecision::AllowSession)),
            )
            .await
            .unwrap();
        assert_eq!(d.decided_by, DecidedBy::Customer);
        let d = e.decide(&req("system.info"), &Fixed(None)).await.unwrap();
        assert_eq!(
            (d.decision, d.decided_by),
            (ConsentDecision::AllowSession, DecidedBy::SessionGrant)
        );
        let d = e.decide(&req("power.reboot"), &Fixed(None)).await.unwrap();
        assert_eq!(
            (d.decision, d.decided_by),
            (ConsentDecision::Deny, DecidedBy::Timeout)
        );
        e.end_session("S1");
        let d = e
            .decide(&req("system.info"), &Fixed(Some(ConsentDecision::Deny)))
            .await
            .unwrap();
        assert_eq!(d.decision, ConsentDecision::Deny);

        let policy = Policy {
            default: Rule::Deny,
            rules: [("system.info".to_string(), Rule::Allow)].into(),
        };
        let log = AuditLog::open(&dir.path().join("audit2.log")).unwrap();
        let mut e = ConsentEngine::new(Some(policy), Duration::from_secs(1), log);
        let d = e.decide(&req("system.info"), &Fixed(None)).await.unwrap();
        assert_eq!(
            (d.decision, d.decided_by),
            (ConsentDecision::AllowOnce, DecidedBy::Policy)
        );
        let d = e
            .decide(
                &req("power.reboot"),
                &Fixed(Some(ConsentDecision::AllowOnce)),
            )
            .await
            .unwrap();
        assert_eq!(
            (d.decision, d.decided_by),
            (ConsentDecision::Deny, DecidedBy::Policy)
        );
        crate::audit::verify(&dir.path().join("audit.log")).unwrap();
    }

    #[test]
    fn capability_names() {
        assert!(is_capability_name("system.info"));
        assert!(is_capability_name("script.run_as"));
        assert!(!is_capability_name("System.Info"));
        assert!(!is_capability_name("a..b"));
        assert!(!is_capability_name(""));
    }
}
