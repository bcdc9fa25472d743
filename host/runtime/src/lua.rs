//! Lua plugins (Luau via mlua): one sandboxed state per plugin instance, a
//! memory limit, and a time limit per call enforced by an interrupt.
//!
//! The entry file returns a table with `run(command, args)`; a long-lived
//! plugin also defines `on_event(event)` and may define `start(reason)` and
//! `stop()`. The host API is the global table `lifeline` with the WIT names
//! (`_` for `-`); each function returns its value, or `nil, message` when
//! the host refused or failed, so a plugin can handle a denied capability.
//! WIT records arrive as tables (field names with `_`), bytes as strings;
//! a table returned by `run` reaches the operator as JSON.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mlua::{
    Function, IntoLuaMulti, Lua, LuaOptions, LuaSerdeExt, RegistryKey, StdLib, Table, Value,
    VmState,
};

use crate::engine::CallError;
use crate::host::{CallContext, HostError, Level};
use crate::service::{Activation, event_name, reason_name};
use crate::stream::Mode;
use crate::wit;
use mlua::serde::SerializeOptions;

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
    /// The module defines `on_event`: a long-lived plugin.
    pub(crate) service: bool,
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
pub(crate) fn with_ctx<R>(lua: &Lua, f: impl FnOnce(&mut CallContext) -> R) -> mlua::Result<R> {
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
        "notify_customer",
        lua.create_function(|lua, text: String| {
            with_ctx(lua, |c| host_result(c.notify_customer(&text).map(|_| true)))
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
            let which = match crate::sysinfo::parse_category(&cat) {
                Ok(w) => w,
                Err(e) => return Ok((None, Some(e))),
            };
            let r = with_ctx(lua, |c| c.system_info(which))?;
            lua_result(lua, r, |lua, info| system_info_value(lua, &info))
        })?,
    )?;
    t.set(
        "temp_dir",
        lua.create_function(|lua, ()| with_ctx(lua, |c| host_result(c.temp_dir())))?,
    )?;
    t.set(
        "temp_renew",
        lua.create_function(|lua, ()| with_ctx(lua, |c| host_result(c.temp_renew())))?,
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
                lua_result(lua, r, process_value)
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
                let (hs, body) = request_parts(headers, body)?;
                let r = with_ctx(lua, |c| c.http_request(&method, &url, &hs, &body))?;
                lua_result(lua, r, response_value)
            },
        )?,
    )?;
    install_streams(lua, &t)?;
    install_folders(lua, &t)?;
    crate::lua_admin::install(lua, &t)?;
    install_natives(lua, &t)?;
    install_screen(lua, &t)?;
    lua.globals().set("lifeline", t)?;
    Ok(())
}

/// `stream_*` and `timer_set`.
fn install_streams(lua: &Lua, t: &Table) -> mlua::Result<()> {
    t.set(
        "stream_open",
        lua.create_function(
            |lua, (name, content_type, mode): (String, String, Option<String>)| {
                let mode = match mode.as_deref().unwrap_or("queued") {
                    "queued" => Mode::Queued,
                    "latest-wins" => Mode::LatestWins,
                    other => {
                        return Ok((
                            None,
                            Some(format!(
                                "unknown stream mode {other:?}; use queued or latest-wins"
                            )),
                        ));
                    }
                };
                with_ctx(lua, |c| {
                    host_result(c.stream_open(&name, &content_type, mode))
                })
            },
        )?,
    )?;
    t.set(
        "stream_credit",
        lua.create_function(|lua, id: u32| with_ctx(lua, |c| host_result(c.stream_credit(id))))?,
    )?;
    t.set(
        "stream_send",
        lua.create_function(|lua, (id, frame): (u32, mlua::LuaString)| {
            let frame = frame.as_bytes().to_vec();
            let r = with_ctx(lua, |c| c.stream_send(id, frame))?;
            lua_result(lua, r, |lua, s| {
                let t = lua.create_table()?;
                t.set("credit", s.credit)?;
                t.set("dropped", s.dropped)?;
                Ok(Value::Table(t))
            })
        })?,
    )?;
    t.set(
        "stream_recv",
        lua.create_function(|lua, (id, timeout_ms): (u32, Option<u32>)| {
            let timeout = Duration::from_millis(u64::from(timeout_ms.unwrap_or(0)));
            let r = with_ctx(lua, |c| c.stream_recv(id, timeout))?;
            lua_result(lua, r, |lua, f| match f {
                Some(bytes) => Ok(Value::String(lua.create_string(&bytes)?)),
                None => Ok(Value::Nil),
            })
        })?,
    )?;
    t.set(
        "stream_close",
        lua.create_function(|lua, id: u32| {
            with_ctx(lua, |c| host_result(c.stream_close(id).map(|_| true)))
        })?,
    )?;
    t.set(
        "timer_set",
        lua.create_function(|lua, after_ms: u32| {
            with_ctx(lua, |c| {
                host_result(c.timer_set(Duration::from_millis(u64::from(after_ms))))
            })
        })?,
    )?;
    Ok(())
}

