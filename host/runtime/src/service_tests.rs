//! Long-lived plugins: events in order, timers, stop, a fresh instance
//! after a limit, and the manifest and code agreeing on `session.events`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::capability::Capability;
use crate::host::SessionPort;
use crate::manifest::Manifest;
use crate::plugins::PluginHost;
use crate::service::Services;
use crate::tests::{host_with, unsigned_host};
use crate::wit::SessionEvent;

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Port {
    lines: Mutex<Vec<String>>,
}

impl SessionPort for Port {
    fn consent(&self, _: &Manifest, _: Capability) -> Result<(), String> {
        Ok(())
    }
    fn output(&self, _plugin: &str, text: &str) {
        self.lines.lock().unwrap().push(text.to_string());
    }
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
}

impl Port {
    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = self.lines.lock().unwrap().clone();
            if lines.len() >= n {
                return lines;
            }
            assert!(Instant::now() < deadline, "only {lines:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn a_wasm_service_hears_every_event_then_stops() {
    let (_dir, host) = host_with(&["tests/plugins/bench-wasm"]);
    assert_eq!(host.service_ids(), ["bench-wasm"]);
    let port = Arc::new(Port::default());
    let services = Services::start(&host, Arc::clone(&port) as Arc<dyn SessionPort>);
    for i in 0..50 {
        services.event(&SessionEvent::Timer(i));
    }
    // bench-wasm answers each event with one "e".
    assert_eq!(port.wait_for(50).len(), 50);
    services.stop("test over");
    // `ending` was the last event; nothing runs after `stop`.
    let after = port.wait_for(51).len();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(port.lines.lock().unwrap().len(), after);
    assert!(services.ids().is_empty());
}

fn lua_host(
    code: &str,
    declares_events: bool,
) -> (tempfile::TempDir, Result<Arc<PluginHost>, String>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plugins/svc");
    std::fs::create_dir_all(&p).unwrap();
    let caps = if declares_events {
        "\"session.events\" = \"hear the session\"\n"
    } else {
        ""
    };
    std::fs::write(
        p.join("plugin.toml"),
        format!(
            "[plugin]\nid = \"svc\"\ndescription = \"svc\"\nversion = \"1.0.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\n\
             [limits]\ntime_per_call_ms = 200\n[capabilities]\n{caps}\
             [[commands]]\nname = \"x\"\ndescription = \"x\"\n"
        ),
    )
    .unwrap();
    std::fs::write(p.join("main.lua"), code).unwrap();
    let host = unsigned_host(dir.path().join("plugins"), dir.path());
    let errors = host.load_all();
    let host = match errors.first() {
        Some((_, e)) => Err(e.clone()),
        None => Ok(Arc::new(host)),
    };
    (dir, host)
}

const TICKER: &str = r#"
local M = {}
local ticks = 0
function M.start(reason)
  lifeline.send_output("start " .. reason)
  -- Only the first instance ticks: a restarted one must not race the
  -- session's end with a timer of its own.
  if reason == "session" then lifeline.timer_set(10) end
end
function M.on_event(ev)
  if ev.kind == "timer" then
    ticks += 1
    lifeline.send_output("tick " .. ticks)
    if ticks < 3 then lifeline.timer_set(10) end
  elseif ev.operator == "hog" then
    while true do end
  else
    lifeline.send_output(ev.kind .. " " .. tostring(ev.operator or ev.reason))
  end
end
function M.stop() lifeline.send_output("stop") end
function M.run() return "" end
return M
"#;

#[test]
fn a_lua_service_has_timers_and_starts_fresh_after_a_limit() {
    let (_dir, host) = lua_host(TICKER, true);
    let host = host.unwrap();
    let port = Arc::new(Port::default());
    let services = Services::start(&host, Arc::clone(&port) as Arc<dyn SessionPort>);
    assert_eq!(
        port.wait_for(4),
        ["start session", "tick 1", "tick 2", "tick 3"]
    );
    // A runaway activation hits the time limit; the next event finds a
    // fresh instance, started with reason "restart".
    services.event(&SessionEvent::OperatorAttached("hog".into()));
    services.event(&SessionEvent::OperatorAttached("ada".into()));
    let lines = port.wait_for(7);
    assert!(lines[4].contains("time limit of 200 ms"), "{lines:?}");
    assert_eq!(lines[5..7], ["start restart", "operator-attached ada"]);
    // Timers need a long-lived plugin: a command cannot set one.
    services.stop("bye");
    assert_eq!(port.wait_for(9)[7..9], ["ending bye", "stop"]);
}

#[test]
fn session_events_need_both_the_capability_and_the_handler() {
    let (_d, err) = lua_host(TICKER, false);
    let err = err.err().expect("refused");
    assert!(
        err.contains("does not declare the capability session.events"),
        "{err}"
    );
    let plain = "local M = {}\nfunction M.run() return '' end\nreturn M\n";
    let (_d, err) = lua_host(plain, true);
    let err = err.err().expect("refused");
    assert!(err.contains("handles no events"), "{err}");
    // A command may not set a timer.
    let timer = "local M = {}\nfunction M.run() local ok, e = lifeline.timer_set(5) return e end\nfunction M.on_event() end\nreturn M\n";
    let (_d, host) = lua_host(timer, true);
    let host = host.unwrap();
    let port: Arc<dyn SessionPort> = Arc::new(Port::default());
    let out = host.call("svc", "x", &[], port).unwrap();
    assert!(out.contains("timers belong to long-lived plugins"), "{out}");
}

/// A consenting port that counts the questions and can withdraw.
#[derive(Default)]
struct CountingPort {
    asked: Mutex<u32>,
    withdrawn: Mutex<Vec<Capability>>,
}

impl SessionPort for CountingPort {
    fn consent(&self, _: &Manifest, _: Capability) -> Result<(), String> {
        *self.asked.lock().unwrap() += 1;
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {}
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
    fn take_withdrawn(&self, _plugin: &str) -> Vec<Capability> {
        std::mem::take(&mut *self.withdrawn.lock().unwrap())
    }
}

/// A long-lived plugin with a live command `count` and a plain one `plain`.
fn live_host(code: &str) -> (tempfile::TempDir, Arc<PluginHost>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plugins/svc");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("plugin.toml"),
        "[plugin]\nid = \"svc\"\ndescription = \"svc\"\nversion = \"1.0.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\n\
         [capabilities]\n\"session.events\" = \"hear the session\"\n\"system.info\" = \"read facts\"\n\
         [[commands]]\nname = \"count\"\ndescription = \"x\"\nlive = true\n\
         [[commands]]\nname = \"plain\"\ndescription = \"x\"\n",
    )
    .unwrap();
    std::fs::write(p.join("main.lua"), code).unwrap();
    let host = unsigned_host(dir.path().join("plugins"), dir.path());
    assert!(host.load_all().is_empty());
    (dir, Arc::new(host))
}

const COUNTER: &str = r#"
local M = {}
local events = 0
function M.on_event(ev)
  events += 1
  lifeline.system_info("os")
end
function M.run(command)
  lifeline.system_info("os")
  return command .. " " .. events
end
return M
"#;

#[test]
fn a_live_command_runs_in_the_sessions_instance_after_its_events() {
    let (_dir, host) = live_host(COUNTER);
    let port = Arc::new(CountingPort::default());
    let services = Services::start(&host, Arc::clone(&port) as Arc<dyn SessionPort>);
    for i in 0..3 {
        services.event(&SessionEvent::Timer(i));
    }
    // Queued behind the three events, in the instance that heard them.
    let out = services.call("svc", "count", vec![]).expect("running");
    assert_eq!(out.unwrap(), "count 3");
    // The instance asked once for system.info across four activations.
    assert_eq!(*port.asked.lock().unwrap(), 1);
    // Withdrawn by the customer: the next use asks again, once.
    port.withdrawn.lock().unwrap().push(Capability::SystemInfo);
    services.event(&SessionEvent::Timer(9));
    assert_eq!(
        services.call("svc", "count", vec![]).unwrap().unwrap(),
        "count 4"
    );
    assert_eq!(*port.asked.lock().unwrap(), 2);
    assert!(services.call("other", "count", vec![]).is_none());
    services.stop("bye");
}

#[test]
fn a_live_command_needs_a_long_lived_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plugins/svc");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("plugin.toml"),
        "[plugin]\nid = \"svc\"\ndescription = \"svc\"\nversion = \"1.0.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\n\
         [[commands]]\nname = \"count\"\ndescription = \"x\"\nlive = true\n",
    )
    .unwrap();
    std::fs::write(
        p.join("main.lua"),
        "return { run = function() return '' end }\n",
    )
    .unwrap();
    let host = unsigned_host(dir.path().join("plugins"), dir.path());
    let errors = host.load_all();
    let err = &errors.first().expect("refused").1;
    assert!(err.contains("commands.live"), "{err}");
    assert!(err.contains("declare \"session.events\""), "{err}");
}
