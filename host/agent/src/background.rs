//! Long-lived plugins without a session: the agent service, between
//! sessions, starts every long-lived plugin with `start(background)` so
//! that features keep their own schedules (the license plugin's periodic
//! check). Nobody is at the keyboard: consent comes from the agent's policy
//! only (recorded in the audit log), and what plugins say goes to the
//! service's log. Without the plugin, there is no background work: the
//! agent itself schedules nothing.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::AgentConfig;
use lifeline_core::audit::AuditLog;
use lifeline_core::consent::{self, ConsentEngine, ConsentRequest, RequestKind};
use lifeline_protocol::SessionMessage;
use lifeline_runtime::wit::StartReason;
use lifeline_runtime::{Capability, Manifest, Natives, Services, SessionPort};
use tokio::sync::{Mutex, mpsc};

use crate::{AUDIT_FILE, AgentError, CustomerUi};

/// Session ID consent decisions of background plugins are recorded under.
pub const BACKGROUND_SESSION: &str = "agent-service";

/// The port of background plugins: policy consent, output to the log.
struct BackgroundPort {
    engine: Arc<Mutex<ConsentEngine>>,
    rt: tokio::runtime::Handle,
    ui: Arc<dyn CustomerUi>,
    admin: Option<Arc<dyn lifeline_runtime::AdminResources>>,
    stopped: AtomicBool,
}

impl SessionPort for BackgroundPort {
    fn consent(&self, plugin: &Manifest, cap: Capability) -> Result<(), String> {
        let req = ConsentRequest {
            session_id: BACKGROUND_SESSION.into(),
            operator: "the agent service".into(),
            plugin: plugin.id.clone(),
            action: cap.name().to_string(),
            detail: plugin.capabilities.get(&cap).cloned().unwrap_or_default(),
            kind: RequestKind::Capability,
        };
        let d = self
            .rt
            .block_on(consent::decide(&self.engine, &req, &NoCustomer))
            .map_err(|e| format!("the decision could not be recorded: {e}"))?;
        if d.decision.is_allowed() {
            Ok(())
        } else {
            Err(format!(
                "denied ({}); set \"{cap}\" = \"allow\" in the agent's policy to allow it unattended",
                d.decided_by.as_str()
            ))
        }
    }
    fn output(&self, plugin: &str, text: &str) {
        self.ui.show(&format!("[{plugin}] {text}"));
    }
    fn chat(&self, plugin: &str, text: &str) {
        self.output(plugin, text);
    }
    fn report(&self, plugin: &str, text: &str) {
        self.output(plugin, text);
    }
    /// Where the service shows the customer things (as license offers).
    fn notify(&self, plugin: &str, text: &str) {
        self.ui.event(&crate::channel::CustomerEvent::Notice {
            plugin: plugin.to_string(),
            text: text.to_string(),
        });
    }
    fn ended(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
    fn natives(&self) -> Option<&dyn Natives> {
        Some(self)
    }
}

/// Without a session only what the admin names is offered (settings,
/// document keys, endpoints, commands): no login as another user (no
/// operator to type a password), no restart (no session to rejoin) and no
/// screen (nobody to consent, to see the indicator or to watch).
impl Natives for BackgroundPort {
    fn admin(&self) -> Option<Arc<dyn lifeline_runtime::AdminResources>> {
        self.admin.clone()
    }
}

/// An agent's plugins with the port they use outside a session.
type Background = (Arc<lifeline_runtime::PluginHost>, Arc<BackgroundPort>);

/// The plugin host and the background port of an agent config; `None`
/// when the agent has no `[plugins]`.
fn setup(cfg: &AgentConfig, ui: &Arc<dyn CustomerUi>) -> Result<Option<Background>, AgentError> {
    let Some(pc) = crate::admin::plugins_config(cfg) else {
        return Ok(None);
    };
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| AgentError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let (host, errors) = crate::plugins::start(&pc, &cfg.data_dir).map_err(AgentError::Plugins)?;
    for e in errors {
        ui.show(&format!("! {e}"));
    }
    let audit = AuditLog::open(&cfg.data_dir.join(AUDIT_FILE))?;
    let engine = ConsentEngine::new(cfg.policy.clone(), cfg.consent_timeout, audit);
    let port = Arc::new(BackgroundPort {
        engine: Arc::new(Mutex::new(engine)),
        rt: tokio::runtime::Handle::current(),
        ui: Arc::clone(ui),
        admin: crate::admin::AgentAdmin::new(cfg)
            .map(|a| a as Arc<dyn lifeline_runtime::AdminResources>),
        stopped: AtomicBool::new(false),
    });
    Ok(Some((host, port)))
}

/// Runs one plugin command without a session (the admin's one-shot
/// commands, e.g. `agent license-check`): consent by policy, output to
/// `ui`. Without the plugin the command does not exist.
pub async fn call(
    cfg: &AgentConfig,
    ui: Arc<dyn CustomerUi>,
    plugin: &str,
    command: &str,
) -> Result<Result<String, String>, AgentError> {
    let Some((host, port)) = setup(cfg, &ui)? else {
        return Ok(Err(format!(
            "no [plugins] configured: the {plugin} plugin is not installed"
        )));
    };
    let (plugin, command) = (plugin.to_string(), command.to_string());
    let result = tokio::task::spawn_blocking(move || {
        host.call(&plugin, &command, &[], port as Arc<dyn SessionPort>)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| AgentError::Plugins(format!("the plugin call stopped: {e}")))?;
    Ok(result)
}

/// Runs the long-lived plugins in the background until `stop` completes.
/// Returns at once when the agent has no long-lived plugin.
pub async fn run(
    cfg: &AgentConfig,
    ui: Arc<dyn CustomerUi>,
    stop: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let Some((host, port)) = setup(cfg, &ui)? else {
        ui.show("No [plugins] configured: nothing runs in the background.");
        return Ok(());
    };
    let (notice_tx, mut notices) = mpsc::unbounded_channel::<SessionMessage>();
    let pc = cfg.plugins.as_ref().expect("set up above");
    let _hot_reload = crate::plugins::watch(&host, pc, notice_tx);
    let shown = Arc::clone(&ui);
    tokio::spawn(async move {
        while let Some(m) = notices.recv().await {
            if let SessionMessage::PluginNotice { text } = m {
                shown.show(&format!("* {text}"));
            }
        }
    });
    let services = Arc::new(Services::start_with(
        &host,
        Arc::clone(&port) as Arc<dyn SessionPort>,
        StartReason::Background,
    ));
    let ids = services.ids();
    if ids.is_empty() {
        ui.show("No long-lived plugin is installed: nothing runs in the background.");
        return Ok(());
    }
    ui.show(&format!("Running in the background: {}.", ids.join(", ")));
    stop.await;
    port.stopped.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || services.stop("the agent service stopped")).await;
    Ok(())
}

/// Outside a session nobody is asked: only the policy decides.
pub(crate) struct NoCustomer;

impl lifeline_core::consent::Prompter for NoCustomer {
    fn ask<'a>(
        &'a self,
        _request: &'a ConsentRequest,
        _timeout: std::time::Duration,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Option<lifeline_protocol::ConsentDecision>> + Send + 'a>,
    > {
        Box::pin(async { None })
    }
}
