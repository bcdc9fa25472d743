//! The agent's side of plugins: starting the runtime from the config, the
//! session port through which a plugin call asks consent and streams output,
//! and the summaries the operator sees.

use std::sync::Arc;

use crate::config::PluginsConfig;
use lifeline_core::consent::{self, ConsentEngine, ConsentRequest, RequestKind};
use lifeline_core::link::FrameSender;
use lifeline_protocol::{PluginCommandInfo, PluginSummary, SessionMessage};
use lifeline_runtime::host::HostEnv;
use lifeline_runtime::stream::{Mode, StreamInfo, StreamSink, StreamStats};
use lifeline_runtime::watch::{self, HotReload, ReloadEvent};
use lifeline_runtime::{Capability, Manifest, Natives, PluginHost, RuntimeConfig, SessionPort};
use lifeline_runtime::{Services, StreamHub, wit};
use tokio::sync::{Mutex, mpsc};

use crate::native::{Credentials, Ctl};
use crate::prompt::InputPrompter;
use crate::runas::RunAs;

/// Starts the plugin runtime and loads every plugin; load errors are
/// returned for the customer's log, not fatal.
pub fn start(
    cfg: &PluginsConfig,
    data_dir: &std::path::Path,
) -> Result<(Arc<PluginHost>, Vec<String>), String> {
    let trusted_keys = cfg
        .trusted_keys
        .iter()
        .map(|k| lifeline_runtime::bundle::parse_public_key(k).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let host = PluginHost::new(RuntimeConfig {
        plugin_dirs: cfg.dirs.clone(),
        state_dir: data_dir.join("plugin-state"),
        env: HostEnv {
            temp_root: data_dir.join("plugin-tmp"),
            proxy: cfg.http_proxy.clone(),
            folders: cfg
                .folders
                .iter()
                .map(|(name, f)| {
                    let folder = lifeline_runtime::folder::Folder {
                        path: f.path.clone(),
                        write: f.write,
                    };
                    (name.clone(), folder)
                })
                .collect(),
        },
        trusted_keys,
        allow_unsigned: cfg.allow_unsigned,
    })?;
    let errors = host
        .load_all()
        .into_iter()
        .map(|(dir, e)| format!("plugin {} not loaded: {e}", dir.display()))
        .collect();
    Ok((Arc::new(host), errors))
}

/// Watches the plugin folders; reload reports go to `tx`.
pub fn watch(
    host: &Arc<PluginHost>,
    cfg: &PluginsConfig,
    tx: mpsc::UnboundedSender<SessionMessage>,
) -> Option<HotReload> {
    if !cfg.hot_reload {
        return None;
    }
    let report = move |ev: ReloadEvent| {
        let text = match ev {
            ReloadEvent::Reloaded { id, version } => {
                format!("plugin {id} reloaded: version {version} is live")
            }
            ReloadEvent::Failed { dir, error } => {
                format!(
                    "plugin in {} failed to reload, the running version stays: {error}",
                    dir.display()
                )
            }
            ReloadEvent::Removed { id } => {
                format!("plugin {id} removed (its folder was deleted): its commands are gone")
            }
        };
        let _ = tx.send(SessionMessage::PluginNotice { text });
    };
    match watch::start(Arc::clone(host), cfg.dirs.clone(), report) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("hot reload is off: {e}");
            None
        }
    }
}

/// Why an operator's `RunPlugin` of `plugin command` is refused before it
/// reaches the plugin: a host-only command (see
/// [`lifeline_runtime::manifest::Command::host_only`]) runs only for a
/// request the customer consented to as a whole.
pub fn refuse_operator_call(host: &PluginHost, plugin: &str, command: &str) -> Option<String> {
    let manifest = host.manifest(plugin)?;
    manifest
        .command(command)
        .filter(|c| c.host_only)
        .map(|_| {
            format!(
                "command {command:?} of plugin {plugin:?} is run only by the agent for a request the customer consented to (a script batch); operators cannot call it directly"
            )
        })
}

