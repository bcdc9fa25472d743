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
use crate::service::Timers;
use crate::stream::{Mode, Sent, StreamHub};
use crate::tempfs::TempFolder;
use crate::wit;

pub use crate::tempfs::MAX_FILE_BYTES;
/// Longest time a spawned process may run (its own timeout, asked by the
/// plugin, is capped at this).
pub const MAX_SPAWN_TIMEOUT: Duration = Duration::from_secs(3600);
/// Longest chat line or report line a plugin may send.
pub const MAX_LINE_CHARS: usize = 8 * 1024;

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
}

/// The native capabilities behind host calls that must run in the agent
/// itself (see "What is native and why" in docs/architecture.md). Each
/// defaults to "not on this host".
pub trait Natives: Send + Sync {
    /// The user the operator is logged in as (run-as), whose identity
    /// spawned processes take; `None`: the agent's own.
    fn identity(&self) -> Option<Arc<Identity>> {
        None
    }
    /// Log the operator in as `user`: the agent asks the operator for the
    /// password, checks it with the system (PAM) and suspends the
    /// customer's own access. Returns what happened, for the operator.
    fn run_as_login(&self, plugin: &str, user: &str) -> Result<String, String> {
        let _ = (plugin, user);
        Err(NOT_ON_THIS_HOST.to_string())
    }
    /// End the run-as login and give the customer's access back.
    fn run_as_logout(&self, plugin: &str) -> Result<String, String> {
        let _ = plugin;
        Err(NOT_ON_THIS_HOST.to_string())
    }
    /// Restart the computer; the agent rejoins the session afterwards.
    fn reboot(&self, plugin: &str, reason: &str) -> Result<String, String> {
        let _ = (plugin, reason);
        Err(NOT_ON_THIS_HOST.to_string())
    }
    /// The license back office; `None` when the agent has no remote service.
    fn license(&self) -> Option<Arc<dyn LicenseService>> {
        None
    }
}

/// The license back office, as the agent provides it to plugins holding
/// `license.update` (see `lifeline-license`). Each answer is the WIT
/// record; `Err` is the reason, for the plugin and the operator.
pub trait LicenseService: Send + Sync {
    /// The installed license and the last check.
    fn about(&self) -> Result<wit::LicenseAbout, String>;
    /// Asks the back office for a newer license; announces it to the customer.
    fn check(&self) -> Result<wit::LicenseCheck, String>;
    /// Installs the license the last check offered (checking first if none).
    fn install(&self) -> Result<wit::LicenseInstall, String>;
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
    /// Proxy for `http.request`, e.g. `http://proxy.example:3128`.
    pub proxy: Option<String>,
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

    /// The run-as user whose identity spawned processes take, if any.
    fn identity(&self) -> Option<Arc<Identity>> {
        self.port.natives().and_then(|n| n.identity())
    }

    /// The permission gate every host call passes first.
    pub fn check(&mut self, call: HostCall) -> Result<(), HostError> {
        let cap = call.capability();
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

    pub fn send_output(&mut self, text: &str) -> Result<(), HostError> {
        self.check(HostCall::SendOutput)?;
        let limit = self.manifest.limits.output_bytes;
        if self.output_used + text.len() as u64 > limit {
            self.flooded = true;
            return Err(HostError::Limit(format!(
                "output of one call is limited to {} KiB",
                limit >> 10
            )));
        }
        self.output_used += text.len() as u64;
        self.port.output(&self.manifest.id, text);
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
            // The run-as user's processes work in it.
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

    /// Writes a file of the temporary folder, handed to the run-as user
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
            self.env.proxy.as_deref(),
            method,
            url,
            headers,
            body,
            limit,
        )
    }

    fn license(&mut self, call: HostCall) -> Result<Arc<dyn LicenseService>, HostError> {
        self.check(call)?;
        self.port
            .natives()
            .and_then(|n| n.license())
            .ok_or_else(|| {
                HostError::Failed(
                    "this agent has no [remote_service] configured: no license back office".into(),
                )
            })
    }

    pub fn license_about(&mut self) -> Result<wit::LicenseAbout, HostError> {
        self.license(HostCall::LicenseAbout)?
            .about()
            .map_err(HostError::Failed)
    }

    pub fn license_check(&mut self) -> Result<wit::LicenseCheck, HostError> {
        let svc = self.license(HostCall::LicenseCheck)?;
        off_the_clock(&mut self.host_wait, || svc.check()).map_err(HostError::Failed)
    }

    pub fn run_as_login(&mut self, user: &str) -> Result<String, HostError> {
        self.check(HostCall::RunAsLogin)?;
        let id = self.manifest.id.clone();
        let port = Arc::clone(&self.port);
        off_the_clock(&mut self.host_wait, || {
            native(&*port)?.run_as_login(&id, user)
        })
        .map_err(HostError::Failed)
    }

    pub fn run_as_logout(&mut self) -> Result<String, HostError> {
        self.check(HostCall::RunAsLogout)?;
        let id = self.manifest.id.clone();
        let port = Arc::clone(&self.port);
        off_the_clock(&mut self.host_wait, || native(&*port)?.run_as_logout(&id))
            .map_err(HostError::Failed)
    }

    pub fn run_as_status(&mut self) -> Result<Option<String>, HostError> {
        self.check(HostCall::RunAsStatus)?;
        Ok(self.identity().map(|i| i.user.clone()))
    }

    pub fn reboot(&mut self, reason: &str) -> Result<String, HostError> {
        self.check(HostCall::Reboot)?;
        Self::line(reason)?;
        let id = self.manifest.id.clone();
        let port = Arc::clone(&self.port);
        off_the_clock(&mut self.host_wait, || native(&*port)?.reboot(&id, reason))
            .map_err(HostError::Failed)
    }

    pub fn license_install(&mut self) -> Result<wit::LicenseInstall, HostError> {
        let svc = self.license(HostCall::LicenseInstall)?;
        off_the_clock(&mut self.host_wait, || svc.install()).map_err(HostError::Failed)
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
