//! WASM plugins: wasmtime component model with one shared engine, the
//! pooling instance allocator, `InstancePre` per plugin, a compiled-artifact
//! cache, epoch interruption for time limits and `StoreLimits` for memory.
//! WASI has no preopened folders, environment, network or inherited stdio:
//! everything a plugin does goes through the host API and its capabilities.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::engine::CallError;
use crate::host::{CallContext, HostError, Level};
use crate::manifest::{MAX_MEMORY_MB, Manifest};
use crate::wasm_cache::WasmCache;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../sdk/wit",
    additional_derives: [serde::Serialize, serde::Deserialize],
});

use crate::stream::Mode;
use lifeline::plugin::{host, types};

/// The WIT record of an HTTP response.
fn response_record(r: crate::http::Response) -> types::HttpResponse {
    types::HttpResponse {
        status: r.status,
        headers: r.headers,
        body: r.body,
    }
}

/// The WIT record of a process's output.
fn process_record(o: crate::host::ProcessOutput) -> types::ProcessOutput {
    types::ProcessOutput {
        exit_code: o.exit_code,
        stdout: o.stdout,
        stderr: o.stderr,
        timed_out: o.timed_out,
    }
}

/// Interval of the engine's epoch ticker; time limits are checked this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Bytes of a guest's stderr kept for the crash message (panics print there).
pub const STDERR_KEPT: usize = 4096;
/// Plugin instances alive at once (pooling allocator slots).
pub const POOL_INSTANCES: u32 = 256;
/// WASM stack per instance.
pub const MAX_WASM_STACK: usize = 1 << 20;

/// The store data of one call.
pub(crate) struct State {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) ctx: CallContext,
    pub(crate) started: Instant,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn wit_err(e: HostError) -> types::HostError {
    match e {
        HostError::NotDeclared(m) => types::HostError::NotDeclared(m),
        HostError::Denied(m) => types::HostError::Denied(m),
        HostError::Limit(m) => types::HostError::Limit(m),
        HostError::Failed(m) => types::HostError::Failed(m),
    }
}

