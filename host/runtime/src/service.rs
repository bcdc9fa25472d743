//! Long-lived plugins: a plugin that declares `session.events` (and exports
//! the `service` world, or defines `on_event` in Lua) gets one instance per
//! session, on a thread of its own. The instance hears the session's events
//! in order, one activation at a time, each under the plugin's limits (the
//! time limit counts per activation), and its timers. At a safe point
//! between two activations it is swapped for a hot-reloaded version: the
//! old instance's `stop` runs, the new one's `start(reload)`, and the events
//! that arrived meanwhile wait in the queue, so none is lost. `state.kv` is
//! the plugin's, not the instance's: the new version finds it as it was.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine::{CallError, Code, Loaded};
use crate::host::{CallContext, HostEnv, HostError, SessionPort};
use crate::kv::KvStore;
use crate::plugins::PluginHost;
use crate::wit::{Arg, SessionEvent, StartReason};

/// Events waiting for one long-lived plugin. The agent never waits for a
/// plugin: an event beyond this is dropped and logged (a plugin this far
/// behind is stuck; its activations are bounded by its time limit).
pub const MAX_QUEUED_EVENTS: usize = 1024;
/// Timers one plugin may have pending.
pub const MAX_TIMERS: usize = 64;
/// How often an idle instance looks for a hot-reloaded version.
pub const RELOAD_POLL: Duration = Duration::from_millis(100);
/// Restarts in a row after which a failing long-lived plugin is stopped for
/// the rest of the session.
pub const MAX_RESTARTS: u32 = 3;
/// Longest the session's end waits for a plugin's `stop`.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// A long-lived plugin's pending one-shot timers.
#[derive(Debug, Default)]
pub struct Timers {
    next_id: u32,
    due: Vec<(Instant, u32)>,
}

impl Timers {
    pub fn set(&mut self, after: Duration) -> Result<u32, HostError> {
        if self.due.len() >= MAX_TIMERS {
            return Err(HostError::Limit(format!(
                "at most {MAX_TIMERS} timers may be pending"
            )));
        }
        self.next_id = self.next_id.wrapping_add(1);
        self.due.push((Instant::now() + after, self.next_id));
        Ok(self.next_id)
    }
    fn next_due(&self) -> Option<Instant> {
        self.due.iter().map(|(t, _)| *t).min()
    }
    fn take_due(&mut self, now: Instant) -> Vec<u32> {
        let mut fired: Vec<(Instant, u32)> = Vec::new();
        self.due.retain(|d| {
            let due = d.0 <= now;
            if due {
                fired.push(*d);
            }
            !due
        });
        fired.sort();
        fired.into_iter().map(|(_, id)| id).collect()
    }
}

/// The kebab-case name of an event, as in the WIT file and for Lua.
pub fn event_name(e: &SessionEvent) -> &'static str {
    match e {
        SessionEvent::Started => "started",
        SessionEvent::Rejoined => "rejoined",
        SessionEvent::OperatorAttached(_) => "operator-attached",
        SessionEvent::OperatorLeft(_) => "operator-left",
        SessionEvent::AccessSuspended(_) => "access-suspended",
        SessionEvent::AccessRestored(_) => "access-restored",
        SessionEvent::Timer(_) => "timer",
        SessionEvent::StreamInput(_) => "stream-input",
        SessionEvent::Ending(_) => "ending",
    }
}

/// The kebab-case name of a start reason.
pub fn reason_name(r: StartReason) -> &'static str {
    match r {
        StartReason::Session => "session",
        StartReason::Reload => "reload",
        StartReason::Restart => "restart",
        StartReason::Background => "background",
    }
}

/// What one activation does.
#[derive(Debug, Clone)]
pub enum Activation {
    Start(StartReason),
    Event(SessionEvent),
    Stop,
    /// A live command (`live = true` in plugin.toml): `run` in the
    /// session's instance.
    Run(String, Vec<Arg>),
}

/// A live command's answer.
type Reply = std::sync::mpsc::Sender<Result<String, CallError>>;

enum Msg {
    Event(SessionEvent),
    Call(String, Vec<Arg>, Reply),
    Stop,
}

/// A running instance, WASM or Lua.
pub(crate) enum Instance {
    Wasm(crate::wasm_live::WasmLive),
    /// A Lua plugin's state lives in its `LuaPlugin`.
    Lua,
}

struct Runner {
    host: Arc<PluginHost>,
    id: String,
    port: Arc<dyn SessionPort>,
    env: Arc<HostEnv>,
    timers: Arc<Mutex<Timers>>,
    /// Streams the instance opened; they outlive activations and reloads.
    streams: Vec<u32>,
    loaded: Arc<Loaded>,
    kv: Arc<KvStore>,
    instance: Option<Instance>,
    restarts: u32,
    /// What the customer allowed this instance: kept across activations
    /// (less what they withdraw), so a frame or an input event does not
    /// ask again.
    granted: std::collections::HashSet<crate::capability::Capability>,
}

