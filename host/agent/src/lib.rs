//! The customer's side: join a session by connection ID or link, show who is
//! helping, chat, answer consent requests, and keep the audit log.

pub mod admin;
pub mod admin_command;
pub mod background;
pub mod credential;
pub mod native;
pub mod plugins;
pub mod prompt;
pub mod reboot;
pub mod reconnect;
pub mod runas;
pub mod scripts;
pub mod x11;

use std::sync::Arc;

use lifeline_core::audit::{AuditError, AuditLog};
use lifeline_core::client::ConnectError;
use lifeline_core::config::AgentConfig;
use lifeline_core::consent::{ConsentEngine, ConsentRequest, RequestKind};
use lifeline_protocol::{
    Frame, JoinCredential, Message, OperatorProfile, Party, SessionInfo, SessionMessage,
    SessionState,
};
use lifeline_runtime::wit::SessionEvent;
use tokio::sync::{Mutex, mpsc};

pub use credential::{CredentialError, parse_credential};
pub use prompt::InputPrompter;

/// File name of the agent's audit log inside its data folder.
pub const AUDIT_FILE: &str = "audit.log";
/// Lock file that keeps two agents off one data folder.
pub const LOCK_FILE: &str = "agent.lock";
/// What the customer types to end the session.
pub const END_COMMAND: &str = "/end";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the broker refused to join: {0}")]
    JoinRefused(String),
    #[error("the connection to the broker was lost: {0}")]
    ConnectionLost(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("another agent is running with the data folder {0}")]
    Busy(std::path::PathBuf),
    #[error("cannot start the plugins: {0}")]
    Plugins(String),
    #[error(transparent)]
    Ticket(#[from] reboot::TicketError),
    #[error("could not rejoin the session: {0}")]
    RejoinRefused(String),
    #[error("cannot create the agent data folder {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Where the agent shows things to the customer (a terminal, or the demo).
pub trait CustomerUi: Send + Sync {
    fn show(&self, line: &str);
}

/// Prints to standard output.
pub struct TerminalUi;

impl CustomerUi for TerminalUi {
    fn show(&self, line: &str) {
        // Operator text (chat, names) cannot steer the customer's terminal.
        println!("{}", lifeline_protocol::terminal_safe(line));
    }
}

/// How a session ended for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub session: SessionInfo,
    pub operator: OperatorProfile,
    pub ended_by: Party,
    pub reason: String,
}

/// How the agent enters its session.
pub enum Entry {
    /// A connection ID or link the customer typed.
    Join(JoinCredential),
    /// A rejoin ticket saved before a reboot.
    Rejoin(reboot::SavedTicket),
}

/// Longest pause between rejoin attempts (the network may come up after
/// the agent at boot; the broker may be rate limiting or busy).
pub const REJOIN_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// Joins with `code_or_link` and runs the session until it ends. Lines the
/// customer types arrive on `input`; `/end` ends the session.
pub async fn run(
    cfg: &AgentConfig,
    code_or_link: &str,
    ui: Arc<dyn CustomerUi>,
    input: mpsc::Receiver<String>,
) -> Result<Outcome, AgentError> {
    let credential = parse_credential(code_or_link)?;
    serve(cfg, Entry::Join(credential), ui, input).await
}

/// After a restart (the service's start): rejoins the session a saved
/// rejoin ticket is bound to and runs it until it ends. `Ok(None)` when no
/// ticket is waiting.
pub async fn rejoin(
    cfg: &AgentConfig,
    ui: Arc<dyn CustomerUi>,
    input: mpsc::Receiver<String>,
) -> Result<Option<Outcome>, AgentError> {
    let Some(ticket) = reboot::load(&cfg.data_dir)? else {
        // Nothing to rejoin; still record a run-as login the last run left.
        let _lock = lock_data_dir(cfg)?;
        let mut audit = AuditLog::open(&cfg.data_dir.join(AUDIT_FILE))?;
        record_teardown(cfg, &mut audit, ui.as_ref())?;
        return Ok(None);
    };
    if ticket.expires_at < lifeline_core::time::now_millis() {
        reboot::remove(&cfg.data_dir);
        let why = format!(
            "the rejoin ticket expired at {}; {}",
            lifeline_core::time::millis_to_rfc3339(ticket.expires_at),
            START_AGAIN
        );
        ui.show(&format!("! {why}"));
        return Err(AgentError::RejoinRefused(why));
    }
    serve(cfg, Entry::Rejoin(ticket), ui, input).await.map(Some)
}