impl types::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: types::Level, message: String) {
        let level = match level {
            types::Level::Trace => Level::Trace,
            types::Level::Debug => Level::Debug,
            types::Level::Info => Level::Info,
            types::Level::Warn => Level::Warn,
            types::Level::Error => Level::Error,
        };
        self.ctx.log(level, &message);
    }
    fn send_output(&mut self, text: String) -> Result<(), types::HostError> {
        self.ctx.send_output(&text).map_err(wit_err)
    }
    fn send_chat(&mut self, text: String) -> Result<(), types::HostError> {
        self.ctx.send_chat(&text).map_err(wit_err)
    }
    fn report_line(&mut self, text: String) -> Result<(), types::HostError> {
        self.ctx.report_line(&text).map_err(wit_err)
    }
    fn notify_customer(&mut self, text: String) -> Result<(), types::HostError> {
        self.ctx.notify_customer(&text).map_err(wit_err)
    }
    fn kv_get(&mut self, key: String) -> Result<Option<String>, types::HostError> {
        self.ctx.kv_get(&key).map_err(wit_err)
    }
    fn kv_set(&mut self, key: String, value: String) -> Result<(), types::HostError> {
        self.ctx.kv_set(&key, &value).map_err(wit_err)
    }
    fn kv_delete(&mut self, key: String) -> Result<(), types::HostError> {
        self.ctx.kv_delete(&key).map_err(wit_err)
    }
    fn system_info(
        &mut self,
        category: types::InfoCategory,
    ) -> Result<types::SystemInfo, types::HostError> {
        self.ctx.system_info(category).map_err(wit_err)
    }
    fn temp_dir(&mut self) -> Result<String, types::HostError> {
        self.ctx.temp_dir().map_err(wit_err)
    }
    fn temp_renew(&mut self) -> Result<String, types::HostError> {
        self.ctx.temp_renew().map_err(wit_err)
    }
    fn fs_read(&mut self, path: String) -> Result<Vec<u8>, types::HostError> {
        self.ctx.fs_read(&path).map_err(wit_err)
    }
    fn fs_write(&mut self, path: String, data: Vec<u8>) -> Result<(), types::HostError> {
        self.ctx.fs_write(&path, &data).map_err(wit_err)
    }
    fn folder_list(
        &mut self,
        folder: String,
        path: String,
    ) -> Result<Vec<types::DirEntry>, types::HostError> {
        self.ctx.folder_list(&folder, &path).map_err(wit_err)
    }
    fn folder_read(&mut self, folder: String, path: String) -> Result<Vec<u8>, types::HostError> {
        self.ctx.folder_read(&folder, &path).map_err(wit_err)
    }
    fn folder_write(
        &mut self,
        folder: String,
        path: String,
        data: Vec<u8>,
    ) -> Result<(), types::HostError> {
        self.ctx
            .folder_write(&folder, &path, &data)
            .map_err(wit_err)
    }
    fn spawn(
        &mut self,
        program: String,
        args: Vec<String>,
        timeout_ms: u32,
    ) -> Result<types::ProcessOutput, types::HostError> {
        self.ctx
            .spawn(
                &program,
                &args,
                Duration::from_millis(u64::from(timeout_ms)),
            )
            .map(process_record)
            .map_err(wit_err)
    }
    fn http_request(
        &mut self,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<types::HttpResponse, types::HostError> {
        self.ctx
            .http_request(&method, &url, &headers, &body)
            .map(response_record)
            .map_err(wit_err)
    }
    fn user_login(&mut self, user: String) -> Result<types::LoginInfo, types::HostError> {
        self.ctx.user_login(&user).map_err(wit_err)
    }
    fn user_logout(&mut self) -> Result<Option<types::LoginInfo>, types::HostError> {
        self.ctx.user_logout().map_err(wit_err)
    }
    fn user_current(&mut self) -> Result<Option<types::LoginInfo>, types::HostError> {
        self.ctx.user_current().map_err(wit_err)
    }
    fn power_restart(&mut self, reason: String) -> Result<types::RestartInfo, types::HostError> {
        self.ctx.power_restart(&reason).map_err(wit_err)
    }
    fn plugin_settings(&mut self) -> Result<Vec<(String, String)>, types::HostError> {
        self.ctx.plugin_settings().map_err(wit_err)
    }
    fn verify_document(
        &mut self,
        kind: types::DocumentKind,
        origin: String,
        data: Vec<u8>,
    ) -> Result<types::VerifiedDocument, types::HostError> {
        self.ctx
            .verify_document(kind, &origin, &data)
            .map_err(wit_err)
    }
    fn endpoint_request(
        &mut self,
        endpoint: String,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<types::HttpResponse, types::HostError> {
        let req = crate::host::EndpointRequest {
            method: &method,
            path: &path,
            headers: &headers,
            body: &body,
        };
        self.ctx
            .endpoint_request(&endpoint, &req)
            .map(response_record)
            .map_err(wit_err)
    }
    fn admin_command(&mut self, name: String) -> Result<types::ProcessOutput, types::HostError> {
        self.ctx
            .admin_command(&name)
            .map(process_record)
            .map_err(wit_err)
    }
    fn stream_open(
        &mut self,
        name: String,
        content_type: String,
        mode: types::StreamMode,
    ) -> Result<u32, types::HostError> {
        let mode = match mode {
            types::StreamMode::Queued => Mode::Queued,
            types::StreamMode::LatestWins => Mode::LatestWins,
        };
        self.ctx
            .stream_open(&name, &content_type, mode)
            .map_err(wit_err)
    }
    fn stream_credit(&mut self, stream: u32) -> Result<u64, types::HostError> {
        self.ctx.stream_credit(stream).map_err(wit_err)
    }
    fn stream_send(
        &mut self,
        stream: u32,
        frame: Vec<u8>,
    ) -> Result<types::StreamSent, types::HostError> {
        self.ctx
            .stream_send(stream, frame)
            .map(|s| types::StreamSent {
                credit: s.credit,
                dropped: s.dropped,
            })
            .map_err(wit_err)
    }
    fn stream_recv(
        &mut self,
        stream: u32,
        timeout_ms: u32,
    ) -> Result<Option<Vec<u8>>, types::HostError> {
        self.ctx
            .stream_recv(stream, Duration::from_millis(u64::from(timeout_ms)))
            .map_err(wit_err)
    }
    fn stream_close(&mut self, stream: u32) -> Result<(), types::HostError> {
        self.ctx.stream_close(stream).map_err(wit_err)
    }
    fn timer_set(&mut self, after_ms: u32) -> Result<u32, types::HostError> {
        self.ctx
            .timer_set(Duration::from_millis(u64::from(after_ms)))
            .map_err(wit_err)
    }
    fn screen_open(&mut self) -> Result<types::ScreenInfo, types::HostError> {
        self.ctx.screen_open().map_err(wit_err)
    }
    fn screen_changes(&mut self) -> Result<types::ScreenChanges, types::HostError> {
        self.ctx.screen_changes().map_err(wit_err)
    }
    fn screen_read(&mut self, areas: Vec<types::Rect>) -> Result<Vec<u8>, types::HostError> {
        self.ctx.screen_read(&areas).map_err(wit_err)
    }
    fn screen_cursor(&mut self) -> Result<types::CursorState, types::HostError> {
        self.ctx.screen_cursor().map_err(wit_err)
    }
    fn screen_close(&mut self) -> Result<(), types::HostError> {
        self.ctx.screen_close().map_err(wit_err)
    }
    fn input_send(&mut self, events: Vec<types::InputEvent>) -> Result<(), types::HostError> {
        self.ctx.input_send(&events).map_err(wit_err)
    }
    fn clipboard_read(&mut self) -> Result<Option<String>, types::HostError> {
        self.ctx.clipboard_read().map_err(wit_err)
    }
    fn clipboard_write(&mut self, text: String) -> Result<(), types::HostError> {
        self.ctx.clipboard_write(&text).map_err(wit_err)
    }
}

/// The one wasmtime engine of the agent, with its epoch ticker and linker.
pub struct WasmEngine {
    engine: Engine,
    linker: Linker<State>,
    cache: WasmCache,
}

/// A compiled plugin, ready to instantiate.
pub struct WasmPlugin {
    pub(crate) engine: Engine,
    pub(crate) pre: PluginPre<State>,
    /// The component exports the `service` world's `on-event` (and so
    /// `start` and `stop`).
    pub(crate) service: bool,
}

struct ShaHasher<'a>(&'a mut Sha256);

