//! The consent engine: every privileged action is asked for, decided by the
//! customer (or an unattended policy), remembered for the session when the
//! customer says so, and written to the agent's audit log.
//!
//! Decision order for a request:
//! 1. an "allow for this session" grant for the same plugin, capability
//!    and exact consent text answers at once (and is still logged); only a
//!    plugin's declared capability can be granted, never the operator's
//!    free-text question;
//! 2. the policy, when configured, allows or denies by capability;
//! 3. a request while another of the session waits for the customer, or
//!    past the per-minute budget, is denied unasked;
//! 4. otherwise ("ask", or no policy) the prompter asks the customer; no
//!    answer within the timeout counts as deny.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use lifeline_protocol::ConsentDecision;
use serde::Serialize;
use sha2::{Digest, Sha256};

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

/// What kind of question the customer answers.
///
/// Threat: an operator's own free-text question ("may I check for
/// updates?") must never turn into a standing permission for a plugin's
/// capability that the customer never saw described. Only a
/// [`RequestKind::Capability`] request, whose detail is the plugin
/// manifest's own consent text (or the exact script listing of a batch),
/// can create an "allow for this session" grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A plugin's declared capability, described by the manifest's text.
    Capability,
    /// The operator's free-text question: answered, never remembered.
    Question,
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
    /// Human-readable detail of what will happen: exactly what the
    /// customer is shown.
    pub detail: String,
    pub kind: RequestKind,
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
    /// Refused unasked: another request of the session waits for the
    /// customer's answer (see [`MAX_PENDING_PROMPTS`]).
    Busy,
    /// Refused unasked: too many questions in the last minute (see
    /// [`MAX_PROMPTS_PER_MINUTE`]).
    RateLimited,
    /// Refused unasked: nobody is at the computer to ask (the agent runs
    /// as a service and no customer window is connected), and the policy
    /// did not decide.
    Absent,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Customer => "customer",
            DecidedBy::Policy => "policy",
            DecidedBy::SessionGrant => "session grant",
            DecidedBy::Timeout => "timeout",
            DecidedBy::Busy => "busy: another consent request is waiting for the customer",
            DecidedBy::RateLimited => "rate limited: too many consent requests this minute",
            DecidedBy::Absent => "absent: no customer window or terminal is connected",
        }
    }
}

/// Consent questions waiting for the customer at once, per session.
///
/// Threat: an operator (or a plugin) queueing many questions so that the
/// customer, facing a wall of prompts, answers one they did not read, or
/// so that prompts keep the customer's screen busy. A request made while
/// one is pending is denied at once ([`DecidedBy::Busy`]).
pub const MAX_PENDING_PROMPTS: usize = 1;

/// Consent questions put to the customer per session in any 60-second
/// window; further requests are denied unasked ([`DecidedBy::RateLimited`]).
///
/// Threat: prompt fatigue, where a customer worn down by a stream of
/// questions finally says yes.
pub const MAX_PROMPTS_PER_MINUTE: usize = 5;

/// The window of [`MAX_PROMPTS_PER_MINUTE`].
pub const PROMPT_WINDOW: Duration = Duration::from_secs(60);

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

    /// Whether anyone can answer now. When not, a request the policy
    /// leaves to the customer is refused at once ([`DecidedBy::Absent`])
    /// instead of waiting out the timeout with nobody to see it.
    fn attended(&self) -> bool {
        true
    }
}

/// A grant: one plugin's capability, described by exactly this text.
type GrantKey = (String, String, String, [u8; 32]);

fn grant_key(req: &ConsentRequest) -> GrantKey {
    (
        req.session_id.clone(),
        req.plugin.clone(),
        req.action.clone(),
        Sha256::digest(req.detail.as_bytes()).into(),
    )
}

/// What the engine decided before anyone is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preliminary {
    /// Decided without the customer (grant, policy, busy, rate limit).
    Decided(ConsentDecision, DecidedBy),
    /// The customer must be asked; the prompt slot is taken until
    /// [`ConsentEngine::record`] is called.
    Ask,
}

/// Per-agent consent engine.
pub struct ConsentEngine {
    policy: Option<Policy>,
    timeout: Duration,
    audit: AuditLog,
    /// Granted for the rest of the session: (session, plugin, capability,
    /// SHA-256 of the text the customer was shown).
    grants: HashSet<GrantKey>,
    /// Sessions with a question waiting for the customer.
    prompting: HashMap<String, usize>,
    /// When each session's recent questions were put.
    asked_at: HashMap<String, VecDeque<Instant>>,
}

