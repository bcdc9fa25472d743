//! `cargo bench -p lifeline-runtime --bench runtime [echo|instantiate|lua|reload|typed|events]`:
//! the plugin runtime, each figure beside a baseline measured in the same run.
//!
//! 1. echo: host → guest call on a reused instance, 16 B and 64 KiB, against
//!    Extism 1.x on the same workload (bench/extism-compare, driven as a child
//!    process so that the two runs interleave);
//! 2. instantiate: `InstancePre::instantiate` from the compiled-artifact cache
//!    with the pooling allocator, and the whole per-call path of a WASM call;
//! 3. lua: `PluginHost::call` of a Lua plugin, and a raw Rust → Lua call;
//! 4. reload: hot reload latency, file written → new version live;
//! 5. typed: host → guest calls with a 16-byte `list<u8>` and a small
//!    record, beside 16 bytes by value;
//! 6. events: event delivery to a long-lived plugin, beside a bare thread
//!    hand-off.
//!
//! `LIFELINE_BENCH_QUICK=1` shrinks every count about tenfold;
//! `LIFELINE_BENCH_NO_EXTISM=1` skips the Extism baselines (and their build).
//! Figures and how to read them: docs/benchmarks.md, "Plugin runtime".

#[path = "runtime/events.rs"]
mod events;
#[path = "runtime/extism.rs"]
mod extism;
#[path = "runtime/lua.rs"]
mod lua;
#[path = "runtime/reload.rs"]
mod reload;
#[path = "runtime/wasm.rs"]
mod wasm;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lifeline_runtime::capability::Capability;
use lifeline_runtime::host::{HostEnv, SessionPort};
use lifeline_runtime::manifest::Manifest;
use lifeline_runtime::plugins::{PluginHost, RuntimeConfig};

/// Run-wide settings from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub quick: bool,
    pub extism: bool,
}

impl Opts {
    /// `full`, or a tenth of it in quick mode.
    pub fn n(&self, full: usize) -> usize {
        if self.quick { (full / 10).max(1) } else { full }
    }
}

/// One line of the final table: benchmark, metric, Lifeline, baseline,
/// target and whether it was met (empty: no target on this line).
pub type Row = [String; 6];

pub fn row(
    bench: &str,
    metric: &str,
    value: String,
    base: String,
    target: Option<(&str, bool)>,
) -> Row {
    let (target, met) = match target {
        Some((t, ok)) => (t, if ok { "yes" } else { "NO" }),
        None => ("", ""),
    };
    [
        bench.into(),
        metric.into(),
        value,
        base,
        target.into(),
        met.into(),
    ]
}

/// Nearest-rank percentile of sorted samples.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p99 and max of samples in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn stats(mut ns: Vec<f64>) -> Stats {
    ns.sort_by(f64::total_cmp);
    Stats {
        p50: pct(&ns, 50.0),
        p99: pct(&ns, 99.0),
        max: ns.last().copied().unwrap_or(f64::NAN),
    }
}

/// Median of a few figures (one per round or batch).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    pct(&v, 50.0)
}

/// A duration in nanoseconds, in a readable unit.
pub fn t(ns: f64) -> String {
    if !ns.is_finite() {
        "n/a".into()
    } else if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

/// "p50 X (p99 Y, max Z)".
pub fn t3(s: Stats) -> String {
    format!("{} (p99 {}, max {})", t(s.p50), t(s.p99), t(s.max))
}

pub fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// Times `calls` runs of `f`, `batches` times; nanoseconds per call of each batch.
pub fn batches(
    batches: usize,
    calls: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t0 = Instant::now();
        for _ in 0..calls {
            f()?;
        }
        out.push(nanos(t0.elapsed()) / calls as f64);
    }
    Ok(out)
}

/// Runs `f` `n` times; each run returns the time of its timed part.
pub fn samples(n: usize, mut f: impl FnMut() -> Result<Duration>) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(nanos(f()?));
    }
    Ok(out)
}

/// A session that allows everything and drops what the plugin sends.
pub struct Port;

impl SessionPort for Port {
    fn consent(&self, _: &Manifest, _: Capability) -> Result<(), String> {
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {}
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
}

pub fn port() -> Arc<dyn SessionPort> {
    Arc::new(Port)
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copies a plugin folder's manifest, Lua and WASM files.
pub fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src).with_context(|| src.display().to_string())? {
        let e = e?;
        let name = e.file_name();
        let s = name.to_string_lossy();
        if e.file_type()?.is_file()
            && (s.ends_with(".toml") || s.ends_with(".lua") || s.ends_with(".wasm"))
        {
            std::fs::copy(e.path(), dst.join(&name))?;
        }
    }
    Ok(())
}

/// A plugin host on a fresh plugin root holding copies of `plugins`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub host: Arc<PluginHost>,
}

pub fn fixture(plugins: &[&str]) -> Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("plugins");
    for p in plugins {
        let src = repo().join(p);
        let name = src.file_name().context("plugin folder name")?.to_owned();
        copy_dir(&src, &root.join(name))?;
    }
    let host = PluginHost::new(RuntimeConfig {
        plugin_dirs: vec![root.clone()],
        state_dir: dir.path().join("state"),
        env: HostEnv {
            temp_root: dir.path().join("tmp"),
            proxy: None,
            folders: Default::default(),
        },
        trusted_keys: vec![],
        allow_unsigned: true,
    })
    .map_err(anyhow::Error::msg)?;
    let errors = host.load_all();
    if !errors.is_empty() {
        bail!("load errors: {errors:?} (WASM plugins are built by scripts/build-plugins)");
    }
    Ok(Fixture {
        dir,
        root,
        host: Arc::new(host),
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() -> Result<()> {
    let opts = Opts {
        quick: std::env::var_os("LIFELINE_BENCH_QUICK").is_some(),
        extism: std::env::var_os("LIFELINE_BENCH_NO_EXTISM").is_none(),
    };
    // cargo bench passes --bench; anything else names the benchmarks to run.
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| chosen.is_empty() || chosen.iter().any(|c| c == name);
    let started = Instant::now();
    println!("load average at start: {}", loadavg());

    let mut ext = if opts.extism && (run("echo") || run("instantiate")) {
        match extism::Extism::start() {
            Ok(e) => Some(e),
            Err(e) => {
                println!("Extism baseline skipped: {e:#}");
                None
            }
        }
    } else {
        None
    };

    let mut rows: Vec<Row> = Vec::new();
    if run("echo") {
        println!("== 1. echo (reused instance)");
        rows.extend(wasm::echo(opts, ext.as_mut())?);
    }
    if run("instantiate") {
        println!("== 2. instantiation and the per-call path");
        rows.extend(wasm::instantiate(opts, ext.as_mut())?);
    }
    drop(ext);
    if run("lua") {
        println!("== 3. Lua call overhead");
        rows.extend(lua::run(opts)?);
    }
    if run("reload") {
        println!("== 4. hot reload");
        rows.extend(reload::run(opts)?);
    }
    if run("typed") {
        println!("== 5. typed values host → guest");
        rows.extend(wasm::typed(opts)?);
    }
    if run("events") {
        println!("== 6. event delivery to a long-lived plugin");
        rows.extend(events::run(opts)?);
    }

    println!();
    println!("| # | what | Lifeline | baseline (same run) | target | met |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!("| {} |", r.join(" | "));
    }
    println!();
    println!(
        "{} mode, {:.0} s in all; load average at end: {}",
        if opts.quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(())
}