/// The plugins as the operator sees them (host-only commands left out).
pub fn summaries(host: &PluginHost) -> Vec<PluginSummary> {
    host.list()
        .into_iter()
        .map(|p| PluginSummary {
            id: p.id,
            version: p.version,
            runtime: match p.runtime {
                lifeline_runtime::manifest::Runtime::Wasm => "wasm".into(),
                lifeline_runtime::manifest::Runtime::Lua => "lua".into(),
            },
            description: p.description,
            commands: p
                .commands
                .into_iter()
                .filter(|c| !c.host_only)
                .map(|c| PluginCommandInfo {
                    name: c.name,
                    description: c.description,
                    args: c
                        .args
                        .into_iter()
                        .map(|a| {
                            if a.required {
                                a.name
                            } else {
                                format!("{}?", a.name)
                            }
                        })
                        .collect(),
                })
                .collect(),
            capabilities: p.capabilities,
        })
        .collect()
}

/// One plugin call's connection to the session.
pub struct AgentPort {
    pub session_id: String,
    pub operator: String,
    pub call_id: u64,
    pub engine: Arc<Mutex<ConsentEngine>>,
    pub prompter: Arc<InputPrompter>,
    pub tx: mpsc::UnboundedSender<SessionMessage>,
    pub rt: tokio::runtime::Handle,
    /// The native features (see [`crate::native`]).
    pub runas: Arc<RunAs>,
    pub creds: Arc<Credentials>,
    pub credential_timeout: std::time::Duration,
    pub ctl: mpsc::UnboundedSender<Ctl>,
    pub data_dir: std::path::PathBuf,
    pub power: crate::config::machine::PowerConfig,
    pub ui: Arc<dyn crate::CustomerUi>,
    /// What the admin names for plugins (settings, keys, endpoints, commands).
    pub admin: Option<Arc<dyn lifeline_runtime::AdminResources>>,
    /// The session's plugin streams.
    pub streams: Arc<StreamHub>,
    /// The session's screen (`screen.capture`, `input.control`).
    pub screen: crate::screen::PortScreen,
}

impl AgentPort {
    fn send(&self, plugin: &str, stream: &str, text: &str) {
        let _ = self.tx.send(SessionMessage::PluginOutput {
            call_id: self.call_id,
            plugin: plugin.to_string(),
            stream: stream.to_string(),
            text: text.to_string(),
        });
    }
}

impl SessionPort for AgentPort {
    fn consent(&self, plugin: &Manifest, cap: Capability) -> Result<(), String> {
        let req = ConsentRequest {
            session_id: self.session_id.clone(),
            operator: self.operator.clone(),
            plugin: plugin.id.clone(),
            action: cap.name().to_string(),
            detail: plugin.capabilities.get(&cap).cloned().unwrap_or_default(),
            kind: RequestKind::Capability,
        };
        let decided = self
            .rt
            .block_on(consent::decide(&self.engine, &req, self.prompter.as_ref()));
        let d = decided.map_err(|e| format!("the decision could not be recorded: {e}"))?;
        let _ = self.tx.send(SessionMessage::ConsentDecided {
            plugin: plugin.id.clone(),
            action: cap.name().to_string(),
            decision: d.decision,
            decided_by: d.decided_by.as_str().to_string(),
            audit_hash: d.audit_hash,
        });
        if d.decision.is_allowed() {
            Ok(())
        } else {
            Err(format!("denied ({})", d.decided_by.as_str()))
        }
    }

