//! Opening a session: the data folder is locked and the audit log opened,
//! the plugins start, the agent joins (or rejoins after a reboot), the
//! customer is greeted, and the long-lived plugins hear that the session
//! began.

use std::sync::{Arc, OnceLock};

use crate::config::AgentConfig;
use lifeline_core::audit::AuditLog;
use lifeline_core::client::Welcome;
use lifeline_core::consent::ConsentEngine;
use lifeline_core::link::Link;
use lifeline_protocol::{JoinCredential, OperatorProfile, SessionInfo, SessionMessage};
use lifeline_runtime::wit::SessionEvent;
use lifeline_runtime::{PluginHost, Services, StreamHub};
use tokio::sync::{Mutex, mpsc};

use super::Session;
use crate::channel::{CustomerEvent, Helper};
use crate::{
    AUDIT_FILE, AgentError, Customer, CustomerUi, Entry, InputPrompter, LOCK_FILE, native, plugins,
    reconnect, runas, screen,
};

/// What the agent holds before it enters the session.
struct Prepared {
    lock: std::fs::File,
    engine: Arc<Mutex<ConsentEngine>>,
    /// A run-as login the last run of the agent left behind.
    torn_down: Option<runas::Marker>,
    plug_tx: mpsc::UnboundedSender<SessionMessage>,
    plug_rx: mpsc::UnboundedReceiver<SessionMessage>,
    plugin_host: Option<Arc<PluginHost>>,
    hot_reload: Option<lifeline_runtime::watch::HotReload>,
}

/// The session as the broker let the agent in.
struct Entered {
    link: Link,
    session: SessionInfo,
    operator: OperatorProfile,
    /// For a rejoin: whether the operator is attached now.
    rejoined: Option<bool>,
    /// The highest number of this agent's messages the broker recorded.
    received: u64,
}

impl<'a> Session<'a> {
    /// Everything up to the first event of the session.
    pub(super) async fn open(
        cfg: &'a AgentConfig,
        entry: Entry,
        customer: Customer,
    ) -> Result<Session<'a>, AgentError> {
        let ui = Arc::clone(&customer.ui);
        let prepared = prepare(cfg, ui.as_ref())?;
        let session_proxy = cfg.remote_service.as_ref().and_then(|r| r.session_proxy());
        let (link, welcome, session, operator, rejoined, received) = match &entry {
            Entry::Join(credential) => reconnect::join(cfg, credential, session_proxy).await?,
            Entry::Rejoin(t) => reconnect::rejoin(cfg, t, session_proxy, ui.as_ref()).await?,
        };
        record_join(&prepared.engine, &entry, &welcome, &session, &operator).await?;
        greet(ui.as_ref(), &welcome, &session, &operator, rejoined);
        if let Some(m) = prepared
            .torn_down
            .as_ref()
            .filter(|m| m.session_id == session.session_id)
        {
            let _ = prepared.plug_tx.send(SessionMessage::PluginNotice {
                text: format!(
                    "the run-as login as {} (since {}) was torn down when the agent stopped; the customer's access is restored",
                    m.user, m.since
                ),
            });
        }
        let entered = Entered {
            link,
            session,
            operator,
            rejoined,
            received,
        };
        Ok(Session::assemble(cfg, customer, prepared, entered))
    }

    /// The session's state, its plugin streams and its long-lived plugins.
    fn assemble(cfg: &'a AgentConfig, customer: Customer, p: Prepared, e: Entered) -> Session<'a> {
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (answer_tx, answer_rx) = mpsc::channel(8);
        // Plugin streams go straight onto the link; long-lived plugins hear
        // the session's events.
        let services_cell = Arc::new(OnceLock::new());
        let sink_link = Arc::new(std::sync::RwLock::new(e.link.tx.clone()));
        let ends = Arc::new(crate::e2e::SessionEnds::new(&e.session.session_id));
        let streams = StreamHub::new(Box::new(plugins::AgentSink {
            link: Arc::clone(&sink_link),
            ends: Arc::clone(&ends),
            rt: tokio::runtime::Handle::current(),
            tx: p.plug_tx.clone(),
            services: Arc::clone(&services_cell),
        }));
        let Customer {
            ui,
            input,
            commands,
        } = customer;
        let runas = Arc::new(runas::RunAs::new(cfg.run_as.clone(), &cfg.data_dir));
        let screen = session_screen(cfg, &e.session.session_id, &p, &ui, &runas);
        let mut s = Session {
            cfg,
            prompter: Arc::new(InputPrompter::new(Arc::clone(&ui))),
            admin: crate::admin::AgentAdmin::new(cfg),
            ui,
            input,
            commands,
            sid: e.session.session_id.clone(),
            ends,
            link: e.link,
            sink_link,
            resume: None,
            // A rejoined agent numbers on from what the broker recorded.
            seq: e.received,
            outbox: Default::default(),
            session: e.session,
            operator: e.operator,
            engine: p.engine,
            runas,
            screen,
            creds: Arc::new(native::Credentials::default()),
            plugin_host: p.plugin_host,
            services: Arc::new(Services::default()),
            streams,
            plug_tx: p.plug_tx,
            plug_rx: p.plug_rx,
            ctl_tx,
            ctl_rx,
            answer_tx,
            answer_rx,
            deciding: tokio::task::JoinSet::new(),
            batches: crate::scripts::Batches::default(),
            suspended: None,
            held: Vec::new(),
            pending_ticket: None,
            _hot_reload: p.hot_reload,
            _lock: p.lock,
        };
        s.start_services(&services_cell, e.rejoined);
        s
    }

    /// Starts the long-lived plugins and tells them how the session began.
    fn start_services(&mut self, cell: &OnceLock<Arc<Services>>, rejoined: Option<bool>) {
        self.services = Arc::new(match &self.plugin_host {
            Some(host) => Services::start(host, self.port(0)),
            None => Services::default(),
        });
        let _ = cell.set(Arc::clone(&self.services));
        match rejoined {
            None => self.services.event(&SessionEvent::Started),
            Some(present) => {
                self.services.event(&SessionEvent::Rejoined);
                if present {
                    let name = self.operator.name.clone();
                    self.services.event(&SessionEvent::OperatorAttached(name));
                }
            }
        }
    }
}

