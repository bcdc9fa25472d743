//! Feature benchmarks: the overhead of running a library script through
//! the `scripts` plugin, against spawning the same script directly, and the
//! time to gather every system-information category.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lifeline_runtime::host::{HostEnv, SessionPort};
use lifeline_runtime::{Arg, Capability, Manifest, PluginHost, RuntimeConfig};

use crate::{Opts, Row, ms, percentile, row};

/// A port that grants the scripts' capabilities and drops output, as the
/// agent's batch port does once the batch was consented to.
struct Granted;

impl SessionPort for Granted {
    fn consent(&self, _: &Manifest, _: Capability) -> Result<(), String> {
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {}
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
}

const SCRIPT: &str = "#!/bin/sh\necho done\n";

pub fn run(opts: Opts) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("plugins");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/scripts");
    std::fs::create_dir_all(root.join("scripts"))?;
    for f in ["plugin.toml", "main.lua"] {
        std::fs::copy(src.join(f), root.join("scripts").join(f))
            .with_context(|| format!("copying {f}"))?;
    }
    let host = PluginHost::new(RuntimeConfig {
        plugin_dirs: vec![root],
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
    anyhow::ensure!(
        host.load_all().is_empty(),
        "the scripts plugin did not load"
    );
    let port: Arc<dyn SessionPort> = Arc::new(Granted);
    // As the agent hands a batch of one script over: stop on failure, the
    // timeout, then the script's name and files (as bytes).
    let args = vec![
        Arg::Text("true".into()),
        Arg::Text("30".into()),
        Arg::Text("bench".into()),
        Arg::Text("run.sh".into()),
        Arg::Bytes(SCRIPT.as_bytes().to_vec()),
        Arg::Text(String::new()),
        Arg::Bytes(Vec::new()),
    ];
    let n = if opts.quick { 30 } else { 300 };
    let (mut via, mut direct) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 10 {
        let t = Instant::now();
        let r = host
            .call("scripts", "run", &args, Arc::clone(&port))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let d1 = t.elapsed();
        anyhow::ensure!(r.contains("\"exit_code\":0"), "script failed: {r}");
        // Baseline: the same script written to a fresh folder and spawned.
        let t = Instant::now();
        let tmp = tempfile::tempdir_in(dir.path())?;
        std::fs::write(tmp.path().join("run.sh"), SCRIPT)?;
        let out = lifeline_runtime::process::run(
            "/bin/sh",
            &["./run.sh".to_string()],
            tmp.path(),
            Duration::from_secs(30),
            1 << 20,
        )
        .map_err(anyhow::Error::msg)?;
        drop(tmp);
        let d2 = t.elapsed();
        anyhow::ensure!(out.exit_code == 0, "direct run failed");
        if i >= 10 {
            via.push(d1);
            direct.push(d2);
        }
    }
    via.sort();
    direct.sort();
    let overhead = percentile(&via, 0.5).saturating_sub(percentile(&direct, 0.5));
    println!(
        "scripts: via plugin p50 {} p99 {}; direct spawn p50 {} p99 {}; overhead p50 {}",
        ms(percentile(&via, 0.5)),
        ms(percentile(&via, 0.99)),
        ms(percentile(&direct, 0.5)),
        ms(percentile(&direct, 0.99)),
        ms(overhead)
    );

    let runs = if opts.quick { 2 } else { 5 };
    let mut all = Vec::new();
    let mut per: Vec<(&str, Duration)> = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        for c in lifeline_runtime::sysinfo::CATEGORIES {
            let t = Instant::now();
            let which = lifeline_runtime::sysinfo::parse_category(c).map_err(anyhow::Error::msg)?;
            std::hint::black_box(lifeline_runtime::sysinfo::category(which));
            per.push((c, t.elapsed()));
        }
        all.push(t.elapsed());
    }
    all.sort();
    let mut breakdown: Vec<String> = lifeline_runtime::sysinfo::CATEGORIES
        .iter()
        .map(|c| {
            let mut v: Vec<Duration> = per
                .iter()
                .filter(|(k, _)| k == c)
                .map(|(_, d)| *d)
                .collect();
            v.sort();
            format!("{c} {}", ms(percentile(&v, 0.5)))
        })
        .collect();
    breakdown.sort();
    println!(
        "sysinfo: all categories p50 {} ({})",
        ms(percentile(&all, 0.5)),
        breakdown.join(", ")
    );
    Ok(vec![
        row(
            "script run",
            "overhead per script beyond its own work, p50",
            ms(overhead),
            &format!(
                "direct spawn p50 {} (plugin p50 {})",
                ms(percentile(&direct, 0.5)),
                ms(percentile(&via, 0.5))
            ),
            Some(("<= 5 ms", overhead <= Duration::from_millis(5))),
        ),
        row(
            "system info",
            "gather all 8 categories, p50",
            ms(percentile(&all, 0.5)),
            "cpu and processes each wait one CPU-usage interval (200 ms)",
            None,
        ),
    ])
}
