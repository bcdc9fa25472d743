//! The integrator's loop: `lifeline plugin new | test | watch`. A plugin is
//! written from a template, run locally against a fake session (no broker,
//! no agent: consent from flags or a policy file, output printed as
//! labelled lines, streams into files, session events from the command
//! line), and run again on every save.

mod build;
mod cases;
mod events;
mod port;
mod scaffold;
mod sink;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use lifeline_runtime::manifest::{MANIFEST_FILE, Runtime};
use lifeline_runtime::{Arg, HostEnv, Manifest, PluginHost, RuntimeConfig, SessionPort, StreamHub};

pub use cases::TEST_FILE;
pub use scaffold::Lang;

use crate::cli::PluginCmd;
use port::{Consent, Console, TestPort};

/// The options of `plugin test` and `plugin watch`.
#[derive(Args, Debug, Clone)]
pub struct TestArgs {
    /// The plugin's folder (with plugin.toml).
    pub dir: PathBuf,
    /// A command to run; without one, the cases of DIR/plugin.test.toml run.
    pub command: Option<String>,
    /// The command's arguments (text).
    pub args: Vec<String>,
    /// Also pass FILE's content as a bytes argument, after the text ones.
    #[arg(long = "bytes-arg", value_name = "FILE")]
    pub bytes_args: Vec<PathBuf>,
    /// Allow a capability without asking (repeatable).
    #[arg(long, value_name = "CAP")]
    pub allow: Vec<String>,
    /// Deny a capability (repeatable).
    #[arg(long, value_name = "CAP")]
    pub deny: Vec<String>,
    /// Decide consent by an unattended policy file ([policy], as an agent's).
    /// A capability neither allowed nor denied is denied: nobody is asked.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Run the long-lived plugin through these session events, in order,
    /// before the command or the cases: started, rejoined,
    /// operator-attached:NAME, operator-left:NAME, access-suspended:USER,
    /// access-restored:USER, wait:MS, ending:REASON (last).
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Save each stream the plugin opens to DIR/<stream-id>-<name>.bin.
    #[arg(long, value_name = "DIR")]
    pub streams_dir: Option<PathBuf>,
    /// Do not build a Rust plugin first (test the component already there).
    #[arg(long)]
    pub no_build: bool,
}

/// `lifeline plugin …`.
pub async fn plugin(cmd: PluginCmd) -> Result<ExitCode> {
    match cmd {
        PluginCmd::New { lang, name, parent } => scaffold::new(lang, &name, &parent),
        PluginCmd::Test(args) => interruptible(move |sandbox| test(&args, sandbox)).await,
        PluginCmd::Watch(args) => interruptible(move |sandbox| watch::watch(&args, sandbox)).await,
        PluginCmd::Bundle(b) => crate::plugin_cmd::bundle(b),
    }
}

