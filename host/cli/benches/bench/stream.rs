//! Benchmark 5: plugin stream throughput, guest → operator client: the
//! `stream-wasm` plugin (WASM) sends a queued stream of 1 MiB frames
//! (`blast`: one frame made once and sent again and again, as the raw
//! relay sends one buffer again and again); the
//! agent (in this process) puts them on its TLS link; the broker relays
//! them to the operator client, which grants the credit back as it reads.
//! Baseline: the raw relay, operator → broker → agent data frames of the
//! same size in the same run (benchmark 2's path), which has neither the
//! plugin nor the credit loop.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lifeline_agent::config::{AgentConfig, PluginsConfig};
use lifeline_operator::{Client, Event};
use lifeline_protocol::SessionMessage;

use crate::{Harness, Opts, Row, row, step};

/// Frame size of the plugin's stream (the largest a stream frame may be).
const FRAME: u64 = 1 << 20;
/// Credit the operator client grants: what may be in flight.
const WINDOW: u64 = 8 << 20;
const TARGET_RATIO: f64 = 0.5;
/// Bound on one streamed transfer.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);

struct Quiet;
impl lifeline_agent::CustomerUi for Quiet {
    fn show(&self, _: &str) {}
}

fn agent_config(h: &Harness, dir: &Path) -> Result<AgentConfig> {
    let root = dir.join("plugins");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/plugins/stream-wasm");
    let dst = root.join("stream-wasm");
    std::fs::create_dir_all(&dst)?;
    for f in ["plugin.toml", "plugin.wasm"] {
        std::fs::copy(src.join(f), dst.join(f))
            .with_context(|| format!("{f} of stream-wasm (run scripts/build-plugins)"))?;
    }
    Ok(AgentConfig {
        endpoint: h.ep.clone(),
        data_dir: dir.join("agent"),
        consent_timeout: Duration::from_secs(30),
        policy: None,
        plugins: Some(PluginsConfig {
            dirs: vec![root],
            trusted_keys: vec![],
            allow_unsigned: true,
            hot_reload: false,
            http_proxy: None,
            folders: Default::default(),
            settings: Default::default(),
            commands: Default::default(),
        }),
        run_as: Default::default(),
        screen: Default::default(),
        power: Default::default(),
        service: Default::default(),
        remote_service: None,
        allow_remote_assistance: true,
    })
}

/// Seconds to stream `total` bytes from the plugin to the operator client.
async fn streamed(h: &Harness, total: u64) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let cfg = agent_config(h, dir.path())?;
    // An operator connection of its own: the harness's drains its events.
    let mut op = step("operator connect", Client::connect(&h.ep)).await?;
    step("operator login", op.login(crate::USERNAME, crate::PASSWORD)).await?;
    let op = &op;
    let inv = step("invite", op.invite("STREAM-1", "Customer", None)).await?;
    let (_input, irx) = tokio::sync::mpsc::channel(1);
    let code = inv.connection_id.clone();
    let agent =
        tokio::spawn(async move { lifeline_agent::run(&cfg, &code, Arc::new(Quiet), irx).await });
    step("ready", op.wait_ready(&inv.session_id, crate::STEP)).await?;
    step("attach", op.attach(&inv.session_id)).await?;
    let msg = SessionMessage::RunPlugin {
        call_id: 1,
        plugin: "stream-wasm".into(),
        command: "blast".into(),
        args: vec![total.to_string(), FRAME.to_string()],
    };
    step("run", op.send(&inv.session_id, msg)).await?;
    let sid = inv.session_id.as_str();
    let run = async {
        let (mut got, mut t0) = (0u64, None);
        loop {
            let ev = op.next_event().await.context("connection lost")?;
            if std::env::var_os("LIFELINE_BENCH_DEBUG").is_some() {
                match &ev {
                    Event::Stream { stream, body, .. } => {
                        eprintln!("frame {stream} {}", body.len())
                    }
                    other => eprintln!("{other:?}"),
                }
            }
            match ev {
                Event::Session {
                    msg: SessionMessage::StreamOpened { stream, .. },
                    session_id,
                } if session_id == sid => {
                    t0 = Some(Instant::now());
                    op.stream_credit(sid, stream, WINDOW).await?;
                }
                Event::Stream {
                    session_id,
                    stream,
                    body,
                } if session_id == sid => {
                    got += body.len() as u64;
                    op.stream_credit(sid, stream, body.len() as u64).await?;
                    if got == total {
                        let t0 = t0.context("frames before the stream was opened")?;
                        return Ok::<f64, anyhow::Error>(t0.elapsed().as_secs_f64());
                    }
                }
                Event::Session {
                    msg:
                        SessionMessage::PluginDone {
                            ok: false, text, ..
                        },
                    ..
                } => bail!("the plugin failed: {text}"),
                _ => {}
            }
        }
    };
    let secs = tokio::time::timeout(TRANSFER_TIMEOUT, run)
        .await
        .context("stream not done in time")??;
    step("end", op.end(&inv.session_id, "stream run over")).await?;
    let _ = step("agent", async { agent.await.context("agent task") }).await;
    Ok(secs)
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let total: u64 = if opts.quick { 256 << 20 } else { 1 << 30 };
    println!(
        "\n[5] plugin stream throughput: {} MiB per run, 1 MiB frames",
        total >> 20
    );
    let h = Harness::start().await?;
    let chunk = (FRAME + lifeline_protocol::stream::HEADER_BYTES as u64) as usize;
    let mut ratios = Vec::new();
    let mut rows = Vec::new();
    // The raw relay moves whole frames of the same size.
    let raw_total = total / chunk as u64 * chunk as u64;
    for round in 1..=3 {
        let raw = crate::throughput::relay(&h, chunk, raw_total).await?;
        let via = streamed(&h, total).await?;
        let (via, raw) = (
            total as f64 / via / 1048576.0,
            raw_total as f64 / raw / 1048576.0,
        );
        let ratio = via / raw;
        println!(
            "  round {round}: plugin stream {via:.0} MiB/s, raw relay {raw:.0} MiB/s: {ratio:.2}"
        );
        ratios.push((ratio, via, raw));
    }
    ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ratio, via, raw) = ratios[1];
    rows.push(row(
        "5 plugin stream",
        "WASM plugin → agent → broker → operator client, 1 MiB frames, credit window 8 MiB (median of 3)",
        format!("{via:.0} MiB/s ({ratio:.2}× raw relay)"),
        &format!("{raw:.0} MiB/s raw relay, same run"),
        Some(("≥ 0.5× raw relay", ratio >= TARGET_RATIO)),
    ));
    h.broker.shutdown();
    Ok(rows)
}
