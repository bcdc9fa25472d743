//! The agent's native features behind the plugin host calls: run-as login
//! (credentials asked from the operator, checked by PAM) and reboot (rejoin
//! ticket first, then the power backend). The plugins `run-as` and `reboot`
//! call these through [`crate::plugins::AgentPort`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lifeline_protocol::{Secret, SessionMessage};
use tokio::sync::oneshot;

use crate::plugins::AgentPort;
use crate::reboot::{self, SavedTicket};

/// Longest time the agent waits for the broker's rejoin ticket.
pub const TICKET_WAIT: Duration = Duration::from_secs(10);
/// Longest user name accepted for a run-as login.
pub const MAX_USER_CHARS: usize = 64;

/// Requests from plugin calls that the session loop carries out on the
/// broker connection.
pub enum Ctl {
    /// Ask the broker for a rejoin ticket; from its reply on the session
    /// waits for the rejoin.
    TicketRequest {
        detail: String,
        reply: oneshot::Sender<Result<(Secret, i64), String>>,
    },
    /// The power backend failed: the session goes on.
    RebootCancelled { reason: String },
}

/// Credential requests waiting for the operator's answer.
#[derive(Default)]
pub struct Credentials {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Option<Secret>>>>,
}

impl Credentials {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Option<Secret>>>> {
        self.waiting
            .lock()
            .expect("credential lock is never poisoned")
    }

    fn register(&self) -> (u64, oneshot::Receiver<Option<Secret>>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(id, tx);
        (id, rx)
    }

    /// The operator's answer arrived; an unknown id is ignored (and the
    /// secret dropped, which overwrites it).
    pub fn answer(&self, request_id: u64, secret: Option<Secret>) {
        if let Some(tx) = self.waiting().remove(&request_id) {
            let _ = tx.send(secret);
        }
    }

    fn forget(&self, request_id: u64) {
        self.waiting().remove(&request_id);
    }
}

fn plain_user(user: &str) -> bool {
    !user.is_empty()
        && user.chars().count() <= MAX_USER_CHARS
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '\\'))
}

impl AgentPort {
    fn audit(&self, entry: serde_json::Value) {
        let r = self
            .rt
            .block_on(async { self.engine.lock().await.audit().append(&entry) });
        if let Err(e) = r {
            tracing::error!("audit entry not written: {e}");
        }
    }

    pub(crate) fn native_run_as_login(&self, user: &str) -> Result<String, String> {
        if !plain_user(user) {
            return Err(format!("{user:?} is not a user name"));
        }
        if let Some(id) = self.runas.identity() {
            return Err(format!(
                "the operator is already logged in as {}; log out first",
                id.user
            ));
        }
        let (request_id, rx) = self.creds.register();
        let _ = self.tx.send(SessionMessage::CredentialRequest {
            call_id: self.call_id,
            request_id,
            user: user.to_string(),
            prompt: format!("Password of {user} on {}", crate::hostname()),
        });
        let wait = self.credential_timeout;
        let answer = self
            .rt
            .block_on(async { tokio::time::timeout(wait, rx).await });
        let secret = match answer {
            Ok(Ok(Some(s))) => s,
            Ok(Ok(None)) => return Err("the operator supplied no password".into()),
            Ok(Err(_)) | Err(_) => {
                self.creds.forget(request_id);
                return Err(format!(
                    "the operator did not supply the password within {} s",
                    wait.as_secs()
                ));
            }
        };
        let identity = self
            .runas
            .login(user, secret, &self.session_id, &self.operator)
            .map_err(|e| {
                self.audit(serde_json::json!({
                    "event": "run_as_refused", "session": self.session_id,
                    "operator": self.operator, "user": user, "reason": e.to_string(),
                }));
                e.to_string()
            })?;
        self.audit(serde_json::json!({
            "event": "run_as_login", "session": self.session_id,
            "operator": self.operator, "user": user, "uid": identity.uid,
        }));
        let detail = match self.runas.suspended_display() {
            Some(d) => {
                format!("keyboard and pointer grabbed on X display {d}; terminal input held")
            }
            None => "terminal input held".to_string(),
        };
        let _ = self.tx.send(SessionMessage::Access {
            suspended: true,
            user: user.to_string(),
            detail: detail.clone(),
        });
        Ok(format!(
            "logged in as {user} (uid {}, gid {}); processes now run as {user}; the customer's access is suspended ({detail})",
            identity.uid, identity.gid
        ))
    }

