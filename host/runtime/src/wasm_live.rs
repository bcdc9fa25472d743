//! A WASM instance kept for a long-lived plugin: one store across
//! activations, so the plugin's memory (and what it keeps there) lives on;
//! each activation gets a fresh [`CallContext`] and a fresh time budget.
//! A trap leaves a component instance unusable: the caller drops it and
//! starts a new one (see [`crate::service`]).

use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::TypedFunc;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::engine::CallError;
use crate::host::CallContext;
use crate::service::Activation;
use crate::wasm::{STDERR_KEPT, State, WasmPlugin, classify};
use crate::wit::{Arg, SessionEvent, StartReason};

type StartFn = TypedFunc<(StartReason,), (Result<(), String>,)>;
type EventFn = TypedFunc<(SessionEvent,), (Result<(), String>,)>;
type StopFn = TypedFunc<(), ()>;
type RunFn = TypedFunc<(String, Vec<Arg>), (Result<String, String>,)>;

pub(crate) struct WasmLive {
    store: Store<State>,
    start: StartFn,
    on_event: EventFn,
    stop: StopFn,
    run: RunFn,
    stderr: MemoryOutputPipe,
}

impl WasmLive {
    /// Instantiates the plugin for a session (nothing of it runs yet but
    /// its initialisers, under `ctx`'s limits).
    pub(crate) fn new(
        plugin: &WasmPlugin,
        ctx: CallContext,
    ) -> (CallContext, Result<WasmLive, CallError>) {
        let stderr = MemoryOutputPipe::new(STDERR_KEPT);
        let mut store = plugin.new_store(ctx, stderr.clone());
        let funcs = (|| {
            let instance = plugin.pre.instance_pre().instantiate(&mut store)?;
            let start = instance.get_typed_func(&mut store, "start")?;
            let on_event = instance.get_typed_func(&mut store, "on-event")?;
            let stop = instance.get_typed_func(&mut store, "stop")?;
            let run = instance.get_typed_func(&mut store, "run")?;
            wasmtime::Result::Ok((start, on_event, stop, run))
        })();
        match funcs {
            Ok((start, on_event, stop, run)) => {
                let placeholder = store.data().ctx.idle_copy();
                let ctx = std::mem::replace(&mut store.data_mut().ctx, placeholder);
                let live = WasmLive {
                    store,
                    start,
                    on_event,
                    stop,
                    run,
                    stderr,
                };
                (ctx, Ok(live))
            }
            Err(e) => {
                let err = classify(&e, &store.data().ctx, &stderr);
                (store.into_data().ctx, Err(err))
            }
        }
    }

    /// One activation under `ctx` (returned afterwards with what it did).
    pub(crate) fn activate(
        &mut self,
        ctx: CallContext,
        what: &Activation,
    ) -> (CallContext, Result<String, CallError>) {
        {
            let data = self.store.data_mut();
            data.ctx = ctx;
            data.started = Instant::now();
        }
        self.store.set_epoch_deadline(1);
        let result = match what {
            Activation::Start(r) => self
                .start
                .call(&mut self.store, (*r,))
                .map(|r| r.0.map(|()| String::new())),
            Activation::Event(e) => self
                .on_event
                .call(&mut self.store, (e.clone(),))
                .map(|r| r.0.map(|()| String::new())),
            Activation::Stop => self
                .stop
                .call(&mut self.store, ())
                .map(|()| Ok(String::new())),
            Activation::Run(command, args) => self
                .run
                .call(&mut self.store, (command.clone(), args.clone()))
                .map(|r| r.0),
        };
        let placeholder = self.store.data().ctx.idle_copy();
        let ctx = std::mem::replace(&mut self.store.data_mut().ctx, placeholder);
        let limits = ctx.manifest.limits;
        let result = match result {
            _ if ctx.flooded => Err(CallError::Limit(format!(
                "output limit of {} KiB reached",
                limits.output_bytes >> 10
            ))),
            Ok(Ok(text)) => Ok(text),
            Ok(Err(msg)) => Err(CallError::Plugin(msg)),
            Err(e) => Err(classify(&e, &ctx, &self.stderr)),
        };
        (ctx, result)
    }
}
