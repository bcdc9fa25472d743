//! Cookie sessions of the web console: what a browser's `ll_console` cookie
//! stands for on the broker.
//!
//! A cookie session holds the broker login behind it (the token of an
//! operator-protocol `Login`, kept here only, never sent to the browser,
//! never logged), an in-memory operator connection logged in with it, the
//! CSRF token, and the signal that closes its WebSockets when it ends. The
//! cookie is a random 256-bit ID; the broker keeps only its SHA-256, so the
//! table cannot be read back into cookies.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use lifeline_protocol::{OperatorProfile, ReplyBody, Request, Secret};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};

use super::conn::{ConnError, Requester};
use crate::Shared;

/// A cookie session ends after this long without a request or WebSocket
/// message from its browser. Threat: a console left open and unattended
/// (or a stolen cookie) staying usable for ever.
pub const CONSOLE_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// A cookie session ends this long after its login, used or not (and the
/// broker login behind it, whose token lives as long:
/// `accounts::LOGIN_TOKEN_TTL_MS`). Threat: a stolen cookie kept alive by
/// steady use.
pub const CONSOLE_SESSION_MAX: Duration = Duration::from_secs(12 * 3600);

/// Cookie sessions kept at once; a new login beyond this ends the session
/// idle the longest. Threat: logins (each holding a connection) growing
/// the broker's memory without bound.
pub const CONSOLE_MAX_SESSIONS: usize = 1024;

/// WebSockets one cookie session may have open at once (one per browser
/// tab). Threat: one login opening connections without bound.
pub const CONSOLE_SOCKETS_PER_SESSION: usize = 8;

/// Random bytes of a cookie ID and of a CSRF token (256 bits).
pub const CONSOLE_SECRET_BYTES: usize = 32;

/// SHA-256 of a cookie ID: the key the broker keeps.
type Key = [u8; 32];

fn key_of(cookie: &str) -> Key {
    Sha256::digest(cookie.as_bytes()).into()
}

/// A fresh random secret, URL-safe base64 (43 characters).
pub fn random_secret() -> String {
    let mut b = [0u8; CONSOLE_SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Why a cookie session ended, for its sockets' close reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Open,
    LoggedOut,
    Expired,
    /// Dropped to make room ([`CONSOLE_MAX_SESSIONS`]).
    Evicted,
}

impl Ended {
    pub fn reason(self) -> &'static str {
        match self {
            Ended::Open => "open",
            Ended::LoggedOut => "logged out",
            Ended::Expired => "the console session expired; log in again",
            Ended::Evicted => "the console session was ended to make room for newer ones",
        }
    }
}

/// One browser login.
pub struct CookieSession {
    pub csrf: String,
    pub profile: OperatorProfile,
    /// The broker login's token (`Request::Resume` opens more connections).
    token: Secret,
    /// The browser's address at login, for connections opened again.
    peer: SocketAddr,
    /// The session's request connection; opened again with the token when
    /// it has ended.
    conn: Mutex<Arc<Requester>>,
    created: Instant,
    last_seen: Mutex<Instant>,
    /// Places for WebSockets ([`CONSOLE_SOCKETS_PER_SESSION`]).
    pub sockets: Arc<Semaphore>,
    /// Set once, when the session ends; its sockets watch it.
    ended: watch::Sender<Ended>,
    /// Invitations e-mailed in the current hour (`mail`).
    pub mails: Mutex<(Instant, u32)>,
}

impl CookieSession {
    /// Notes a request or WebSocket message from the browser.
    pub fn touch(&self) {
        self.touch_at(Instant::now());
    }

    pub(super) fn touch_at(&self, at: Instant) {
        *self.last_seen.lock().expect("never poisoned") = at;
    }

    fn idle_since(&self) -> Instant {
        *self.last_seen.lock().expect("never poisoned")
    }

    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.idle_since()) > CONSOLE_SESSION_IDLE
            || now.duration_since(self.created) > CONSOLE_SESSION_MAX
    }

    /// The broker login's token, for a WebSocket's own connection.
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// Watches for the end of the session.
    pub fn ended(&self) -> watch::Receiver<Ended> {
        self.ended.subscribe()
    }

    /// Sends a request on the session's connection, opening it again
    /// (resumed with the token) when it has ended.
    pub async fn request(
        &self,
        shared: &Arc<Shared>,
        body: Request,
    ) -> Result<ReplyBody, ConnError> {
        let conn = Arc::clone(&self.conn.lock().expect("never poisoned"));
        let conn = if conn.is_closed() {
            let fresh = Arc::new(Requester::open(shared, self.peer));
            let resume = Request::Resume {
                token: self.token.expose().to_string(),
            };
            fresh.request(resume).await?;
            *self.conn.lock().expect("never poisoned") = Arc::clone(&fresh);
            fresh
        } else {
            conn
        };
        conn.request(body).await
    }

    fn end(&self, why: Ended) {
        self.ended.send_replace(why);
    }
}

