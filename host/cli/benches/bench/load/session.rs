//! One session of the load: a logged-in operator client of its own, a real
//! agent (`lifeline_agent::join_with`, on the agents' runtime) whose
//! customer answers by itself, and the steps the load runs on it. Every
//! step is bounded and its error names the session and the step.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use lifeline_agent::CustomerUi;
use lifeline_agent::channel::CustomerEvent;
use lifeline_agent::config::{AgentConfig, PluginsConfig};
use lifeline_core::client::Endpoint;
use lifeline_operator::{Client, Event};
use lifeline_protocol::{ConsentDecision, Party, ReportEvent, SessionMessage, SessionState};
use tokio::sync::{mpsc, oneshot};

use super::agents::Agents;
use super::{CHAT_ROUND_TRIPS, SCRIPTS, STREAM_BYTES, STREAM_FRAME, STREAM_WINDOW};
use crate::{PASSWORD, STEP};

/// What the customer puts before an operator's chat line to answer it.
pub const ECHO: &str = "echo: ";
/// Lines the customer may have typed and the agent not yet read.
pub const CUSTOMER_INPUT: usize = 64;
/// The plugin that streams, and its command.
const STREAM_PLUGIN: &str = "stream-wasm";
/// The capability the operator's consent question names.
const QUESTION_ACTION: &str = "system.info";
/// Bound on each script of the batch.
const SCRIPT_TIMEOUT_SECS: u64 = 30;

/// What every session shares.
#[derive(Clone)]
pub struct Ctx {
    pub ep: Endpoint,
    /// Where the agents' data folders go.
    pub agents_dir: PathBuf,
    /// Compiled WASM to start each agent with (a cache filled by an
    /// earlier agent), so that 200 agents in this process do not each
    /// compile the same plugin.
    pub wasm_cache: Option<PathBuf>,
    /// The processes the agents run in.
    pub agents: Arc<Agents>,
}

/// The timed figures of one session.
#[derive(Debug, Default, Clone)]
pub struct Times {
    pub join: Duration,
    pub chat: Vec<Duration>,
    pub consent: Duration,
    pub scripts: Duration,
    pub stream: Duration,
}

/// What the bench sent in a session, to count the report against.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    pub chat_operator: Vec<String>,
    pub chat_customer: Vec<String>,
    pub questions: usize,
    pub batches: usize,
    pub streams: usize,
}

pub struct Session {
    pub i: usize,
    /// Whether it is one of the load's sessions (not the baseline's).
    pub load: bool,
    /// "session 17" or "baseline session 2", for messages.
    pub name: String,
    op: Client,
    pub sid: String,
    code: String,
    data_dir: PathBuf,
    /// Told "ok ENDED_BY" or "err WHY" when the agent stops.
    agent: Option<oneshot::Receiver<String>>,
    pub times: Times,
    pub sent: Sent,
    pub report: Vec<ReportEvent>,
}

/// The customer: answers each operator chat line with [`ECHO`] + the line,
/// and every consent question with "allow once", as a person would type.
pub struct AutoCustomer {
    pub input: mpsc::Sender<String>,
}

impl CustomerUi for AutoCustomer {
    fn show(&self, _: &str) {}

    fn event(&self, ev: &CustomerEvent) {
        let line = match ev {
            CustomerEvent::Chat {
                from: Party::Operator,
                text,
                ..
            } => format!("{ECHO}{text}"),
            CustomerEvent::Consent(_) => lifeline_agent::prompt::ALLOW_ONCE.to_string(),
            _ => return,
        };
        if self.input.try_send(line).is_err() {
            eprintln!("  a customer's answer was dropped: its input queue is full");
        }
    }
}

