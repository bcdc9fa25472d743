//! The customer's side: join a session by connection ID or link, show who is
//! helping, chat, answer consent requests, and keep the audit log.

pub mod credential;
pub mod license;
pub mod plugins;
pub mod prompt;
pub mod scripts;

use std::sync::Arc;

use lifeline_core::audit::{AuditError, AuditLog};
use lifeline_core::client::{self, ConnectError};
use lifeline_core::config::AgentConfig;
use lifeline_core::consent::{ConsentEngine, ConsentRequest};
use lifeline_protocol::{
    ClientRole, Frame, JoinCredential, Message, OperatorProfile, Party, SessionInfo,
    SessionMessage, SessionState,
};
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
        println!("{line}");
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

/// Joins with `code_or_link` and runs the session until it ends. Lines the
/// customer types arrive on `input`; `/end` ends the session.
pub async fn run(
    cfg: &AgentConfig,
    code_or_link: &str,
    ui: Arc<dyn CustomerUi>,
    mut input: mpsc::Receiver<String>,
) -> Result<Outcome, AgentError> {
    let credential = parse_credential(code_or_link)?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| AgentError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    // One agent per data folder: its audit chain and temporary folders are
    // not shared. The lock goes with the process, however it ends.
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
    let audit = AuditLog::open(&cfg.data_dir.join(AUDIT_FILE))?;
    let engine = Arc::new(Mutex::new(ConsentEngine::new(
        cfg.policy.clone(),
        cfg.consent_timeout,
        audit,
    )));
    let (plug_tx, mut plug_rx) = mpsc::unbounded_channel::<SessionMessage>();
    let mut plugin_host = None;
    let mut _hot_reload = None;
    if let Some(pc) = &cfg.plugins {
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
    let (mut link, welcome) =
        client::connect_via(&cfg.endpoint, ClientRole::Agent, session_proxy).await?;
    let host = hostname();
    link.tx
        .send(Frame::Control(Message::Join {
            credential: credential.clone(),
            host: host.clone(),
        }))
        .await
        .map_err(|_| AgentError::ConnectionLost(link.close_reason.get()))?;
    let (session, operator) = loop {
        match link.rx.recv().await {
            Some(Frame::Control(Message::Joined { session, operator })) => {
                break (session, operator);
            }
            Some(Frame::Control(Message::Error { message, .. })) => {
                return Err(AgentError::JoinRefused(message));
            }
            Some(_) => continue,
            None => return Err(AgentError::ConnectionLost(link.close_reason.get())),
        }
    };
    let sid = session.session_id.clone();
    engine.lock().await.audit().append(&serde_json::json!({
        "event": "join",
        "session": sid,
        "broker": welcome.broker_name,
        "operator": operator.username,
        "ticket": session.ticket,
        "by": credential_kind(&credential),
    }))?;
    let who = if operator.title.is_empty() {
        operator.name.clone()
    } else {
        format!("{} ({})", operator.name, operator.title)
    };
    ui.show(&format!(
        "Connected to {}. {who} will help you with ticket {}.",
        welcome.broker_name, session.ticket
    ));
    ui.show(&format!(
        "Type a message and press Enter to chat. Type {END_COMMAND} to end the session at any time."
    ));
    ui.show("Waiting for the operator to connect…");

    let prompter = Arc::new(InputPrompter::new(Arc::clone(&ui)));
    let license_service = license::AgentLicense::new(cfg, Arc::clone(&ui));
    let (answer_tx, mut answer_rx) = mpsc::channel::<SessionMessage>(8);
    // Consent decisions in progress; dropped (aborted) when the session ends.
    let mut deciding = tokio::task::JoinSet::new();
    let mut batches = scripts::Batches::default();
    let outcome = |ended_by, reason: String| Outcome {
        session: session.clone(),
        operator: operator.clone(),
        ended_by,
        reason,
    };
    let result = loop {
        tokio::select! {
            frame = link.rx.recv() => {
                let Some(frame) = frame else {
                    break Err(AgentError::ConnectionLost(link.close_reason.get()));
                };
                let Frame::Control(msg) = frame else { continue };
                match msg {
                    Message::Session { msg, .. } => match msg {
                        SessionMessage::Chat { text, .. } => ui.show(&format!("[{}] {text}", operator.name)),
                        SessionMessage::State { state, detail } => {
                            ui.show(&format!("* {detail}"));
                            if state == SessionState::Ended {
                                break Ok(outcome(Party::Broker, detail));
                            }
                        }
                        SessionMessage::End { by, reason } => {
                            ui.show(&format!("* The session was ended by the {by}: {reason}"));
                            break Ok(outcome(by, reason));
                        }
                        SessionMessage::ConsentRequest { request_id, operator: op_name, plugin, action, detail } => {
                            let req = ConsentRequest { session_id: sid.clone(), operator: op_name, plugin, action, detail };
                            let engine = Arc::clone(&engine);
                            let prompter = Arc::clone(&prompter);
                            let answer_tx = answer_tx.clone();
                            deciding.spawn(async move {
                                let decided = engine.lock().await.decide(&req, prompter.as_ref()).await;
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
                            let port = Arc::new(plugins::AgentPort {
                                session_id: sid.clone(),
                                operator: operator.name.clone(),
                                call_id,
                                engine: Arc::clone(&engine),
                                prompter: Arc::clone(&prompter),
                                tx: tx.clone(),
                                rt: tokio::runtime::Handle::current(),
                                license: license_service.clone().map(|l| l as Arc<dyn lifeline_runtime::LicenseService>),
                            });
                            tokio::task::spawn_blocking(move || {
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
                        | SessionMessage::PluginNotice { .. } => {}
                    },
                    Message::Error { message, .. } => ui.show(&format!("! {message}")),
                    _ => {}
                }
            }
            Some(_) = deciding.join_next(), if !deciding.is_empty() => {}
            Some(msg) = plug_rx.recv() => {
                match &msg {
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
            }
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
    deciding.abort_all();
    while deciding.join_next().await.is_some() {}
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