/// Runs `f` on a blocking thread with a fresh [`Sandbox`]; Ctrl-C removes
/// the sandbox and ends the command.
async fn interruptible(
    f: impl FnOnce(&Sandbox) -> Result<ExitCode> + Send + 'static,
) -> Result<ExitCode> {
    let sandbox = Sandbox::new()?;
    let path = sandbox.path().to_owned();
    let task = tokio::task::spawn_blocking(move || f(&sandbox));
    tokio::select! {
        r = task => r.context("the test thread failed")?,
        _ = tokio::signal::ctrl_c() => {
            let _ = std::fs::remove_dir_all(&path);
            eprintln!("Stopped.");
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
    }
}

/// Exit code after Ctrl-C (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The folders a test run keeps its state in: the plugin's `state.kv`
/// and temporary folders start empty in every run; the compiled-code
/// cache stays for the next run of `plugin watch`.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix("lifeline-plugin-test-")
            .tempdir()
            .context("creating a temporary folder for the test")?;
        Ok(Sandbox { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A plugin host with empty plugin state (it empties its temporary
    /// folders itself).
    fn host(&self) -> Result<PluginHost> {
        let state_dir = self.path().join("state");
        let kv = state_dir.join("kv");
        if kv.exists() {
            std::fs::remove_dir_all(&kv).with_context(|| format!("emptying {}", kv.display()))?;
        }
        PluginHost::new(RuntimeConfig {
            plugin_dirs: vec![],
            state_dir,
            env: HostEnv {
                temp_root: self.path().join("tmp"),
                proxy: None,
                folders: Default::default(),
            },
            trusted_keys: vec![],
            allow_unsigned: true,
        })
        .map_err(|e| anyhow!("cannot start the plugin runtime: {e}"))
    }
}

/// The plugin folder, absolute, checked to hold a manifest.
pub fn plugin_dir(dir: &Path) -> Result<PathBuf> {
    let abs = std::fs::canonicalize(dir)
        .with_context(|| format!("no plugin folder at {}", dir.display()))?;
    if !abs.join(MANIFEST_FILE).is_file() {
        bail!(
            "{} has no {MANIFEST_FILE}: not a plugin folder (`lifeline plugin new` writes one)",
            abs.display()
        );
    }
    Ok(abs)
}

/// `lifeline plugin test`: exit 0 when the command or every case passed.
fn test(args: &TestArgs, sandbox: &Sandbox) -> Result<ExitCode> {
    Ok(if run_once(args, sandbox)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The command's arguments: the text ones, then the files as bytes.
fn call_args(args: &TestArgs) -> Result<Vec<Arg>> {
    let mut out: Vec<Arg> = args.args.iter().map(|a| Arg::Text(a.clone())).collect();
    for f in &args.bytes_args {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        out.push(Arg::Bytes(bytes));
    }
    Ok(out)
}

/// Everything a run needs, checked before anything is built or loaded.
struct Plan {
    dir: PathBuf,
    manifest: Manifest,
    consent: Consent,
    script: events::Script,
    call: Option<(String, Vec<Arg>)>,
    cases: Vec<cases::Case>,
}

fn plan(args: &TestArgs) -> Result<Plan> {
    let dir = plugin_dir(&args.dir)?;
    let manifest = Manifest::load_dir(&dir)?;
    let consent = Consent::new(&args.allow, &args.deny, args.policy.as_deref())?;
    let script = events::parse(&args.events)?;
    let call = match &args.command {
        Some(c) => Some((c.clone(), call_args(args)?)),
        None if !args.args.is_empty() || !args.bytes_args.is_empty() => {
            bail!("arguments without a command")
        }
        None => None,
    };
    // Events alone need no test file; without either, the cases run.
    let cases = match (&call, args.events.is_empty()) {
        (None, true) => cases::load(&dir)?,
        (None, false) if dir.join(TEST_FILE).is_file() => cases::load(&dir)?,
        _ => Vec::new(),
    };
    Ok(Plan {
        dir,
        manifest,
        consent,
        script,
        call,
        cases,
    })
}

/// One `plugin test` run: build, load, events, then the command or the
/// cases. True when everything passed.
pub fn run_once(args: &TestArgs, sandbox: &Sandbox) -> Result<bool> {
    let plan = plan(args)?;
    if !args.no_build {
        build::rust_plugin(&plan.dir, &plan.manifest)?;
    }
    check_entry(&plan, args.no_build)?;
    let host = Arc::new(sandbox.host()?);
    let (id, version) = host
        .load_dir(&plan.dir)
        .map_err(|e| anyhow!("cannot load the plugin in {}: {e}", plan.dir.display()))?;
    let console = Arc::new(Console::default());
    let runtime = match plan.manifest.runtime {
        Runtime::Wasm => "wasm",
        Runtime::Lua => "lua",
    };
    console.plain(&format!(
        "[plugin] {id} {version} ({runtime}) from {}",
        plan.dir.display()
    ));
    let sink = sink::FileSink::new(args.streams_dir.as_deref(), Arc::clone(&console))?;
    let hub = StreamHub::unlimited(Box::new(sink));
    let port: Arc<dyn SessionPort> = Arc::new(TestPort::new(
        plan.consent,
        Arc::clone(&console),
        Arc::clone(&hub),
    ));
    if !args.events.is_empty() {
        events::play(&host, &id, Arc::clone(&port), &console, &plan.script)?;
    }
    let passed = match &plan.call {
        Some((command, call_args)) => call(&host, &id, command, call_args, &port, &console),
        None => run_cases(&host, &id, &plan.cases, &port, &console),
    };
    hub.close_all("the test ended");
    Ok(passed)
}

/// Refuses a missing entry file, saying how to make it.
fn check_entry(plan: &Plan, no_build: bool) -> Result<()> {
    let entry = &plan.manifest.entry;
    if entry.is_file() {
        return Ok(());
    }
    let how = match (build::is_rust(&plan.dir), no_build) {
        (true, true) => "build it: run without --no-build",
        (true, false) => "the build did not make it",
        (false, _) => "build the component and copy it there (see the SDK's README)",
    };
    bail!(
        "{}: the entry file plugin.toml names is missing; {how}",
        entry.display()
    )
}

/// Runs one command and prints its result; true when it succeeded.
fn call(
    host: &PluginHost,
    id: &str,
    command: &str,
    args: &[Arg],
    port: &Arc<dyn SessionPort>,
    console: &Console,
) -> bool {
    match host.call(id, command, args, Arc::clone(port)) {
        Ok(result) if result.is_empty() => {
            console.plain("ok");
            true
        }
        Ok(result) => {
            console.plain(&format!("ok: {result}"));
            true
        }
        Err(e) => {
            console.plain(&format!("error: {e}"));
            false
        }
    }
}

/// Runs the cases in order; prints PASS or FAIL for each and a summary.
fn run_cases(
    host: &PluginHost,
    id: &str,
    list: &[cases::Case],
    port: &Arc<dyn SessionPort>,
    console: &Console,
) -> bool {
    let mut failed = 0;
    for (i, case) in list.iter().enumerate() {
        let title = case.title();
        println!("-- case {}/{}: {title}", i + 1, list.len());
        console.take();
        let args: Vec<Arg> = case.args.iter().map(|a| Arg::Text(a.clone())).collect();
        let ok = call(host, id, &case.command, &args, port, console);
        match case.verdict(&console.take(), !ok) {
            None => println!("PASS {title}"),
            Some(why) => {
                failed += 1;
                println!("FAIL {title}: {why}");
            }
        }
    }
    let passed = list.len() - failed;
    println!("{passed} passed, {failed} failed");
    failed == 0
}
