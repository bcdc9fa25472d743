//! 1. host → guest `echo` on a reused instance (16 B, 64 KiB) against Extism;
//! 2. instantiation from the compiled-artifact cache and the per-call path.

use std::hint::black_box;
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
        let bytes = std::fs::read(&manifest.entry).map_err(|e| {
            anyhow!(
                "{}: {e} (built by scripts/build-plugins)",
                manifest.entry.display()
            )
        })?;
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
                folders: Default::default(),
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

/// Minor page faults of this process so far (field 10 of /proc/self/stat).
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(7)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
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
        || inst.echo16(7, 9).map_err(anyhow::Error::msg)? != (7, 9)
    {
        bail!("bench-wasm answers wrongly");
    }
    let rounds = if opts.quick { 2 } else { 5 };
    let (small_calls, big_calls) = (opts.n(20_000), opts.n(500));
    let (mut ours_s, mut ours_b, mut ext_s, mut ext_b) = (vec![], vec![], vec![], vec![]);
    // Warm-up, then rounds that alternate ours and Extism's.
    for data in [&small, &big] {
        inst.restart_clock();
        batches(3, small_calls / 10, || {
            inst.echo(black_box(data))
                .map(|v| drop(black_box(v)))
                .map_err(anyhow::Error::msg)
        })?;
    }
    for r in 0..rounds {
        inst.restart_clock();
        let s = median(batches(5, small_calls, || {
            inst.echo(black_box(&small))
                .map(|v| drop(black_box(v)))
                .map_err(anyhow::Error::msg)
        })?);
        inst.restart_clock();
        let b = median(batches(5, big_calls, || {
            inst.echo(black_box(&big))
                .map(|v| drop(black_box(v)))
                .map_err(anyhow::Error::msg)
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
    inst.restart_clock();
    let run_ok = median(batches(5, small_calls, || {
        inst.run("ok", &[])
            .map(|v| drop(black_box(v)))
            .map_err(anyhow::Error::msg)
    })?);
    println!("run(\"ok\") on the reused instance {}", t(run_ok));
    inst.restart_clock();
    let by_value = median(batches(5, small_calls, || {
        inst.echo16(
            black_box(0x0123_4567_89ab_cdef),
            black_box(0xfedc_ba98_7654_3210),
        )
        .map(|v| {
            black_box(v);
        })
        .map_err(anyhow::Error::msg)
    })?);
    println!(
        "echo16 (16 B by value) on the reused instance {}",
        t(by_value)
    );
    let (s, b) = (median(ours_s), median(ours_b));
    let (es, eb) = (median(ext_s), median(ext_b));
    let ename = ext
        .as_ref()
        .map_or("Extism (not run)".to_string(), |e| e.version.clone());
    let base_s = if es.is_finite() {
        format!("{ename}: {}", t(es))
    } else {
        ename.clone()
    };
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
            "echo 16 B by value (`echo16(u64, u64) -> tuple<u64, u64>`), reused instance, per call",
            format!("**{}**", t(by_value)),
            String::new(),
            Some(("≤ 150 ns", by_value <= 150.0)),
        ),
        row(
            "1",
            "`run(\"ok\")` on the reused instance, per call",
            t(run_ok),
            String::new(),
            None,
        ),
        row(
            "1",
            "echo 64 KiB, reused instance",
            if ratio.is_finite() {
                format!(
                    "**{:.0} MB/s** ({} per call; {ratio:.1}× Extism)",
                    mbs(BIG, b),
                    t(b)
                )
            } else {
                format!("**{:.0} MB/s** ({} per call)", mbs(BIG, b), t(b))
            },
            base_b,
            // Without Extism there is nothing to compare with.
            ratio.is_finite().then_some(("≥ 3× Extism", ratio >= 3.0)),
        ),
    ])
}