/// The table of cookie sessions.
pub struct Console {
    sessions: Mutex<HashMap<Key, Arc<CookieSession>>>,
    /// [`CONSOLE_MAX_SESSIONS`] (smaller in tests).
    max: usize,
}

impl Default for Console {
    fn default() -> Self {
        Console::with_capacity(CONSOLE_MAX_SESSIONS)
    }
}

impl Console {
    /// A table of at most `max` sessions.
    pub fn with_capacity(max: usize) -> Console {
        Console {
            sessions: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<CookieSession>>> {
        self.sessions
            .lock()
            .expect("console lock is never poisoned")
    }

    /// Number of cookie sessions.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a cookie session for a login made on `conn`; its cookie ID.
    pub fn insert(
        &self,
        conn: Requester,
        token: Secret,
        profile: OperatorProfile,
        peer: SocketAddr,
    ) -> (String, Arc<CookieSession>) {
        let now = Instant::now();
        let (ended, _) = watch::channel(Ended::Open);
        let session = Arc::new(CookieSession {
            csrf: random_secret(),
            profile,
            token,
            peer,
            conn: Mutex::new(Arc::new(conn)),
            created: now,
            last_seen: Mutex::new(now),
            sockets: Arc::new(Semaphore::new(CONSOLE_SOCKETS_PER_SESSION)),
            ended,
            mails: Mutex::new((now, 0)),
        });
        let cookie = random_secret();
        let evicted = {
            let mut t = self.table();
            let evicted = if t.len() >= self.max {
                let oldest = t
                    .iter()
                    .min_by_key(|(_, s)| s.idle_since())
                    .map(|(k, _)| *k);
                oldest.and_then(|k| t.remove(&k))
            } else {
                None
            };
            t.insert(key_of(&cookie), Arc::clone(&session));
            evicted
        };
        if let Some(old) = evicted {
            tracing::info!(
                operator = %old.profile.username,
                "console session ended to make room ({} at most)",
                self.max
            );
            finish(old, Ended::Evicted);
        }
        (cookie, session)
    }

    /// The live session of a cookie; an expired one is ended here.
    pub fn get(&self, cookie: &str) -> Option<Arc<CookieSession>> {
        self.get_at(cookie, Instant::now())
    }

    pub(super) fn get_at(&self, cookie: &str, now: Instant) -> Option<Arc<CookieSession>> {
        let key = key_of(cookie);
        let mut t = self.table();
        let s = t.get(&key)?;
        if s.expired(now) {
            let s = t.remove(&key)?;
            drop(t);
            finish(s, Ended::Expired);
            return None;
        }
        Some(Arc::clone(s))
    }

    /// Ends a cookie session (logout); its sockets close.
    pub fn remove(&self, cookie: &str) -> Option<Arc<CookieSession>> {
        let s = self.table().remove(&key_of(cookie))?;
        s.end(Ended::LoggedOut);
        Some(s)
    }

    /// Ends the expired sessions (called by the broker's sweeper).
    pub fn sweep(&self) {
        self.sweep_at(Instant::now());
    }

    pub(super) fn sweep_at(&self, now: Instant) {
        let expired: Vec<Arc<CookieSession>> = {
            let mut t = self.table();
            let keys: Vec<Key> = t
                .iter()
                .filter(|(_, s)| s.expired(now))
                .map(|(k, _)| *k)
                .collect();
            keys.iter().filter_map(|k| t.remove(k)).collect()
        };
        for s in expired {
            finish(s, Ended::Expired);
        }
    }
}

/// Ends a session dropped by the broker (expired, evicted): its sockets
/// close, and the broker login behind it is logged out.
fn finish(s: Arc<CookieSession>, why: Ended) {
    s.end(why);
    let conn = Arc::clone(&s.conn.lock().expect("never poisoned"));
    if conn.is_closed() {
        return;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            if let Err(e) = conn.request(Request::Logout).await {
                tracing::debug!("console session logout: {e}");
            }
        });
    }
}
