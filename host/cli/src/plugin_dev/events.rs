//! `--event`: a long-lived plugin's session, played from the command line.
//! The plugin's instance starts (`start(session)`), hears the events in
//! order, and stops at the end (`ending`, then `stop`), exactly as in an
//! agent's session (`lifeline_runtime::Services`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use lifeline_runtime::service::event_name;
use lifeline_runtime::wit::SessionEvent;
use lifeline_runtime::{PluginHost, Services, SessionPort};

use super::port::Console;

/// Longest pause `wait:MS` may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The reason of the session's end when no `ending:REASON` is given.
pub const DEFAULT_ENDING: &str = "the test ended";
/// What `--event` accepts, for help and errors.
pub const EVENT_FORMS: &str = "started, rejoined, operator-attached:NAME, operator-left:NAME, access-suspended:USER, access-restored:USER, wait:MS, ending:REASON (last)";

/// One step of a played session.
#[derive(Debug, Clone)]
pub enum Step {
    Event(SessionEvent),
    /// A pause (the plugin's timers may fire meanwhile).
    Wait(Duration),
}

/// The events of `--event`, in order, and how the session ends.
#[derive(Debug, Default, Clone)]
pub struct Script {
    pub steps: Vec<Step>,
    pub ending: Option<String>,
}

fn step(spec: &str) -> Result<Step> {
    let (kind, value) = match spec.split_once(':') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (spec, None),
    };
    let need = |v: Option<String>| match v {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(anyhow::anyhow!(
            "--event {spec}: {kind} needs a value ({kind}:…)"
        )),
    };
    let event = match kind {
        "started" if value.is_none() => SessionEvent::Started,
        "rejoined" if value.is_none() => SessionEvent::Rejoined,
        "operator-attached" => SessionEvent::OperatorAttached(need(value)?),
        "operator-left" => SessionEvent::OperatorLeft(need(value)?),
        "access-suspended" => SessionEvent::AccessSuspended(need(value)?),
        "access-restored" => SessionEvent::AccessRestored(need(value)?),
        "ending" => SessionEvent::Ending(need(value)?),
        "wait" => return wait(spec, &need(value)?),
        _ => bail!("--event {spec}: not an event; use {EVENT_FORMS}"),
    };
    Ok(Step::Event(event))
}

fn wait(spec: &str, ms: &str) -> Result<Step> {
    let Ok(ms) = ms.parse::<u64>() else {
        bail!("--event {spec}: wait takes milliseconds (wait:500)");
    };
    let d = Duration::from_millis(ms);
    if d > MAX_WAIT {
        bail!(
            "--event {spec}: a wait is at most {} ms",
            MAX_WAIT.as_millis()
        );
    }
    Ok(Step::Wait(d))
}

/// Parses the `--event` values; `ending:REASON` may only come last.
pub fn parse(specs: &[String]) -> Result<Script> {
    let mut script = Script::default();
    for (i, spec) in specs.iter().enumerate() {
        match step(spec)? {
            Step::Event(SessionEvent::Ending(reason)) => {
                if i + 1 != specs.len() {
                    bail!("--event {spec}: the session's end comes last");
                }
                script.ending = Some(reason);
            }
            s => script.steps.push(s),
        }
    }
    Ok(script)
}

/// The event as the `[event]` line shows it.
fn describe(e: &SessionEvent) -> String {
    let name = event_name(e);
    match e {
        SessionEvent::OperatorAttached(v)
        | SessionEvent::OperatorLeft(v)
        | SessionEvent::AccessSuspended(v)
        | SessionEvent::AccessRestored(v)
        | SessionEvent::Ending(v) => format!("{name} {v}"),
        _ => name.to_string(),
    }
}

/// Starts the long-lived plugin `id`, plays the script and stops it
/// (blocking until its `stop` ran or [`lifeline_runtime::service::STOP_WAIT`]).
pub fn play(
    host: &Arc<PluginHost>,
    id: &str,
    port: Arc<dyn SessionPort>,
    console: &Console,
    script: &Script,
) -> Result<()> {
    if !host.service_ids().iter().any(|s| s == id) {
        bail!(
            "--event: plugin {id} is not long-lived: declare \"session.events\" in plugin.toml and handle events (WASM: export the service world; Lua: define on_event)"
        );
    }
    let services = Services::start(host, port);
    for s in &script.steps {
        match s {
            Step::Event(e) => {
                console.tagged("event", &describe(e));
                services.event(e);
            }
            Step::Wait(d) => {
                console.tagged("event", &format!("(waiting {} ms)", d.as_millis()));
                std::thread::sleep(*d);
            }
        }
    }
    let reason = script.ending.as_deref().unwrap_or(DEFAULT_ENDING);
    console.tagged("event", &format!("ending {reason}"));
    services.stop(reason);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_in_order_and_ending_comes_last() {
        let specs: Vec<String> = [
            "started",
            "operator-attached:Alice",
            "wait:10",
            "ending:fixed",
        ]
        .map(String::from)
        .to_vec();
        let s = parse(&specs).unwrap();
        assert_eq!(
            format!("{:?}", s.steps),
            format!(
                "{:?}",
                [
                    Step::Event(SessionEvent::Started),
                    Step::Event(SessionEvent::OperatorAttached("Alice".into())),
                    Step::Wait(Duration::from_millis(10)),
                ]
            )
        );
        assert_eq!(s.ending.as_deref(), Some("fixed"));
        for (bad, want) in [
            ("ending:x,started", "comes last"),
            ("operator-left", "needs a value"),
            ("coffee", "not an event; use started"),
            ("started:now", "not an event"),
            ("wait:soon", "milliseconds"),
            ("wait:600000", "at most"),
        ] {
            let specs: Vec<String> = bad.split(',').map(String::from).collect();
            let err = parse(&specs).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