impl Hasher for ShaHasher<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

impl WasmEngine {
    /// Starts the engine with its compiled-artifact cache in `cache_dir`
    /// (created 0700; refused when others could write it, see
    /// [`WasmCache::open`]).
    pub fn new(cache_dir: &Path) -> Result<Self, String> {
        let cache = WasmCache::open(cache_dir).map_err(|e| e.to_string())?;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_memory_size((MAX_MEMORY_MB as usize) << 20)
            .max_unused_warm_slots(32);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(|e| format!("cannot start the WASM engine: {e}"))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| format!("cannot start the epoch ticker: {e}"))?;
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| e.to_string())?;
        Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| e.to_string())?;
        Ok(WasmEngine {
            engine,
            linker,
            cache,
        })
    }

    /// The cache entry name of a source: SHA-256 over the source's SHA-256
    /// and this engine's compatibility hash.
    fn cache_name(&self, source: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(source);
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut ShaHasher(&mut h));
        format!("{}.cwasm", hex::encode(h.finalize()))
    }

    /// Compiles (or takes from the cache) and links a component; `wasm` is
    /// the entry file's content as verified.
    #[allow(unsafe_code)]
    pub fn load(&self, wasm: &[u8], manifest: &Manifest) -> Result<WasmPlugin, String> {
        let source: [u8; 32] = Sha256::digest(wasm).into();
        let name = self.cache_name(&source);
        let cached = self.cache.get(&name, &source).and_then(|artifact| {
            // SAFETY: the bytes were read once into memory from the agent's
            // own cache folder (0700, owner checked), and their header
            // names the SHA-256 of these verified source bytes and of the
            // artifact, both checked; entries are written only by
            // `Component::serialize` below.
            unsafe { Component::deserialize(&self.engine, &artifact) }
                .inspect_err(|e| {
                    tracing::warn!(
                        "unusable cache entry {}/{name}, recompiling: {e}",
                        self.cache.path().display()
                    )
                })
                .ok()
        });
        let component = match cached {
            Some(c) => c,
            None => {
                let c = Component::new(&self.engine, wasm).map_err(|e| {
                    format!(
                        "{} is not a valid WASM component: {e:#}",
                        manifest.entry.display()
                    )
                })?;
                if let Ok(bytes) = c.serialize() {
                    self.cache.put(&name, &source, &bytes);
                }
                c
            }
        };
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            format!(
                "{} does not fit the Lifeline host API: {e:#}",
                manifest.entry.display()
            )
        })?;
        let service = ["start", "on-event", "stop"]
            .iter()
            .filter(|name| component.get_export_index(None, **name).is_some())
            .count();
        if service != 0 && service != 3 {
            return Err(format!(
                "{} exports only part of the service world: a long-lived plugin exports start, on-event and stop",
                manifest.entry.display()
            ));
        }
        let pre =
            PluginPre::new(pre).map_err(|e| format!("{}: {e:#}", manifest.entry.display()))?;
        Ok(WasmPlugin {
            engine: self.engine.clone(),
            pre,
            service: service == 3,
        })
    }
}

