//! The Extism 1.x side of the plugin runtime benchmark.
//!
//! Loads the PDK echo guest (guest/, built by ./build) with WASI, then answers
//! one command per line on stdin, so that host/runtime/benches/runtime.rs can
//! interleave these measurements with its own in one run:
//!
//! - `echo SIZE CALLS BATCHES` → `echo SIZE NS_PER_CALL…` (one figure per batch)
//! - `create SAMPLES` → `create NS…` (a new `Plugin` from the compiled module plus
//!   its first `echo` call of 16 bytes, per sample)
//! - `quit`
//!
//! Every loop is bounded by the numbers given.

use std::io::{BufRead, Write};
use std::time::Instant;

use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};

fn main() {
    if let Err(e) = run() {
        eprintln!("extism-compare: {e}");
        std::process::exit(1);
    }
}

fn parse(words: &[&str], i: usize) -> Result<usize, String> {
    words
        .get(i)
        .ok_or("missing argument")?
        .parse()
        .map_err(|e| format!("bad number {:?}: {e}", words[i]))
}

fn run() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: extism-compare GUEST.wasm")?;
    let wasm = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let builder = || PluginBuilder::new(Manifest::new([Wasm::data(wasm.clone())])).with_wasi(true);
    let mut plugin = builder().build().map_err(|e| format!("load: {e:#}"))?;
    let compiled = CompiledPlugin::new(builder()).map_err(|e| format!("compile: {e:#}"))?;
    let check = plugin
        .call::<&[u8], Vec<u8>>("echo", b"hello")
        .map_err(|e| format!("echo: {e:#}"))?;
    if check != b"hello" {
        return Err("the guest's echo is wrong".into());
    }
    println!(
        "ready extism {}",
        extism::extism_version().trim_end_matches('\0')
    );
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("echo") => {
                let (size, calls, batches) =
                    (parse(&words, 1)?, parse(&words, 2)?, parse(&words, 3)?);
                let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                let mut figures = Vec::with_capacity(batches);
                for _ in 0..batches {
                    let t0 = Instant::now();
                    for _ in 0..calls {
                        let r = plugin
                            .call::<&[u8], &[u8]>("echo", &data)
                            .map_err(|e| format!("echo: {e:#}"))?;
                        std::hint::black_box(r);
                    }
                    figures.push(t0.elapsed().as_nanos() as f64 / calls as f64);
                }
                let out_of = plugin
                    .call::<&[u8], Vec<u8>>("echo", &data)
                    .map_err(|e| format!("echo: {e:#}"))?;
                if out_of != data {
                    return Err("the guest's echo is wrong".into());
                }
                let list: Vec<String> = figures.iter().map(|f| format!("{f:.1}")).collect();
                writeln!(out, "echo {size} {}", list.join(" ")).map_err(|e| e.to_string())?;
            }
            Some("create") => {
                let samples = parse(&words, 1)?;
                let mut figures = Vec::with_capacity(samples);
                for _ in 0..samples {
                    let t0 = Instant::now();
                    let mut p = Plugin::new_from_compiled(&compiled)
                        .map_err(|e| format!("create: {e:#}"))?;
                    let r = p
                        .call::<&[u8], &[u8]>("echo", &[7u8; 16])
                        .map_err(|e| format!("echo: {e:#}"))?;
                    std::hint::black_box(r);
                    drop(p);
                    figures.push(t0.elapsed().as_nanos().to_string());
                }
                writeln!(out, "create {}", figures.join(" ")).map_err(|e| e.to_string())?;
            }
            Some("quit") | None => break,
            Some(other) => return Err(format!("unknown command {other:?}")),
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