    pub(crate) fn native_run_as_logout(&self) -> Result<String, String> {
        match self.runas.logout() {
            Some(user) => {
                self.audit(serde_json::json!({
                    "event": "run_as_logout", "session": self.session_id,
                    "operator": self.operator, "user": user, "by": "operator",
                }));
                let _ = self.tx.send(SessionMessage::Access {
                    suspended: false,
                    user: user.clone(),
                    detail: "the operator logged out".into(),
                });
                Ok(format!(
                    "logged out of {user}; the customer's access is restored"
                ))
            }
            None => Ok("not logged in as another user".into()),
        }
    }

    pub(crate) fn native_reboot(&self, reason: &str) -> Result<String, String> {
        let detail = if reason.is_empty() {
            format!("{} restarts the computer", self.operator)
        } else {
            format!("{} restarts the computer: {reason}", self.operator)
        };
        let (reply, rx) = oneshot::channel();
        self.ctl
            .send(Ctl::TicketRequest {
                detail: detail.clone(),
                reply,
            })
            .map_err(|_| "the session is over".to_string())?;
        let (ticket, expires_at) = match self
            .rt
            .block_on(async { tokio::time::timeout(TICKET_WAIT, rx).await })
        {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err("the session ended before the broker answered".into()),
            Err(_) => {
                return Err(format!(
                    "the broker gave no rejoin ticket within {} s; not restarting",
                    TICKET_WAIT.as_secs()
                ));
            }
        };
        let until = lifeline_core::time::millis_to_rfc3339(expires_at);
        let saved = SavedTicket {
            ticket,
            session_id: self.session_id.clone(),
            operator: self.operator.clone(),
            expires_at,
            saved_at: lifeline_core::time::now_rfc3339(),
        };
        if let Err(e) = reboot::save(&self.data_dir, &saved) {
            let reason = e.to_string();
            let _ = self.ctl.send(Ctl::RebootCancelled {
                reason: reason.clone(),
            });
            return Err(reason);
        }
        self.audit(serde_json::json!({
            "event": "reboot", "session": self.session_id,
            "operator": self.operator, "ticket_expires": until,
        }));
        self.ui.show(&format!(
            "* {detail}. Lifeline will reconnect to {} by itself when the computer is back; you do not need to type a code.",
            self.operator
        ));
        let _ = self.tx.send(SessionMessage::PluginOutput {
            call_id: self.call_id,
            plugin: "reboot".into(),
            stream: "output".into(),
            text: format!(
                "restarting now; the agent rejoins by itself (ticket valid until {until})"
            ),
        });
        // Let the notices reach the broker before the power goes.
        std::thread::sleep(Duration::from_millis(200));
        match reboot::power_off_and_on(&self.power.reboot_command) {
            Ok(()) => Ok(format!(
                "the computer is restarting; the agent rejoins the session by itself (ticket valid until {until})"
            )),
            Err(reason) => {
                reboot::remove(&self.data_dir);
                self.audit(serde_json::json!({
                    "event": "reboot_failed", "session": self.session_id, "reason": reason,
                }));
                self.ui
                    .show(&format!("* The restart did not happen: {reason}"));
                let _ = self.ctl.send(Ctl::RebootCancelled {
                    reason: reason.clone(),
                });
                Err(reason)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(plain_user("alice"));
        assert!(plain_user("EXAMPLE\\bob"));
        assert!(!plain_user("-rf"));
        assert!(!plain_user("a b"));
        assert!(!plain_user(""));
    }
}
