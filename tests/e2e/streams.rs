//! Plugin streams and long-lived plugins across real processes: the broker
//! and the agent run as `lifeline` processes (so their memory can be read
//! from /proc), the operator client runs here through the library.

use std::path::Path;
use std::time::{Duration, Instant};

use lifeline_core::config::OperatorConfig;
use lifeline_operator::{Client, Event};
use lifeline_protocol::SessionMessage;
use sha2::{Digest, Sha256};

use crate::processes::*;

/// The byte at offset `i` of the `stream-wasm` plugin's pattern.
fn pattern(i: u64) -> u8 {
    ((i % 251) as u8) ^ ((i >> 16) as u8)
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A broker and an agent process in a ready session with `plugins`; the
/// operator config path and the session ID.
struct Setup {
    dir: tempfile::TempDir,
    broker: Proc,
    agent: Proc,
    op: String,
    agent_cfg: String,
    sid: String,
}

fn setup(plugins: &[&str], extra_agent_config: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (broker, addr, fp) = start_broker(d);
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    crate::plugins::install_plugins(&d.join("agent-plugins"), plugins);
    let cfg_text = std::fs::read_to_string(&agent_cfg).unwrap()
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\nhot_reload = true\n"
        + extra_agent_config;
    write(Path::new(&agent_cfg), &cfg_text);
    login(&op);
    let (sid, inv) = invite(&op, "T-STREAM");
    let agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );
    Setup {
        dir,
        broker,
        agent,
        op,
        agent_cfg,
        sid,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn operator(s: &Setup) -> Client {
    let cfg = OperatorConfig::load(Path::new(&s.op)).unwrap();
    let c = Client::connect_logged_in(&cfg).await.unwrap();
    c.attach(&s.sid).await.unwrap();
    c
}

async fn run(c: &Client, sid: &str, plugin: &str, command: &str, args: &[&str]) {
    let msg = SessionMessage::RunPlugin {
        call_id: 1,
        plugin: plugin.into(),
        command: command.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    c.send(sid, msg).await.unwrap();
}

async fn next(c: &Client, deadline: Instant) -> Event {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, c.next_event())
        .await
        .expect("the stream test ran out of time")
        .expect("the connection stays up")
}

/// Bytes of the big stream, and the bound on what the agent and the broker
/// may grow by while it flows: the credit window (1 MiB) in the queues, the
/// frames being copied, and the allocator's slack; far below the 100 MiB
/// that pass through.
const BIG_STREAM: u64 = 100 << 20;
const FRAME: u64 = 64 << 10;
const MAX_GROWTH_KIB: u64 = 16 << 10;
/// The operator client's pause per frame: it reads far slower than the
/// plugin writes (about 10 MiB/s here).
const READ_PAUSE: Duration = Duration::from_micros(6_000);

#[test]
fn a_wasm_plugin_streams_100_mib_to_a_slow_operator_in_bounded_memory() {
    let s = setup(&["tests/plugins/stream-wasm"], "");
    let (broker_pid, agent_pid) = (s.broker.child.id(), s.agent.child.id());
    runtime().block_on(async {
        let c = operator(&s).await;
        let base = (rss_kib(broker_pid), rss_kib(agent_pid));
        let (size, frame) = (BIG_STREAM.to_string(), FRAME.to_string());
        run(&c, &s.sid, "stream-wasm", "stream", &[&size, &frame]).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut hash, mut got, mut peak) = (Sha256::new(), 0u64, (0u64, 0u64));
        let (mut frames, mut closed, mut done) = (0u64, None, None);
        while done.is_none() || closed.is_none() {
            match next(&c, deadline).await {
                Event::Session { msg, .. } => match msg {
                    SessionMessage::StreamOpened { stream, name, .. } => {
                        assert_eq!(name, "data");
                        c.stream_credit(&s.sid, stream, 1 << 20).await.unwrap();
                    }
                    SessionMessage::StreamClosed { bytes, frames, .. } => {
                        closed = Some((bytes, frames))
                    }
                    SessionMessage::PluginDone { ok, text, .. } => done = Some((ok, text)),
                    _ => {}
                },
                Event::Stream { stream, body, .. } => {
                    hash.update(&body);
                    got += body.len() as u64;
                    frames += 1;
                    tokio::time::sleep(READ_PAUSE).await;
                    if frames % 64 == 0 {
                        peak.0 = peak.0.max(rss_kib(broker_pid));
                        peak.1 = peak.1.max(rss_kib(agent_pid));
                    }
                    c.stream_credit(&s.sid, stream, body.len() as u64).await.unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let (ok, text) = done.unwrap();
        assert!(ok, "{text}");
        assert_eq!(text, format!("sent {BIG_STREAM} bytes in 1600 frames"));
        assert_eq!(closed, Some((BIG_STREAM, 1600)));
        assert_eq!(got, BIG_STREAM, "every byte arrived");
        let mut expected = Sha256::new();
        let all: Vec<u8> = (0..BIG_STREAM).map(pattern).collect();
        expected.update(&all);
        assert_eq!(hash.finalize(), expected.finalize(), "intact");
        let growth = (peak.0.saturating_sub(base.0), peak.1.saturating_sub(base.1));
        println!(
            "100 MiB stream to a slow reader: broker {} → peak {} KiB (+{}), agent {} → peak {} KiB (+{})",
            base.0, peak.0, growth.0, base.1, peak.1, growth.1
        );
        assert!(growth.0 < MAX_GROWTH_KIB, "broker grew by {} KiB", growth.0);
        assert!(growth.1 < MAX_GROWTH_KIB, "agent grew by {} KiB", growth.1);
    });
    drop(s);
}

#[test]
fn a_latest_wins_stream_with_a_stalled_reader_keeps_only_the_newest_frame() {
    let s = setup(&["tests/plugins/stream-wasm"], "");
    runtime().block_on(async {
        let c = operator(&s).await;
        run(&c, &s.sid, "stream-wasm", "latest", &["100"]).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut id = None;
        // The reader stalls: no credit until the plugin has sent everything.
        loop {
            match next(&c, deadline).await {
                Event::Session {
                    msg: SessionMessage::StreamOpened { stream, name, .. },
                    ..
                } => {
                    assert_eq!(name, "status");
                    id = Some(stream);
                }
                Event::Session {
                    msg: SessionMessage::PluginOutput { text, .. },
                    ..
                } if text == "sent 100 frames" => break,
                Event::Stream { .. } => panic!("a frame flowed without credit"),
                _ => {}
            }
        }
        let id = id.expect("the stream was announced");
        c.stream_credit(&s.sid, id, 1 << 20).await.unwrap();
        let body = loop {
            if let Event::Stream { stream, body, .. } = next(&c, deadline).await {
                assert_eq!(stream, id);
                break body;
            }
        };
        assert_eq!(
            String::from_utf8_lossy(&body),
            "frame 100",
            "only the newest"
        );
        c.stream_input(&s.sid, id, b"done".to_vec()).await.unwrap();
        let (mut done, mut closed) = (None, None);
        while done.is_none() || closed.is_none() {
            match next(&c, deadline).await {
                Event::Session { msg, .. } => match msg {
                    SessionMessage::PluginDone { ok, text, .. } => done = Some((ok, text)),
                    SessionMessage::StreamClosed {
                        frames, dropped, ..
                    } => closed = Some((frames, dropped)),
                    _ => {}
                },
                Event::Stream { body, .. } => {
                    panic!("a stale frame arrived: {}", String::from_utf8_lossy(&body))
                }
                _ => {}
            }
        }
        assert_eq!(done, Some((true, "dropped 99".to_string())));
        assert_eq!(closed, Some((1, 99)));
    });
    let report = ok(&["operator", "report", "--config", &s.op, &s.sid], None);
    assert!(
        report.contains("opened stream") && report.contains("1 frames, 9 bytes, 99 dropped"),
        "{report}"
    );
}

/// The log the `events-lua` plugin keeps in its state file.
fn events_log(dir: &Path) -> String {
    let kv = dir.join("agent-data/plugin-state/kv/events-lua.json");
    let text = std::fs::read_to_string(&kv).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["log"].as_str().unwrap_or("").to_string()
}

fn wait_log(dir: &Path, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !events_log(dir).lines().any(|l| l == line) {
        assert!(
            Instant::now() < deadline,
            "no {line:?} in the log:\n{}",
            events_log(dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const RELOADS: usize = 10;

#[test]
fn a_long_lived_plugin_hears_every_event_across_reloads_and_a_reboot() {
    let mut s = setup(
        &["tests/plugins/events-lua", "plugins/reboot"],
        "[power]\nreboot_command = [\"sh\", \"-c\", \"kill -9 $LIFELINE_AGENT_PID\"]\n",
    );
    let d = s.dir.path().to_owned();
    let main = d.join("agent-plugins/events-lua/main.lua");
    let code = std::fs::read_to_string(&main).unwrap();
    wait_log(&d, "event started");
    let rt = runtime();
    // Each round: a new version is saved, and while the agent reloads it
    // the operator comes and goes; then the new version is live.
    for i in 1..=RELOADS {
        let next = code.replace("\"v0\"", &format!("\"v{i}\""));
        std::fs::write(&main, next).unwrap();
        rt.block_on(async {
            let c = operator(&s).await;
            c.detach(&s.sid).await.unwrap();
        });
        wait_log(&d, &format!("start reload v{i}"));
    }
    // The reboot: the operator asks, the customer allows, the power backend
    // kills the agent; the service starts it again and it rejoins.
    let op = s.op.clone();
    let sid = s.sid.clone();
    let t = std::thread::spawn(move || {
        run_cli(&[
            "operator", "reboot", "--config", &op, &sid, "--reason", "updates",
        ])
    });
    s.agent.wait_line("Type /allow");
    s.agent.type_line("/allow");
    assert!(t.join().unwrap().status.success());
    s.agent.wait_exit();
    let back = Proc::spawn(&["agent", "service", "--config", &s.agent_cfg]);
    back.wait_line("You are back in the session");
    wait_log(&d, "event rejoined");
    ok(&["operator", "end", "--config", &s.op, &s.sid], None);
    wait_log(&d, &format!("stop v{RELOADS}"));
    // After the session, the agent service keeps long-lived plugins running
    // in the background.
    wait_log(&d, &format!("start background v{RELOADS}"));

    let log = events_log(&d);
    // Every event, once, in order, whichever version was live.
    let mut want_events = vec!["event started".to_string()];
    for _ in 1..=RELOADS {
        want_events.push("event operator-attached Alice Smith".into());
        want_events.push("event operator-left Alice Smith".into());
    }
    // The reboot command attaches (and leaves, unless the power backend
    // was quicker); the agent is killed (no `stop`), the rejoined agent
    // starts the plugin again, and `operator end` ends it.
    want_events.push("event operator-attached Alice Smith".into());
    let mut events: Vec<&str> = log.lines().filter(|l| l.starts_with("event ")).collect();
    if events.get(want_events.len()) == Some(&"event operator-left Alice Smith") {
        events.remove(want_events.len());
    }
    want_events.push("event rejoined".into());
    assert_eq!(events.len(), want_events.len() + 1, "log:\n{log}");
    assert_eq!(
        &events[..want_events.len()],
        want_events.as_slice(),
        "log:\n{log}"
    );
    assert!(
        events[want_events.len()].starts_with("event ending"),
        "log:\n{log}"
    );
    // Handovers in order: version i-1 stops, then version i starts.
    let lifecycle: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("start ") || l.starts_with("stop "))
        .collect();
    let mut want: Vec<String> = vec!["start session v0".into()];
    for i in 1..=RELOADS {
        want.push(format!("stop v{}", i - 1));
        want.push(format!("start reload v{i}"));
    }
    want.push(format!("start session v{RELOADS}"));
    want.push(format!("stop v{RELOADS}"));
    // After the session, the agent service keeps long-lived plugins
    // running in the background.
    want.push(format!("start background v{RELOADS}"));
    assert_eq!(lifecycle, want, "log:\n{log}");
    let tail: Vec<&str> = log.lines().rev().take(2).collect();
    let (background, stopped) = (
        format!("start background v{RELOADS}"),
        format!("stop v{RELOADS}"),
    );
    assert_eq!(tail, [background.as_str(), stopped.as_str()], "log:\n{log}");
    drop(back);
}

fn run_cli(args: &[&str]) -> std::process::Output {
    crate::processes::run(args, None)
}

#[test]
fn operator_input_reaches_the_plugin_and_the_cli_saves_streams() {
    let s = setup(&["tests/plugins/stream-wasm"], "");
    // Frames sent back on a stream reach the plugin (input events).
    runtime().block_on(async {
        let c = operator(&s).await;
        run(&c, &s.sid, "stream-wasm", "echo", &[]).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let id = loop {
            if let Event::Session {
                msg: SessionMessage::StreamOpened { stream, .. },
                ..
            } = next(&c, deadline).await
            {
                break stream;
            }
        };
        c.stream_credit(&s.sid, id, 1 << 20).await.unwrap();
        for word in ["key a", "key b", "click 10 20"] {
            c.stream_input(&s.sid, id, word.as_bytes().to_vec())
                .await
                .unwrap();
            let back = loop {
                if let Event::Stream { body, .. } = next(&c, deadline).await {
                    break body;
                }
            };
            assert_eq!(back, word.as_bytes());
        }
        c.stream_input(&s.sid, id, b"bye".to_vec()).await.unwrap();
        loop {
            if let Event::Session {
                msg: SessionMessage::PluginDone { ok, text, .. },
                ..
            } = next(&c, deadline).await
            {
                assert!(ok, "{text}");
                assert_eq!(text, "echoed 3 frames");
                break;
            }
        }
    });
    // `operator run --streams DIR` saves what a command streams.
    let out_dir = s.dir.path().join("streams");
    let said = ok(
        &[
            "operator",
            "run",
            "--config",
            &s.op,
            &s.sid,
            "stream-wasm",
            "stream",
            "300000",
            "4096",
            "--streams",
            p(&out_dir),
        ],
        None,
    );
    assert!(said.contains("sent 300000 bytes in 74 frames"), "{said}");
    let files: Vec<_> = std::fs::read_dir(&out_dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .file_name()
            .to_string_lossy()
            .ends_with("-data.bin")
    );
    let saved = std::fs::read(files[0].path()).unwrap();
    assert_eq!(saved.len(), 300_000);
    assert!(
        saved
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern(i as u64))
    );
}

/// The same stream with the agent in this process (as the benchmark runs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_agent_streams_to_the_operator() {
    use crate::support::*;
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let root = tb.dir.path().join("plugins");
    crate::plugins::install_plugins(&root, &["tests/plugins/stream-wasm"]);
    let mut cfg = tb.agent_config("agent", None, Duration::from_secs(20));
    cfg.plugins = Some(unsigned_plugins(root));
    let (sid, _agent) = connected_session(&tb, &op, cfg).await;
    run(&op, &sid, "stream-wasm", "stream", &["4194304", "1048576"]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = 0;
    loop {
        match next(&op, deadline).await {
            Event::Session {
                msg: SessionMessage::StreamOpened { stream, .. },
                ..
            } => op.stream_credit(&sid, stream, 8 << 20).await.unwrap(),
            Event::Stream { stream, body, .. } => {
                got += body.len();
                op.stream_credit(&sid, stream, body.len() as u64)
                    .await
                    .unwrap();
            }
            Event::Session {
                msg: SessionMessage::PluginDone { ok, text, .. },
                ..
            } => {
                assert!(ok, "{text}");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(got, 4 << 20);
}
