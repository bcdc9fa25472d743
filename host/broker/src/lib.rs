//! The Lifeline broker: operator accounts, invitations, the session registry
//! and relay, session reports, and the HTTPS side (join pages, short links,
//! the operator web console).

pub mod accounts;
pub mod agent_side;
pub mod back_office;
pub mod cluster;
pub mod connlimit;
pub mod console;
pub mod db_files;
pub mod diskfull;
pub mod e2e_records;
pub mod hashing;
pub mod https;
pub mod invitations;
pub mod join_files;
pub mod library;
pub mod memory;
pub mod operator_side;
pub mod pages;
pub mod quota;
pub mod ratelimit;
pub mod registry;
pub mod rejoin;
pub mod relay;
mod requests;
pub mod resume;
mod routing;
pub mod server;
pub mod store;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::config::BrokerConfig;
use lifeline_core::tls::{self, Fingerprint, TlsError};
use lifeline_protocol::{ErrorCode, InvitationInfo, OperatorProfile, Party, SessionState};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::connlimit::ConnectionLimiter;
use crate::hashing::HashPool;
use crate::ratelimit::{BucketSpec, GuessLimiter};
use crate::registry::Registry;
use crate::store::{NewSession, Store, StoreError};

/// Failed logins one source address may make at once.
pub const LOGIN_BURST: f64 = 10.0;
/// Time for a source address to earn one more failed login.
pub const LOGIN_REFILL: Duration = Duration::from_secs(6);
/// How often expired invitations are swept into the ended state.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Admin(String),
    #[error(transparent)]
    Mail(#[from] console::mail::MailError),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
}

/// Everything the connection handlers share.
pub struct Shared {
    pub cfg: BrokerConfig,
    pub name: String,
    /// Base of every link, without a trailing slash.
    pub public_url: String,
    pub store: Store,
    pub registry: Registry,
    /// Wrong connection IDs (weighted by live codes, see `invitations`).
    pub join_limiter: GuessLimiter,
    /// Failed rejoin tickets, per source only (see `rejoin`).
    pub rejoin_limiter: GuessLimiter,
    pub login_limiter: GuessLimiter,
    /// Wrong verification codes at the license back office.
    pub code_limiter: GuessLimiter,
    /// Open connections of the session listener.
    pub session_conns: Arc<ConnectionLimiter>,
    /// Open connections of the HTTPS listener.
    pub https_conns: Arc<ConnectionLimiter>,
    /// Password and verification-code hashing (argon2id).
    pub hash_pool: HashPool,
    /// The web console's cookie sessions and mail server.
    pub console: console::ConsoleState,
    /// Join files and the agent download of the join page.
    pub join: join_files::JoinIssuer,
    /// The other broker nodes (`[cluster]`); `None`: this broker runs alone.
    pub cluster: Option<Arc<cluster::Cluster>>,
    next_conn: AtomicU64,
    /// Report events a full disk kept out, by session.
    disk_drops: Mutex<HashMap<String, Dropped>>,
}

/// Report events of one session that a full disk kept out of its report.
struct Dropped {
    count: u64,
    first: i64,
    last: i64,
}

impl Shared {
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends a lifecycle event (join, connect, state change, end) to a
    /// session's report; a failure is logged, never fatal.
    pub fn record(&self, session: &str, kind: &str, actor: Party, text: &str) {
        self.record_as((session, kind, actor, text), quota::Class::Lifecycle, None);
    }

    /// Appends a relayed message (chat, output, consent) to a session's
    /// report while the session is within its quota (`quota`).
    pub fn record_traffic(&self, session: &str, kind: &str, actor: Party, text: &str) {
        self.record_traffic_from(session, kind, actor, text, None);
    }

    /// [`Shared::record_traffic`] for the agent's message numbered
    /// `agent_seq` (kept with the event, for a resume after a restart).
    pub fn record_traffic_from(
        &self,
        session: &str,
        kind: &str,
        actor: Party,
        text: &str,
        agent_seq: Option<u64>,
    ) {
        let event = (session, kind, actor, text);
        self.record_as(event, quota::Class::Traffic, agent_seq);
    }

    /// The highest agent message number recorded for `session` (0 when
    /// none, or the store failed: the agent then sends all it kept again).
    pub fn agent_seq_recorded(&self, session: &str) -> u64 {
        self.store.agent_seq_recorded(session).unwrap_or_else(|e| {
            tracing::warn!(session, "cannot read the recorded agent messages: {e}");
            0
        })
    }

