//! The operator's interactive session console.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;
use lifeline_core::config::OperatorConfig;
use lifeline_operator::{Client, Event, OperatorError, report};
use lifeline_protocol::{PluginSummary, SessionMessage, SessionSummary};

use crate::input;

/// The line that shows the security code of a session's end-to-end
/// channel: the customer's screen shows the same digits unless someone is
/// between the operator and the customer.
pub fn security_line(sas: &str) -> String {
    format!(
        "Security code: {sas} — ask the customer to read you the code on their screen; if it differs, someone is between you: end the session."
    )
}

/// What to say while a session has no end-to-end channel yet (the agent
/// is away: its computer restarts, or it has not resumed the session
/// since the broker restarted).
fn no_channel_line(s: &SessionSummary) -> String {
    format!(
        "The customer's agent is away (session {}): the end-to-end channel, and its security code, follow once it is back.",
        s.state
    )
}

/// Attaches for a one-shot command and shows the security code on
/// standard error (standard output stays the command's own).
pub async fn attach(c: &Client, session: &str) -> Result<SessionSummary, OperatorError> {
    let s = c.attach(session).await?;
    match c.sas(session) {
        Some(sas) => esay!("{}", security_line(&sas)),
        None => esay!("{}", no_channel_line(&s)),
    }
    Ok(s)
}

/// Shows the session's security code in the console, or that it follows.
fn show_code(c: &Client, s: &SessionSummary, shown: &mut Option<String>) {
    match c.sas(&s.session_id) {
        Some(sas) => announce(sas, shown),
        None => say!("* {}", no_channel_line(s)),
    }
}

/// Shows the code of a ready channel unless it is the one shown last;
/// a different one is announced as new (compare it with the customer's
/// again).
fn announce(sas: String, shown: &mut Option<String>) {
    if shown.as_ref() == Some(&sas) {
        return;
    }
    if shown.is_some() {
        say!(
            "* a new end-to-end channel with the customer's agent: the security code changed; compare it again."
        );
    }
    say!("{}", security_line(&sas));
    *shown = Some(sas);
}

/// Prints a plugin list: id, version, runtime, commands, capabilities.
pub fn print_plugins(plugins: &[PluginSummary]) {
    if plugins.is_empty() {
        say!("The agent has no plugins.");
    }
    for p in plugins {
        say!("{} {} ({}) — {}", p.id, p.version, p.runtime, p.description);
        for c in &p.commands {
            let args: Vec<String> = c.args.iter().map(|a| format!("<{a}>")).collect();
            say!("    {} {} — {}", c.name, args.join(" "), c.description);
        }
        if !p.capabilities.is_empty() {
            say!("    capabilities: {}", p.capabilities.join(", "));
        }
    }
}