/// `screen_*`, `input_send` and `clipboard_*`. Rects and input events are
/// tables shaped like the WIT records; an input event is `{ PointerMove =
/// { x = 1, y = 2 } }`, `{ PointerButton = { button = 1, pressed = true } }`
/// or `{ Key = { keysym = 97, pressed = true } }`. `clipboard_read`
/// returns the text, or nil (and no error) when the clipboard holds none.
fn install_screen(lua: &Lua, t: &Table) -> mlua::Result<()> {
    use mlua::LuaSerdeExt;
    t.set(
        "screen_open",
        lua.create_function(|lua, ()| {
            let r = with_ctx(lua, |c| c.screen_open())?;
            lua_result(lua, r, |lua, v| to_lua(lua, &v))
        })?,
    )?;
    t.set(
        "screen_changes",
        lua.create_function(|lua, ()| {
            let r = with_ctx(lua, |c| c.screen_changes())?;
            lua_result(lua, r, |lua, v| to_lua(lua, &v))
        })?,
    )?;
    t.set(
        "screen_read",
        lua.create_function(|lua, areas: Value| {
            let areas: Vec<crate::wit::Rect> = lua.from_value(areas)?;
            let r = with_ctx(lua, |c| c.screen_read(&areas))?;
            lua_result(lua, r, |lua, b| Ok(Value::String(lua.create_string(&b)?)))
        })?,
    )?;
    t.set(
        "screen_cursor",
        lua.create_function(|lua, ()| {
            let r = with_ctx(lua, |c| c.screen_cursor())?;
            lua_result(lua, r, |lua, v| to_lua(lua, &v))
        })?,
    )?;
    t.set(
        "screen_close",
        lua.create_function(|lua, ()| {
            with_ctx(lua, |c| host_result(c.screen_close().map(|_| true)))
        })?,
    )?;
    t.set(
        "input_send",
        lua.create_function(|lua, events: Value| {
            let events: Vec<crate::wit::InputEvent> = lua.from_value(events)?;
            with_ctx(lua, |c| host_result(c.input_send(&events).map(|_| true)))
        })?,
    )?;
    t.set(
        "clipboard_read",
        lua.create_function(|lua, ()| {
            with_ctx(lua, |c| match c.clipboard_read() {
                Ok(text) => (text, None),
                Err(e) => (None, Some(e.to_string())),
            })
        })?,
    )?;
    t.set(
        "clipboard_write",
        lua.create_function(|lua, text: String| {
            with_ctx(lua, |c| host_result(c.clipboard_write(&text).map(|_| true)))
        })?,
    )?;
    Ok(())
}

/// `folder_list`, `folder_read`, `folder_write`.
fn install_folders(lua: &Lua, t: &Table) -> mlua::Result<()> {
    t.set(
        "folder_list",
        lua.create_function(|lua, (folder, path): (String, Option<String>)| {
            let r = with_ctx(lua, |c| {
                c.folder_list(&folder, path.as_deref().unwrap_or(""))
            })?;
            lua_result(lua, r, |lua, entries| to_lua(lua, &entries))
        })?,
    )?;
    t.set(
        "folder_read",
        lua.create_function(|lua, (folder, path): (String, String)| {
            let r = with_ctx(lua, |c| c.folder_read(&folder, &path))?;
            lua_result(lua, r, |lua, bytes| {
                Ok(Value::String(lua.create_string(&bytes)?))
            })
        })?,
    )?;
    t.set(
        "folder_write",
        lua.create_function(
            |lua, (folder, path, data): (String, String, mlua::LuaString)| {
                with_ctx(lua, |c| {
                    host_result(
                        c.folder_write(&folder, &path, &data.as_bytes())
                            .map(|_| true),
                    )
                })
            },
        )?,
    )?;
    Ok(())
}

