//! Benchmark 4, hot reload latency: from writing a changed file into a watched plugin
//! folder to the new version being live (the reload thread's report, sent
//! right after `PluginHost::load_dir` swapped it in).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use lifeline_runtime::watch::{self, DEBOUNCE, ReloadEvent};

use crate::{Opts, Row, fixture, nanos, row, stats, t, t3};

/// Bound on each reload.
const WAIT: Duration = Duration::from_secs(10);
/// Quiet time after each reload, to catch late duplicate reloads.
const SETTLE: Duration = Duration::from_millis(150);

type Events = Receiver<(Instant, ReloadEvent)>;

/// `bytes` (a component) with a custom section carrying `n` appended: a
/// different build to the cache, the same code to the engine.
fn rebuilt(bytes: &[u8], n: u64) -> Vec<u8> {
    let name = b"lifeline-bench-build";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(&n.to_le_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push(payload.len() as u8); // < 128: one LEB128 byte
    out.extend_from_slice(&payload);
    out
}

/// Writes `content` to `file`, then waits for the reload of `id` (and
/// `version`, if given). Returns the latency and how many further reloads of
/// `id` followed within [`SETTLE`].
fn reload_once(
    events: &Events,
    file: &Path,
    content: &[u8],
    id: &str,
    version: Option<&str>,
) -> Result<(f64, usize)> {
    while events.try_recv().is_ok() {}
    let t0 = Instant::now();
    std::fs::write(file, content)?;
    let deadline = t0 + WAIT;
    let latency = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok((at, ReloadEvent::Reloaded { id: i, version: v }))
                if i == id && version.is_none_or(|w| w == v) =>
            {
                break nanos(at - t0);
            }
            Ok((_, ReloadEvent::Failed { dir, error })) => {
                bail!("reload of {} failed: {error}", dir.display())
            }
            Ok(_) => {}
            Err(_) => bail!(
                "{id} was not reloaded within {WAIT:?} of writing {}",
                file.display()
            ),
        }
    };
    std::thread::sleep(SETTLE);
    let extra = events
        .try_iter()
        .filter(|(_, e)| matches!(e, ReloadEvent::Reloaded { id: i, .. } if i == id))
        .count();
    Ok((latency, extra))
}

