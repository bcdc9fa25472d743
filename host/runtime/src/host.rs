//! The host API, implemented once natively and exposed to WASM and Lua alike.
//!
//! A [`CallContext`] lives for one plugin call. Each method first passes
//! [`CallContext::check`]: the manifest must declare the call's capability
//! (see [`HostCall::capability`]), and a capability that needs consent is
//! asked for through the [`SessionPort`] before its first use in the call.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::capability::{Capability, HostCall};
use crate::kv::KvStore;
use crate::manifest::Manifest;
use crate::process::{self, Identity};
use crate::screen::ScreenAccess;
use crate::service::Timers;
use crate::stream::{Mode, Sent, StreamHub};
use crate::tempfs::TempFolder;
use crate::wit;

mod screen_calls;

pub use crate::tempfs::MAX_FILE_BYTES;
/// Longest time a spawned process may run (its own timeout, asked by the
/// plugin, is capped at this).
pub const MAX_SPAWN_TIMEOUT: Duration = Duration::from_secs(3600);
/// Longest chat line or report line a plugin may send.
pub const MAX_LINE_CHARS: usize = 8 * 1024;
/// Longest notice a plugin may show the customer at once
/// (`notify-customer`), in characters: a few sentences, not a document.
pub const MAX_NOTICE_CHARS: usize = 1024;

/// Why a host call was refused or failed (mirrors the WIT `host-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("capability not declared: {0}")]
    NotDeclared(String),
    #[error("permission denied: {0}")]
    Denied(String),
    #[error("limit reached: {0}")]
    Limit(String),
    #[error("failed: {0}")]
    Failed(String),
}

/// Log levels (mirrors the WIT `level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Where a plugin call meets its session: consent, output, chat, report,
/// streams, the session's end. Implemented by the agent (in a session, and
/// without one in the background); the test suite has its own. The native
/// capabilities are a separate trait, [`Natives`], that a port may offer.
pub trait SessionPort: Send + Sync {
    /// Asks consent for `cap` of `plugin` (blocking). `Err` carries the
    /// reason shown to the plugin and the operator.
    fn consent(&self, plugin: &Manifest, cap: Capability) -> Result<(), String>;
    /// Output streamed to the operator.
    fn output(&self, plugin: &str, text: &str);
    fn chat(&self, plugin: &str, text: &str);
    fn report(&self, plugin: &str, text: &str);
    /// A notice for the customer (`customer.notify`), shown on their screen
    /// and, for the record, on the operator's side. Where nobody sits at
    /// the customer's screen, it goes to the output, labelled.
    fn notify(&self, plugin: &str, text: &str) {
        self.output(plugin, &format!("[to the customer] {text}"));
    }
    /// A line a spawned process wrote (`stream`: "stdout" or "stderr"),
    /// streamed while the process runs.
    fn process_line(&self, plugin: &str, stream: &str, line: &str) {
        let _ = stream;
        self.output(plugin, line);
    }
    /// Whether the session this call belongs to has ended: a spawned
    /// process tree is then killed (checked while it runs).
    fn ended(&self) -> bool {
        false
    }
    /// The session's streams; `None` where nothing can receive them.
    fn streams(&self) -> Option<Arc<StreamHub>> {
        None
    }
    /// The native capabilities this host offers; `None`: none of them.
    fn natives(&self) -> Option<&dyn Natives> {
        None
    }
    /// Capabilities of `plugin` the customer withdrew since the last ask
    /// (the Stop button of the sharing indicator): a call or long-lived
    /// instance that holds them forgets them, and the next call needing
    /// one asks again. Each withdrawal is reported once.
    fn take_withdrawn(&self, plugin: &str) -> Vec<Capability> {
        let _ = plugin;
        Vec::new()
    }
}

