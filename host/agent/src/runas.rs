//! Log in as another user: the operator's credentials are checked with the
//! system's own authentication (PAM), a PAM session is opened for the user,
//! and from then on processes the operator starts (plugin `spawn`, library
//! scripts) run with that user's uid, gid, supplementary groups, home and
//! environment. Meanwhile the customer's own access is suspended (see
//! [`crate::x11`] and the agent's terminal handling).
//!
//! The password lives only in the [`Secret`] handed in, which the PAM
//! conversation consumes and overwrites; it is never logged, stored or
//! reported. A persisted marker (no secrets) lets an agent that crashed
//! during a run-as login record the teardown at its next start.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use crate::config::machine::{Display, RunAsConfig};
use lifeline_protocol::Secret;
use lifeline_runtime::{Identity, wit};
use pam_client::{ConversationHandler, ErrorCode, Flag};
use serde::{Deserialize, Serialize};

use crate::x11::XSuspension;

/// Marker of an active run-as login inside the agent's data folder.
pub const STATE_FILE: &str = "run-as.json";

#[derive(Debug, thiserror::Error)]
pub enum RunAsError {
    #[error(
        "logging in as another user needs the agent to run as root (install it with `lifeline agent install-service`)"
    )]
    NotRoot,
    #[error("the operator is already logged in as {0}; log out first")]
    Active(String),
    #[error("too many wrong passwords: run-as logins pause for {0} s")]
    LockedOut(u64),
    #[error("the user name or password for {user} was not accepted ({attempt} of {max} attempts)")]
    Rejected {
        user: String,
        attempt: u32,
        max: u32,
    },
    #[error("{user} may not log in now: {reason}")]
    Account { user: String, reason: String },
    #[error("PAM could not open a session for {user}: {reason}")]
    Session { user: String, reason: String },
    #[error("no account information for {0}")]
    UnknownUser(String),
    #[error("{0}")]
    Suspend(String),
    #[error("cannot record the run-as login in {path}: {reason}")]
    State { path: PathBuf, reason: String },
}

/// What is persisted while a run-as login is active (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub user: String,
    pub session_id: String,
    pub operator: String,
    pub since: String,
    pub display: Option<String>,
}

/// The PAM conversation: answers the password prompt once, from a secret
/// that is overwritten when the conversation is dropped.
struct Conversation {
    user: String,
    secret: Option<Secret>,
}

impl ConversationHandler for Conversation {
    fn prompt_echo_on(&mut self, _prompt: &std::ffi::CStr) -> Result<std::ffi::CString, ErrorCode> {
        std::ffi::CString::new(self.user.clone()).map_err(|_| ErrorCode::CONV_ERR)
    }
    fn prompt_echo_off(
        &mut self,
        _prompt: &std::ffi::CStr,
    ) -> Result<std::ffi::CString, ErrorCode> {
        let s = self.secret.as_ref().ok_or(ErrorCode::CONV_ERR)?;
        std::ffi::CString::new(s.expose()).map_err(|_| ErrorCode::CONV_ERR)
    }
    fn text_info(&mut self, msg: &std::ffi::CStr) {
        tracing::info!("PAM: {}", msg.to_string_lossy());
    }
    fn error_msg(&mut self, msg: &std::ffi::CStr) {
        tracing::info!("PAM: {}", msg.to_string_lossy());
    }
}

/// Why the PAM thread did not get a session.
enum PamFailure {
    Rejected,
    Account(String),
    Session(String),
}

struct Active {
    identity: Arc<Identity>,
    /// When the login began (RFC 3339).
    since: String,
    /// Dropping (or sending on) it makes the PAM thread close the session.
    pam_stop: mpsc::Sender<()>,
    pam_thread: std::thread::JoinHandle<()>,
    x: Option<XSuspension>,
}

#[derive(Default)]
struct Inner {
    active: Option<Active>,
    failures: u32,
    locked_until: Option<Instant>,
}

/// The agent's run-as state (at most one login at a time).
pub struct RunAs {
    cfg: RunAsConfig,
    state_file: PathBuf,
    inner: Mutex<Inner>,
}

