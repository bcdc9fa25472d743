//! 6. Event delivery to a long-lived plugin: `Services::event` on the
//!    agent's side → the plugin's thread wakes → bench-wasm's `on-event`
//!    runs and calls `send-output`, where the time is taken. Baseline in the
//!    same run: the bare hand-off, a std channel to a waiting thread that
//!    takes the time on receipt (what delivery costs without the plugin).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use lifeline_runtime::Services;
use lifeline_runtime::capability::Capability;
use lifeline_runtime::host::SessionPort;
use lifeline_runtime::manifest::Manifest;
use lifeline_runtime::wit::SessionEvent;

use crate::{Opts, Row, fixture, row, stats, t3};

/// Bound on the wait for one event.
const EVENT_WAIT: Duration = Duration::from_secs(5);
const TARGET_P50_NS: f64 = 50_000.0;

/// Notes when the plugin's `send-output` ran.
#[derive(Default)]
struct Clock {
    seen: AtomicU64,
    at: Mutex<Option<Instant>>,
}

impl SessionPort for Clock {
    fn consent(&self, _: &Manifest, _: Capability) -> Result<(), String> {
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {
        *self.at.lock().expect("bench lock") = Some(Instant::now());
        self.seen.fetch_add(1, Ordering::Release);
    }
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
}

fn wait_seen(clock: &Clock, n: u64) -> Result<Instant> {
    let deadline = Instant::now() + EVENT_WAIT;
    while clock.seen.load(Ordering::Acquire) < n {
        if Instant::now() > deadline {
            bail!("event {n} was not delivered within {EVENT_WAIT:?}");
        }
        std::hint::spin_loop();
    }
    Ok(clock
        .at
        .lock()
        .expect("bench lock")
        .expect("set before seen"))
}

fn baseline(n: usize) -> Result<Vec<f64>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Instant>(16);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<f64>();
    let t = std::thread::spawn(move || {
        while let Ok(sent) = rx.recv() {
            let _ = back_tx.send(sent.elapsed().as_nanos() as f64);
        }
    });
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        tx.send(Instant::now())?;
        out.push(back_rx.recv_timeout(EVENT_WAIT)?);
        std::thread::sleep(Duration::from_micros(200));
    }
    drop(tx);
    let _ = t.join();
    Ok(out)
}

pub fn run(opts: Opts) -> Result<Vec<Row>> {
    let f = fixture(&["tests/plugins/bench-wasm"])?;
    let clock = Arc::new(Clock::default());
    let services = Services::start(&f.host, Arc::clone(&clock) as Arc<dyn SessionPort>);
    let n = opts.n(5_000);
    let mut ours = Vec::with_capacity(n);
    // Warm-up, then one event at a time (the plugin idle in between, as
    // between a session's events).
    for i in 0..(n + 100) as u64 {
        let t0 = Instant::now();
        services.event(&SessionEvent::Timer(i as u32));
        let at = wait_seen(&clock, i + 1)?;
        if i >= 100 {
            ours.push((at - t0).as_nanos() as f64);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    services.stop("bench over");
    let base = stats(baseline(n)?);
    let s = stats(ours);
    println!(
        "event delivery: plugin {}, bare hand-off {}",
        t3(s),
        t3(base)
    );
    Ok(vec![row(
        "6",
        "event delivery host → long-lived WASM plugin (`on-event` running), one at a time",
        format!("**{}**", t3(s)),
        format!("bare thread hand-off: {}", t3(base)),
        Some(("p50 ≤ 50 µs", s.p50 <= TARGET_P50_NS)),
    )])
}
