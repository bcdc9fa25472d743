//! Hooks for the runtime benchmark (host/runtime/benches/runtime.rs); not an
//! API. The `bench-plugin` world is the plugin world plus `echo`; its imports
//! are bound to the runtime's own host implementation on [`State`], and its
//! stores are set up exactly as [`WasmPlugin::run`] sets up the store of a
//! call, so what is measured here is what a plugin call pays.

use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::Instance;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::host::CallContext;
use crate::wasm::{STDERR_KEPT, State, WasmPlugin};

wasmtime::component::bindgen!({
    world: "bench-plugin",
    path: "../../sdk/wit",
    with: {
        "lifeline:plugin/host": crate::wasm::lifeline::plugin::host,
        "lifeline:plugin/types": crate::wasm::lifeline::plugin::types,
    },
});

/// A loaded `bench-plugin` component (from [`crate::wasm::WasmEngine::load`],
/// i.e. from the compiled-artifact cache when it is there).
pub struct BenchWasm<'a> {
    plugin: &'a WasmPlugin,
    pre: BenchPluginPre<State>,
}

/// The store of one call, as `WasmPlugin::run` makes it, and what was
/// instantiated in it.
pub struct BenchStore {
    store: Store<State>,
    instance: Option<Instance>,
    plugin: Option<BenchPlugin>,
}

/// An instance kept across calls (the runtime makes one per call).
pub struct BenchInstance {
    store: Store<State>,
    plugin: BenchPlugin,
}

impl<'a> BenchWasm<'a> {
    /// Fails unless the component exports the `bench-plugin` world.
    pub fn new(plugin: &'a WasmPlugin) -> Result<Self, String> {
        let pre = BenchPluginPre::new(plugin.pre.instance_pre().clone())
            .map_err(|e| format!("not a bench-plugin component: {e:#}"))?;
        Ok(BenchWasm { plugin, pre })
    }

    /// A store set up as `WasmPlugin::run` sets one up (WASI context, memory
    /// limiter, epoch deadline and time-limit callback).
    pub fn store(&self, ctx: CallContext) -> BenchStore {
        let store = self
            .plugin
            .new_store(ctx, MemoryOutputPipe::new(STDERR_KEPT));
        BenchStore {
            store,
            instance: None,
            plugin: None,
        }
    }

    /// `InstancePre::instantiate` of the runtime's own `PluginPre` into
    /// `store`; the instance lives until the store is dropped.
    pub fn instantiate(&self, store: &mut BenchStore) -> Result<(), String> {
        let instance = self
            .plugin
            .pre
            .instance_pre()
            .instantiate(&mut store.store)
            .map_err(|e| format!("{e:#}"))?;
        store.instance = Some(instance);
        Ok(())
    }

    /// Looks up the exports of the instance made by [`Self::instantiate`].
    pub fn bind(&self, store: &mut BenchStore) -> Result<(), String> {
        let instance = store.instance.as_ref().ok_or("not instantiated")?;
        let plugin = BenchPlugin::new(&mut store.store, instance).map_err(|e| format!("{e:#}"))?;
        store.plugin = Some(plugin);
        Ok(())
    }

    /// The guest's `run` on the instance bound by [`Self::bind`].
    pub fn run(&self, store: &mut BenchStore, command: &str) -> Result<String, String> {
        let plugin = store.plugin.as_ref().ok_or("not bound")?;
        match plugin.call_run(&mut store.store, command, &[]) {
            Ok(r) => r,
            Err(e) => Err(format!("{e:#}")),
        }
    }

    /// A fresh store with an instance to call again and again.
    pub fn instance(&self, ctx: CallContext) -> Result<BenchInstance, String> {
        let BenchStore { mut store, .. } = self.store(ctx);
        let plugin = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| format!("{e:#}"))?;
        Ok(BenchInstance { store, plugin })
    }
}

impl BenchInstance {
    /// Restarts the call's clock: the time limit of `WasmPlugin::run` counts
    /// from the store's creation, and this instance outlives many calls.
    pub fn restart_clock(&mut self) {
        self.store.data_mut().started = Instant::now();
    }

    /// The guest's `echo`.
    pub fn echo(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.plugin
            .call_echo(&mut self.store, data)
            .map_err(|e| format!("{e:#}"))
    }

    /// The guest's `echo16`: 16 bytes by value.
    pub fn echo16(&mut self, lo: u64, hi: u64) -> Result<(u64, u64), String> {
        self.plugin
            .call_echo16(&mut self.store, lo, hi)
            .map_err(|e| format!("{e:#}"))
    }

    /// The guest's `echo-bytes16`: a 16-byte `list<u8>`.
    pub fn echo_bytes16(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.plugin
            .call_echo_bytes16(&mut self.store, data)
            .map_err(|e| format!("{e:#}"))
    }

    /// The guest's `echo-record`: a small record.
    pub fn echo_record(&mut self, row: &ProcessRow) -> Result<ProcessRow, String> {
        self.plugin
            .call_echo_record(&mut self.store, row)
            .map_err(|e| format!("{e:#}"))
    }

    /// The guest's `run`, on this instance.
    pub fn run(&mut self, command: &str, args: &[String]) -> Result<String, String> {
        let args: Vec<Arg> = args.iter().cloned().map(Arg::Text).collect();
        match self.plugin.call_run(&mut self.store, command, &args) {
            Ok(r) => r,
            Err(e) => Err(format!("{e:#}")),
        }
    }
}