pub use lifeline_core::session::START_AGAIN;

/// Runs one session from its entry to its end.
pub async fn serve(
    cfg: &AgentConfig,
    entry: Entry,
    ui: Arc<dyn CustomerUi>,
    mut input: mpsc::Receiver<String>,
) -> Result<Outcome, AgentError> {
    let _lock = lock_data_dir(cfg)?;
    let mut audit = AuditLog::open(&cfg.data_dir.join(AUDIT_FILE))?;
    let torn_down = record_teardown(cfg, &mut audit, ui.as_ref())?;
    let runas = Arc::new(runas::RunAs::new(cfg.run_as.clone(), &cfg.data_dir));
    let creds = Arc::new(native::Credentials::default());
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<native::Ctl>();
    let engine = Arc::new(Mutex::new(ConsentEngine::new(
        cfg.policy.clone(),
        cfg.consent_timeout,
        audit,
    )));
    let (plug_tx, mut plug_rx) = mpsc::unbounded_channel::<SessionMessage>();
    let mut plugin_host = None;
    let mut _hot_reload = None;
    if let Some(pc) = &admin::plugins_config(cfg) {
        match plugins::start(pc, &cfg.data_dir) {
            Ok((host, errors)) => {
                for e in errors {
                    tracing::warn!("{e}");
                    let _ = plug_tx.send(SessionMessage::PluginNotice { text: e });
                }
                _hot_reload = plugins::watch(&host, pc, plug_tx.clone());
                plugin_host = Some(host);
            }
            Err(e) => return Err(AgentError::Plugins(e)),
        }
    }
    let session_proxy = cfg.remote_service.as_ref().and_then(|r| r.session_proxy());
    let (mut link, welcome, session, operator, rejoined) = match &entry {
        Entry::Join(credential) => reconnect::join(cfg, credential, session_proxy).await?,
        Entry::Rejoin(t) => reconnect::rejoin(cfg, t, session_proxy, ui.as_ref()).await?,
    };
    let sid = session.session_id.clone();
    engine.lock().await.audit().append(&serde_json::json!({
        "event": "join",
        "session": sid,
        "broker": welcome.broker_name,
        "operator": operator.username,
        "ticket": session.ticket,
        "by": match &entry {
            Entry::Join(c) => credential_kind(c),
            Entry::Rejoin(_) => "rejoin ticket",
        },
    }))?;
    let who = if operator.title.is_empty() {
        operator.name.clone()
    } else {
        format!("{} ({})", operator.name, operator.title)
    };
    match rejoined {
        None => {
            ui.show(&format!(
                "Connected to {}. {who} will help you with ticket {}.",
                welcome.broker_name, session.ticket
            ));
            ui.show(&format!(
                "Type a message and press Enter to chat. Type {END_COMMAND} to end the session at any time."
            ));
            ui.show("Waiting for the operator to connect…");
        }
        Some(present) => {
            ui.show(&format!(
                "You are back in the session with {who} (ticket {}). Lifeline reconnected by itself after the restart.",
                session.ticket
            ));
            ui.show(&format!(
                "Type a message and press Enter to chat. Type {END_COMMAND} to end the session at any time."
            ));
            if !present {
                ui.show("Waiting for the operator to reconnect…");
            }
        }
    }
    if let Some(m) = torn_down.filter(|m| m.session_id == sid) {
        let _ = plug_tx.send(SessionMessage::PluginNotice {
            text: format!(
                "the run-as login as {} (since {}) was torn down when the agent stopped; the customer's access is restored",
                m.user, m.since
            ),
        });
    }
    let prompter = Arc::new(InputPrompter::new(Arc::clone(&ui)));
    let admin = admin::AgentAdmin::new(cfg);
    let (answer_tx, mut answer_rx) = mpsc::channel::<SessionMessage>(8);
    // Consent decisions in progress; dropped (aborted) when the session ends.
    let mut deciding = tokio::task::JoinSet::new();
    let mut batches = scripts::Batches::default();
    // While the operator works as another user: who, and the customer's
    // chat lines held until the access is back.
    let mut suspended: Option<String> = None;
    let mut held: Vec<String> = Vec::new();
    let mut pending_ticket: Option<
        tokio::sync::oneshot::Sender<Result<(lifeline_protocol::Secret, i64), String>>,
    > = None;
    // Plugin streams go straight onto the link; long-lived plugins hear
    // the session's events.
    let services_cell = Arc::new(std::sync::OnceLock::new());
    let streams = lifeline_runtime::StreamHub::new(Box::new(plugins::AgentSink {
        link: link.tx.clone(),
        rt: tokio::runtime::Handle::current(),
        tx: plug_tx.clone(),
        services: Arc::clone(&services_cell),
    }));
    let port_for = |call_id: u64| {
        Arc::new(plugins::AgentPort {
            session_id: sid.clone(),
            operator: operator.name.clone(),
            call_id,
            engine: Arc::clone(&engine),
            prompter: Arc::clone(&prompter),
            tx: plug_tx.clone(),
            rt: tokio::runtime::Handle::current(),
            runas: Arc::clone(&runas),
            creds: Arc::clone(&creds),
            credential_timeout: cfg.run_as.credential_timeout,
            ctl: ctl_tx.clone(),
            data_dir: cfg.data_dir.clone(),
            power: cfg.power.clone(),
            ui: Arc::clone(&ui),
            admin: admin
                .clone()
                .map(|a| a as Arc<dyn lifeline_runtime::AdminResources>),
            streams: Arc::clone(&streams),
        })
    };
    let services: Arc<lifeline_runtime::Services> = Arc::new(match &plugin_host {
        Some(host) => lifeline_runtime::Services::start(host, port_for(0)),
        None => lifeline_runtime::Services::default(),
    });
    let _ = services_cell.set(Arc::clone(&services));
    match rejoined {
        None => services.event(&SessionEvent::Started),
        Some(present) => {
            services.event(&SessionEvent::Rejoined);
            if present {
                services.event(&SessionEvent::OperatorAttached(operator.name.clone()));
            }
        }
    }
    let outcome = |ended_by, reason: String| Outcome {
        session: session.clone(),
        operator: operator.clone(),
        ended_by,
        reason,
    };
    let result = loop {
        tokio::select! {
            // In order: what a plugin said before asking for a rejoin ticket
            // (its consent decision) reaches the broker before the request.
            biased;
            frame = link.rx.recv() => {
                let Some(frame) = frame else {
                    break Err(AgentError::ConnectionLost(link.close_reason.get()));
                };
                let msg = match frame {
                    Frame::Control(msg) => msg,
                    Frame::Data(d) => {
                        match lifeline_protocol::StreamData::decode(d) {
                            Ok(data) => streams.on_operator_data(data),
                            Err(e) => tracing::debug!("stream frame ignored: {e}"),
                        }
                        continue;
                    }
                    // Only the broker's operator side names sessions.
                    Frame::SessionData { .. } => continue,
                };
                match msg {
                    Message::Session { msg, .. } => match msg {
                        SessionMessage::Chat { text, .. } => ui.show(&format!("[{}] {text}", operator.name)),
                        SessionMessage::State { state, detail } => {
                            ui.show(&format!("* {detail}"));
                            match state {
                                SessionState::Ended => break Ok(outcome(Party::Broker, detail)),
                                SessionState::Connected => services.event(&SessionEvent::OperatorAttached(operator.name.clone())),
                                SessionState::Waiting => services.event(&SessionEvent::OperatorLeft(operator.name.clone())),
                                _ => {}
                            }
                        }
                        SessionMessage::CredentialReply { request_id, secret } => creds.answer(request_id, secret),
                        SessionMessage::End { by, reason } => {
                            ui.show(&format!("* The session was ended by the {by}: {reason}"));
                            break Ok(outcome(by, reason));
                        }
                        SessionMessage::ConsentRequest { request_id, operator: op_name, plugin, action, detail } => {
                            // The operator's own question: answered, never a grant.
                            let req = ConsentRequest { session_id: sid.clone(), operator: op_name, plugin, action, detail, kind: RequestKind::Question };
                            let engine = Arc::clone(&engine);
                            let prompter = Arc::clone(&prompter);
                            let answer_tx = answer_tx.clone();
                            deciding.spawn(async move {
                                let decided = lifeline_core::consent::decide(&engine, &req, prompter.as_ref()).await;
                                match decided {
                                    Ok(d) => {
                                        let _ = answer_tx.send(SessionMessage::ConsentAnswer {
                                            request_id,
                                            decision: d.decision,
                                            decided_by: d.decided_by.as_str().to_string(),
                                            audit_hash: d.audit_hash,
                                        }).await;
                                    }
                                    Err(e) => tracing::error!("consent not recorded, request {request_id} dropped: {e}"),
                                }
                            });
                        }
                        SessionMessage::ListPlugins { request_id } => {
                            let list = plugin_host.as_deref().map(plugins::summaries).unwrap_or_default();
                            let _ = plug_tx.send(SessionMessage::Plugins { request_id, plugins: list });
                        }
                        SessionMessage::RunPlugin { call_id, plugin, command, args } => {
                            ui.show(format!("* {} runs {plugin} {command} {}", operator.name, args.join(" ")).trim_end());
                            let tx = plug_tx.clone();
                            let Some(host) = plugin_host.clone() else {
                                let _ = tx.send(SessionMessage::PluginDone { call_id, plugin, ok: false, text: "this agent runs no plugins".into() });
                                continue;
                            };
                            if let Some(why) = plugins::refuse_operator_call(&host, &plugin, &command) {
                                ui.show(&format!("* refused: {why}"));
                                let _ = tx.send(SessionMessage::PluginDone { call_id, plugin, ok: false, text: why });
                                continue;
                            }
                            let port = port_for(call_id);
                            tokio::task::spawn_blocking(move || {
                                let args: Vec<lifeline_runtime::Arg> = args.into_iter().map(lifeline_runtime::Arg::Text).collect();
                                let (ok, text) = match host.call(&plugin, &command, &args, port) {
                                    Ok(t) => (true, t),
                                    Err(e) => (false, e.to_string()),
                                };
                                let _ = tx.send(SessionMessage::PluginDone { call_id, plugin, ok, text });
                            });
                        }
                        SessionMessage::ScriptBatch { batch_id, operator: op_name, scripts, stop_on_failure, timeout_secs } => {
                            let names: Vec<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
                            ui.show(&format!("* {op_name} wants to run {} script(s): {}", names.len(), names.join(", ")));
                            if let Err(e) = batches.begin(batch_id, op_name, scripts, stop_on_failure, timeout_secs) {
                                let _ = plug_tx.send(SessionMessage::BatchDone { batch_id, ok: false, summary: e });
                            }
                        }
                        SessionMessage::ScriptFiles { batch_id, index, exec_b64, input_b64 } => {
                            match batches.add(batch_id, index, exec_b64, input_b64) {
                                Ok(None) => {}
                                Ok(Some(pending)) => {
                                    let ctx = scripts::Ctx {
                                        session_id: sid.clone(),
                                        engine: Arc::clone(&engine),
                                        prompter: Arc::clone(&prompter),
                                        host: plugin_host.clone(),
                                        tx: plug_tx.clone(),
                                        runas: Arc::clone(&runas),
                                    };
                                    let rt = tokio::runtime::Handle::current();
                                    tokio::task::spawn_blocking(move || scripts::run(batch_id, pending, ctx, rt));
                                }
                                Err(e) => {
                                    let _ = plug_tx.send(SessionMessage::BatchDone { batch_id, ok: false, summary: e });
                                }
                            }
                        }
                        SessionMessage::ConsentAnswer { .. }
                        | SessionMessage::ScriptOutput { .. }
                        | SessionMessage::ScriptDone { .. }
                        | SessionMessage::BatchDone { .. }
                        | SessionMessage::Plugins { .. }
                        | SessionMessage::PluginOutput { .. }
                        | SessionMessage::PluginDone { .. }
                        | SessionMessage::ConsentDecided { .. }
                        | SessionMessage::PluginNotice { .. }
                        | SessionMessage::StreamOpened { .. }
                        | SessionMessage::StreamClosed { .. }
                        | SessionMessage::CredentialRequest { .. }
                        | SessionMessage::Access { .. } => {}
                    },
                    Message::RejoinTicket { ticket, expires_at } => {
                        if let Some(tx) = pending_ticket.take() {
                            let _ = tx.send(Ok((ticket, expires_at)));
                        }
                    }
                    Message::Error { message, .. } => {
                        if let Some(tx) = pending_ticket.take() {
                            let _ = tx.send(Err(message.clone()));
                        }
                        ui.show(&format!("! {message}"));
                    }
                    _ => {}
                }
            }
            Some(_) = deciding.join_next(), if !deciding.is_empty() => {}
            Some(msg) = plug_rx.recv() => {
                let mut release = Vec::new();
                match &msg {
                    SessionMessage::Access { suspended: true, user, .. } => {
                        services.event(&SessionEvent::AccessSuspended(user.clone()));
                        suspended = Some(user.clone());
                        ui.show(&format!(
                            "* {} is now working on this computer as user {user}. Your access is suspended until they log out or the session ends; your messages are held. Type {END_COMMAND} to end the session.",
                            operator.name
                        ));
                    }
                    SessionMessage::Access { suspended: false, user, detail } => {
                        services.event(&SessionEvent::AccessRestored(user.clone()));
                        suspended = None;
                        release = std::mem::take(&mut held);
                        ui.show(&format!("* The login as {user} ended ({detail}). Your access is restored."));
                    }
                    SessionMessage::PluginNotice { text } => ui.show(&format!("* {text}")),
                    SessionMessage::ScriptOutput { script, line, .. } => ui.show(&format!("[{script}] {line}")),
                    SessionMessage::ScriptDone { script, exit_code, duration_ms, timed_out, error, .. } => {
                        let how = lifeline_protocol::script_outcome(*exit_code, *timed_out, error.as_deref());
                        ui.show(&format!("* script {script}: {how} ({duration_ms} ms)"));
                    }
                    SessionMessage::BatchDone { summary, .. } => ui.show(&format!("* scripts: {summary}")),
                    SessionMessage::PluginDone { plugin, ok, text, .. } => {
                        let how = if *ok { "finished" } else { "failed" };
                        let first = text.lines().next().unwrap_or("");
                        ui.show(&format!("* {plugin} {how}{}", if *ok { String::new() } else { format!(": {first}") }));
                    }
                    _ => {}
                }
                let _ = link.tx.send(Frame::Control(Message::Session { session_id: sid.clone(), msg })).await;
                for text in release {
                    let _ = link.tx.send(Frame::Control(Message::Session {
                        session_id: sid.clone(),
                        msg: SessionMessage::Chat { from: Party::Customer, text },
                    })).await;
                }
            }
            Some(ctl) = ctl_rx.recv() => match ctl {
                native::Ctl::TicketRequest { detail, reply } => {
                    pending_ticket = Some(reply);
                    let _ = link.tx.send(Frame::Control(Message::RejoinTicketRequest { detail })).await;
                }
                native::Ctl::RebootCancelled { reason } => {
                    let _ = link.tx.send(Frame::Control(Message::RebootCancelled { reason })).await;
                }
            },
            Some(answer) = answer_rx.recv() => {
                if let SessionMessage::ConsentAnswer { decision, decided_by, .. } = &answer {
                    ui.show(&format!("* Consent: {} ({decided_by})", decision.as_str()));
                }
                let _ = link.tx.send(Frame::Control(Message::Session { session_id: sid.clone(), msg: answer })).await;
            }
            line = input.recv() => {
                let Some(line) = line else {
                    // Input closed (e.g. stdin at EOF): keep serving the session.
                    input = mpsc::channel(1).1;
                    continue;
                };
                let line = line.trim().to_string();
                if prompter.offer(&line) || line.is_empty() {
                    continue;
                }
                if let Some(user) = &suspended && line != END_COMMAND {
                    ui.show(&format!(
                        "* Held: your input is paused while the operator works as {user}. Type {END_COMMAND} to end the session."
                    ));
                    held.push(line);
                    continue;
                }
                if line == END_COMMAND {
                    let reason = "ended by the customer".to_string();
                    let _ = link.tx.send(Frame::Control(Message::Session {
                        session_id: sid.clone(),
                        msg: SessionMessage::End { by: Party::Customer, reason: reason.clone() },
                    })).await;
                    ui.show("* You ended the session.");
                    break Ok(outcome(Party::Customer, reason));
                }
                let _ = link.tx.send(Frame::Control(Message::Session {
                    session_id: sid.clone(),
                    msg: SessionMessage::Chat { from: Party::Customer, text: line },
                })).await;
            }
        }
    };
    // Long-lived plugins hear `ending` and stop; streams close.
    let reason = match &result {
        Ok(o) => o.reason.clone(),
        Err(e) => e.to_string(),
    };
    let svc = Arc::clone(&services);
    let _ = tokio::task::spawn_blocking(move || svc.stop(&reason)).await;
    streams.close_all("the session ended");
    // Plugin calls still running see the session end (`SessionPort::ended`):
    // the processes they spawned are killed.
    drop(plug_rx);
    deciding.abort_all();
    while deciding.join_next().await.is_some() {}
    if suspended.is_some() || runas.identity().is_some() {
        end_run_as(&runas, &engine, &sid, "the session ended", &plug_tx).await;
        ui.show("* The operator's login as another user ended with the session. Your access is restored.");
    }
    let mut engine = engine.lock().await;
    engine.end_session(&sid);
    let (by, reason) = match &result {
        Ok(o) => (o.ended_by.to_string(), o.reason.clone()),
        Err(e) => ("connection".to_string(), e.to_string()),
    };
    engine.audit().append(&serde_json::json!({
        "event": "end", "session": sid, "by": by, "reason": reason,
    }))?;
    // Let the writer flush a final End before the link is dropped.
    drop(link.tx);
    result
}