/// `user_login`, `user_logout`, `user_current`, `power_restart`: records
/// as tables, no login as `nil`.
fn install_natives(lua: &Lua, t: &Table) -> mlua::Result<()> {
    t.set(
        "user_login",
        lua.create_function(|lua, user: String| {
            let r = with_ctx(lua, |c| c.user_login(&user))?;
            lua_result(lua, r, |lua, l| to_lua(lua, &l))
        })?,
    )?;
    t.set(
        "user_logout",
        lua.create_function(|lua, ()| {
            let r = with_ctx(lua, |c| c.user_logout())?;
            lua_result(lua, r, |lua, l| to_lua(lua, &l))
        })?,
    )?;
    t.set(
        "user_current",
        lua.create_function(|lua, ()| {
            let r = with_ctx(lua, |c| c.user_current())?;
            lua_result(lua, r, |lua, l| to_lua(lua, &l))
        })?,
    )?;
    t.set(
        "power_restart",
        lua.create_function(|lua, reason: Option<String>| {
            let r = with_ctx(lua, |c| c.power_restart(reason.as_deref().unwrap_or("")))?;
            lua_result(lua, r, |lua, i| to_lua(lua, &i))
        })?,
    )?;
    Ok(())
}

/// Options for WIT values as Lua values: absent options are `nil`.
fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
}

/// HTTP headers as name/value pairs.
pub(crate) type Headers = Vec<(String, String)>;

/// A request's headers (a table of name = value) and body (a string).
pub(crate) fn request_parts(
    headers: Option<Table>,
    body: Option<mlua::LuaString>,
) -> mlua::Result<(Headers, Vec<u8>)> {
    let mut hs = Vec::new();
    if let Some(h) = headers {
        for pair in h.pairs::<String, String>() {
            hs.push(pair?);
        }
    }
    Ok((hs, body.map(|b| b.as_bytes().to_vec()).unwrap_or_default()))
}

/// A process's output as a table (`stdout` and `stderr` as strings).
pub(crate) fn process_value(lua: &Lua, o: crate::host::ProcessOutput) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.set("exit_code", o.exit_code)?;
    t.set("stdout", lua.create_string(&o.stdout)?)?;
    t.set("stderr", lua.create_string(&o.stderr)?)?;
    t.set("timed_out", o.timed_out)?;
    Ok(Value::Table(t))
}

/// An HTTP response as a table (`headers` by name, `body` as a string).
pub(crate) fn response_value(lua: &Lua, resp: crate::http::Response) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.set("status", resp.status)?;
    let h = lua.create_table()?;
    for (k, v) in resp.headers {
        h.set(k, v)?;
    }
    t.set("headers", h)?;
    t.set("body", lua.create_string(&resp.body)?)?;
    Ok(Value::Table(t))
}

pub(crate) fn to_lua<T: serde::Serialize>(lua: &Lua, v: &T) -> mlua::Result<Value> {
    lua.to_value_with(v, serialize_options())
}

/// `value, nil` or `nil, message`, converting the value with `f`.
pub(crate) fn lua_result<T>(
    lua: &Lua,
    r: Result<T, HostError>,
    f: impl FnOnce(&Lua, T) -> mlua::Result<Value>,
) -> mlua::Result<(Option<Value>, Option<String>)> {
    match r {
        Ok(v) => Ok((Some(f(lua, v)?), None)),
        Err(e) => Ok((None, Some(e.to_string()))),
    }
}

/// A category's record (or list) as a table.
fn system_info_value(lua: &Lua, info: &wit::SystemInfo) -> mlua::Result<Value> {
    use wit::SystemInfo as S;
    match info {
        S::Os(v) => to_lua(lua, v),
        S::Cpu(v) => to_lua(lua, v),
        S::Memory(v) => to_lua(lua, v),
        S::Disks(v) => to_lua(lua, v),
        S::Network(v) => to_lua(lua, v),
        S::Processes(v) => to_lua(lua, v),
        S::Users(v) => to_lua(lua, v),
        S::Software(v) => to_lua(lua, v),
    }
}