impl WasmPlugin {
    /// The store of one call: WASI without ambient authority (stderr kept
    /// for crash messages), the memory limiter, and the epoch deadline with
    /// the time-limit callback (time spent outside the plugin's code is not
    /// counted).
    pub(crate) fn new_store(&self, ctx: CallContext, stderr: MemoryOutputPipe) -> Store<State> {
        let limits_m = ctx.manifest.limits;
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(limits_m.memory_bytes as usize)
            .trap_on_grow_failure(true)
            .build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            limits,
            ctx,
            started: Instant::now(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let limit = limits_m.time_per_call;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |cx| {
            let s = cx.data();
            if s.started.elapsed().saturating_sub(s.ctx.host_wait) > limit {
                return Err(wasmtime::Error::msg(format!(
                    "time limit of {} ms exceeded",
                    limit.as_millis()
                )));
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store
    }

    /// Instantiates a fresh instance and calls `run` under the limits.
    pub fn run(
        &self,
        ctx: CallContext,
        command: &str,
        args: &[types::Arg],
    ) -> (CallContext, Result<String, CallError>) {
        let limits_m = ctx.manifest.limits;
        let stderr = MemoryOutputPipe::new(STDERR_KEPT);
        let mut store = self.new_store(ctx, stderr.clone());
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|p| p.call_run(&mut store, command, args));
        let state = store.into_data();
        let ctx = state.ctx;
        let result = match result {
            _ if ctx.flooded => Err(CallError::Limit(format!(
                "output limit of {} KiB reached",
                limits_m.output_bytes >> 10
            ))),
            Ok(Ok(s)) => Ok(s),
            Ok(Err(msg)) => Err(CallError::Plugin(msg)),
            Err(e) => Err(classify(&e, &ctx, &stderr)),
        };
        (ctx, result)
    }
}

pub(crate) fn classify(
    e: &wasmtime::Error,
    ctx: &CallContext,
    stderr: &MemoryOutputPipe,
) -> CallError {
    let text = format!("{e:#}");
    let limits = ctx.manifest.limits;
    if text.contains("time limit of") {
        return CallError::Limit(format!(
            "time limit of {} ms exceeded",
            limits.time_per_call.as_millis()
        ));
    }
    if text.contains("forcing trap when growing memory")
        || text.contains("memory") && text.contains("limit")
    {
        return CallError::Limit(format!(
            "memory limit of {} MiB reached",
            limits.memory_bytes >> 20
        ));
    }
    let out = String::from_utf8_lossy(&stderr.contents())
        .trim()
        .to_string();
    // A Rust guest prints "thread … panicked at FILE:LINE:COL:" then the message.
    let mut lines = out.lines();
    let detail = lines
        .by_ref()
        .find(|l| l.contains("panicked"))
        .map(|l| match lines.next() {
            Some(msg) => format!("{} {}", l.trim_end(), msg.trim()),
            None => l.to_string(),
        });
    let trap = e
        .downcast_ref::<wasmtime::Trap>()
        .map(|t| t.to_string())
        .unwrap_or_else(|| text.lines().next().unwrap_or("").to_string());
    CallError::Crashed(match detail {
        Some(p) => format!("{p} ({trap})"),
        None => trap,
    })
}

/// Shared handle type for callers that keep a plugin around.
pub type SharedWasm = Arc<WasmPlugin>;