/// The interactive session console. When the connection to the broker is
/// lost (a broker restart), it reconnects with the saved login and attaches
/// again; the session goes on once the customer's agent has resumed it.
pub async fn run(cfg: &OperatorConfig, mut c: Client, session: &str) -> Result<ExitCode> {
    let s = c.attach(session).await?;
    say!(
        "Connected to session {} — {} ({}), ticket {}.",
        s.session_id,
        s.end_user,
        s.customer_host.as_deref().unwrap_or_default(),
        s.ticket
    );
    // The code of the channel shown last: a new one is announced.
    let mut shown: Option<String> = None;
    show_code(&c, &s, &mut shown);
    say!(
        "Type to chat. Commands: /plugins  /run PLUGIN COMMAND [ARGS…]  /scripts NAME…  /ask PLUGIN ACTION DETAIL…  /report  /end [REASON]  /quit"
    );
    let mut lines = input::stdin_lines();
    // Call numbers start at a random point so that another operator client
    // in the same session does not use the same ones.
    let mut next_ask = u64::from(rand::random::<u32>()) << 16;
    // Plugin calls this console started and that have not finished: only
    // they may ask for a password, once each.
    let mut running: HashMap<u64, String> = HashMap::new();
    // A run-as login waiting for the password: the next line typed (echo off).
    let mut password_for: Option<(u64, input::EchoOff)> = None;
    loop {
        tokio::select! {
            ev = c.next_event() => match ev {
                None => {
                    say!("* the connection to the broker was lost; reconnecting…");
                    let (again, s) = Client::reconnect(cfg, session)
                        .await
                        .map_err(|e| anyhow::anyhow!("the connection to the broker was lost and could not be restored: {e}"))?;
                    c = again;
                    say!("* back in session {} ({})", s.session_id, s.state);
                    show_code(&c, &s, &mut shown);
                }
                Some(Event::Secured { sas, .. }) => announce(sas, &mut shown),
                Some(Event::Session { msg, .. }) => match msg {
                    SessionMessage::Chat { text, .. } => say!("[customer] {text}"),
                    SessionMessage::State { detail, .. } => say!("* {detail}"),
                    SessionMessage::ConsentAnswer { request_id, decision, decided_by, .. } => {
                        say!("* consent {request_id}: {} ({decided_by})", decision.as_str());
                    }
                    SessionMessage::End { by, reason } => {
                        say!("* session ended by the {by}: {reason}");
                        return Ok(ExitCode::SUCCESS);
                    }
                    SessionMessage::Plugins { plugins, .. } => print_plugins(&plugins),
                    SessionMessage::PluginOutput { plugin, stream, text, .. } => say!("[{plugin} {stream}] {text}"),
                    SessionMessage::PluginDone { plugin, ok, text, call_id } => {
                        running.remove(&call_id);
                        if ok { say!("* {plugin} #{call_id} finished: {text}") } else { say!("! {plugin} #{call_id} failed: {text}") }
                    }
                    SessionMessage::ConsentDecided { plugin, action, decision, decided_by, .. } => {
                        say!("* consent for {plugin} {action}: {} ({decided_by})", decision.as_str());
                    }
                    SessionMessage::PluginNotice { text } => say!("* {text}"),
                    SessionMessage::StreamOpened { stream, plugin, name, content_type, .. } => {
                        say!("* {plugin} opened stream {stream} {name:?} ({content_type}); `lifeline operator stream` shows it");
                    }
                    SessionMessage::StreamClosed { stream, name, frames, bytes, reason, .. } => {
                        say!("* stream {stream} {name:?} closed: {frames} frames, {bytes} bytes ({reason})");
                    }
                    SessionMessage::ScriptOutput { script, line, .. } => say!("[{script}] {line}"),
                    SessionMessage::ScriptDone { script, exit_code, duration_ms, timed_out, error, .. } => {
                        say!("* script {script}: exit {exit_code:?}, {duration_ms} ms{}{}", if timed_out { ", timed out" } else { "" }, error.map(|e| format!(", {e}")).unwrap_or_default());
                    }
                    SessionMessage::BatchDone { summary, .. } => say!("* scripts: {summary}"),
                    SessionMessage::CredentialRequest { request_id, user, prompt, call_id } => {
                        match running.get(&call_id) {
                            Some(what) if password_for.is_none() => {
                                say!("* The customer consented to a login as {user} ({what}, #{call_id}). {prompt} (not shown; an empty line declines):");
                                running.remove(&call_id);
                                password_for = Some((request_id, input::EchoOff::new()));
                            }
                            _ => {
                                // Not a login this console started and waits
                                // for: a password typed now would go to
                                // whoever asked. Decline without asking.
                                say!("! ignored a password request for {user} that no command of yours is waiting for (#{call_id}); nothing was sent");
                                c.send(session, SessionMessage::CredentialReply { request_id, secret: None }).await?;
                            }
                        }
                    }
                    SessionMessage::Access { suspended, user, detail } => {
                        if suspended { say!("* working as {user}; the customer's access is suspended ({detail})") } else { say!("* login as {user} ended; the customer's access is restored ({detail})") }
                    }
                    SessionMessage::ConsentRequest { .. }
                    | SessionMessage::ListPlugins { .. }
                    | SessionMessage::RunPlugin { .. }
                    | SessionMessage::ScriptBatch { .. }
                    | SessionMessage::ScriptFiles { .. }
                    | SessionMessage::CredentialReply { .. }
                    | SessionMessage::E2eHello { .. }
                    | SessionMessage::E2eReply { .. }
                    | SessionMessage::Sealed { .. }
                    | SessionMessage::E2eClosed { .. }
                    | SessionMessage::Record { .. } => {}
                },
                Some(Event::Error(m)) => say!("! {m}"),
                Some(Event::Data { .. } | Event::Stream { .. }) => {}
            },
            line = lines.recv() => {
                let Some(line) = line else {
                    let _ = c.detach(session).await;
                    return Ok(ExitCode::SUCCESS);
                };
                if let Some((request_id, echo)) = password_for.take() {
                    drop(echo);
                    println!();
                    let secret = (!line.is_empty()).then(|| lifeline_protocol::Secret::new(line));
                    c.send(session, SessionMessage::CredentialReply { request_id, secret }).await?;
                    continue;
                }
                let line = line.trim();
                if line.is_empty() { continue; }
                if let Some(rest) = line.strip_prefix('/') {
                    let (cmd, arg) = rest.split_once(' ').unwrap_or((rest, ""));
                    match cmd {
                        "quit" => { c.detach(session).await?; return Ok(ExitCode::SUCCESS); }
                        "end" => { c.end(session, arg).await?; say!("* session ended"); return Ok(ExitCode::SUCCESS); }
                        "plugins" => {
                            next_ask += 1;
                            c.send(session, SessionMessage::ListPlugins { request_id: next_ask }).await?;
                        }
                        "run" => {
                            let mut parts = arg.split_whitespace();
                            match (parts.next(), parts.next()) {
                                (Some(plugin), Some(command)) => {
                                    next_ask += 1;
                                    let args = parts.map(String::from).collect();
                                    running.insert(next_ask, format!("{plugin} {command}"));
                                    c.send(session, SessionMessage::RunPlugin { call_id: next_ask, plugin: plugin.into(), command: command.into(), args }).await?;
                                    say!("* {plugin} {command} started as #{next_ask}");
                                }
                                _ => say!("usage: /run PLUGIN COMMAND [ARGS…]"),
                            }
                        }
                        "scripts" => {
                            let names: Vec<String> = arg.split_whitespace().map(String::from).collect();
                            if names.is_empty() {
                                say!("usage: /scripts NAME… (run in this order; stops at the first failure)");
                            } else {
                                let req = lifeline_protocol::Request::RunScripts { session_id: session.into(), names, stop_on_failure: true, timeout_secs: None };
                                match c.request(req).await {
                                    Ok(_) => say!("* scripts sent; the customer is asked first"),
                                    Err(e) => say!("! {e}"),
                                }
                            }
                        }
                        "report" => {
                            let (s, ev) = c.report(session).await?;
                            print!("{}", report::to_text(&s, &ev));
                        }
                        "ask" => {
                            let mut parts = arg.splitn(3, ' ');
                            match (parts.next(), parts.next(), parts.next()) {
                                (Some(plugin), Some(action), Some(detail)) if !plugin.is_empty() => {
                                    next_ask += 1;
                                    c.send(session, SessionMessage::ConsentRequest {
                                        request_id: next_ask, operator: String::new(),
                                        plugin: plugin.into(), action: action.into(), detail: detail.into(),
                                    }).await?;
                                    say!("* consent {next_ask} asked; waiting for the customer");
                                }
                                _ => say!("usage: /ask PLUGIN ACTION DETAIL…"),
                            }
                        }
                        other => say!("unknown command /{other}"),
                    }
                } else if let Err(e) = c.chat(session, line).await {
                    if matches!(e, OperatorError::Lost(_)) { return Err(e.into()); }
                    say!("! {e}");
                }
            }
        }
    }
}