    fn record_as(
        &self,
        (session, kind, actor, text): (&str, &str, Party, &str),
        class: quota::Class,
        agent_seq: Option<u64>,
    ) {
        let text = quota::clip(text);
        match self
            .registry
            .charge_report(session, kind.len() + text.len(), class)
        {
            quota::Charge::Record => self.write_event(session, kind, actor, &text, agent_seq),
            quota::Charge::QuotaReached => {
                tracing::info!(session, "{}", quota::QUOTA_NOTE);
                self.write_event(session, "quota", Party::Broker, quota::QUOTA_NOTE, None);
            }
            quota::Charge::Drop => {}
        }
    }

    fn write_event(
        &self,
        session: &str,
        kind: &str,
        actor: Party,
        text: &str,
        agent_seq: Option<u64>,
    ) {
        match self
            .store
            .record_from(session, kind, actor, text, agent_seq)
        {
            Ok(_) => {}
            Err(e) if e.is_disk_full() => self.disk_dropped(session, kind),
            // Past the quota, as the registry's charge says on the
            // session's home node: dropped without a log line each.
            Err(e @ store::StoreError::ReportFull { .. }) => {
                tracing::debug!(session, "{kind} event not recorded: {e}")
            }
            Err(e) => tracing::error!(session, "cannot record {kind} event: {e}"),
        }
    }

    /// Counts an event a full disk kept out; warns once per session.
    fn disk_dropped(&self, session: &str, kind: &str) {
        let now = lifeline_core::time::now_millis();
        let mut drops = self
            .disk_drops
            .lock()
            .expect("drops lock is never poisoned");
        let d = drops.entry(session.to_string()).or_insert_with(|| {
            tracing::warn!(
                session,
                "the broker's disk is full: the {kind} event and later ones of this session are relayed but not recorded"
            );
            Dropped {
                count: 0,
                first: now,
                last: now,
            }
        });
        d.count += 1;
        d.last = now;
    }

    /// Leaves disk-full mode when there is space again and notes in each
    /// affected report what was lost. Blocking (writes the disk reserve).
    pub fn check_disk(&self) {
        if !self.store.reserve.try_restore() {
            return;
        }
        let drops = std::mem::take(&mut *self.disk_drops.lock().expect("never poisoned"));
        for (id, d) in drops {
            let note = format!(
                "the broker's disk was full: {} report events from {} to {} were relayed but not recorded",
                d.count,
                lifeline_core::time::millis_to_rfc3339(d.first),
                lifeline_core::time::millis_to_rfc3339(d.last)
            );
            self.write_event(&id, "disk_full", Party::Broker, &note, None);
        }
    }

    /// Verifies a password (rate-limited per source, constant work for
    /// unknown users, at most `hash_pool`'s worth at once: beyond it the
    /// login is refused as busy without costing the source a guess). The
    /// password is moved in and dropped after hashing.
    pub async fn login(
        &self,
        source: IpAddr,
        username: &str,
        password: String,
    ) -> Result<(i64, OperatorProfile), (ErrorCode, String)> {
        let admission = self.hash_pool.admit().map_err(|busy| {
            tracing::debug!(%source, "login refused: {busy}");
            (ErrorCode::RateLimited, busy.to_string())
        })?;
        if let Err(l) = self.login_limiter.acquire(source) {
            return Err((ErrorCode::RateLimited, login_limited(l.retry_after)));
        }
        let row = self.store.operator_by_name(username).map_err(|e| {
            tracing::error!("login: {e}");
            (
                ErrorCode::Internal,
                "the broker's database failed".to_string(),
            )
        })?;
        let hash = row.as_ref().map(|r| r.password_hash.clone());
        let ok = admission
            .run(move || match &hash {
                Some(h) => accounts::verify_password(&password, h),
                None => accounts::verify_password(&password, accounts::dummy_hash()),
            })
            .await
            .unwrap_or(false);
        match row {
            Some(r) if ok => {
                self.login_limiter.refund(source);
                Ok((r.id, r.profile))
            }
            _ => {
                tracing::info!(%source, "failed login for {username:?}");
                Err((
                    ErrorCode::BadCredentials,
                    "wrong username or password".to_string(),
                ))
            }
        }
    }