/// The native capabilities behind host calls that must run in the agent
/// itself (see "What is native and why" in docs/architecture.md). Each
/// defaults to "not on this host".
pub trait Natives: Send + Sync {
    /// The user the operator is logged in as (`account.login`), whose
    /// identity spawned processes take; `None`: the agent's own.
    fn identity(&self) -> Option<Arc<Identity>> {
        None
    }
    /// The active login as another user, if any (`user-current`).
    fn login(&self) -> Option<wit::LoginInfo> {
        None
    }
    /// Logs the operator in as `user`: the agent asks the operator for the
    /// password, checks it with the system (PAM), opens the user's session
    /// and suspends the customer's own input, all or nothing.
    fn user_login(&self, plugin: &str, user: &str) -> Result<wit::LoginInfo, String> {
        let _ = (plugin, user);
        Err(NOT_ON_THIS_HOST.to_string())
    }
    /// Ends the login and gives the customer's input back; the login that
    /// ended, if there was one.
    fn user_logout(&self, plugin: &str) -> Result<Option<wit::LoginInfo>, String> {
        let _ = plugin;
        Err(NOT_ON_THIS_HOST.to_string())
    }
    /// Restarts the computer after taking and keeping a rejoin ticket; the
    /// agent rejoins the session afterwards.
    fn power_restart(&self, plugin: &str, reason: &str) -> Result<wit::RestartInfo, String> {
        let _ = (plugin, reason);
        Err(NOT_ON_THIS_HOST.to_string())
    }
    /// What the agent's admin configured for plugins; `None`: nothing.
    fn admin(&self) -> Option<Arc<dyn AdminResources>> {
        None
    }
    /// The display to share (`screen.capture`, `input.control`,
    /// `clipboard.text`); `None`: this host has none.
    fn screen(&self) -> Option<Arc<dyn ScreenAccess>> {
        None
    }
}

/// What the agent's admin names in the agent config for plugins: settings,
/// trusted document keys, HTTP endpoints with their credentials, commands.
/// The plugin picks among these by name; it can choose no address, no
/// program and no key itself. `Err` is the reason, for the plugin and the
/// operator (it never contains a credential).
pub trait AdminResources: Send + Sync {
    /// The settings for plugin `plugin`, as name/value pairs.
    fn settings(&self, plugin: &str) -> Vec<(String, String)>;
    /// Parses `data` as a signed document of `kind` and verifies it.
    fn verify_document(
        &self,
        kind: wit::DocumentKind,
        origin: &str,
        data: &[u8],
    ) -> Result<wit::VerifiedDocument, String>;
    /// A request to the endpoint `name` (`path` appended to its URL); an
    /// answer larger than `limit` bytes is an error.
    fn endpoint_request(
        &self,
        name: &str,
        request: &EndpointRequest<'_>,
        limit: usize,
    ) -> Result<crate::http::Response, String>;
    /// Runs the command `name`.
    fn admin_command(&self, name: &str) -> Result<ProcessOutput, String>;
}

/// One request to an admin-named endpoint.
#[derive(Debug, Clone, Copy)]
pub struct EndpointRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// What a host without the agent's native features answers.
pub const NOT_ON_THIS_HOST: &str = "this host does not provide that feature";

/// Result of a spawned process (mirrors the WIT `process-output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

/// What the agent provides to every plugin call.
#[derive(Debug, Clone)]
pub struct HostEnv {
    /// Parent of the per-call temporary folders (leftovers are removed at start).
    pub temp_root: PathBuf,
    /// Proxy for `http.request` (the agent's rules); `None`: direct.
    pub proxy: Option<lifeline_core::proxy::ProxySetting>,
    /// The admin's folders for `fs.folder`, by name.
    pub folders: crate::folder::Folders,
}

/// Everything one call of one plugin may touch.
pub struct CallContext {
    pub manifest: Arc<Manifest>,
    port: Arc<dyn SessionPort>,
    kv: Arc<KvStore>,
    env: Arc<HostEnv>,
    temp: Option<TempFolder>,
    output_used: u64,
    granted: HashSet<Capability>,
    /// Time spent outside the plugin's code — waiting for the customer's
    /// consent, or for a spawned process (bounded by its own timeout) — not
    /// counted against the call's time limit.
    pub host_wait: Duration,
    /// Set when the output limit was hit: the call ends with that error.
    pub flooded: bool,
    /// Streams this call opened; closed when it ends unless `keep_streams`.
    pub streams: Vec<u32>,
    /// A long-lived plugin's streams outlive one activation.
    pub keep_streams: bool,
    /// A long-lived plugin's timers (`timer-set`); `None` for a command.
    pub timers: Option<Arc<Mutex<Timers>>>,
}

