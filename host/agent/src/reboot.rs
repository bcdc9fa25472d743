//! Remote reboot with automatic rejoin, the agent's side: the rejoin ticket
//! kept across the restart (owner-only file in the data folder) and the
//! power backend that restarts the machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeline_protocol::Secret;
use serde::{Deserialize, Serialize};

/// The rejoin ticket's file inside the agent's data folder (mode 0600).
pub const TICKET_FILE: &str = "rejoin-ticket.json";
/// Longest time the power command may take before the reboot counts as
/// failed (`systemctl reboot` returns at once; the machine stops after).
pub const POWER_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment variable telling the power command the agent's process ID.
pub const AGENT_PID_ENV: &str = "LIFELINE_AGENT_PID";

/// What the agent keeps across the restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTicket {
    pub ticket: Secret,
    pub session_id: String,
    /// The operator's display name, for the customer's "welcome back".
    pub operator: String,
    /// Unix milliseconds.
    pub expires_at: i64,
    pub saved_at: String,
    /// The account of the desktop user who joined: their window may
    /// connect to the service after the restart (`[customer]`).
    #[serde(default)]
    pub customer_uid: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("cannot save the rejoin ticket to {path}: {reason}")]
    Save { path: PathBuf, reason: String },
    #[error("cannot read the rejoin ticket {path}: {reason}")]
    Read { path: PathBuf, reason: String },
}

pub fn ticket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TICKET_FILE)
}

/// Writes the ticket atomically with mode 0600.
pub fn save(data_dir: &Path, t: &SavedTicket) -> Result<(), TicketError> {
    let path = ticket_path(data_dir);
    let json = serde_json::to_vec_pretty(t).expect("a ticket always serialises");
    lifeline_core::secrets::write_private(&path, &json).map_err(|e| TicketError::Save {
        path,
        reason: e.to_string(),
    })
}

/// The saved ticket, if any. A file others can read, or one that does not
/// parse, is an error naming the file (and is left for the admin to see).
pub fn load(data_dir: &Path) -> Result<Option<SavedTicket>, TicketError> {
    let path = ticket_path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TicketError::Read {
                path,
                reason: e.to_string(),
            });
        }
    };
    lifeline_core::secrets::check_private(&path).map_err(|e| TicketError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| TicketError::Read {
            path,
            reason: format!("not a rejoin ticket: {e}"),
        })
}

/// Removes the ticket (used, refused, or the reboot did not happen).
pub fn remove(data_dir: &Path) {
    let path = ticket_path(data_dir);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!("cannot remove {}: {e}", path.display());
    }
}

/// Runs the power backend; `Ok` once it exited successfully (the machine
/// is then going down), `Err` with what went wrong otherwise.
pub fn power_off_and_on(command: &[String]) -> Result<(), String> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| "no reboot command is configured".to_string())?;
    let mut child = Command::new(program)
        .args(args)
        .env(AGENT_PID_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the reboot command {program:?}: {e}"))?;
    let deadline = Instant::now() + POWER_COMMAND_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!(
                    "the reboot command {program:?} failed ({status}): {}",
                    err.trim()
                ));
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                return Err(format!(
                    "the reboot command {program:?} did not finish within {} s",
                    POWER_COMMAND_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for the reboot command: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_round_trip_is_private_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let t = SavedTicket {
            ticket: Secret::new("rj_abc"),
            session_id: "s1".into(),
            operator: "Olga".into(),
            expires_at: 1,
            saved_at: "now".into(),
            customer_uid: Some(1000),
        };
        save(dir.path(), &t).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(t));
        lifeline_core::secrets::write_private(&ticket_path(dir.path()), b"{not json").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(TICKET_FILE) && err.contains("not a rejoin ticket"),
            "{err}"
        );
        remove(dir.path());
        assert!(load(dir.path()).unwrap().is_none());
    }

    #[test]
    fn power_backend_failures_are_reported() {
        assert!(power_off_and_on(&["true".into()]).is_ok());
        let e = power_off_and_on(&["sh".into(), "-c".into(), "echo no power >&2; exit 4".into()])
            .unwrap_err();
        assert!(e.contains("no power"), "{e}");
        assert!(power_off_and_on(&["/no/such/thing".into()]).is_err());
    }
}
