//! 1. host → guest `echo` on a reused instance (16 B, 64 KiB) against Extism;
//! 2. instantiation from the compiled-artifact cache and the per-call path.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use lifeline_runtime::host::{CallContext, HostEnv, SessionPort};
use lifeline_runtime::kv::KvStore;
use lifeline_runtime::manifest::Manifest;
use lifeline_runtime::wasm::{WasmEngine, WasmPlugin};
use lifeline_runtime::wasm_bench::BenchWasm;

use crate::extism::Extism;
use crate::{Opts, Row, batches, fixture, median, nanos, port, repo, row, samples, stats, t, t3};

const SMALL: usize = 16;
const BIG: usize = 64 << 10;

/// bench-wasm, loaded the way the runtime loads it: a first load compiles
/// and fills the cache, the second one takes the compiled artifact from it.
struct Loaded {
    _dir: tempfile::TempDir,
    plugin: WasmPlugin,
    manifest: Arc<Manifest>,
    port: Arc<dyn SessionPort>,
    kv: Arc<KvStore>,
    env: Arc<HostEnv>,
    compile_ns: f64,
    cached_ns: f64,
}

impl Loaded {
    fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let manifest = Manifest::load_dir(&repo().join("tests/plugins/bench-wasm"))?;
        let bytes = std::fs::read(&manifest.entry)
            .map_err(|e| anyhow!("{}: {e} (built by scripts/build-plugins)", manifest.entry.display()))?;
        let cache = dir.path().join("wasm-cache");
        let engine = WasmEngine::new(&cache).map_err(anyhow::Error::msg)?;
        let t0 = Instant::now();
        drop(engine.load(&bytes, &manifest).map_err(anyhow::Error::msg)?);
        let compile_ns = nanos(t0.elapsed());
        if std::fs::read_dir(&cache)?.count() != 1 {
            bail!("the first load did not fill the compiled-artifact cache");
        }
        let t0 = Instant::now();
        let plugin = engine.load(&bytes, &manifest).map_err(anyhow::Error::msg)?;
        let cached_ns = nanos(t0.elapsed());
        Ok(Loaded {
            kv: Arc::new(KvStore::new(dir.path().join("kv.json"))),
            env: Arc::new(HostEnv {
                temp_root: dir.path().join("tmp"),
                proxy: None,
            }),
            _dir: dir,
            plugin,
            manifest: Arc::new(manifest),
            port: port(),
            compile_ns,
            cached_ns,
        })
    }

    fn ctx(&self) -> CallContext {
        CallContext::new(
            Arc::clone(&self.manifest),
            Arc::clone(&self.port),
            Arc::clone(&self.kv),
            Arc::clone(&self.env),
        )
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// MB/s (10^6 bytes) of `bytes` moved each way in `ns`.
fn mbs(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns * 1e3
}

pub fn echo(opts: Opts, mut ext: Option<&mut Extism>) -> Result<Vec<Row>> {
    let l = Loaded::new()?;
    let bw = BenchWasm::new(&l.plugin).map_err(anyhow::Error::msg)?;
    let mut inst = bw.instance(l.ctx()).map_err(anyhow::Error::msg)?;
    let (small, big) = (data(SMALL), data(BIG));
    if inst.echo(&small).map_err(anyhow::Error::msg)? != small
        || inst.echo(&big).map_err(anyhow::Error::msg)? != big
        || inst.run("ok", &[]).map_err(anyhow::Error::msg)? != "ok"
    {
        bail!("bench-wasm answers wrongly");
    }
    let rounds = if opts.quick { 2 } else { 5 };
    let (small_calls, big_calls) = (opts.n(20_000), opts.n(500));
    let (mut ours_s, mut ours_b, mut ext_s, mut ext_b) = (vec![], vec![], vec![], vec![]);
    // Warm-up, then rounds that alternate ours and Extism's.
    batches(1, small_calls, || Ok(drop(black_box(inst.echo(black_box(&small))))))?;
    for r in 0..rounds {
        let s = median(batches(5, small_calls, || {
            inst.echo(black_box(&small)).map(|v| drop(black_box(v))).map_err(anyhow::Error::msg)
        })?);
        let b = median(batches(5, big_calls, || {
            inst.echo(black_box(&big)).map(|v| drop(black_box(v))).map_err(anyhow::Error::msg)
        })?);
        ours_s.push(s);
        ours_b.push(b);
        print!("round {}: ours {} / {:.0} MB/s", r + 1, t(s), mbs(BIG, b));
        if let Some(e) = ext.as_deref_mut() {
            let es = median(e.echo(SMALL, small_calls, 5)?);
            let eb = median(e.echo(BIG, big_calls, 5)?);
            ext_s.push(es);
            ext_b.push(eb);
            print!("; Extism {} / {:.0} MB/s", t(es), mbs(BIG, eb));
        }
        println!();
    }
    let (s, b) = (median(ours_s), median(ours_b));
    let (es, eb) = (median(ext_s), median(ext_b));
    let ename = ext.as_ref().map_or("Extism (not run)".to_string(), |e| e.version.clone());
    let base_s = if es.is_finite() { format!("{ename}: {}", t(es)) } else { ename.clone() };
    let base_b = if eb.is_finite() {
        format!("{ename}: {:.0} MB/s ({} per call)", mbs(BIG, eb), t(eb))
    } else {
        ename.clone()
    };
    let ratio = eb / b;
    Ok(vec![
        row(
            "1",
            "echo 16 B, reused instance, per call",
            format!("**{}**", t(s)),
            base_s,
            Some(("≤ 150 ns", s <= 150.0)),
        ),
        row(
            "1",
            "echo 64 KiB, reused instance",
            format!("**{:.0} MB/s** ({} per call; {:.1}× Extism)", mbs(BIG, b), t(b), ratio),
            base_b,
            Some(("≥ 3× Extism", ratio >= 3.0)),
        ),
    ])
}

pub fn instantiate(opts: Opts, ext: Option<&mut Extism>) -> Result<Vec<Row>> {
    let l = Loaded::new()?;
    let bw = BenchWasm::new(&l.plugin).map_err(anyhow::Error::msg)?;
    let n = opts.n(3000);
    let (mut mk, mut inst, mut fin) = (vec![], vec![], vec![]);
    let one = |mk: &mut Vec<f64>, inst: &mut Vec<f64>, fin: &mut Vec<f64>| -> Result<()> {
        let ctx = l.ctx();
        let t0 = Instant::now();
        let mut store = bw.store(ctx);
        let t1 = Instant::now();
        bw.instantiate(&mut store).map_err(anyhow::Error::msg)?;
        let t2 = Instant::now();
        drop(store);
        let t3 = Instant::now();
        mk.push(nanos(t1 - t0));
        inst.push(nanos(t2 - t1));
        fin.push(nanos(t3 - t2));
        Ok(())
    };
    for _ in 0..100 {
        one(&mut vec![], &mut vec![], &mut vec![])?;
    }
    for _ in 0..n {
        one(&mut mk, &mut inst, &mut fin)?;
    }
    let (mk, inst, fin) = (stats(mk), stats(inst), stats(fin));
    println!("store {} / instantiate {} / drop {}", t3(mk), t3(inst), t3(fin));

    let run = |_: ()| -> Result<Duration> {
        let ctx = l.ctx();
        let t0 = Instant::now();
        let (ctx, r) = l.plugin.run(ctx, "ok", &[]);
        drop(ctx);
        let d = t0.elapsed();
        match r {
            Ok(s) if s == "ok" => Ok(d),
            other => bail!("bench-wasm run: {other:?}"),
        }
    };
    samples(100, || run(()))?;
    let full = stats(samples(n, || run(()))?);
    println!("WasmPlugin::run {}", t3(full));

    let f = fixture(&["tests/plugins/bench-wasm"])?;
    let p = port();
    let call = || -> Result<Duration> {
        let t0 = Instant::now();
        let r = f.host.call("bench-wasm", "ok", &[], Arc::clone(&p));
        let d = t0.elapsed();
        match r {
            Ok(s) if s == "ok" => Ok(d),
            other => bail!("PluginHost::call: {other:?}"),
        }
    };
    samples(100, call)?;
    let host = stats(samples(n, call)?);
    println!("PluginHost::call {}", t3(host));

    let (ename, create) = match ext {
        Some(e) => {
            e.create(100)?;
            let c = stats(e.create(n)?);
            println!("Extism new_from_compiled + first echo {}", t3(c));
            (e.version.clone(), Some(c))
        }
        None => ("Extism (not run)".into(), None),
    };
    let base_full = create.map_or(ename.clone(), |c| {
        format!("{ename}: new plugin from the compiled module + first 16 B echo {}", t3(c))
    });
    let size = std::fs::metadata(&l.manifest.entry)?.len();
    let cache_note = Path::new(&l.manifest.entry).file_name().map_or(String::new(), |_| {
        format!("component of {} KiB", size >> 10)
    });
    Ok(vec![
        row(
            "2",
            "`InstancePre::instantiate` from the cache, pooling allocator",
            format!("**{}**", t3(inst)),
            String::new(),
            Some(("≤ 30 µs p50", inst.p50 <= 30_000.0)),
        ),
        row("2", "store creation as `WasmPlugin::run` makes it", t3(mk), String::new(), None),
        row("2", "store drop (instance back to the pool)", t3(fin), String::new(), None),
        row(
            "2",
            "`WasmPlugin::run(\"ok\")`, fresh store + instance per call",
            format!("**{}**", t3(full)),
            base_full,
            None,
        ),
        row(
            "2",
            "`PluginHost::call(\"bench-wasm\", \"ok\")`",
            t3(host),
            String::new(),
            None,
        ),
        row(
            "2",
            "load: compile (cache miss) / from the cache",
            format!("{} / {}", t(l.compile_ns), t(l.cached_ns)),
            cache_note,
            None,
        ),
    ])
}