    fn output(&self, plugin: &str, text: &str) {
        self.send(plugin, "output", text);
    }
    fn chat(&self, plugin: &str, text: &str) {
        self.send(plugin, "chat", text);
    }
    fn report(&self, plugin: &str, text: &str) {
        self.send(plugin, "report", text);
    }
    /// On the customer's screen, marked with the plugin's id; the operator's
    /// side sees what the customer was told, and the report keeps it.
    fn notify(&self, plugin: &str, text: &str) {
        self.ui.event(&crate::channel::CustomerEvent::Notice {
            plugin: plugin.to_string(),
            text: text.to_string(),
        });
        self.send(plugin, "customer", text);
    }
    /// The session loop drops its receiver when the session ends.
    fn ended(&self) -> bool {
        self.tx.is_closed()
    }
    fn streams(&self) -> Option<Arc<StreamHub>> {
        Some(Arc::clone(&self.streams))
    }
    fn natives(&self) -> Option<&dyn Natives> {
        Some(self)
    }
    /// The customer's Stop on the sharing indicator.
    fn take_withdrawn(&self, plugin: &str) -> Vec<Capability> {
        self.screen.take_withdrawn(plugin)
    }
}

/// The native capabilities of a session (see [`crate::native`]).
impl Natives for AgentPort {
    fn identity(&self) -> Option<Arc<lifeline_runtime::Identity>> {
        self.runas.identity()
    }
    fn login(&self) -> Option<wit::LoginInfo> {
        self.runas.info()
    }
    fn user_login(&self, plugin: &str, user: &str) -> Result<wit::LoginInfo, String> {
        self.native_user_login(plugin, user)
    }
    fn user_logout(&self, plugin: &str) -> Result<Option<wit::LoginInfo>, String> {
        Ok(self.native_user_logout(plugin))
    }
    fn power_restart(&self, plugin: &str, reason: &str) -> Result<wit::RestartInfo, String> {
        self.native_power_restart(plugin, reason)
    }
    fn admin(&self) -> Option<Arc<dyn lifeline_runtime::AdminResources>> {
        self.admin.clone()
    }
    /// The session's display; the indicator names this port's operator.
    fn screen(&self) -> Option<Arc<dyn lifeline_runtime::ScreenAccess>> {
        Some(self.screen.handle(&self.operator, self.call_id))
    }
}

/// Where a session's plugin streams go: data frames sealed once per ready
/// operator endpoint and straight onto the broker link (its bounded queue
/// is the back-pressure), announcements through the session loop, operator
/// input to the long-lived plugin.
pub struct AgentSink {
    /// The current broker link: replaced when the session resumes on a new
    /// connection.
    pub link: Arc<std::sync::RwLock<FrameSender>>,
    /// The session's end-to-end channels.
    pub ends: Arc<crate::e2e::SessionEnds>,
    pub rt: tokio::runtime::Handle,
    pub tx: mpsc::UnboundedSender<SessionMessage>,
    /// Set once the session's long-lived plugins run.
    pub services: Arc<std::sync::OnceLock<Arc<Services>>>,
}

impl AgentSink {
    fn current_link(&self) -> FrameSender {
        self.link
            .read()
            .expect("sink link lock is never poisoned")
            .clone()
    }
}

impl StreamSink for AgentSink {
    fn data(&self, payload: Vec<u8>) -> bool {
        let link = self.current_link();
        self.ends.send_data(&link, &self.rt, &payload)
    }
    fn try_data(&self, payload: Vec<u8>) -> bool {
        self.ends.try_send_data(&self.current_link(), &payload)
    }
    fn opened(&self, info: &StreamInfo) {
        let _ = self.tx.send(SessionMessage::StreamOpened {
            stream: info.id,
            plugin: info.plugin.clone(),
            name: info.name.clone(),
            content_type: info.content_type.clone(),
            latest_wins: info.mode == Mode::LatestWins,
        });
    }
    fn closed(&self, info: &StreamInfo, stats: &StreamStats, reason: &str) {
        let _ = self.tx.send(SessionMessage::StreamClosed {
            stream: info.id,
            plugin: info.plugin.clone(),
            name: info.name.clone(),
            frames: stats.frames,
            bytes: stats.bytes,
            dropped: stats.dropped,
            reason: reason.to_string(),
        });
    }
    fn input(&self, plugin: &str, stream: u32) {
        if let Some(s) = self.services.get() {
            s.event_to(plugin, wit::SessionEvent::StreamInput(stream));
        }
    }
}
