//! Benchmark 3, Lua call overhead: the runtime's call path, and raw Rust → Lua calls.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use lifeline_runtime::host::{CallContext, HostEnv};
use lifeline_runtime::kv::KvStore;
use lifeline_runtime::lua::LuaPlugin;
use lifeline_runtime::manifest::Manifest;
use mlua::{Function, Lua, LuaOptions, StdLib, VmState};

use crate::{Opts, Row, batches, fixture, median, port, repo, row, samples, stats, t, t3};

/// A sandboxed state set up as `LuaPlugin::load` sets one up.
fn sandboxed() -> Result<Lua> {
    let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default())?;
    lua.sandbox(true)?;
    lua.set_memory_limit(16 << 20)?;
    Ok(lua)
}

pub fn run(opts: Opts) -> Result<Vec<Row>> {
    let n = opts.n(20_000);
    let f = fixture(&["tests/plugins/hostile-lua", "tests/plugins/bench-wasm"])?;
    let p = port();
    let call = |id: &'static str, want: &'static str| {
        let (host, p) = (&f.host, &p);
        move || -> Result<Duration> {
            let t0 = Instant::now();
            let r = host.call(id, "ok", &[], Arc::clone(p));
            let d = t0.elapsed();
            match r {
                Ok(s) if s == want => Ok(d),
                other => bail!("{id}: {other:?}"),
            }
        }
    };
    samples(500, call("hostile-lua", "fine"))?;
    samples(100, call("bench-wasm", "ok"))?;
    let lua_call = stats(samples(n, call("hostile-lua", "fine"))?);
    let wasm_call = stats(samples(opts.n(3000), call("bench-wasm", "ok"))?);
    println!(
        "PluginHost::call Lua {} / WASM {}",
        t3(lua_call),
        t3(wasm_call)
    );

    // LuaPlugin::run alone (no slot lookup, health accounting or context).
    let dir = tempfile::tempdir()?;
    let manifest = Arc::new(Manifest::load_dir(
        &repo().join("tests/plugins/hostile-lua"),
    )?);
    let code = std::fs::read_to_string(&manifest.entry)?;
    let plugin = LuaPlugin::load(&manifest.id, &code, manifest.limits.memory_bytes)
        .map_err(anyhow::Error::msg)?;
    let kv = Arc::new(KvStore::new(dir.path().join("kv.json")));
    let env = Arc::new(HostEnv {
        temp_root: dir.path().join("tmp"),
        proxy: None,
        folders: Default::default(),
    });
    let direct = || -> Result<Duration> {
        let ctx = CallContext::new(
            Arc::clone(&manifest),
            Arc::clone(&p),
            Arc::clone(&kv),
            Arc::clone(&env),
        );
        let t0 = Instant::now();
        let (ctx, r) = plugin.run(ctx, "ok", &[]);
        drop(ctx);
        let d = t0.elapsed();
        match r {
            Ok(s) if s == "fine" => Ok(d),
            other => bail!("LuaPlugin::run: {other:?}"),
        }
    };
    samples(500, direct)?;
    let direct = stats(samples(n, direct)?);
    println!("LuaPlugin::run {}", t3(direct));

    // Raw calls on a sandboxed state.
    let lua = sandboxed()?;
    let add: Function = lua.load("return function(a, b) return a + b end").eval()?;
    let like_run: Function = lua
        .load("return function(command, args) if command == 'ok' then return 'fine' end end")
        .eval()?;
    let calls = opts.n(200_000);
    let raw = |f: &Function| -> Result<f64> {
        let add = || -> Result<()> {
            black_box(f.call::<i64>(black_box((1i64, 2i64)))?);
            Ok(())
        };
        batches(1, calls / 10, add)?;
        Ok(median(batches(5, calls, add)?))
    };
    let raw_add = raw(&add)?;
    let run_args = || -> Result<()> {
        let s: String = like_run.call(black_box(("ok", Vec::<String>::new())))?;
        black_box(s);
        Ok(())
    };
    batches(1, calls / 10, run_args)?;
    let raw_run = median(batches(5, calls / 4, run_args)?);
    // The runtime installs an interrupt (time limit) on every call.
    lua.set_interrupt(|_| Ok(VmState::Continue));
    let raw_add_int = raw(&add)?;
    println!(
        "raw add {} / with interrupt {} / run-shaped (string, table) → string {}",
        t(raw_add),
        t(raw_add_int),
        t(raw_run)
    );

    Ok(vec![
        row(
            "3",
            "`PluginHost::call(\"hostile-lua\", \"ok\")`",
            format!("**{}**", t3(lua_call)),
            format!("same call of bench-wasm (WASM): {}", t3(wasm_call)),
            None,
        ),
        row(
            "3",
            "`LuaPlugin::run(\"ok\")` alone",
            t3(direct),
            String::new(),
            None,
        ),
        row(
            "3",
            "raw Rust → Lua call, `function(a, b) return a + b end`",
            format!("**{}**", t(raw_add)),
            "~120 ns (WASM_TOOLCHAIN.md, a small function)".into(),
            None,
        ),
        row(
            "3",
            "same, with an interrupt callback installed",
            t(raw_add_int),
            String::new(),
            None,
        ),
        row(
            "3",
            "raw call shaped like `run`: (string, empty table) → string",
            t(raw_run),
            String::new(),
            None,
        ),
    ])
}