    /// Creates an invitation in all its forms and records it.
    pub fn create_invitation(
        &self,
        operator_id: i64,
        profile: &OperatorProfile,
        ticket: &str,
        end_user: &str,
        ttl_secs: Option<u64>,
    ) -> Result<InvitationInfo, (ErrorCode, String)> {
        let internal = |e: StoreError| {
            tracing::error!("invitation: {e}");
            (
                ErrorCode::Internal,
                "the broker's database failed".to_string(),
            )
        };
        let max = self.cfg.invitation_ttl.as_secs();
        let ttl = match ttl_secs {
            None => max,
            Some(t) if t >= 1 && t <= max => t,
            Some(t) => {
                return Err((
                    ErrorCode::Invalid,
                    format!(
                        "an invitation lives between 1 and {max} seconds on this broker, not {t}"
                    ),
                ));
            }
        };
        let now = lifeline_core::time::now_millis();
        let mut code = None;
        for _ in 0..invitations::MAX_CODE_DRAWS {
            let c = invitations::new_connection_id();
            if !self.store.connection_id_in_use(&c, now).map_err(internal)? {
                code = Some(c);
                break;
            }
        }
        let code = code.ok_or((
            ErrorCode::Internal,
            "no free connection ID right now; try again".to_string(),
        ))?;
        let id = invitations::new_session_id();
        let token = invitations::new_link_token();
        let short = invitations::new_short_code();
        let expires_at = now + (ttl as i64) * 1000;
        let new = NewSession {
            id: &id,
            operator_id,
            ticket,
            end_user,
            connection_id: &code,
            link_token: &token,
            short_code: &short,
            expires_at,
        };
        self.store.insert_session(&new).map_err(internal)?;
        self.record(
            &id,
            "invitation",
            Party::Operator,
            &format!(
                "{} invited {end_user} for ticket {ticket}; valid for {ttl} s",
                profile.name
            ),
        );
        Ok(self.invitation_info(&new))
    }

    /// An invitation in every form the customer can use.
    pub fn invitation_info(&self, s: &NewSession<'_>) -> InvitationInfo {
        InvitationInfo {
            session_id: s.id.to_string(),
            ticket: s.ticket.to_string(),
            end_user: s.end_user.to_string(),
            connection_id: s.connection_id.to_string(),
            link: format!("{}/j/{}", self.public_url, s.link_token),
            short_link: format!("{}/s/{}", self.public_url, s.short_code),
            expires_at: lifeline_core::time::millis_to_rfc3339(s.expires_at),
        }
    }

    /// Marks unused invitations past their expiry as ended.
    pub fn sweep_expired(&self) {
        match self
            .store
            .expired_invitations(lifeline_core::time::now_millis())
        {
            Ok(ids) => {
                for id in ids {
                    if self.store.set_state(&id, SessionState::Ended).is_ok() {
                        self.record(
                            &id,
                            "expired",
                            Party::Broker,
                            "the invitation expired unused",
                        );
                    }
                }
            }
            Err(e) => tracing::error!("sweep: {e}"),
        }
    }
}

/// The refusal of a rate-limited login, naming when to try again (read
/// back by [`retry_after_secs`]).
fn login_limited(retry_after: Duration) -> String {
    format!(
        "too many failed logins from this address; {RETRY_IN} {} s",
        retry_after.as_secs().max(1)
    )
}

const RETRY_IN: &str = "try again in";