struct Case {
    what: String,
    target: Option<(&'static str, f64)>,
    latency: Vec<f64>,
    extra: usize,
    direct: Vec<f64>,
}

pub fn run(opts: Opts) -> Result<Vec<Row>> {
    let n = if opts.quick { 5 } else { 20 };
    let f = fixture(&["plugins/hello-lua", "tests/plugins/bench-wasm"])?;
    let lua_dir = f.root.join("hello-lua");
    let wasm_dir = f.root.join("bench-wasm");
    let lua_toml = std::fs::read_to_string(lua_dir.join("plugin.toml"))?;
    let lua_main = std::fs::read(lua_dir.join("main.lua"))?;
    let wasm_toml = std::fs::read_to_string(wasm_dir.join("plugin.toml"))?;
    let wasm = std::fs::read(wasm_dir.join("plugin.wasm"))?;
    let bump = |toml: &str, v: &str| {
        toml.replacen("version = \"0.1.0\"", &format!("version = \"{v}\""), 1)
    };
    if bump(&lua_toml, "x") == lua_toml || bump(&wasm_toml, "x") == wasm_toml {
        bail!("the copied manifests no longer say version = \"0.1.0\"");
    }

    let (tx, events) = mpsc::channel();
    let watcher = watch::start(Arc::clone(&f.host), vec![f.root.clone()], move |ev| {
        let _ = tx.send((Instant::now(), ev));
    })
    .map_err(anyhow::Error::msg)?;
    std::thread::sleep(Duration::from_millis(200));

    let kib = wasm.len() >> 10;
    let mut cases = vec![
        Case {
            what: "Lua, version bumped in plugin.toml".into(),
            target: Some(("≤ 50 ms p50", 50e6)),
            latency: vec![],
            extra: 0,
            direct: vec![],
        },
        Case {
            what: "Lua, main.lua rewritten".into(),
            target: Some(("≤ 50 ms p50", 50e6)),
            latency: vec![],
            extra: 0,
            direct: vec![],
        },
        Case {
            what: format!(
                "WASM ({kib} KiB), version bumped in plugin.toml (artifact from the cache)"
            ),
            target: Some(("≤ 300 ms p50", 300e6)),
            latency: vec![],
            extra: 0,
            direct: vec![],
        },
        Case {
            what: format!("WASM ({kib} KiB), new plugin.wasm (compiled anew)"),
            target: Some(("≤ 300 ms p50", 300e6)),
            latency: vec![],
            extra: 0,
            direct: vec![],
        },
    ];
    let mut version = 0;
    for i in 0..n {
        version += 1;
        let v = format!("0.2.{version}");
        let (l, x) = reload_once(
            &events,
            &lua_dir.join("plugin.toml"),
            bump(&lua_toml, &v).as_bytes(),
            "hello-lua",
            Some(&v),
        )?;
        if !f
            .host
            .list()
            .iter()
            .any(|p| p.id == "hello-lua" && p.version == v)
        {
            bail!("hello-lua {v} reported live but not listed");
        }
        cases[0].latency.push(l);
        cases[0].extra += x;

        let mut code = lua_main.clone();
        code.extend_from_slice(format!("\n-- revision {i}\n").as_bytes());
        let (l, x) = reload_once(&events, &lua_dir.join("main.lua"), &code, "hello-lua", None)?;
        cases[1].latency.push(l);
        cases[1].extra += x;

        let (l, x) = reload_once(
            &events,
            &wasm_dir.join("plugin.toml"),
            bump(&wasm_toml, &v).as_bytes(),
            "bench-wasm",
            Some(&v),
        )?;
        if !f
            .host
            .list()
            .iter()
            .any(|p| p.id == "bench-wasm" && p.version == v)
        {
            bail!("bench-wasm {v} reported live but not listed");
        }
        cases[2].latency.push(l);
        cases[2].extra += x;

        let (l, x) = reload_once(
            &events,
            &wasm_dir.join("plugin.wasm"),
            &rebuilt(&wasm, i as u64),
            "bench-wasm",
            None,
        )?;
        cases[3].latency.push(l);
        cases[3].extra += x;
        println!(
            "reload {}: Lua {} / {}, WASM {} / {}",
            i + 1,
            t(cases[0].latency[i]),
            t(cases[1].latency[i]),
            t(cases[2].latency[i]),
            t(cases[3].latency[i])
        );
    }
    drop(watcher);
    std::thread::sleep(Duration::from_millis(100));

    // The same loads without the watcher: what the latency is made of.
    let load = |dir: &PathBuf| -> Result<f64> {
        let t0 = Instant::now();
        f.host.load_dir(dir).map_err(anyhow::Error::msg)?;
        Ok(nanos(t0.elapsed()))
    };
    for i in 0..n {
        cases[0].direct.push(load(&lua_dir)?);
        cases[2].direct.push(load(&wasm_dir)?);
        std::fs::write(
            wasm_dir.join("plugin.wasm"),
            rebuilt(&wasm, 1_000 + i as u64),
        )?;
        cases[3].direct.push(load(&wasm_dir)?);
    }
    cases[1].direct = cases[0].direct.clone();

    let mut rows = Vec::new();
    for c in cases {
        let s = stats(c.latency);
        let d = stats(c.direct);
        let extra = if c.extra > 0 {
            format!("; {} duplicate reloads in {n}", c.extra)
        } else {
            String::new()
        };
        rows.push(row(
            "4",
            &format!("hot reload, {}", c.what),
            format!("**{}**{extra}", t3(s)),
            format!(
                "`load_dir` alone {} + DEBOUNCE {}",
                t(d.p50),
                t(nanos(DEBOUNCE))
            ),
            c.target.map(|(t, v)| (t, s.p50 <= v)),
        ));
    }
    Ok(rows)
}