/// A session event as `{ kind = "operator-attached", operator = "…" }`.
fn event_value(lua: &Lua, e: &wit::SessionEvent) -> mlua::Result<Table> {
    use wit::SessionEvent as E;
    let t = lua.create_table()?;
    t.set("kind", event_name(e))?;
    match e {
        E::Started | E::Rejoined => {}
        E::OperatorAttached(n) | E::OperatorLeft(n) => t.set("operator", n.as_str())?,
        E::AccessSuspended(u) | E::AccessRestored(u) => t.set("user", u.as_str())?,
        E::Timer(id) => t.set("timer", *id)?,
        E::StreamInput(id) => t.set("stream", *id)?,
        E::Ending(r) => t.set("reason", r.as_str())?,
    }
    Ok(t)
}

impl LuaPlugin {
    /// Loads the plugin's code into a fresh sandboxed state.
    pub fn load(name: &str, code: &str, memory_limit: u64) -> Result<Self, String> {
        let state = Self::fresh_state(name, code, memory_limit)?;
        let service = {
            let (lua, key) = &state;
            lua.registry_value::<Table>(key)
                .and_then(|m| m.get::<Value>("on_event"))
                .is_ok_and(|f| f.is_function())
        };
        Ok(LuaPlugin {
            lua: Mutex::new(state),
            service,
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

    /// Calls `run(command, args)` under the context's limits; byte
    /// arguments arrive as Lua strings.
    pub fn run(
        &self,
        ctx: CallContext,
        command: &str,
        args: &[wit::Arg],
    ) -> (CallContext, Result<String, CallError>) {
        let (ctx, result) = self.call(ctx, |lua, module| {
            let run: Function = module.get("run")?;
            let list = lua.create_table()?;
            for (i, a) in args.iter().enumerate() {
                let v = match a {
                    wit::Arg::Text(t) => lua.create_string(t)?,
                    wit::Arg::Bytes(b) => lua.create_string(b)?,
                };
                list.raw_set(i + 1, v)?;
            }
            run.call((command, list))
        });
        let result = result.and_then(|v| match v {
            Value::String(s) => Ok(s.to_string_lossy()),
            Value::Nil => Ok(String::new()),
            Value::Table(_) => serde_json::to_string(&v)
                .map_err(|e| CallError::Plugin(format!("the returned table is not data: {e}"))),
            other => Ok(format!("{other:?}")),
        });
        (ctx, result)
    }

    /// One activation of a long-lived plugin: `start(reason)`,
    /// `on_event(event)`, `stop()` (`start` and `stop` are optional) or a
    /// live command's `run`.
    pub(crate) fn activate(
        &self,
        ctx: CallContext,
        what: &Activation,
    ) -> (CallContext, Result<String, CallError>) {
        if let Activation::Run(command, args) = what {
            return self.run(ctx, command, args);
        }
        let (ctx, result) = self.call(ctx, |lua, module| {
            let (name, args) = match what {
                Activation::Start(r) => ("start", reason_name(*r).into_lua_multi(lua)?),
                Activation::Event(e) => ("on_event", event_value(lua, e)?.into_lua_multi(lua)?),
                Activation::Stop | Activation::Run(..) => ("stop", ().into_lua_multi(lua)?),
            };
            match module.get::<Value>(name)? {
                Value::Function(f) => f.call(args),
                _ => Ok(Value::Nil),
            }
        });
        (ctx, result.map(|_| String::new()))
    }

    /// Runs `f` on the state under the context's limits; after a limit the
    /// next call starts on a fresh state.
    fn call(
        &self,
        ctx: CallContext,
        f: impl FnOnce(&Lua, &Table) -> mlua::Result<Value>,
    ) -> (CallContext, Result<Value, CallError>) {
        let mut guard = self.lua.lock().unwrap_or_else(|p| p.into_inner());
        let (ctx, result) = Self::call_in(&guard, ctx, f);
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

    fn call_in(
        state: &(Lua, RegistryKey),
        ctx: CallContext,
        f: impl FnOnce(&Lua, &Table) -> mlua::Result<Value>,
    ) -> (CallContext, Result<Value, CallError>) {
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
        let result = lua
            .registry_value::<Table>(key)
            .and_then(|module| f(lua, &module));
        let cur = lua
            .remove_app_data::<Current>()
            .expect("set at the start of the call");
        let ctx = cur.ctx;
        let result = match result {
            _ if ctx.flooded => Err(CallError::Limit(format!(
                "output limit of {} KiB reached",
                ctx.manifest.limits.output_bytes >> 10
            ))),
            Ok(v) => Ok(v),
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
