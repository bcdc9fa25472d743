//! The Lua side of what the agent's admin names for plugins: settings,
//! signed-document checks, endpoints and commands (see
//! [`crate::host::AdminResources`]). Same names and shapes as the WIT.

use mlua::{Lua, Table, Value};

use crate::host::EndpointRequest;
use crate::lua::{lua_result, process_value, request_parts, response_value, to_lua, with_ctx};
use crate::wit;

/// Adds `plugin_settings`, `verify_document`, `endpoint_request` and
/// `admin_command` to the `lifeline` table.
pub(crate) fn install(lua: &Lua, t: &Table) -> mlua::Result<()> {
    t.set(
        "plugin_settings",
        lua.create_function(|lua, ()| {
            let r = with_ctx(lua, |c| c.plugin_settings())?;
            lua_result(lua, r, |lua, pairs| {
                let t = lua.create_table()?;
                for (k, v) in pairs {
                    t.set(k, v)?;
                }
                Ok(Value::Table(t))
            })
        })?,
    )?;
    t.set(
        "verify_document",
        lua.create_function(
            |lua, (kind, origin, data): (String, String, mlua::LuaString)| {
                let kind = match kind.as_str() {
                    "license" => wit::DocumentKind::License,
                    other => {
                        return Ok((
                            None,
                            Some(format!("{other:?} is not a document kind; use \"license\"")),
                        ));
                    }
                };
                let r = with_ctx(lua, |c| c.verify_document(kind, &origin, &data.as_bytes()))?;
                lua_result(lua, r, |lua, d| match d {
                    wit::VerifiedDocument::License(l) => to_lua(lua, &l),
                })
            },
        )?,
    )?;
    t.set(
        "endpoint_request",
        lua.create_function(
            |lua,
             (name, method, path, headers, body): (
                String,
                String,
                String,
                Option<Table>,
                Option<mlua::LuaString>,
            )| {
                let (hs, body) = request_parts(headers, body)?;
                let req = EndpointRequest {
                    method: &method,
                    path: &path,
                    headers: &hs,
                    body: &body,
                };
                let r = with_ctx(lua, |c| c.endpoint_request(&name, &req))?;
                lua_result(lua, r, response_value)
            },
        )?,
    )?;
    t.set(
        "admin_command",
        lua.create_function(|lua, name: String| {
            let r = with_ctx(lua, |c| c.admin_command(&name))?;
            lua_result(lua, r, process_value)
        })?,
    )?;
    Ok(())
}