impl RunAs {
    pub fn new(cfg: RunAsConfig, data_dir: &Path) -> Self {
        RunAs {
            cfg,
            state_file: data_dir.join(STATE_FILE),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("run-as lock is never poisoned")
    }

    /// The identity spawned processes take, while a login is active.
    pub fn identity(&self) -> Option<Arc<Identity>> {
        self.inner()
            .active
            .as_ref()
            .map(|a| Arc::clone(&a.identity))
    }

    /// The active login, as plugins see it.
    pub fn info(&self) -> Option<wit::LoginInfo> {
        self.inner().active.as_ref().map(Active::info)
    }

    /// The X display on which an active login suspends the customer's
    /// input, if any (screen sharing refuses injected input there: it
    /// would reach the suspension banner's grab).
    pub fn suspended_display(&self) -> Option<String> {
        self.inner()
            .active
            .as_ref()
            .and_then(|a| a.x.as_ref())
            .map(|x| x.display.clone())
    }

    /// The display to suspend, if any.
    fn display(&self) -> Option<String> {
        match &self.cfg.display {
            Display::X(d) => Some(d.clone()),
            Display::None => None,
            Display::FromEnvironment => std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()),
        }
    }

    /// Checks `user`'s password with PAM, opens a PAM session, suspends the
    /// customer's X display (when there is one) and records the marker: all
    /// or nothing. Blocking: call from a blocking thread.
    pub fn login(
        &self,
        user: &str,
        secret: Secret,
        session_id: &str,
        operator: &str,
    ) -> Result<wit::LoginInfo, RunAsError> {
        self.may_log_in()?;
        let (pam_stop, pam_thread, env) = self.authenticate(user, secret)?;
        // From here on, any failure closes the PAM session again (dropping
        // `pam_stop` ends the thread).
        let identity = Arc::new(lookup(user, env)?);
        let display = self.display();
        let x = match &display {
            Some(d) => Some(suspend_x(d, operator, user)?),
            None => None,
        };
        let marker = Marker {
            user: user.to_string(),
            session_id: session_id.to_string(),
            operator: operator.to_string(),
            since: lifeline_core::time::now_rfc3339(),
            display,
        };
        let json = serde_json::to_vec_pretty(&marker).expect("a marker always serialises");
        lifeline_core::secrets::write_private(&self.state_file, &json).map_err(|e| {
            RunAsError::State {
                path: self.state_file.clone(),
                reason: e.to_string(),
            }
        })?;
        let active = Active {
            identity,
            since: marker.since,
            pam_stop,
            pam_thread,
            x,
        };
        let info = active.info();
        let mut g = self.inner();
        g.failures = 0;
        g.active = Some(active);
        Ok(info)
    }

    /// Why no login may start now: not root, one active, or paused after
    /// too many wrong passwords.
    fn may_log_in(&self) -> Result<(), RunAsError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(RunAsError::NotRoot);
        }
        let mut g = self.inner();
        if let Some(a) = &g.active {
            return Err(RunAsError::Active(a.identity.user.clone()));
        }
        if let Some(until) = g.locked_until {
            let now = Instant::now();
            if until > now {
                return Err(RunAsError::LockedOut((until - now).as_secs().max(1)));
            }
            g.locked_until = None;
        }
        Ok(())
    }

    /// The PAM transaction; a wrong password counts towards the pause.
    fn authenticate(&self, user: &str, secret: Secret) -> Result<PamOpened, RunAsError> {
        match open_pam(&self.cfg.pam_service, user, secret) {
            Ok(x) => Ok(x),
            Err(PamFailure::Rejected) => {
                let mut g = self.inner();
                g.failures += 1;
                let attempt = g.failures;
                if g.failures >= self.cfg.max_failures {
                    g.failures = 0;
                    g.locked_until = Some(Instant::now() + self.cfg.lockout);
                }
                Err(RunAsError::Rejected {
                    user: user.to_string(),
                    attempt,
                    max: self.cfg.max_failures,
                })
            }
            Err(PamFailure::Account(reason)) => Err(RunAsError::Account {
                user: user.into(),
                reason,
            }),
            Err(PamFailure::Session(reason)) => Err(RunAsError::Session {
                user: user.into(),
                reason,
            }),
        }
    }

    /// Ends the login: closes the PAM session, gives keyboard and pointer
    /// back, removes the marker. Returns the login that ended, or `None`
    /// when none was active.
    pub fn logout(&self) -> Option<wit::LoginInfo> {
        let active = self.inner().active.take()?;
        let info = active.info();
        if let Some(x) = active.x {
            x.release();
        }
        let _ = active.pam_stop.send(());
        let _ = active.pam_thread.join();
        if let Err(e) = std::fs::remove_file(&self.state_file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!("cannot remove {}: {e}", self.state_file.display());
        }
        Some(info)
    }
}

