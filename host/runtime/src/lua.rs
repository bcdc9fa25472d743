//! Lua plugins (Luau via mlua): one sandboxed state per plugin instance, a
//! memory limit, and a time limit per call enforced by an interrupt.
//!
//! The entry file returns a table with `run(command, args)`. The host API
//! is the global table `lifeline` with the WIT names (`_` for `-`); each
//! function returns its value, or `nil, message` when the host refused or
//! failed, so a plugin can handle a denied capability.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mlua::{Function, Lua, LuaOptions, RegistryKey, StdLib, Table, Value, VmState};

use crate::engine::CallError;
use crate::host::{CallContext, HostError, Level};

/// Globals removed before sandboxing: code loading, module loading, and
/// anything that reaches outside the state.
pub const REMOVED_GLOBALS: [&str; 9] = [
    "require",
    "load",
    "loadstring",
    "dofile",
    "loadfile",
    "getfenv",
    "setfenv",
    "debug",
    "collectgarbage",
];

/// The context of the call in progress, as Lua app data.
struct Current {
    ctx: CallContext,
    started: Instant,
    limit: Duration,
}

pub struct LuaPlugin {
    lua: Mutex<(Lua, RegistryKey)>,
    /// What a fresh state is built from after a call hit a limit.
    name: String,
    code: String,
    memory_limit: u64,
}