pub fn agent_config(ep: &Endpoint, plugins: &Path, data_dir: &Path) -> AgentConfig {
    AgentConfig {
        endpoint: ep.clone(),
        data_dir: data_dir.to_path_buf(),
        consent_timeout: STEP,
        policy: None,
        plugins: Some(PluginsConfig {
            dirs: vec![plugins.to_path_buf()],
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
    }
}

/// Copies the compiled-WASM cache into a new agent's data folder (0700,
/// as the runtime requires).
fn seed_cache(from: &Path, data_dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let to = data_dir.join("plugin-state").join("wasm-cache");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::copy(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

/// The pattern byte of stream-wasm's `stream` command at offset `i`.
fn pattern(i: u64) -> u8 {
    ((i % 251) as u8) ^ ((i >> 16) as u8)
}

impl Session {
    /// Connects and logs in operator `username`, and creates the invitation.
    pub async fn open(ctx: &Ctx, i: usize, name: String, username: &str) -> Result<Session> {
        let what = |s: &str| format!("{name}: {s}");
        let mut op = crate::step(&what("operator connect"), Client::connect(&ctx.ep)).await?;
        crate::step(&what("operator login"), op.login(username, PASSWORD)).await?;
        let ticket = format!("LOAD-{i}");
        let inv = crate::step(&what("invite"), op.invite(&ticket, "Customer", None)).await?;
        let data_dir = ctx.agents_dir.join(name.replace(' ', "-"));
        if let Some(cache) = &ctx.wasm_cache {
            seed_cache(cache, &data_dir).with_context(|| what("seeding the WASM cache"))?;
        }
        Ok(Session {
            i,
            load: name.starts_with("session"),
            name,
            op,
            sid: inv.session_id,
            code: inv.connection_id,
            data_dir,
            agent: None,
            times: Times::default(),
            sent: Sent::default(),
            report: Vec::new(),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Waits (bounded by [`STEP`]) for the event `pick` accepts; the end of
    /// the session, a broker error or a lost connection fail the step.
    async fn wait<T>(&self, step: &str, mut pick: impl FnMut(Event) -> Option<T>) -> Result<T> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let ev = match tokio::time::timeout_at(deadline, self.op.next_event()).await {
                Err(_) => bail!(
                    "{}: {step}: nothing within {STEP:?}{}",
                    self.name,
                    self.agent_state()
                ),
                Ok(None) => bail!("{}: {step}: the operator's connection was lost", self.name),
                Ok(Some(ev)) => ev,
            };
            match ev {
                Event::Session {
                    msg: SessionMessage::End { reason, .. },
                    session_id,
                } if session_id == self.sid => {
                    bail!("{}: {step}: the session ended: {reason}", self.name)
                }
                Event::Error(e) => bail!("{}: {step}: the broker said: {e}", self.name),
                ev => {
                    if let Some(v) = pick(ev) {
                        return Ok(v);
                    }
                }
            }
        }
    }

    fn agent_state(&self) -> &'static str {
        match &self.agent {
            Some(rx) if rx.is_terminated() => " (the agent has stopped)",
            Some(_) => " (the agent is still running)",
            None => "",
        }
    }

    /// Starts the agent with the connection ID, waits for the broker's
    /// "ready" notice and attaches: "connection ID entered → operator
    /// connected", the agent's start (plugins loaded) included.
    pub async fn join(&mut self, ctx: &Ctx) -> Result<()> {
        let name = self.name.replace(' ', "-");
        let t0 = Instant::now();
        let mut agent = ctx
            .agents
            .join(
                self.load.then_some(self.i),
                &name,
                &self.code,
                &self.data_dir,
            )
            .with_context(|| format!("{}: join: starting the agent", self.name))?;
        let sid = self.sid.clone();
        let ready = self.wait("join (the broker's ready notice)", |ev| match ev {
            Event::Session {
                session_id,
                msg:
                    SessionMessage::State {
                        state: SessionState::Waiting,
                        ..
                    },
            } if session_id == sid => Some(()),
            _ => None,
        });
        tokio::select! {
            r = ready => r?,
            out = &mut agent => {
                let why = out.unwrap_or_else(|_| "its host process is gone".into());
                bail!("{}: join: the agent stopped: {why}", self.name);
            }
        }
        self.agent = Some(agent);
        let step = format!("{}: attach", self.name);
        crate::step(&step, self.op.attach(&self.sid)).await?;
        self.times.join = t0.elapsed();
        Ok(())
    }

    /// [`CHAT_ROUND_TRIPS`] chat lines, each answered by the customer.
    pub async fn chat(&mut self) -> Result<()> {
        for r in 0..CHAT_ROUND_TRIPS {
            let text = format!("load {} line {r}", self.i);
            let want = format!("{ECHO}{text}");
            let t = Instant::now();
            let step = format!("{}: chat {r}", self.name);
            crate::step(&step, self.op.chat(&self.sid, &text)).await?;
            self.sent.chat_operator.push(text);
            self.wait(&format!("chat {r}: the customer's answer"), |ev| match ev {
                Event::Session {
                    msg:
                        SessionMessage::Chat {
                            from: Party::Customer,
                            text,
                        },
                    ..
                } if text == want => Some(()),
                _ => None,
            })
            .await?;
            self.times.chat.push(t.elapsed());
            self.sent.chat_customer.push(want);
        }
        Ok(())
    }

    /// The operator's question, answered "allow once" by the customer.
    pub async fn consent(&mut self) -> Result<()> {
        let detail = format!("load question of session {}", self.i);
        let t = Instant::now();
        let ask = self
            .op
            .ask_consent(&self.sid, "load", QUESTION_ACTION, &detail, STEP);
        self.sent.questions += 1;
        let (decision, by) = crate::step(&format!("{}: consent", self.name), ask).await?;
        self.times.consent = t.elapsed();
        ensure!(
            decision == ConsentDecision::AllowOnce,
            "{}: consent: answered {} by {by}, not allow once",
            self.name,
            decision.as_str()
        );
        Ok(())
    }

    /// The batch of library scripts, consented to by the customer.
    pub async fn scripts(&mut self) -> Result<()> {
        let names: Vec<String> = SCRIPTS.iter().map(|(n, _)| n.to_string()).collect();
        let t = Instant::now();
        let run = self.op.run_scripts(
            &self.sid,
            &names,
            true,
            Some(SCRIPT_TIMEOUT_SECS),
            STEP,
            |_| {},
        );
        self.sent.batches += 1;
        let (ok, summary) = crate::step(&format!("{}: script batch", self.name), run).await?;
        self.times.scripts = t.elapsed();
        ensure!(ok, "{}: script batch failed: {summary}", self.name);
        Ok(())
    }

    /// [`STREAM_BYTES`] from stream-wasm to the operator client, checked
    /// byte by byte against the plugin's pattern.
    pub async fn stream(&mut self) -> Result<()> {
        let msg = SessionMessage::RunPlugin {
            call_id: 1,
            plugin: STREAM_PLUGIN.into(),
            command: "stream".into(),
            args: vec![STREAM_BYTES.to_string(), STREAM_FRAME.to_string()],
        };
        let t = Instant::now();
        let step = format!("{}: stream: run the plugin", self.name);
        crate::step(&step, self.op.send(&self.sid, msg)).await?;
        self.sent.streams += 1;
        let (mut got, mut done) = (0u64, false);
        while got < STREAM_BYTES || !done {
            let ev = self.wait("stream", Some).await?;
            match ev {
                Event::Session {
                    msg: SessionMessage::StreamOpened { stream, .. },
                    ..
                } => {
                    let credit = self.op.stream_credit(&self.sid, stream, STREAM_WINDOW);
                    crate::step(&format!("{}: stream credit", self.name), credit).await?;
                }
                Event::Stream { stream, body, .. } => {
                    if let Some(k) = (0..body.len()).find(|&k| body[k] != pattern(got + k as u64)) {
                        bail!("{}: stream: byte {} is wrong", self.name, got + k as u64);
                    }
                    got += body.len() as u64;
                    let credit = self.op.stream_credit(&self.sid, stream, body.len() as u64);
                    crate::step(&format!("{}: stream credit", self.name), credit).await?;
                }
                Event::Session {
                    msg: SessionMessage::PluginDone { ok, text, .. },
                    ..
                } => {
                    ensure!(ok, "{}: stream: the plugin failed: {text}", self.name);
                    done = true;
                }
                _ => {}
            }
        }
        ensure!(got == STREAM_BYTES, "{}: stream: {got} bytes", self.name);
        self.times.stream = t.elapsed();
        Ok(())
    }

    /// Ends the session and waits for the agent to stop.
    pub async fn end(&mut self) -> Result<()> {
        let step = format!("{}: end", self.name);
        crate::step(&step, self.op.end(&self.sid, "load run over")).await?;
        let agent = self
            .agent
            .take()
            .ok_or_else(|| anyhow!("{step}: no agent"))?;
        let stopped = match tokio::time::timeout(STEP, agent).await {
            Err(_) => bail!("{step}: the agent did not stop within {STEP:?}"),
            Ok(r) => r.unwrap_or_else(|_| "err its host process is gone".into()),
        };
        ensure!(
            stopped == "ok Operator",
            "{step}: the agent stopped with {stopped:?}, not ended by the operator"
        );
        Ok(())
    }

    /// Fetches the broker's report of the session.
    pub async fn fetch_report(&mut self) -> Result<()> {
        let step = format!("{}: report", self.name);
        let (_, events) = crate::step(&step, self.op.report(&self.sid)).await?;
        self.report = events;
        Ok(())
    }

    /// Every step of a session, one after the other (the baseline).
    pub async fn run_all(&mut self, ctx: &Ctx) -> Result<()> {
        self.join(ctx).await?;
        self.chat().await?;
        self.consent().await?;
        self.scripts().await?;
        self.stream().await?;
        self.end().await?;
        self.fetch_report().await
    }
}