impl Drop for CallContext {
    fn drop(&mut self) {
        if self.keep_streams || self.streams.is_empty() {
            return;
        }
        if let Some(hub) = self.port.streams() {
            for id in std::mem::take(&mut self.streams) {
                let _ = hub.close(&self.manifest.id, id, "the plugin call ended");
            }
        }
    }
}

impl CallContext {
    pub fn new(
        manifest: Arc<Manifest>,
        port: Arc<dyn SessionPort>,
        kv: Arc<KvStore>,
        env: Arc<HostEnv>,
    ) -> Self {
        CallContext {
            manifest,
            port,
            kv,
            env,
            temp: None,
            output_used: 0,
            granted: HashSet::new(),
            host_wait: Duration::ZERO,
            flooded: false,
            streams: Vec::new(),
            keep_streams: false,
            timers: None,
        }
    }

    /// A context of the same plugin and session with nothing granted,
    /// opened or used (kept in a long-lived instance between activations).
    pub(crate) fn idle_copy(&self) -> CallContext {
        let mut ctx = CallContext::new(
            Arc::clone(&self.manifest),
            Arc::clone(&self.port),
            Arc::clone(&self.kv),
            Arc::clone(&self.env),
        );
        ctx.keep_streams = true;
        ctx
    }

    /// What this call may use without asking again (a long-lived
    /// instance keeps it across activations).
    pub(crate) fn granted(&self) -> &HashSet<Capability> {
        &self.granted
    }

    pub(crate) fn set_granted(&mut self, granted: HashSet<Capability>) {
        self.granted = granted;
    }

    /// The user the operator is logged in as (`account.login`), whose
    /// identity spawned processes take, if any.
    fn identity(&self) -> Option<Arc<Identity>> {
        self.port.natives().and_then(|n| n.identity())
    }

    /// The permission gate every host call passes first.
    pub fn check(&mut self, call: HostCall) -> Result<(), HostError> {
        let cap = call.capability();
        if !self.granted.is_empty() {
            for gone in self.port.take_withdrawn(&self.manifest.id) {
                self.granted.remove(&gone);
            }
        }
        if !self.manifest.grants(cap) {
            return Err(HostError::NotDeclared(format!(
                "{} needs the capability \"{cap}\", which plugin.toml of {} does not declare",
                call.name(),
                self.manifest.id
            )));
        }
        if call.asks_consent() && !self.granted.contains(&cap) {
            let answer = off_the_clock(&mut self.host_wait, || {
                self.port.consent(&self.manifest, cap)
            });
            answer.map_err(|why| HostError::Denied(format!("\"{cap}\" was not allowed: {why}")))?;
            self.granted.insert(cap);
        }
        Ok(())
    }

    pub fn log(&mut self, level: Level, message: &str) {
        if self.check(HostCall::Log).is_err() {
            return;
        }
        let id = &self.manifest.id;
        match level {
            Level::Trace => tracing::trace!(plugin = %id, "{message}"),
            Level::Debug => tracing::debug!(plugin = %id, "{message}"),
            Level::Info => tracing::info!(plugin = %id, "{message}"),
            Level::Warn => tracing::warn!(plugin = %id, "{message}"),
            Level::Error => tracing::error!(plugin = %id, "{message}"),
        }
    }

    /// Counts `bytes` against the call's output limit.
    fn spend_output(&mut self, bytes: usize) -> Result<(), HostError> {
        let limit = self.manifest.limits.output_bytes;
        if self.output_used + bytes as u64 > limit {
            self.flooded = true;
            return Err(HostError::Limit(format!(
                "output of one call is limited to {} KiB",
                limit >> 10
            )));
        }
        self.output_used += bytes as u64;
        Ok(())
    }

    pub fn send_output(&mut self, text: &str) -> Result<(), HostError> {
        self.check(HostCall::SendOutput)?;
        self.spend_output(text.len())?;
        self.port.output(&self.manifest.id, text);
        Ok(())
    }

    /// Shows the customer a notice; it reaches the operator's side too, so
    /// it counts against the call's output.
    pub fn notify_customer(&mut self, text: &str) -> Result<(), HostError> {
        self.check(HostCall::NotifyCustomer)?;
        if text.chars().count() > MAX_NOTICE_CHARS {
            return Err(HostError::Limit(format!(
                "a notice to the customer is limited to {MAX_NOTICE_CHARS} characters"
            )));
        }
        if text.trim().is_empty() {
            return Err(HostError::Failed(
                "an empty notice says nothing to the customer".into(),
            ));
        }
        self.spend_output(text.len())?;
        self.port.notify(&self.manifest.id, text);
        Ok(())
    }

