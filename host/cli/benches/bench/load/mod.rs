//! Benchmark 8: load. N concurrent sessions (N = 200 by default) on one
//! broker on loopback, the broker in its own process (`lifeline broker
//! run`) so that /proc gives its CPU time and memory. Each session has an
//! operator client of its own (its own operator account, logged in over
//! its own TLS connection) and a real agent (`lifeline_agent::join_with`,
//! in this process on a runtime of its own) whose customer answers by
//! itself (an echo to each chat line, "allow once" to each consent
//! question). Every session:
//!
//! 1. join by connection ID: agent started → broker's "ready" notice →
//!    operator attached (timed, as in benchmark 1 but with a real agent);
//! 2. chat: [`CHAT_ROUND_TRIPS`] operator lines, each answered by the
//!    customer (each round trip timed);
//! 3. consent: the operator's question, answered by the customer (timed);
//! 4. a batch of [`SCRIPTS`] from the library (the `scripts` plugin), after
//!    the customer's consent;
//! 5. a stream of [`STREAM_BYTES`] from the `stream-wasm` plugin through
//!    the relay to the operator client, checked byte by byte;
//! 6. end, and the broker's report fetched and counted against what was
//!    sent (see [`report`]).
//!
//! The N sessions go through each step together (a step starts when every
//! session finished the one before): each figure is taken while N sessions
//! do the same thing at once. Baseline, same run, same broker: the same
//! steps with N = 1, [`BASELINE_RUNS`] sessions one after the other, before
//! the load.
//!
//! `LIFELINE_BENCH_SESSIONS=N` sets N; `LIFELINE_BENCH_QUICK=1` makes it
//! [`QUICK_SESSIONS`].

pub mod agents;
mod broker;
mod report;
mod session;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::task::JoinSet;

use crate::{Opts, Row, ms, percentile};
use session::{Ctx, Session};

/// Sessions at once by default.
pub const SESSIONS: usize = 200;
/// Sessions at once in quick mode.
pub const QUICK_SESSIONS: usize = 20;
/// Most sessions accepted (file descriptors: two connections per session
/// on each side, plus the agents' files).
pub const MAX_SESSIONS: usize = 1000;
/// Chat round trips per session.
pub const CHAT_ROUND_TRIPS: usize = 5;
/// Baseline sessions (N = 1), after one warm-up session.
pub const BASELINE_RUNS: usize = 10;
pub const QUICK_BASELINE_RUNS: usize = 3;
/// Bytes each session streams, and the frame size and credit window.
pub const STREAM_BYTES: u64 = 1 << 20;
pub const STREAM_FRAME: u64 = 64 << 10;
pub const STREAM_WINDOW: u64 = 256 << 10;
/// The library scripts of each session's batch (name, body).
pub const SCRIPTS: [(&str, &str); 2] = [
    ("load-hello", "#!/bin/sh\necho \"hello from $(hostname)\"\n"),
    ("load-date", "#!/bin/sh\ndate -u\n"),
];
/// Logins in flight at once while the sessions open: the broker admits 16
/// password checks (argon2) at a time and allows 10 in flight per source.
const LOGIN_CONCURRENCY: usize = 4;
/// File descriptors kept free for everything else.
const FD_HEADROOM: u64 = 256;

/// The operator account of session `i`.
pub fn operator_name(i: usize) -> String {
    format!("load-{i}")
}

fn sessions_wanted(opts: Opts) -> Result<usize> {
    let n = match std::env::var("LIFELINE_BENCH_SESSIONS") {
        Ok(v) => v.trim().parse().context("LIFELINE_BENCH_SESSIONS")?,
        Err(_) if opts.quick => QUICK_SESSIONS,
        Err(_) => SESSIONS,
    };
    if !(1..=MAX_SESSIONS).contains(&n) {
        bail!("LIFELINE_BENCH_SESSIONS must be 1 to {MAX_SESSIONS}, got {n}");
    }
    Ok(n)
}

/// Raises the open-files limit; the sessions need about 8 descriptors each.
fn raise_nofile(n: usize) -> Result<()> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    let need = (n as u64) * 8 + FD_HEADROOM;
    if soft < hard {
        rlimit::Resource::NOFILE.set(hard, hard)?;
    }
    if hard < need {
        bail!("{n} sessions need about {need} open files; the hard limit is {hard}");
    }
    Ok(())
}