impl ConsentEngine {
    pub fn new(policy: Option<Policy>, timeout: Duration, audit: AuditLog) -> Self {
        ConsentEngine {
            policy,
            timeout,
            audit,
            grants: HashSet::new(),
            prompting: HashMap::new(),
            asked_at: HashMap::new(),
        }
    }

    /// How long the customer has to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The decision order without the customer: grant, policy, then the
    /// pending and per-minute limits; `Ask` takes the session's prompt slot.
    pub fn preliminary(&mut self, req: &ConsentRequest) -> Preliminary {
        if req.kind == RequestKind::Capability && self.grants.contains(&grant_key(req)) {
            return Preliminary::Decided(ConsentDecision::AllowSession, DecidedBy::SessionGrant);
        }
        match self.policy.as_ref().map(|p| p.rule_for(&req.action)) {
            Some(Rule::Allow) => {
                return Preliminary::Decided(ConsentDecision::AllowOnce, DecidedBy::Policy);
            }
            Some(Rule::Deny) => {
                return Preliminary::Decided(ConsentDecision::Deny, DecidedBy::Policy);
            }
            Some(Rule::Ask) | None => {}
        }
        let pending = self.prompting.get(&req.session_id).copied().unwrap_or(0);
        if pending >= MAX_PENDING_PROMPTS {
            return Preliminary::Decided(ConsentDecision::Deny, DecidedBy::Busy);
        }
        let now = Instant::now();
        let recent = self.asked_at.entry(req.session_id.clone()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= PROMPT_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= MAX_PROMPTS_PER_MINUTE {
            return Preliminary::Decided(ConsentDecision::Deny, DecidedBy::RateLimited);
        }
        recent.push_back(now);
        *self.prompting.entry(req.session_id.clone()).or_default() += 1;
        Preliminary::Ask
    }

    /// Records a decision (releasing the prompt slot when the customer was
    /// asked), remembers an "allow for this session" on a capability, and
    /// writes the audit entry. A free-text question is never remembered:
    /// "allow for this session" on it counts as "allow once".
    pub fn record(
        &mut self,
        req: &ConsentRequest,
        mut decision: ConsentDecision,
        decided_by: DecidedBy,
    ) -> Result<Decision, AuditError> {
        if matches!(decided_by, DecidedBy::Customer | DecidedBy::Timeout)
            && let Some(n) = self.prompting.get_mut(&req.session_id)
        {
            *n = n.saturating_sub(1);
        }
        if decision == ConsentDecision::AllowSession && req.kind == RequestKind::Question {
            decision = ConsentDecision::AllowOnce;
        }
        let audit_hash = self.audit.append(&serde_json::json!({
            "event": "consent",
            "session": req.session_id,
            "operator": req.operator,
            "plugin": req.plugin,
            "action": req.action,
            "detail": req.detail,
            "kind": req.kind,
            "decision": decision.as_str(),
            "decided_by": decided_by.as_str(),
        }))?;
        // Remembered only once recorded: an "allow for this session" whose
        // entry could not be written (a full disk) grants nothing later.
        if decision == ConsentDecision::AllowSession {
            self.grants.insert(grant_key(req));
        }
        Ok(Decision {
            decision,
            decided_by,
            audit_hash,
        })
    }

    /// Decides `req`, asking `prompter` when needed, and logs the decision.
    /// Holds `&mut self` while the customer is asked: use [`decide`] when the
    /// engine is shared.
    pub async fn decide(
        &mut self,
        req: &ConsentRequest,
        prompter: &dyn Prompter,
    ) -> Result<Decision, AuditError> {
        let (decision, by) = match self.preliminary(req) {
            Preliminary::Decided(d, by) => (d, by),
            Preliminary::Ask => ask(prompter, req, self.timeout).await,
        };
        self.record(req, decision, by)
    }

    /// Forgets the "allow for this session" grants of `plugin` for
    /// `capabilities` (by name): the customer withdrew them (the Stop button
    /// of the screen-sharing indicator), so the next use asks again.
    /// Returns how many grants were forgotten.
    pub fn withdraw(&mut self, session_id: &str, plugin: &str, capabilities: &[&str]) -> usize {
        let before = self.grants.len();
        self.grants.retain(|(s, p, c, _)| {
            !(s == session_id && p == plugin && capabilities.contains(&c.as_str()))
        });
        before - self.grants.len()
    }

    /// Forgets the grants and prompt counts of a session that ended.
    pub fn end_session(&mut self, session_id: &str) {
        self.grants.retain(|(s, _, _, _)| s != session_id);
        self.prompting.remove(session_id);
        self.asked_at.remove(session_id);
    }

    /// The audit log, for other agent events (join, end).
    pub fn audit(&mut self) -> &mut AuditLog {
        &mut self.audit
    }
}

async fn ask(
    prompter: &dyn Prompter,
    req: &ConsentRequest,
    timeout: Duration,
) -> (ConsentDecision, DecidedBy) {
    if !prompter.attended() {
        return (ConsentDecision::Deny, DecidedBy::Absent);
    }
    match prompter.ask(req, timeout).await {
        Some(d) => (d, DecidedBy::Customer),
        None => (ConsentDecision::Deny, DecidedBy::Timeout),
    }
}

/// Decides `req` on a shared engine without holding it while the customer
/// thinks: other requests of the session meanwhile are refused as
/// [`DecidedBy::Busy`] instead of queueing behind the lock.
pub async fn decide(
    engine: &tokio::sync::Mutex<ConsentEngine>,
    req: &ConsentRequest,
    prompter: &dyn Prompter,
) -> Result<Decision, AuditError> {
    let (pre, timeout) = {
        let mut e = engine.lock().await;
        (e.preliminary(req), e.timeout)
    };
    let (decision, by) = match pre {
        Preliminary::Decided(d, by) => (d, by),
        Preliminary::Ask => ask(prompter, req, timeout).await,
    };
    engine.lock().await.record(req, decision, by)
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
            kind: RequestKind::Capability,
        }
    }

    fn engine(dir: &tempfile::TempDir, name: &str) -> ConsentEngine {
        let log = AuditLog::open(&dir.path().join(name)).unwrap();
        ConsentEngine::new(None, Duration::from_secs(1), log)
    }

    /// The review's reproduction: an operator's question worded as the
    /// reboot capability, answered "allow for this session", must not let
    /// the reboot plugin's capability through unasked.
    #[tokio::test]
    async fn a_question_never_becomes_a_grant() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(&dir, "a.log");
        let mut q = req("power.restart");
        q.plugin = "reboot".into();
        q.detail = "only checks for pending updates".into();
        q.kind = RequestKind::Question;
        let d = e
            .decide(&q, &Fixed(Some(ConsentDecision::AllowSession)))
            .await
            .unwrap();
        assert_eq!(d.decision, ConsentDecision::AllowOnce, "answered once only");
        // The same question again is asked again.
        let d = e.decide(&q, &Fixed(None)).await.unwrap();
        assert_eq!(d.decided_by, DecidedBy::Timeout);
        // And the plugin's real capability is asked with its own text.
        let mut cap = q.clone();
        cap.kind = RequestKind::Capability;
        cap.detail = "Restart this computer".into();
        let d = e.decide(&cap, &Fixed(None)).await.unwrap();
        assert_eq!(
            (d.decision, d.decided_by),
            (ConsentDecision::Deny, DecidedBy::Timeout)
        );
    }

    /// The customer's Stop on the sharing indicator: the plugin's session
    /// grants for the withdrawn capabilities go, nothing else does.
    #[tokio::test]
    async fn withdraw_forgets_only_the_named_grants() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(&dir, "w.log");
        let allow = Fixed(Some(ConsentDecision::AllowSession));
        let mut reqs = Vec::new();
        for (plugin, action) in [
            ("screen", "screen.capture"),
            ("screen", "input.control"),
            ("screen", "system.info"),
            ("other", "screen.capture"),
        ] {
            let mut r = req(action);
            r.plugin = plugin.into();
            e.decide(&r, &allow).await.unwrap();
            reqs.push(r);
        }
        let mut s2 = reqs[0].clone();
        s2.session_id = "S2".into();
        e.decide(&s2, &allow).await.unwrap();
        let n = e.withdraw("S1", "screen", &["screen.capture", "input.control"]);
        assert_eq!(n, 2);
        // Granted without asking? (An ask is answered at once.)
        let granted = |e: &mut ConsentEngine, r: &ConsentRequest| match e.preliminary(r) {
            Preliminary::Decided(_, by) => by == DecidedBy::SessionGrant,
            Preliminary::Ask => {
                e.record(r, ConsentDecision::Deny, DecidedBy::Customer)
                    .unwrap();
                false
            }
        };
        assert!(!granted(&mut e, &reqs[0]), "screen.capture is asked again");
        assert!(!granted(&mut e, &reqs[1]), "input.control is asked again");
        assert!(granted(&mut e, &reqs[2]), "other capabilities stay granted");
        assert!(granted(&mut e, &reqs[3]), "other plugins stay granted");
        assert!(granted(&mut e, &s2), "other sessions stay granted");
        assert_eq!(e.withdraw("S1", "screen", &["screen.capture"]), 0);
    }

    #[tokio::test]
    async fn a_grant_covers_only_the_text_the_customer_saw() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(&dir, "a.log");
        let r = req("script.run");
        e.decide(&r, &Fixed(Some(ConsentDecision::AllowSession)))
            .await
            .unwrap();
        assert_eq!(
            e.decide(&r, &Fixed(None)).await.unwrap().decided_by,
            DecidedBy::SessionGrant
        );
        let mut other = r.clone();
        other.detail = "run 1 script(s): evil.sh sha256 00ff".into();
        assert_eq!(
            e.decide(&other, &Fixed(None)).await.unwrap().decided_by,
            DecidedBy::Timeout
        );
    }

    /// Never answers: a customer who is thinking.
    struct Never;
    impl Prompter for Never {
        fn ask<'a>(
            &'a self,
            _r: &'a ConsentRequest,
            _t: Duration,
        ) -> Pin<Box<dyn Future<Output = Option<ConsentDecision>> + Send + 'a>> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn one_pending_question_and_a_budget_per_minute() {
        let dir = tempfile::tempdir().unwrap();
        let e = std::sync::Arc::new(tokio::sync::Mutex::new(engine(&dir, "a.log")));
        let e2 = std::sync::Arc::clone(&e);
        let first = tokio::spawn(async move { decide(&e2, &req("a.b"), &Never).await });
        while e.lock().await.prompting.get("S1").copied().unwrap_or(0) == 0 {
            tokio::task::yield_now().await;
        }
        // A second request does not queue behind the first: refused unasked.
        let d = decide(&e, &req("c.d"), &Fixed(Some(ConsentDecision::AllowOnce)))
            .await
            .unwrap();
        assert_eq!(
            (d.decision, d.decided_by),
            (ConsentDecision::Deny, DecidedBy::Busy)
        );
        // Another session is not blocked.
        let mut other = req("c.d");
        other.session_id = "S2".into();
        let d = decide(&e, &other, &Fixed(Some(ConsentDecision::AllowOnce)))
            .await
            .unwrap();
        assert_eq!(d.decided_by, DecidedBy::Customer);
        first.abort();
        e.lock().await.prompting.clear();
        // The budget: MAX_PROMPTS_PER_MINUTE questions, then refusals.
        let mut by = Vec::new();
        for _ in 0..MAX_PROMPTS_PER_MINUTE + 1 {
            let d = decide(&e, &req("c.d"), &Fixed(Some(ConsentDecision::Deny)))
                .await
                .unwrap();
            by.push(d.decided_by);
        }
        // One was used by the aborted first question.
        assert_eq!(
            by[..MAX_PROMPTS_PER_MINUTE - 1],
            [DecidedBy::Customer; MAX_PROMPTS_PER_MINUTE - 1]
        );
        assert_eq!(
            by[MAX_PROMPTS_PER_MINUTE - 1..],
            [DecidedBy::RateLimited; 2]
        );
        e.lock().await.end_session("S1");
        let d = decide(&e, &req("c.d"), &Fixed(Some(ConsentDecision::Deny)))
            .await
            .unwrap();
        assert_eq!(
            d.decided_by,
            DecidedBy::Customer,
            "a new session starts afresh"
        );
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
        let d = e.decide(&req("power.restart"), &Fixed(None)).await.unwrap();
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
                &req("power.restart"),
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