pub fn instantiate(opts: Opts, ext: Option<&mut Extism>) -> Result<Vec<Row>> {
    let l = Loaded::new()?;
    let bw = BenchWasm::new(&l.plugin).map_err(anyhow::Error::msg)?;
    let n = opts.n(3000);
    let (mut mk, mut inst, mut first, mut fin) = (vec![], vec![], vec![], vec![]);
    // Store, instantiate, (bind the exports: not timed), first call, drop.
    let mut one = |record: bool| -> Result<()> {
        let ctx = l.ctx();
        let at_store = Instant::now();
        let mut store = bw.store(ctx);
        let at_inst = Instant::now();
        bw.instantiate(&mut store).map_err(anyhow::Error::msg)?;
        let inst_done = Instant::now();
        bw.bind(&mut store).map_err(anyhow::Error::msg)?;
        let at_call = Instant::now();
        let r = bw.run(&mut store, "ok").map_err(anyhow::Error::msg)?;
        let at_drop = Instant::now();
        drop(store);
        let end = Instant::now();
        if r != "ok" {
            bail!("bench-wasm run: {r:?}");
        }
        if record {
            mk.push(nanos(at_inst - at_store));
            inst.push(nanos(inst_done - at_inst));
            first.push(nanos(at_drop - at_call));
            fin.push(nanos(end - at_drop));
        }
        Ok(())
    };
    for _ in 0..100 {
        one(false)?;
    }
    for _ in 0..n {
        one(true)?;
    }
    let (mk, inst, first, fin) = (stats(mk), stats(inst), stats(first), stats(fin));
    println!(
        "store {} / instantiate {} / first call {} / drop {}",
        t3(mk),
        t3(inst),
        t3(first),
        t3(fin)
    );

    let run = || -> Result<Duration> {
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
    samples(100, &run)?;
    let faults0 = minor_faults();
    let full = stats(samples(n, &run)?);
    let faults = minor_faults().saturating_sub(faults0) as f64 / n as f64;
    println!(
        "WasmPlugin::run {} ({faults:.1} minor page faults per call)",
        t3(full)
    );

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
        format!(
            "{ename}: new plugin from the compiled module + first 16 B echo {}",
            t3(c)
        )
    });
    let size = std::fs::metadata(&l.manifest.entry)?.len();
    Ok(vec![
        row(
            "2",
            "`InstancePre::instantiate` from the cache, pooling allocator",
            format!("**{}**", t3(inst)),
            String::new(),
            Some(("≤ 30 µs p50", inst.p50 <= 30_000.0)),
        ),
        row(
            "2",
            "store creation as `WasmPlugin::run` makes it",
            t3(mk),
            String::new(),
            None,
        ),
        row(
            "2",
            "first `run(\"ok\")` on the fresh instance",
            t3(first),
            String::new(),
            None,
        ),
        row(
            "2",
            "store drop (instance back to the pool)",
            t3(fin),
            String::new(),
            None,
        ),
        row(
            "2",
            "`WasmPlugin::run(\"ok\")`, fresh store + instance per call",
            format!("**{}**; {faults:.1} minor page faults per call", t3(full)),
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
            format!("component of {} KiB", size >> 10),
            None,
        ),
    ])
}

/// Host → guest calls with typed values on a reused instance: 16 bytes as a
/// `list<u8>` and a small record, beside 16 bytes by value (two `u64`s, no
/// allocation in the guest) measured in the same run.
pub fn typed(opts: Opts) -> Result<Vec<Row>> {
    use lifeline_runtime::wit::ProcessRow;
    let l = Loaded::new()?;
    let bw = BenchWasm::new(&l.plugin).map_err(anyhow::Error::msg)?;
    let mut inst = bw.instance(l.ctx()).map_err(anyhow::Error::msg)?;
    let bytes = data(SMALL);
    let rec = ProcessRow {
        pid: 4242,
        name: "lifeline".into(),
        cpu_percent: 1.5,
        memory_bytes: 64 << 20,
    };
    if inst.echo_bytes16(&bytes).map_err(anyhow::Error::msg)? != bytes
        || inst.echo_record(&rec).map_err(anyhow::Error::msg)?.name != rec.name
    {
        bail!("bench-wasm answers wrongly");
    }
    let calls = opts.n(20_000);
    let mut measure =
        |f: &mut dyn FnMut(&mut lifeline_runtime::wasm_bench::BenchInstance) -> Result<()>| {
            inst.restart_clock();
            batches(3, calls / 10, || f(&mut inst))?;
            inst.restart_clock();
            Ok::<f64, anyhow::Error>(median(batches(7, calls, || f(&mut inst))?))
        };
    let by_value = measure(&mut |i| {
        black_box(
            i.echo16(black_box(7), black_box(9))
                .map_err(anyhow::Error::msg)?,
        );
        Ok(())
    })?;
    let list = measure(&mut |i| {
        black_box(
            i.echo_bytes16(black_box(&bytes))
                .map_err(anyhow::Error::msg)?,
        );
        Ok(())
    })?;
    let record = measure(&mut |i| {
        black_box(i.echo_record(black_box(&rec)).map_err(anyhow::Error::msg)?);
        Ok(())
    })?;
    println!(
        "typed calls: list<u8> 16 B {}, record {}, 16 B by value {}",
        t(list),
        t(record),
        t(by_value)
    );
    let base = format!("16 B by value: {}", t(by_value));
    Ok(vec![
        row(
            "5",
            "host → guest `echo-bytes16(list<u8>)`, 16 B each way, reused instance, per call",
            format!("**{}**", t(list)),
            base.clone(),
            None,
        ),
        row(
            "5",
            "host → guest `echo-record(process-row)` (u32, string, f32, u64) each way, per call",
            format!("**{}**", t(record)),
            base,
            None,
        ),
    ])
}