    fn line(text: &str) -> Result<(), HostError> {
        if text.chars().count() > MAX_LINE_CHARS {
            return Err(HostError::Limit(format!(
                "a line is limited to {MAX_LINE_CHARS} characters"
            )));
        }
        Ok(())
    }

    pub fn send_chat(&mut self, text: &str) -> Result<(), HostError> {
        self.check(HostCall::SendChat)?;
        Self::line(text)?;
        self.port.chat(&self.manifest.id, text);
        Ok(())
    }

    pub fn report_line(&mut self, text: &str) -> Result<(), HostError> {
        self.check(HostCall::ReportLine)?;
        Self::line(text)?;
        self.port.report(&self.manifest.id, text);
        Ok(())
    }

    pub fn kv_get(&mut self, key: &str) -> Result<Option<String>, HostError> {
        self.check(HostCall::KvGet)?;
        self.kv.get(key).map_err(HostError::Failed)
    }

    pub fn kv_set(&mut self, key: &str, value: &str) -> Result<(), HostError> {
        self.check(HostCall::KvSet)?;
        self.kv.set(key, value)
    }

    pub fn kv_delete(&mut self, key: &str) -> Result<(), HostError> {
        self.check(HostCall::KvDelete)?;
        self.kv.delete(key).map_err(HostError::Failed)
    }

    pub fn system_info(
        &mut self,
        category: wit::InfoCategory,
    ) -> Result<wit::SystemInfo, HostError> {
        self.check(HostCall::SystemInfo)?;
        Ok(crate::sysinfo::category(category))
    }

    fn temp(&mut self) -> Result<&TempFolder, HostError> {
        if self.temp.is_none() {
            // The logged-in user's processes work in it.
            let owner = self.identity();
            let folder =
                TempFolder::create(&self.env.temp_root, &self.manifest.id, owner.as_deref())?;
            self.temp = Some(folder);
        }
        Ok(self.temp.as_ref().expect("created just above"))
    }

    pub fn temp_dir(&mut self) -> Result<String, HostError> {
        self.check(HostCall::TempDir)?;
        Ok(self.temp()?.path().display().to_string())
    }

    /// Removes the call's temporary folder with everything in it and starts
    /// a new, empty one, which the call's files and processes use from then
    /// on (a plugin that runs one job after another gives each a fresh
    /// folder). Returns the new folder's path.
    pub fn temp_renew(&mut self) -> Result<String, HostError> {
        self.check(HostCall::TempRenew)?;
        if let Some(old) = self.temp.take() {
            old.remove()?;
        }
        Ok(self.temp()?.path().display().to_string())
    }

    /// Reads a file of the temporary folder (see [`TempFolder::read`]).
    pub fn fs_read(&mut self, rel: &str) -> Result<Vec<u8>, HostError> {
        self.check(HostCall::FsRead)?;
        self.temp()?.read(rel)
    }

    /// Writes a file of the temporary folder, handed to the logged-in user
    /// (see [`TempFolder::write`]).
    pub fn fs_write(&mut self, rel: &str, data: &[u8]) -> Result<(), HostError> {
        self.check(HostCall::FsWrite)?;
        let owner = self.identity();
        self.temp()?.write(rel, data, owner.as_deref())
    }

    pub fn folder_list(
        &mut self,
        folder: &str,
        rel: &str,
    ) -> Result<Vec<wit::DirEntry>, HostError> {
        self.check(HostCall::FolderList)?;
        crate::folder::list(&self.env.folders, &self.manifest.folders, folder, rel)
    }

    pub fn folder_read(&mut self, folder: &str, rel: &str) -> Result<Vec<u8>, HostError> {
        self.check(HostCall::FolderRead)?;
        crate::folder::read(&self.env.folders, &self.manifest.folders, folder, rel)
    }

    pub fn folder_write(&mut self, folder: &str, rel: &str, data: &[u8]) -> Result<(), HostError> {
        self.check(HostCall::FolderWrite)?;
        crate::folder::write(&self.env.folders, &self.manifest.folders, folder, rel, data)
    }