/// The plugin folder: the `scripts` plugin and `stream-wasm`.
fn install_plugins(root: &std::path::Path) -> Result<()> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (src, files) in [
        ("plugins/scripts", ["plugin.toml", "main.lua"]),
        ("tests/plugins/stream-wasm", ["plugin.toml", "plugin.wasm"]),
    ] {
        let src = repo.join(src);
        let name = src.file_name().context("plugin folder name")?;
        let dst = root.join(name);
        std::fs::create_dir_all(&dst)?;
        for f in files {
            std::fs::copy(src.join(f), dst.join(f))
                .with_context(|| format!("{f} of {} (run scripts/build-plugins)", src.display()))?;
        }
    }
    Ok(())
}

/// The library scripts, created by operator 0 and published to all.
async fn add_scripts(ctx: &Ctx) -> Result<()> {
    use base64::Engine;
    let mut op = crate::step(
        "library: connect",
        lifeline_operator::Client::connect(&ctx.ep),
    )
    .await?;
    crate::step(
        "library: login",
        op.login(&operator_name(0), crate::PASSWORD),
    )
    .await?;
    for (name, body) in SCRIPTS {
        let exec = lifeline_protocol::FileUpload {
            name: "run.sh".into(),
            data_b64: base64::engine::general_purpose::STANDARD.encode(body),
        };
        let create = lifeline_protocol::Request::ScriptCreate {
            name: name.into(),
            category: "Other".into(),
            description: "load benchmark".into(),
            exec,
            input: None,
        };
        crate::step("library: add a script", op.request(create)).await?;
        let publish = lifeline_protocol::Request::ScriptPublish {
            name: name.into(),
            published: true,
        };
        crate::step("library: publish", op.request(publish)).await?;
    }
    Ok(())
}