impl Runner {
    fn context(&self) -> CallContext {
        let mut ctx = CallContext::new(
            Arc::clone(&self.loaded.manifest),
            Arc::clone(&self.port),
            Arc::clone(&self.kv),
            Arc::clone(&self.env),
        );
        ctx.keep_streams = true;
        ctx.timers = Some(Arc::clone(&self.timers));
        ctx.set_granted(self.granted.clone());
        ctx
    }

    /// Runs one activation on the instance (created first if needed).
    fn activate(&mut self, what: Activation) -> Result<String, CallError> {
        let mut ctx = self.context();
        if self.instance.is_none() {
            let (back, inst) = Instance::create(&self.loaded, ctx);
            ctx = back;
            self.instance = Some(inst?);
        }
        let inst = self.instance.as_mut().expect("created just above");
        let (mut ctx, result) = inst.activate(&self.loaded, ctx, &what);
        self.streams.append(&mut ctx.streams);
        self.granted = ctx.granted().clone();
        drop(ctx);
        result
    }

    /// An activation with the failure handling: a limit or crash drops the
    /// instance (the next activation starts a fresh one with
    /// `start(restart)`); errors are told to the operator.
    fn step(&mut self, what: Activation) -> bool {
        self.step_with(what, |_| {})
    }

    /// [`Runner::step`], handing the activation's own result to `answer`
    /// (a live command's reply) before any restart.
    fn step_with(
        &mut self,
        what: Activation,
        answer: impl FnOnce(Result<String, CallError>),
    ) -> bool {
        let result = self.activate(what.clone());
        answer(result.clone());
        match result {
            Ok(_) => {
                self.restarts = 0;
                true
            }
            Err(e @ (CallError::Limit(_) | CallError::Crashed(_))) => {
                self.instance = None;
                self.restarts += 1;
                let id = &self.id;
                self.port
                    .output(id, &format!("plugin {id}: {e}; restarting it"));
                if self.restarts > MAX_RESTARTS {
                    self.port.output(
                        id,
                        &format!("plugin {id} failed {MAX_RESTARTS} times in a row; stopped for this session"),
                    );
                    return false;
                }
                self.step(Activation::Start(StartReason::Restart))
            }
            Err(e) => {
                let id = &self.id;
                self.port.output(id, &format!("plugin {id}: {e}"));
                true
            }
        }
    }

    /// Swaps in a hot-reloaded version at this safe point; false when the
    /// plugin is gone.
    fn follow_reload(&mut self) -> bool {
        let Some((loaded, kv)) = self.host.current(&self.id) else {
            return false;
        };
        if Arc::ptr_eq(&loaded, &self.loaded) {
            return true;
        }
        if self.instance.is_some() {
            let _ = self.activate(Activation::Stop);
        }
        self.instance = None;
        self.loaded = loaded;
        self.kv = kv;
        if !self.loaded.is_service() {
            self.port.output(
                &self.id,
                &format!(
                    "plugin {} no longer handles session events; stopped",
                    self.id
                ),
            );
            return false;
        }
        self.step(Activation::Start(StartReason::Reload))
    }

    fn run(mut self, rx: Receiver<Msg>, first: StartReason) {
        if !self.step(Activation::Start(first)) {
            return self.finish();
        }
        loop {
            let next = self
                .timers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_due();
            let wait = next
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(RELOAD_POLL)
                .min(RELOAD_POLL);
            let msg = rx.recv_timeout(wait);
            if !self.follow_reload() {
                return self.finish();
            }
            let ok = match msg {
                Ok(Msg::Event(ev)) => self.step(Activation::Event(ev)),
                Ok(Msg::Call(command, args, reply)) => {
                    self.step_with(Activation::Run(command, args), |r| {
                        let _ = reply.send(r);
                    })
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    if self.instance.is_some() {
                        let _ = self.activate(Activation::Stop);
                    }
                    return self.finish();
                }
                Err(RecvTimeoutError::Timeout) => {
                    let due = self
                        .timers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take_due(Instant::now());
                    due.into_iter()
                        .all(|t| self.step(Activation::Event(SessionEvent::Timer(t))))
                }
            };
            if !ok {
                return self.finish();
            }
        }
    }

    fn finish(mut self) {
        self.instance = None;
        if let Some(hub) = self.port.streams() {
            for id in std::mem::take(&mut self.streams) {
                let _ = hub.close(&self.id, id, "the plugin stopped");
            }
        }
    }
}

impl Instance {
    fn create(loaded: &Loaded, ctx: CallContext) -> (CallContext, Result<Instance, CallError>) {
        match &loaded.code {
            Code::Wasm(w) => {
                let (ctx, r) = crate::wasm_live::WasmLive::new(w, ctx);
                (ctx, r.map(Instance::Wasm))
            }
            Code::Lua(_) => (ctx, Ok(Instance::Lua)),
        }
    }