    pub fn spawn(
        &mut self,
        program: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<ProcessOutput, HostError> {
        self.check(HostCall::Spawn)?;
        let limit = self.manifest.limits.output_bytes as usize;
        let cwd = self.temp()?.path().to_owned();
        let timeout = timeout.min(MAX_SPAWN_TIMEOUT);
        let (port, id) = (Arc::clone(&self.port), self.manifest.id.clone());
        let mut streamed = 0usize;
        let mut on_line = |stream: &str, line: &str| {
            // Lines stream to the session within the call's output limit.
            streamed += line.len() + 1;
            if streamed <= limit {
                port.process_line(&id, stream, line);
            }
        };
        let identity = self.identity();
        let job = process::Job {
            program,
            args,
            cwd: &cwd,
            timeout,
            output_limit: limit,
            identity: identity.as_deref(),
        };
        let session = Arc::clone(&self.port);
        // The process runs on this thread: its time is the call's own work,
        // not time the plugin's code spent; keep the time limit fair. When
        // the session ends, so does the process tree.
        off_the_clock(&mut self.host_wait, || {
            process::run_job(&job, &mut on_line, &|| session.ended())
        })
        .map_err(HostError::Failed)
    }

    pub fn http_request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<crate::http::Response, HostError> {
        self.check(HostCall::HttpRequest)?;
        let limit = self.manifest.limits.output_bytes as usize;
        crate::http::request(
            &self.manifest.http_hosts,
            self.env.proxy.as_ref(),
            method,
            url,
            headers,
            body,
            limit,
        )
    }

    fn admin(&mut self, call: HostCall) -> Result<Arc<dyn AdminResources>, HostError> {
        self.check(call)?;
        self.port
            .natives()
            .and_then(|n| n.admin())
            .ok_or_else(|| HostError::Failed(format!("{NOT_ON_THIS_HOST}: no admin settings")))
    }

    pub fn plugin_settings(&mut self) -> Result<Vec<(String, String)>, HostError> {
        let id = self.manifest.id.clone();
        Ok(self.admin(HostCall::PluginSettings)?.settings(&id))
    }

    pub fn verify_document(
        &mut self,
        kind: wit::DocumentKind,
        origin: &str,
        data: &[u8],
    ) -> Result<wit::VerifiedDocument, HostError> {
        Self::line(origin)?;
        self.admin(HostCall::VerifyDocument)?
            .verify_document(kind, origin, data)
            .map_err(HostError::Failed)
    }

    /// A request to an endpoint of the manifest's `[endpoints] allow`;
    /// waiting for it is off the plugin's clock.
    pub fn endpoint_request(
        &mut self,
        name: &str,
        req: &EndpointRequest<'_>,
    ) -> Result<crate::http::Response, HostError> {
        let admin = self.admin(HostCall::EndpointRequest)?;
        if !self.manifest.endpoints.iter().any(|e| e == name) {
            return Err(HostError::Denied(format!(
                "endpoint {name:?} is not in the plugin's [endpoints] allow"
            )));
        }
        // The answer reaches the plugin: the call's output limit bounds it.
        let limit = self.manifest.limits.output_bytes as usize;
        off_the_clock(&mut self.host_wait, || {
            admin.endpoint_request(name, req, limit)
        })
        .map_err(HostError::Failed)
    }

    /// Runs a command of the manifest's `[admin_commands] allow`, off the
    /// plugin's clock.
    pub fn admin_command(&mut self, name: &str) -> Result<ProcessOutput, HostError> {
        let admin = self.admin(HostCall::AdminCommand)?;
        if !self.manifest.admin_commands.iter().any(|e| e == name) {
            return Err(HostError::Denied(format!(
                "command {name:?} is not in the plugin's [admin_commands] allow"
            )));
        }
        off_the_clock(&mut self.host_wait, || admin.admin_command(name)).map_err(HostError::Failed)
    }

    /// Logs the operator in as another user (see [`Natives::user_login`]);
    /// waiting for the operator's password is off the plugin's clock.
    pub fn user_login(&mut self, user: &str) -> Result<wit::LoginInfo, HostError> {
        self.check(HostCall::UserLogin)?;
        let id = self.manifest.id.clone();
        let port = Arc::clone(&self.port);
        off_the_clock(&mut self.host_wait, || {
            native(&*port)?.user_login(&id, user)
        })
        .map_err(HostError::Failed)
    }

    pub fn user_logout(&mut self) -> Result<Option<wit::LoginInfo>, HostError> {
        self.check(HostCall::UserLogout)?;
        let id = self.manifest.id.clone();
        let port = Arc::clone(&self.port);
        off_the_clock(&mut self.host_wait, || native(&*port)?.user_logout(&id))
            .map_err(HostError::Failed)
    }

    pub fn user_current(&mut self) -> Result<Option<wit::LoginInfo>, HostError> {
        self.check(HostCall::UserCurrent)?;
        Ok(self.port.natives().and_then(|n| n.login()))
    }

    /// Restarts the computer (see [`Natives::power_restart`]); waiting for
    /// the broker's ticket and the power backend is off the plugin's clock.
    pub fn power_restart(&mut self, reason: &str) -> Result<wit::RestartInfo, HostError> {
        self.check(HostCall::PowerRestart)?;
        Self::line(reason)?;
        let id = self.manifest.id.clone();
        let port = Arc::clone(&self.port);
        off_the_clock(&mut self.host_wait, || {
            native(&*port)?.power_restart(&id, reason)
        })
        .map_err(HostError::Failed)
    }

    fn hub(&mut self, call: HostCall) -> Result<Arc<StreamHub>, HostError> {
        self.check(call)?;
        self.port.streams().ok_or_else(|| {
            HostError::Failed(format!("{NOT_ON_THIS_HOST}: no session to stream to"))
        })
    }

    pub fn stream_open(
        &mut self,
        name: &str,
        content_type: &str,
        mode: Mode,
    ) -> Result<u32, HostError> {
        let hub = self.hub(HostCall::StreamOpen)?;
        let id = hub.open(&self.manifest.id, name, content_type, mode)?;
        self.streams.push(id);
        Ok(id)
    }

    pub fn stream_credit(&mut self, id: u32) -> Result<u64, HostError> {
        self.hub(HostCall::StreamCredit)?
            .credit(&self.manifest.id, id)
    }

    /// Sends a frame; waiting for credit is off the plugin's clock.
    pub fn stream_send(&mut self, id: u32, frame: Vec<u8>) -> Result<Sent, HostError> {
        let hub = self.hub(HostCall::StreamSend)?;
        let (port, plugin) = (Arc::clone(&self.port), self.manifest.id.clone());
        off_the_clock(&mut self.host_wait, || {
            hub.send(&plugin, id, frame, &|| port.ended())
        })
    }

    pub fn stream_recv(
        &mut self,
        id: u32,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, HostError> {
        let hub = self.hub(HostCall::StreamRecv)?;
        let timeout = timeout.min(MAX_RECV_WAIT);
        let plugin = self.manifest.id.clone();
        off_the_clock(&mut self.host_wait, || hub.recv(&plugin, id, timeout))
    }

    pub fn stream_close(&mut self, id: u32) -> Result<(), HostError> {
        let hub = self.hub(HostCall::StreamClose)?;
        hub.close(&self.manifest.id, id, "closed by the plugin")?;
        self.streams.retain(|s| *s != id);
        Ok(())
    }

    /// Sets a one-shot timer of a long-lived plugin; returns its id.
    pub fn timer_set(&mut self, after: Duration) -> Result<u32, HostError> {
        self.check(HostCall::TimerSet)?;
        let timers = self.timers.as_ref().ok_or_else(|| {
            HostError::Failed(
                "timers belong to long-lived plugins (session events); a command cannot set one"
                    .into(),
            )
        })?;
        timers.lock().unwrap_or_else(|p| p.into_inner()).set(after)
    }
}

/// Longest a `stream-recv` waits (its own timeout is capped at this).
pub const MAX_RECV_WAIT: Duration = Duration::from_secs(60);

/// The port's native capabilities, or why there are none.
fn native(port: &dyn SessionPort) -> Result<&dyn Natives, String> {
    port.natives().ok_or_else(|| NOT_ON_THIS_HOST.to_string())
}

/// Runs `f` (waiting on the customer, the operator, a spawned process or the
/// back office) and adds its time to `host_wait`, which the call's time
/// limit does not count.
fn off_the_clock<T>(host_wait: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let r = f();
    *host_wait += t0.elapsed();
    r
}