/// Runs `f` on every session at once; the first failure stops the phase
/// (the other sessions' tasks are aborted) and is returned.
async fn phase<F, Fut>(what: &str, sessions: Vec<Session>, f: F) -> Result<Vec<Session>>
where
    F: Fn(Session) -> Fut,
    Fut: Future<Output = Result<Session>> + Send + 'static,
{
    let t = Instant::now();
    let n = sessions.len();
    let mut tasks = JoinSet::new();
    for s in sessions {
        tasks.spawn(f(s));
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        out.push(r.context("a session task panicked")??);
    }
    out.sort_by_key(|s| s.i);
    println!(
        "  {what}: {n} sessions in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    Ok(out)
}

pub async fn run(opts: Opts) -> Result<Vec<Row>> {
    let n = sessions_wanted(opts)?;
    raise_nofile(n)?;
    let runs = if opts.quick {
        QUICK_BASELINE_RUNS
    } else {
        BASELINE_RUNS
    };
    println!("\n[8] load: {n} concurrent sessions on one broker; baseline {runs} sessions alone");
    let work = tempfile::tempdir().context("temporary folder")?;
    let plugins = work.path().join("plugins");
    install_plugins(&plugins)?;
    // Operators 0..n run the load, operator n the baseline.
    let mut broker = broker::start(work.path(), n + 1)?;
    let agents = agents::Agents::start(n, &broker.ep, &plugins)?;
    let mut ctx = Ctx {
        ep: broker.ep.clone(),
        agents_dir: work.path().join("agents"),
        wasm_cache: None,
        agents: std::sync::Arc::new(agents),
    };
    add_scripts(&ctx).await?;
    let base = baseline(&mut ctx, &mut broker, n, runs).await?;
    let load = load(&ctx, &mut broker, n).await?;
    Ok(report::rows(n, &base, &load))
}

/// What one phase of sessions measured: the sessions (their times and
/// reports), the broker's figures before and after, and this process's CPU.
pub struct Measured {
    pub sessions: Vec<Session>,
    pub before: broker::ProcFigures,
    pub after: broker::ProcFigures,
    pub bench_cpu: f64,
    pub wall: Duration,
    pub sampled: broker::Sampled,
    pub load_before: f64,
    pub load_after: f64,
}

/// One warm-up session (it fills the WASM cache the others start with),
/// then `runs` sessions one at a time.
async fn baseline(
    ctx: &mut Ctx,
    broker: &mut broker::BrokerProcess,
    n: usize,
    runs: usize,
) -> Result<Measured> {
    let user = operator_name(n);
    let mut warm = Session::open(ctx, 0, "warm-up session".into(), &user).await?;
    warm.run_all(ctx).await?;
    let cache = warm.data_dir().join("plugin-state").join("wasm-cache");
    ctx.wasm_cache = Some(cache);
    let mut sessions = Vec::with_capacity(runs);
    let (mut cpu, mut bench, mut wall) = (0.0, 0.0, Duration::ZERO);
    let first = broker.figures()?;
    let load_before = broker::loadavg();
    let sampler = broker::Sampler::start(broker.pid());
    for r in 0..runs {
        let mut s = Session::open(ctx, r, format!("baseline session {r}"), &user).await?;
        let (c0, b0, t0) = (broker.figures()?.cpu, bench_cpu(ctx)?, Instant::now());
        s.run_all(ctx).await?;
        cpu += broker.figures()?.cpu - c0;
        bench += bench_cpu(ctx)? - b0;
        wall += t0.elapsed();
        sessions.push(s);
    }
    let sampled = sampler.finish();
    if let Some(s) = sessions.first() {
        println!("  report of {}: {}", s.name, report::kinds(&s.report));
        if std::env::var_os("LIFELINE_BENCH_DEBUG").is_some() {
            for e in &s.report {
                println!("    {} {} {:?}: {}", e.seq, e.kind, e.actor, e.text);
            }
        }
    }
    let mut after = broker.figures()?;
    // Only the timed steps' CPU, as for the load.
    after.cpu = first.cpu + cpu;
    println!(
        "  baseline: {runs} sessions, {:.2} s of steps",
        wall.as_secs_f64()
    );
    Ok(Measured {
        sessions,
        before: first,
        after,
        bench_cpu: bench,
        wall,
        sampled,
        load_before,
        load_after: broker::loadavg(),
    })
}

/// The N sessions: opened (logins, invitations: not measured), then each
/// step on all of them at once.
async fn load(ctx: &Ctx, broker: &mut broker::BrokerProcess, n: usize) -> Result<Measured> {
    let ctx = std::sync::Arc::new(ctx.clone());
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(LOGIN_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let (ctx, gate) = (ctx.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            Session::open(&ctx, i, format!("session {i}"), &operator_name(i)).await
        });
    }
    let mut sessions = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        sessions.push(r.context("a session task panicked")??);
    }
    sessions.sort_by_key(|s| s.i);
    println!("  {n} operators logged in, {n} invitations");

    let before = broker.figures()?;
    let (bench0, t0, load_before) = (bench_cpu(&ctx)?, Instant::now(), broker::loadavg());
    let sampler = broker::Sampler::start(broker.pid());
    let c = ctx.clone();
    let s = phase("join", sessions, move |mut s| {
        let c = c.clone();
        async move { s.join(&c).await.map(|_| s) }
    })
    .await?;
    let s = phase("chat", s, |mut s| async move { s.chat().await.map(|_| s) }).await?;
    let s = phase(
        "consent",
        s,
        |mut s| async move { s.consent().await.map(|_| s) },
    )
    .await?;
    let s = phase(
        "scripts",
        s,
        |mut s| async move { s.scripts().await.map(|_| s) },
    )
    .await?;
    let s = phase(
        "stream",
        s,
        |mut s| async move { s.stream().await.map(|_| s) },
    )
    .await?;
    let s = phase("end", s, |mut s| async move { s.end().await.map(|_| s) }).await?;
    let sessions = phase("report", s, |mut s| async move {
        s.fetch_report().await.map(|_| s)
    })
    .await?;
    let sampled = sampler.finish();
    for s in sessions
        .iter()
        .filter(|s| report::count(s).lost > 0)
        .take(5)
    {
        println!(
            "  report of {} (events lost): {}",
            s.name,
            report::kinds(&s.report)
        );
        for e in s.report.iter().filter(|e| e.kind.starts_with("script")) {
            println!("    {} {} {:?}: {}", e.seq, e.kind, e.actor, e.text);
        }
    }
    Ok(Measured {
        sessions,
        before,
        after: broker.figures()?,
        bench_cpu: bench_cpu(&ctx)? - bench0,
        wall: t0.elapsed(),
        sampled,
        load_before,
        load_after: broker::loadavg(),
    })
}

/// CPU seconds of this process and of the agent hosts.
fn bench_cpu(ctx: &Ctx) -> Result<f64> {
    Ok(broker::cpu_secs("self")? + ctx.agents.cpu())
}

/// p50 and p99 of samples, as "a / b".
pub fn p50_p99(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (percentile(v, 0.5), percentile(v, 0.99))
}

pub fn pair(v: (Duration, Duration)) -> String {
    format!("{} / {}", ms(v.0), ms(v.1))
}