    fn activate(
        &mut self,
        loaded: &Loaded,
        ctx: CallContext,
        what: &Activation,
    ) -> (CallContext, Result<String, CallError>) {
        match (self, &loaded.code) {
            (Instance::Wasm(w), _) => w.activate(ctx, what),
            (Instance::Lua, Code::Lua(l)) => l.activate(ctx, what),
            (Instance::Lua, Code::Wasm(_)) => (
                ctx,
                Err(CallError::Load("the plugin changed runtime".into())),
            ),
        }
    }
}

/// One long-lived plugin of a session.
struct Service {
    id: String,
    tx: SyncSender<Msg>,
    thread: JoinHandle<()>,
}

/// The long-lived plugins of one session.
#[derive(Default)]
pub struct Services {
    running: Mutex<Vec<Service>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("running", &self.ids())
            .finish()
    }
}

impl Services {
    /// Starts an instance of every long-lived plugin of `host` for a
    /// session, with `start(session)`.
    pub fn start(host: &Arc<PluginHost>, port: Arc<dyn SessionPort>) -> Services {
        Self::start_with(host, port, StartReason::Session)
    }

    /// Starts every long-lived plugin with `start(reason)`; `background`
    /// runs them without a session (the agent service).
    pub fn start_with(
        host: &Arc<PluginHost>,
        port: Arc<dyn SessionPort>,
        reason: StartReason,
    ) -> Services {
        let mut running = Vec::new();
        for id in host.service_ids() {
            let Some((loaded, kv)) = host.current(&id) else {
                continue;
            };
            let runner = Runner {
                host: Arc::clone(host),
                id: id.clone(),
                port: Arc::clone(&port),
                env: host.env(),
                timers: Arc::new(Mutex::new(Timers::default())),
                streams: Vec::new(),
                loaded,
                kv,
                instance: None,
                restarts: 0,
                granted: Default::default(),
            };
            let (tx, rx) = sync_channel(MAX_QUEUED_EVENTS);
            let thread = std::thread::Builder::new()
                .name(format!("plugin-{id}"))
                .spawn(move || runner.run(rx, reason));
            match thread {
                Ok(thread) => running.push(Service { id, tx, thread }),
                Err(e) => tracing::error!(plugin = %id, "cannot start the plugin's thread: {e}"),
            }
        }
        Services {
            running: Mutex::new(running),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Vec<Service>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The plugins running.
    pub fn ids(&self) -> Vec<String> {
        self.running().iter().map(|s| s.id.clone()).collect()
    }

    fn post(s: &Service, ev: SessionEvent) {
        match s.tx.try_send(Msg::Event(ev)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(Msg::Event(ev))) => tracing::warn!(
                plugin = %s.id,
                "event {} dropped: {MAX_QUEUED_EVENTS} events already wait for this plugin",
                event_name(&ev)
            ),
            Err(TrySendError::Full(_)) => {}
        }
    }

    /// Runs a live command in `plugin`'s instance of this session, after
    /// the events before it; `None` when the plugin is not running here.
    /// Blocking: call from a blocking thread.
    pub fn call(
        &self,
        plugin: &str,
        command: &str,
        args: Vec<Arg>,
    ) -> Option<Result<String, CallError>> {
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let running = self.running();
            let s = running.iter().find(|s| s.id == plugin)?;
            let msg = Msg::Call(command.to_string(), args, tx);
            if let Err(e) = s.tx.try_send(msg) {
                let why = match e {
                    TrySendError::Full(_) => {
                        format!("plugin {plugin} is {MAX_QUEUED_EVENTS} events behind; try again")
                    }
                    TrySendError::Disconnected(_) => format!("plugin {plugin} has stopped"),
                };
                return Some(Err(CallError::Plugin(why)));
            }
        }
        Some(rx.recv().unwrap_or_else(|_| {
            Err(CallError::Plugin(format!(
                "plugin {plugin} stopped before answering {command}"
            )))
        }))
    }

    /// Tells every long-lived plugin; never waits.
    pub fn event(&self, ev: &SessionEvent) {
        for s in self.running().iter() {
            Self::post(s, ev.clone());
        }
    }

    /// Tells one plugin (input on its stream).
    pub fn event_to(&self, plugin: &str, ev: SessionEvent) {
        if let Some(s) = self.running().iter().find(|s| s.id == plugin) {
            Self::post(s, ev);
        }
    }

    /// The session ends: every plugin hears `ending(reason)`, then `stop`.
    /// Blocking (at most [`STOP_WAIT`] per plugin); call off the async loop.
    pub fn stop(&self, reason: &str) {
        let running = std::mem::take(&mut *self.running());
        for s in &running {
            Self::post(s, SessionEvent::Ending(reason.to_string()));
            let _ = s.tx.try_send(Msg::Stop);
        }
        let deadline = Instant::now() + STOP_WAIT;
        for Service { id, tx, thread } in running {
            // Without a sender the thread stops once the queue is drained,
            // even if the Stop did not fit.
            drop(tx);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!(plugin = %id, "did not stop within {STOP_WAIT:?}; left behind");
            }
        }
    }
}