/// Creates the data folder and locks it: one agent per data folder (its
/// audit chain and temporary folders are not shared). The lock goes with
/// the returned file, however the process ends.
fn lock_data_dir(cfg: &AgentConfig) -> Result<std::fs::File, AgentError> {
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
fn record_teardown(
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

/// Ends a run-as login from the agent's side (operator left, session over):
/// the customer's access comes back, the audit log and the session say so.
async fn end_run_as(
    runas: &Arc<runas::RunAs>,
    engine: &Arc<Mutex<ConsentEngine>>,
    sid: &str,
    why: &str,
    tx: &mpsc::UnboundedSender<SessionMessage>,
) {
    let r = Arc::clone(runas);
    let user = tokio::task::spawn_blocking(move || r.logout())
        .await
        .ok()
        .flatten()
        .map(|l| l.user);
    if let Some(user) = user {
        let entry = serde_json::json!({
            "event": "run_as_logout", "session": sid, "user": user, "by": why,
        });
        if let Err(e) = engine.lock().await.audit().append(&entry) {
            tracing::error!("audit entry not written: {e}");
        }
        let _ = tx.send(SessionMessage::Access {
            suspended: false,
            user,
            detail: why.to_string(),
        });
    }
}

fn credential_kind(c: &JoinCredential) -> &'static str {
    match c {
        JoinCredential::ConnectionId(_) => "connection ID",
        JoinCredential::LinkToken(_) => "link",
        JoinCredential::ShortCode(_) => "short link",
    }
}

/// This computer's host name, as shown to the operator.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}