impl Active {
    fn info(&self) -> wit::LoginInfo {
        let id = &self.identity;
        wit::LoginInfo {
            user: id.user.clone(),
            uid: id.uid,
            gid: id.gid,
            groups: id.groups.clone(),
            home: id.home.display().to_string(),
            since: self.since.clone(),
            display: self.x.as_ref().map(|x| x.display.clone()),
        }
    }
}

impl Drop for RunAs {
    fn drop(&mut self) {
        self.logout();
    }
}

/// At start: a marker left by an agent that stopped during a run-as login.
/// Its PAM session and X grabs ended with that process; the marker is
/// removed and returned so the teardown can be recorded.
pub fn recover(data_dir: &Path) -> Option<Marker> {
    let path = data_dir.join(STATE_FILE);
    let bytes = std::fs::read(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    match serde_json::from_slice(&bytes) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!("{}: unreadable run-as marker removed: {e}", path.display());
            Some(Marker {
                user: "unknown".into(),
                session_id: "unknown".into(),
                operator: "unknown".into(),
                since: "unknown".into(),
                display: None,
            })
        }
    }
}

/// Suspends the X display `display`: its banner (part of the suspension,
/// whatever a plugin says) names the operator and the user and how to end
/// the session.
fn suspend_x(display: &str, operator: &str, user: &str) -> Result<XSuspension, RunAsError> {
    let lines = vec![
        format!(
            "{operator} is working on this computer as user {user}. Your keyboard and mouse are suspended meanwhile."
        ),
        "They come back when the operator logs out or the session ends. To end the session now, type /end in the Lifeline window.".to_string(),
    ];
    XSuspension::start(display, lines).map_err(RunAsError::Suspend)
}

type PamOpened = (
    mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
    Vec<(String, String)>,
);

/// Runs the PAM transaction on its own thread (a PAM handle stays on the
/// thread that made it): authenticate, check the account, open the session,
/// then hold it until told to stop.
fn open_pam(service: &str, user: &str, secret: Secret) -> Result<PamOpened, PamFailure> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (service, user) = (service.to_string(), user.to_string());
    let thread = std::thread::Builder::new()
        .name("pam-session".into())
        .spawn(move || {
            let conv = Conversation {
                user: user.clone(),
                secret: Some(secret),
            };
            let mut ctx = match pam_client::Context::new(&service, Some(&user), conv) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(PamFailure::Session(e.to_string())));
                    return;
                }
            };
            let auth = ctx.authenticate(Flag::NONE);
            // The password is not needed after authentication.
            ctx.conversation_mut().secret = None;
            if auth.is_err() {
                let _ = ready_tx.send(Err(PamFailure::Rejected));
                return;
            }
            if let Err(e) = ctx.acct_mgmt(Flag::NONE) {
                let _ = ready_tx.send(Err(PamFailure::Account(e.to_string())));
                return;
            }
            let session = match ctx.open_session(Flag::NONE) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(PamFailure::Session(e.to_string())));
                    return;
                }
            };
            let env: Vec<(String, String)> = session
                .envlist()
                .iter_tuples()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect();
            let _ = ready_tx.send(Ok(env));
            // Held until logout (or the sender is dropped).
            let _ = stop_rx.recv();
            if let Err(e) = session.close(Flag::NONE) {
                tracing::warn!("closing the PAM session: {e}");
            }
        })
        .map_err(|e| PamFailure::Session(format!("cannot start the PAM thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(env)) => Ok((stop_tx, thread, env)),
        Ok(Err(f)) => {
            let _ = thread.join();
            Err(f)
        }
        Err(_) => Err(PamFailure::Session("the PAM thread ended".into())),
    }
}

/// The user's account: ids, supplementary groups, home and shell.
fn lookup(user: &str, env: Vec<(String, String)>) -> Result<Identity, RunAsError> {
    let unknown = || RunAsError::UnknownUser(user.to_string());
    let u = nix::unistd::User::from_name(user)
        .map_err(|_| unknown())?
        .ok_or_else(unknown)?;
    let name = std::ffi::CString::new(user).map_err(|_| unknown())?;
    let groups = nix::unistd::getgrouplist(&name, u.gid)
        .map_err(|_| unknown())?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    Ok(Identity {
        user: user.to_string(),
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        groups,
        home: u.dir,
        shell: u.shell,
        env,
    })
}