/// The session's screen: the display of `[screen]`, the run-as login
/// (input is refused during its suspension), and where report lines,
/// customer lines and withdrawals go.
fn session_screen(
    cfg: &AgentConfig,
    session_id: &str,
    p: &Prepared,
    ui: &Arc<dyn CustomerUi>,
    runas: &Arc<runas::RunAs>,
) -> Arc<screen::SessionScreen> {
    let events = screen::SessionEvents {
        session_id: session_id.to_string(),
        tx: p.plug_tx.clone(),
        ui: Arc::clone(ui),
        engine: Arc::clone(&p.engine),
        rt: tokio::runtime::Handle::current(),
    };
    Arc::new(screen::SessionScreen::new(
        screen::display::resolve(&cfg.screen.display),
        Arc::clone(runas) as Arc<dyn screen::Suspension>,
        Arc::new(events),
    ))
}

/// Locks the data folder, opens the audit log (recording a run-as login
/// the last run left) and starts the plugins.
fn prepare(cfg: &AgentConfig, ui: &dyn CustomerUi) -> Result<Prepared, AgentError> {
    let lock = lock_data_dir(cfg)?;
    let mut audit = AuditLog::open(&cfg.data_dir.join(AUDIT_FILE))?;
    let torn_down = record_teardown(cfg, &mut audit, ui)?;
    let engine = Arc::new(Mutex::new(ConsentEngine::new(
        cfg.policy.clone(),
        cfg.consent_timeout,
        audit,
    )));
    let (plug_tx, plug_rx) = mpsc::unbounded_channel::<SessionMessage>();
    let (mut plugin_host, mut hot_reload) = (None, None);
    if let Some(pc) = &crate::admin::plugins_config(cfg) {
        let (host, errors) = plugins::start(pc, &cfg.data_dir).map_err(AgentError::Plugins)?;
        for e in errors {
            tracing::warn!("{e}");
            let _ = plug_tx.send(SessionMessage::PluginNotice { text: e });
        }
        hot_reload = plugins::watch(&host, pc, plug_tx.clone());
        plugin_host = Some(host);
    }
    Ok(Prepared {
        lock,
        engine,
        torn_down,
        plug_tx,
        plug_rx,
        plugin_host,
        hot_reload,
    })
}

/// The audit entry of the join.
async fn record_join(
    engine: &Mutex<ConsentEngine>,
    entry: &Entry,
    welcome: &Welcome,
    session: &SessionInfo,
    operator: &OperatorProfile,
) -> Result<(), AgentError> {
    engine.lock().await.audit().append(&serde_json::json!({
        "event": "join",
        "session": session.session_id,
        "broker": welcome.broker_name,
        "operator": operator.username,
        "ticket": session.ticket,
        "by": match entry {
            Entry::Join(c) => credential_kind(c),
            Entry::Rejoin(_) => "rejoin ticket",
        },
    }))?;
    Ok(())
}

/// Tells the customer who helps them and how to chat and end.
fn greet(
    ui: &dyn CustomerUi,
    welcome: &Welcome,
    session: &SessionInfo,
    operator: &OperatorProfile,
    rejoined: Option<bool>,
) {
    ui.event(&CustomerEvent::Welcome {
        helper: Helper {
            name: operator.name.clone(),
            title: operator.title.clone(),
            organisation: welcome.broker_name.clone(),
        },
        ticket: session.ticket.clone(),
        rejoined: rejoined.is_some(),
        operator_present: rejoined.unwrap_or(false),
    });
}

/// Creates the data folder and locks it: one agent per data folder (its
/// audit chain and temporary folders are not shared). The lock goes with
/// the returned file, however the process ends.
pub(crate) fn lock_data_dir(cfg: &AgentConfig) -> Result<std::fs::File, AgentError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| AgentError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let lock_path = cfg.data_dir.join(LOCK_FILE);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| AgentError::DataDir {
            path: lock_path.clone(),
            source,
        })?;
    if lock.try_lock().is_err() {
        return Err(AgentError::Busy(cfg.data_dir.clone()));
    }
    Ok(lock)
}

/// A run-as login active when the agent last stopped ended with it (its PAM
/// session and X grabs belonged to the process): record the teardown and
/// tell the customer.
pub(crate) fn record_teardown(
    cfg: &AgentConfig,
    audit: &mut AuditLog,
    ui: &dyn CustomerUi,
) -> Result<Option<runas::Marker>, AgentError> {
    let torn_down = runas::recover(&cfg.data_dir);
    if let Some(m) = &torn_down {
        audit.append(&serde_json::json!({
            "event": "run_as_teardown", "session": m.session_id, "user": m.user,
            "operator": m.operator, "since": m.since,
            "reason": "the agent stopped during the run-as login",
        }))?;
        ui.show(&format!(
            "* The operator's login as {} ended when Lifeline stopped; your access is restored.",
            m.user
        ));
    }
    Ok(torn_down)
}

fn credential_kind(c: &JoinCredential) -> &'static str {
    match c {
        JoinCredential::ConnectionId(_) => "connection ID",
        JoinCredential::LinkToken(_) => "link",
        JoinCredential::ShortCode(_) => "short link",
    }
}