fn host_result<T>(r: Result<T, HostError>) -> (Option<T>, Option<String>) {
    match r {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// Runs `f` on the current call's context.
fn with_ctx<R>(lua: &Lua, f: impl FnOnce(&mut CallContext) -> R) -> mlua::Result<R> {
    let mut cur = lua.app_data_mut::<Current>().ok_or_else(|| {
        mlua::Error::runtime("lifeline host functions are only available during a call")
    })?;
    Ok(f(&mut cur.ctx))
}

fn level(n: &str) -> Level {
    match n {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "warn" => Level::Warn,
        "error" => Level::Error,
        _ => Level::Info,
    }
}

fn install_api(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "log",
        lua.create_function(|lua, (lv, msg): (String, String)| {
            with_ctx(lua, |c| c.log(level(&lv), &msg))
        })?,
    )?;
    t.set(
        "send_output",
        lua.create_function(|lua, text: String| {
            with_ctx(lua, |c| host_result(c.send_output(&text).map(|_| true)))
        })?,
    )?;
    t.set(
        "send_chat",
        lua.create_function(|lua, text: String| {
            with_ctx(lua, |c| host_result(c.send_chat(&text).map(|_| true)))
        })?,
    )?;
    t.set(
        "report_line",
        lua.create_function(|lua, text: String| {
            with_ctx(lua, |c| host_result(c.report_line(&text).map(|_| true)))
        })?,
    )?;
    t.set(
        "kv_get",
        lua.create_function(|lua, key: String| {
            with_ctx(lua, |c| match c.kv_get(&key) {
                Ok(v) => (v, None, true),
                Err(e) => (None, Some(e.to_string()), false),
            })
            .map(|(v, e, _)| (v, e))
        })?,
    )?;
    t.set(
        "kv_set",
        lua.create_function(|lua, (k, v): (String, String)| {
            with_ctx(lua, |c| host_result(c.kv_set(&k, &v).map(|_| true)))
        })?,
    )?;
    t.set(
        "kv_delete",
        lua.create_function(|lua, k: String| {
            with_ctx(lua, |c| host_result(c.kv_delete(&k).map(|_| true)))
        })?,
    )?;
    t.set(
        "system_info",
        lua.create_function(|lua, cat: String| {
            with_ctx(lua, |c| host_result(c.system_info(&cat)))
        })?,
    )?;
    t.set(
        "temp_dir",
        lua.create_function(|lua, ()| with_ctx(lua, |c| host_result(c.temp_dir())))?,
    )?;
    t.set(
        "fs_read",
        lua.create_function(|lua, p: String| {
            let r = with_ctx(lua, |c| c.fs_read(&p))?;
            Ok(match r {
                Ok(bytes) => (Some(lua.create_string(&bytes)?), None),
                Err(e) => (None, Some(e.to_string())),
            })
        })?,
    )?;
    t.set(
        "fs_write",
        lua.create_function(|lua, (p, data): (String, mlua::LuaString)| {
            with_ctx(lua, |c| {
                host_result(c.fs_write(&p, &data.as_bytes()).map(|_| true))
            })
        })?,
    )?;
    t.set(
        "spawn",
        lua.create_function(
            |lua, (prog, args, timeout_ms): (String, Option<Vec<String>>, Option<u32>)| {
                let args = args.unwrap_or_default();
                let timeout = Duration::from_millis(u64::from(timeout_ms.unwrap_or(10_000)));
                let r = with_ctx(lua, |c| c.spawn(&prog, &args, timeout))?;
                Ok(match r {
                    Ok(o) => {
                        let t = lua.create_table()?;
                        t.set("exit_code", o.exit_code)?;
                        t.set("stdout", lua.create_string(&o.stdout)?)?;
                        t.set("stderr", lua.create_string(&o.stderr)?)?;
                        t.set("timed_out", o.timed_out)?;
                        (Some(t), None)
                    }
                    Err(e) => (None, Some(e.to_string())),
                })
            },
        )?,
    )?;
    t.set(
        "http_request",
        lua.create_function(
            |lua,
             (method, url, headers, body): (
                String,
                String,
                Option<Table>,
                Option<mlua::LuaString>,
            )| {
                let mut hs = Vec::new();
                if let Some(h) = headers {
                    for pair in h.pairs::<String, String>() {
                        hs.push(pair?);
                    }
                }
                let body = body.map(|b| b.as_bytes().to_vec()).unwrap_or_default();
                let r = with_ctx(lua, |c| c.http_request(&method, &url, &hs, &body))?;
                Ok(match r {
                    Ok(resp) => {
                        let t = lua.create_table()?;
                        t.set("status", resp.status)?;
                        let h = lua.create_table()?;
                        for (k, v) in resp.headers {
                            h.set(k, v)?;
                        }
                        t.set("headers", h)?;
                        t.set("body", lua.create_string(&resp.body)?)?;
                        (Some(t), None)
                    }
                    Err(e) => (None, Some(e.to_string())),
                })
            },
        )?,
    )?;
    t.set(
        "run_as_login",
        lua.create_function(|lua, user: String| {
            with_ctx(lua, |c| host_result(c.run_as_login(&user)))
        })?,
    )?;
    t.set(
        "run_as_logout",
        lua.create_function(|lua, ()| with_ctx(lua, |c| host_result(c.run_as_logout())))?,
    )?;
    t.set(
        "run_as_status",
        lua.create_function(|lua, ()| {
            with_ctx(lua, |c| match c.run_as_status() {
                Ok(user) => (user, None),
                Err(e) => (None, Some(e.to_string())),
            })
        })?,
    )?;
    t.set(
        "reboot",
        lua.create_function(|lua, reason: Option<String>| {
            with_ctx(lua, |c| {
                host_result(c.reboot(reason.as_deref().unwrap_or("")))
            })
        })?,
    )?;
    t.set(
        "license_about",
        lua.create_function(|lua, ()| with_ctx(lua, |c| host_result(c.license_about())))?,
    )?;
    t.set(
        "license_check",
        lua.create_function(|lua, ()| with_ctx(lua, |c| host_result(c.license_check())))?,
    )?;
    t.set(
        "license_install",
        lua.create_function(|lua, ()| with_ctx(lua, |c| host_result(c.license_install())))?,
    )?;
    lua.globals().set("lifeline", t)?;
    Ok(())
}

impl LuaPlugin {
    /// Loads the plugin's code into a fresh sandboxed state.
    pub fn load(name: &str, code: &str, memory_limit: u64) -> Result<Self, String> {
        Ok(LuaPlugin {
            lua: Mutex::new(Self::fresh_state(name, code, memory_limit)?),
            name: name.to_string(),
            code: code.to_string(),
            memory_limit,
        })
    }

    /// A fresh sandboxed state with the plugin's module loaded.
    fn fresh_state(
        name: &str,
        code: &str,
        memory_limit: u64,
    ) -> Result<(Lua, RegistryKey), String> {
        let lua =
            Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default()).map_err(|e| e.to_string())?;
        let setup = || -> mlua::Result<RegistryKey> {
            install_api(&lua)?;
            let g = lua.globals();
            for name in REMOVED_GLOBALS {
                g.raw_set(name, Value::Nil)?;
            }
            lua.sandbox(true)?;
            lua.set_memory_limit(memory_limit as usize)?;
            // Loading is bounded in time too.
            let started = Instant::now();
            lua.set_interrupt(move |_| {
                if started.elapsed() > Duration::from_secs(5) {
                    return Err(mlua::Error::runtime(
                        "loading the plugin took longer than 5 s",
                    ));
                }
                Ok(VmState::Continue)
            });
            let module: Table = lua.load(code).set_name(name).eval()?;
            let _: Function = module.get("run").map_err(|_| {
                mlua::Error::runtime(
                    "the entry file must return a table with a run(command, args) function",
                )
            })?;
            lua.create_registry_value(module)
        };
        let key = setup().map_err(|e| format!("{name}: {e}"))?;
        Ok((lua, key))
    }

    /// Calls `run(command, args)` under the context's limits.
    pub fn run(
        &self,
        ctx: CallContext,
        command: &str,
        args: &[String],
    ) -> (CallContext, Result<String, CallError>) {
        let mut guard = self.lua.lock().unwrap_or_else(|p| p.into_inner());
        let (ctx, result) = Self::run_in(&guard, ctx, command, args);
        if matches!(result, Err(CallError::Limit(_))) {
            // A limit can leave the state full (memory held by the module),
            // mid-update or flagged: the next call starts on a fresh plugin.
            match Self::fresh_state(&self.name, &self.code, self.memory_limit) {
                Ok(state) => *guard = state,
                Err(e) => {
                    tracing::warn!(plugin = %self.name, "fresh state after a limit failed: {e}")
                }
            }
        }
        (ctx, result)
    }

    fn run_in(
        state: &(Lua, RegistryKey),
        ctx: CallContext,
        command: &str,
        args: &[String],
    ) -> (CallContext, Result<String, CallError>) {
        let (lua, key) = state;
        let limit = ctx.manifest.limits.time_per_call;
        lua.set_app_data(Current {
            ctx,
            started: Instant::now(),
            limit,
        });
        lua.set_interrupt(|lua| {
            if let Some(cur) = lua.try_app_data_ref::<Current>().ok().flatten()
                && cur.started.elapsed().saturating_sub(cur.ctx.host_wait) > cur.limit
            {
                return Err(mlua::Error::runtime(format!(
                    "time limit of {} ms exceeded",
                    cur.limit.as_millis()
                )));
            }
            Ok(VmState::Continue)
        });
        let result = (|| -> mlua::Result<Value> {
            let module: Table = lua.registry_value(key)?;
            let run: Function = module.get("run")?;
            run.call((command, args.to_vec()))
        })();
        let cur = lua
            .remove_app_data::<Current>()
            .expect("set at the start of the call");
        let ctx = cur.ctx;
        let result = match result {
            _ if ctx.flooded => Err(CallError::Limit(format!(
                "output limit of {} KiB reached",
                ctx.manifest.limits.output_bytes >> 10
            ))),
            Ok(Value::String(s)) => Ok(s.to_string_lossy()),
            Ok(Value::Nil) => Ok(String::new()),
            Ok(other) => Ok(format!("{other:?}")),
            Err(e) => Err(classify(&e, &ctx)),
        };
        (ctx, result)
    }
}

fn classify(e: &mlua::Error, ctx: &CallContext) -> CallError {
    let text = e.to_string();
    if matches!(e, mlua::Error::MemoryError(_)) || text.contains("not enough memory") {
        CallError::Limit(format!(
            "memory limit of {} MiB reached",
            ctx.manifest.limits.memory_bytes >> 20
        ))
    } else if text.contains("time limit of") {
        CallError::Limit(format!(
            "time limit of {} ms exceeded",
            ctx.manifest.limits.time_per_call.as_millis()
        ))
    } else {
        let first = text.lines().next().unwrap_or("").to_string();
        CallError::Plugin(first)
    }
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    /// The Lua `lifeline` table offers exactly the host calls.
    #[test]
    fn lua_table_matches_the_host_calls() {
        let lua = Lua::new();
        install_api(&lua).unwrap();
        let t: Table = lua.globals().get("lifeline").unwrap();
        let mut in_lua: Vec<String> = t.pairs::<String, Value>().map(|kv| kv.unwrap().0).collect();
        in_lua.sort();
        let mut in_code: Vec<String> = crate::capability::ALL_CALLS
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        in_code.sort();
        assert_eq!(in_lua, in_code, "the Lua table and HostCall disagree");
    }
}
