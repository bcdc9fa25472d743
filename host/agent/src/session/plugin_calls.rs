//! The operator's plugin commands: the list of plugins, and a command run
//! on a blocking thread with its own session port.

use lifeline_protocol::SessionMessage;
use lifeline_runtime::Arg;

use super::Session;
use crate::plugins;

impl Session<'_> {
    /// `ListPlugins`: the plugins as the operator sees them.
    pub(super) fn on_list_plugins(&self, request_id: u64) {
        let plugins = self
            .plugin_host
            .as_deref()
            .map(plugins::summaries)
            .unwrap_or_default();
        let _ = self.plug_tx.send(SessionMessage::Plugins {
            request_id,
            plugins,
        });
    }

    /// `RunPlugin` of `operator`: refused without plugins or for a
    /// host-only command; otherwise run, its result sent as `PluginDone`.
    pub(super) fn on_run_plugin(
        &self,
        call_id: u64,
        plugin: String,
        command: String,
        args: Vec<String>,
        operator: String,
    ) {
        let line = format!("* {operator} runs {plugin} {command} {}", args.join(" "));
        self.ui.show(line.trim_end());
        let tx = self.plug_tx.clone();
        let Some(host) = self.plugin_host.clone() else {
            let text = "this agent runs no plugins".into();
            let _ = tx.send(SessionMessage::PluginDone {
                call_id,
                plugin,
                ok: false,
                text,
            });
            return;
        };
        if let Some(why) = plugins::refuse_operator_call(&host, &plugin, &command) {
            self.ui.show(&format!("* refused: {why}"));
            let _ = tx.send(SessionMessage::PluginDone {
                call_id,
                plugin,
                ok: false,
                text: why,
            });
            return;
        }
        let port = self.port_for(call_id, operator);
        let services = std::sync::Arc::clone(&self.services);
        let live = host
            .manifest(&plugin)
            .and_then(|m| m.command(&command).map(|c| c.live))
            .unwrap_or(false);
        tokio::task::spawn_blocking(move || {
            let args: Vec<Arg> = args.into_iter().map(Arg::Text).collect();
            // A live command runs in the session's instance of the plugin;
            // where it has none (not started, stopped), in a call of its own.
            let answer = if live {
                services.call(&plugin, &command, args.clone())
            } else {
                None
            };
            let answer = answer.unwrap_or_else(|| host.call(&plugin, &command, &args, port));
            let (ok, text) = match answer {
                Ok(t) => (true, t),
                Err(e) => (false, e.to_string()),
            };
            let _ = tx.send(SessionMessage::PluginDone {
                call_id,
                plugin,
                ok,
                text,
            });
        });
    }
}
