//! The agent's native capabilities behind the plugin host calls:
//! `account.login` (the password asked from the operator, checked by PAM,
//! the customer's input suspended; see [`crate::runas`]) and
//! `power.restart` (a rejoin ticket first, then the power backend; see
//! [`crate::reboot`]). Any plugin declaring them reaches them through
//! [`crate::plugins::AgentPort`]; what the operator and the customer read
//! is the plugin's (`plugins/run-as`, `plugins/reboot`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lifeline_protocol::{Secret, SessionMessage};
use lifeline_runtime::wit;
use tokio::sync::oneshot;

use crate::plugins::AgentPort;
use crate::reboot::{self, SavedTicket};

/// Longest time the agent waits for the broker's rejoin ticket.
pub const TICKET_WAIT: Duration = Duration::from_secs(10);
/// Longest user name accepted for a login as another user.
pub const MAX_USER_CHARS: usize = 64;
/// Pause between taking the rejoin ticket and the power backend, so that
/// what the plugin told both sides reaches the broker first.
pub const NOTICE_GRACE: Duration = Duration::from_millis(200);

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

    /// Asks the operator for `user`'s password (never shown to the plugin).
    fn ask_password(&self, user: &str) -> Result<Secret, String> {
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
        match answer {
            Ok(Ok(Some(s))) => Ok(s),
            Ok(Ok(None)) => Err("the operator supplied no password".into()),
            Ok(Err(_)) | Err(_) => {
                self.creds.forget(request_id);
                Err(format!(
                    "the operator did not supply the password within {} s",
                    wait.as_secs()
                ))
            }
        }
    }

    /// `user-login`: password from the operator, PAM, the customer's input
    /// suspended; audited, and the session's state follows.
    pub(crate) fn native_user_login(
        &self,
        plugin: &str,
        user: &str,
    ) -> Result<wit::LoginInfo, String> {
        if !plain_user(user) {
            return Err(format!("{user:?} is not a user name"));
        }
        if let Some(l) = self.runas.info() {
            return Err(format!("already logged in as {}", l.user));
        }
        let secret = self.ask_password(user)?;
        let info = self
            .runas
            .login(user, secret, &self.session_id, &self.operator)
            .map_err(|e| {
                self.audit(serde_json::json!({
                    "event": "run_as_refused", "session": self.session_id, "plugin": plugin,
                    "operator": self.operator, "user": user, "reason": e.to_string(),
                }));
                e.to_string()
            })?;
        self.audit(serde_json::json!({
            "event": "run_as_login", "session": self.session_id, "plugin": plugin,
            "operator": self.operator, "user": user, "uid": info.uid,
        }));
        let detail = match &info.display {
            Some(d) => {
                format!("keyboard and pointer grabbed on X display {d}; terminal input held")
            }
            None => "terminal input held".to_string(),
        };
        let _ = self.tx.send(SessionMessage::Access {
            suspended: true,
            user: user.to_string(),
            detail,
        });
        Ok(info)
    }

    /// `user-logout`: the login ends and the customer's input is back.
    pub(crate) fn native_user_logout(&self, plugin: &str) -> Option<wit::LoginInfo> {
        let info = self.runas.logout()?;
        self.audit(serde_json::json!({
            "event": "run_as_logout", "session": self.session_id, "plugin": plugin,
            "operator": self.operator, "user": info.user, "by": "operator",
        }));
        let _ = self.tx.send(SessionMessage::Access {
            suspended: false,
            user: info.user.clone(),
            detail: "the operator logged out".into(),
        });
        Some(info)
    }

    /// A single-use rejoin ticket for this session from the broker (which
    /// marks the session as restarting), kept in the data folder.
    fn take_ticket(&self, reason: &str) -> Result<SavedTicket, String> {
        // The report's record of who restarts and why.
        let detail = if reason.is_empty() {
            format!("{} restarts the computer", self.operator)
        } else {
            format!("{} restarts the computer: {reason}", self.operator)
        };
        let (reply, rx) = oneshot::channel();
        self.ctl
            .send(Ctl::TicketRequest { detail, reply })
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
        let saved = SavedTicket {
            ticket,
            session_id: self.session_id.clone(),
            operator: self.operator.clone(),
            expires_at,
            saved_at: lifeline_core::time::now_rfc3339(),
            customer_uid: Some(nix::unistd::getuid().as_raw()),
        };
        reboot::save(&self.data_dir, &saved).map_err(|e| {
            let reason = e.to_string();
            let _ = self.ctl.send(Ctl::RebootCancelled {
                reason: reason.clone(),
            });
            reason
        })?;
        Ok(saved)
    }

    /// `power-restart`: the ticket first, then the power backend. When the
    /// backend fails the ticket is dropped and the session goes on.
    pub(crate) fn native_power_restart(
        &self,
        plugin: &str,
        reason: &str,
    ) -> Result<wit::RestartInfo, String> {
        let saved = self.take_ticket(reason)?;
        let until = lifeline_core::time::millis_to_rfc3339(saved.expires_at);
        self.audit(serde_json::json!({
            "event": "reboot", "session": self.session_id, "plugin": plugin,
            "operator": self.operator, "reason": reason, "ticket_expires": until,
        }));
        // Let what the plugin said reach the broker before the power goes.
        std::thread::sleep(NOTICE_GRACE);
        match reboot::power_off_and_on(&self.power.reboot_command) {
            Ok(()) => Ok(wit::RestartInfo {
                rejoin_until: until,
            }),
            Err(reason) => {
                reboot::remove(&self.data_dir);
                self.audit(serde_json::json!({
                    "event": "reboot_failed", "session": self.session_id, "reason": reason,
                }));
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