/// The wait a rate-limited refusal names ("try again in N s"); 1 second
/// when it names none (logins being checked at once: busy).
pub fn retry_after_secs(message: &str) -> u64 {
    message
        .split_once(RETRY_IN)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Minimal shape check of an e-mail address.
pub fn valid_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !e.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// A running broker.
pub struct Broker {
    pub addr: SocketAddr,
    pub https_addr: SocketAddr,
    pub fingerprint: Fingerprint,
    /// True when the self-signed certificate was created by this start.
    pub generated_certificate: bool,
    pub shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Broker {
    /// Opens the store, loads or creates the certificate, binds both
    /// listeners (port 0 allowed) and starts serving.
    pub async fn start(cfg: BrokerConfig) -> Result<Broker, BrokerError> {
        memory::return_large_buffers();
        let store = Store::open_config(&cfg)?;
        let registry = Registry::new();
        if cfg.cluster.is_none() {
            // Alone, every live session was this broker's. In a cluster the
            // other nodes may hold them: an agent whose node was lost is
            // adopted by the node it resumes on (`resume`).
            resume::restore_after_restart(&store, &registry, cfg.limits.resume_window)?;
        }
        let files = cfg
            .tls_files
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        let identity = tls::load_or_create_identity(&cfg.data_dir, files, &cfg.cert_names)?;
        // No TLS 1.3 session tickets on the agents' and operator clients'
        // port: no client keeps them (each connection makes a new client
        // config), and a ticket names a session in this process's memory,
        // which a restart or a move to another node loses anyway. Each
        // handshake wrote two ticket records and stored two cache entries
        // for nothing; without them the server's flight ends the handshake.
        let mut link_cfg = (*tls::server_config(&identity)?).clone();
        link_cfg.send_tls13_tickets = 0;
        let server_cfg = Arc::new(link_cfg);
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| BrokerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let https_listener = TcpListener::bind(cfg.https_listen)
            .await
            .map_err(|source| BrokerError::Bind {
                addr: cfg.https_listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| BrokerError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let https_addr = https_listener
            .local_addr()
            .map_err(|source| BrokerError::Bind {
                addr: cfg.https_listen,
                source,
            })?;
        let console = console::ConsoleState::new(&cfg)?;
        let cluster = match &cfg.cluster {
            Some(c) => Some(cluster::Cluster::connect(c).await?),
            None => None,
        };
        let join = join_files::JoinIssuer::new(&cfg, &identity, addr)?;
        let public_url = cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("https://{https_addr}"));
        let shared = Arc::new(Shared {
            name: cfg.name.clone(),
            public_url,
            store,
            registry,
            join_limiter: invitations::join_limiter(cfg.invitation_ttl),
            rejoin_limiter: rejoin::rejoin_limiter(),
            login_limiter: GuessLimiter::new(
                BucketSpec {
                    capacity: LOGIN_BURST,
                    refill_every: LOGIN_REFILL,
                },
                BucketSpec {
                    capacity: LOGIN_BURST * 100.0,
                    refill_every: LOGIN_REFILL / 100,
                },
            ),
            code_limiter: back_office::limiter(),
            session_conns: ConnectionLimiter::new(
                "session listener",
                cfg.limits.max_connections,
                cfg.limits.max_connections_per_source,
            ),
            https_conns: ConnectionLimiter::new(
                "HTTPS listener",
                cfg.limits.max_connections,
                cfg.limits.max_connections_per_source,
            ),
            hash_pool: HashPool::new(cfg.limits.login_hash_threads, cfg.limits.login_queue),
            console,
            join,
            // Connection IDs name operator connections across the cluster:
            // each node starts from a random point of its own.
            next_conn: AtomicU64::new(match &cluster {
                Some(_) => u64::from(rand::random::<u32>()) << 24,
                None => 1,
            }),
            cluster,
            disk_drops: Mutex::new(HashMap::new()),
            cfg,
        });
        if let Some(cluster) = &shared.cluster {
            cluster.start(&shared).await?;
        }
        let mut tasks = vec![tokio::spawn(server::serve(
            listener,
            server_cfg,
            Arc::clone(&shared),
        ))];
        let mut https_cfg = (*tls::server_config(&identity)?).clone();
        https_cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        tasks.push(tokio::spawn(https::serve(
            https_listener,
            TlsAcceptor::from(Arc::new(https_cfg)),
            Arc::clone(&shared),
        )));
        let sweeper = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                sweeper.sweep_expired();
                sweeper.sweep_rebooting();
                if let Some(cluster) = &sweeper.cluster {
                    cluster.sweep_orphans(&sweeper).await;
                }
                sweeper.console.sessions.sweep();
                let s = Arc::clone(&sweeper);
                let _ = tokio::task::spawn_blocking(move || {
                    s.check_disk();
                    if let Err(e) = s.store.checkpoint() {
                        tracing::warn!("WAL checkpoint: {e}");
                    }
                })
                .await;
            }
        }));
        tracing::info!(%addr, %https_addr, fingerprint = %identity.fingerprint, "broker listening");
        Ok(Broker {
            addr,
            https_addr,
            fingerprint: identity.fingerprint,
            generated_certificate: identity.generated,
            shared,
            tasks,
        })
    }

    /// Stops accepting and drops the listeners.
    pub fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Admin: creates an operator account in the broker's database.
pub fn add_operator(
    cfg: &BrokerConfig,
    profile: &OperatorProfile,
    password: &str,
) -> Result<(), BrokerError> {
    if profile.username.is_empty()
        || !profile
            .username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(BrokerError::Admin(format!(
            "{:?} is not a valid username: use letters, digits, '.', '_' or '-'",
            profile.username
        )));
    }
    if !profile.email.is_empty() && !valid_email(&profile.email) {
        return Err(BrokerError::Admin(format!(
            "{:?} is not an e-mail address",
            profile.email
        )));
    }
    let store = Store::open_config(cfg)?;
    let hash = accounts::hash_password(password).map_err(|e| BrokerError::Admin(e.to_string()))?;
    store.add_operator(&hash, profile)?;
    Ok(())
}

/// Admin: sets an operator's password and revokes all its login tokens
/// (every client must log in again with the new password).
pub fn reset_password(
    cfg: &BrokerConfig,
    username: &str,
    password: &str,
) -> Result<(), BrokerError> {
    let store = Store::open_config(cfg)?;
    let row = store
        .operator_by_name(username)?
        .ok_or_else(|| BrokerError::Admin(format!("no operator named {username:?}")))?;
    let hash = accounts::hash_password(password).map_err(|e| BrokerError::Admin(e.to_string()))?;
    store.set_password_hash(row.id, &hash, None)?;
    Ok(())
}

/// Admin: lists operator accounts.
pub fn list_operators(cfg: &BrokerConfig) -> Result<Vec<OperatorProfile>, BrokerError> {
    Ok(Store::open_config(cfg)?.list_operators()?)
}
