//! `lifeline demo`: a broker, an agent and an operator client in one process
//! on loopback, walking one real session end to end over TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lifeline_agent::config::AgentConfig;
use lifeline_core::client::Endpoint;
use lifeline_core::config::BrokerConfig;
use lifeline_core::consent::{Policy, Rule};
use lifeline_core::tls::Trust;
use lifeline_operator::{Client, Event, report};
use lifeline_protocol::{OperatorProfile, Party, SessionMessage};
use tokio::sync::mpsc;

/// Bound on every wait of the demo.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// What the demo produced.
#[derive(Debug)]
pub struct DemoResult {
    pub session_id: String,
    pub report_text: PathBuf,
    pub report_json: PathBuf,
    pub audit_log: PathBuf,
    pub event_kinds: Vec<String>,
}

/// The customer's screen in the demo: printed, and forwarded to the script.
struct DemoUi(mpsc::UnboundedSender<String>);

impl lifeline_agent::CustomerUi for DemoUi {
    fn show(&self, line: &str) {
        for l in line.lines() {
            println!("  customer │ {l}");
        }
        let _ = self.0.send(line.to_string());
    }
}

fn say(who: &str, what: &str) {
    println!("{who:>9} │ {what}");
}

pub async fn run(keep: bool) -> Result<DemoResult> {
    let data = tempfile::Builder::new()
        .prefix("lifeline-demo-")
        .tempdir()
        .context("creating a temporary folder")?;
    let root = data.path().to_owned();
    let reports = std::env::temp_dir().join("lifeline-demo-reports");
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;

    let cfg = BrokerConfig {
        name: "Lifeline demo broker".into(),
        listen: "127.0.0.1:0".parse().expect("literal address"),
        https_listen: "127.0.0.1:0".parse().expect("literal address"),
        public_url: None,
        data_dir: root.join("broker"),
        cert_names: vec!["localhost".into(), "127.0.0.1".into()],
        tls_files: None,
        invitation_ttl: Duration::from_secs(600),
        rejoin_ttl: Duration::from_secs(900),
        heartbeat: Duration::from_secs(15),
        script_categories: vec!["Diagnostics".into(), "Network".into()],
        back_office: None,
        limits: Default::default(),
        smtp: None,
        join: Default::default(),
        store: Default::default(),
        cluster: None,
    };
    let vendor = crate::demo_license::Vendor::new(&root)?;
    let mut cfg = cfg;
    cfg.back_office = Some(vendor.back_office());
    let password = lifeline_broker::accounts::new_token();
    let profile = OperatorProfile {
        username: "demo".into(),
        name: "Dana Operator".into(),
        email: "dana@example.com".into(),
        title: "Support Engineer".into(),
    };
    std::fs::create_dir_all(&cfg.data_dir)?;
    lifeline_broker::add_operator(&cfg, &profile, &password)?;
    let broker = lifeline_broker::Broker::start(cfg).await?;
    say(
        "broker",
        &format!(
            "listening on {} with a self-signed certificate {}",
            broker.addr, broker.fingerprint
        ),
    );

    let endpoint = Endpoint {
        address: broker.addr.to_string(),
        server_name: "localhost".into(),
        trust: Trust::Pinned(broker.fingerprint),
        heartbeat: Duration::from_secs(15),
    };
    let mut op = Client::connect(&endpoint).await?;
    op.login(&profile.username, &password).await?;
    say(
        "operator",
        &format!("logged in as {} ({})", profile.name, profile.title),
    );
    let inv = op.invite("DEMO-1001", "Demo Customer", None).await?;
    say(
        "operator",
        &format!(
            "invitation for ticket {}: connection ID {}",
            inv.ticket, inv.connection_id
        ),
    );
    say(
        "operator",
        &format!("link {}  short link {}", inv.link, inv.short_link),
    );

    let agent_cfg = AgentConfig {
        endpoint,
        data_dir: root.join("agent"),
        consent_timeout: Duration::from_secs(30),
        policy: Some(Policy {
            default: Rule::Ask,
            rules: [
                ("system.info".to_string(), Rule::Allow),
                ("script.run".to_string(), Rule::Allow),
                ("fs.folder".to_string(), Rule::Allow),
            ]
            .into(),
        }),
        plugins: Some(demo_plugins(&root)?),
        run_as: Default::default(),
        screen: Default::default(),
        power: Default::default(),
        service: Default::default(),
        remote_service: None,
        allow_remote_assistance: true,
    };
    let mut agent_cfg = agent_cfg;
    agent_cfg.remote_service = Some(vendor.remote_service(&root, broker.https_addr)?);
    let audit_log = agent_cfg.data_dir.join(lifeline_agent::AUDIT_FILE);
    let (ui_tx, mut ui_rx) = mpsc::unbounded_channel();
    let (input_tx, input_rx) = mpsc::channel(8);
    let code = inv.connection_id.clone();
    say("customer", &format!("types the connection ID {code}"));
    let agent = tokio::spawn(async move {
        lifeline_agent::run(&agent_cfg, &code, Arc::new(DemoUi(ui_tx)), input_rx).await
    });

    let sid = inv.session_id.clone();
    op.wait_ready(&sid, STEP_TIMEOUT).await?;
    say("operator", "the session is ready; connecting");
    op.attach(&sid).await?;
    if let Some(sas) = op.sas(&sid) {
        say("operator", &crate::console::security_line(&sas));
    }
    op.chat(
        &sid,
        "Hello, I'm Dana from support. I'll have a look at your printer problem.",
    )
    .await?;
    wait_for(&mut ui_rx, "[Dana Operator]").await?;
    input_tx
        .send("Thank you! It stopped printing this morning.".into())
        .await?;
    loop {
        match tokio::time::timeout(STEP_TIMEOUT, op.next_event())
            .await
            .context("waiting for the customer's chat")?
        {
            Some(Event::Session {
                msg:
                    SessionMessage::Chat {
                        from: Party::Customer,
                        text,
                    },
                ..
            }) => {
                say("operator", &format!("[customer] {text}"));
                break;
            }
            Some(_) => {}
            None => bail!("the operator's connection was lost"),
        }
    }
    say("operator", "asks consent to read system information");
    let (decision, by) = op
        .ask_consent(
            &sid,
            "sysinfo",
            "system.info",
            "Read the operating system, CPU, memory and disk information",
            STEP_TIMEOUT,
        )
        .await?;
    say(
        "operator",
        &format!("consent: {} (by {by})", decision.as_str()),
    );
    let plugins = op.plugins(&sid, STEP_TIMEOUT).await?;
    let names: Vec<String> = plugins
        .iter()
        .map(|p| format!("{} {} ({})", p.id, p.version, p.runtime))
        .collect();
    say(
        "operator",
        &format!("the agent's plugins: {}", names.join(", ")),
    );
    for (command, args) in [
        ("greet", vec!["Demo Customer".to_string()]),
        ("memory", vec![]),
    ] {
        let r = op
            .run_plugin(
                &sid,
                "hello-lua",
                command,
                &args,
                STEP_TIMEOUT,
                |stream, text| say("operator", &format!("[hello-lua {stream}] {text}")),
            )
            .await?;
        match r {
            Ok(text) => say(
                "operator",
                &format!("hello-lua {command} → {}", first_line(&text, 100)),
            ),
            Err(why) => bail!("hello-lua {command} failed: {why}"),
        }
    }
    // System information (the WASM plugin), when built.
    if plugins.iter().any(|p| p.id == "sysinfo") {
        let r = op
            .run_plugin(
                &sid,
                "sysinfo",
                "show",
                &["os".to_string()],
                STEP_TIMEOUT,
                |stream, text| {
                    if stream == "output" {
                        for l in text.lines() {
                            say("operator", &format!("[sysinfo] {l}"));
                        }
                    }
                },
            )
            .await?;
        if let Err(why) = r {
            bail!("sysinfo failed: {why}");
        }
    } else {
        say(
            "operator",
            "(the sysinfo WASM plugin is not built; scripts/build-plugins builds it)",
        );
    }
    // A script from the library, run on the customer's machine.
    let script = "#!/bin/sh\necho \"printer queue: $(cat queue.txt)\"\necho \"cleared\"\n";
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let file = |name: &str, data: &str| lifeline_protocol::FileUpload {
        name: name.into(),
        data_b64: b64(data),
    };
    op.request(lifeline_protocol::Request::ScriptCreate {
        name: "clear-print-queue".into(),
        category: "Diagnostics".into(),
        description: "Show and clear the print queue".into(),
        exec: file("clear.sh", script),
        input: Some(file("queue.txt", "2 jobs stuck")),
    })
    .await?;
    say(
        "operator",
        "added the script clear-print-queue to the library and runs it",
    );
    let (ok, summary) = op
        .run_scripts(
            &sid,
            &["clear-print-queue".to_string()],
            true,
            Some(30),
            STEP_TIMEOUT,
            |ev| match ev {
                SessionMessage::ScriptOutput { script, line, .. } => {
                    say("operator", &format!("[{script}] {line}"))
                }
                SessionMessage::ScriptDone {
                    script,
                    exit_code,
                    duration_ms,
                    ..
                } => say(
                    "operator",
                    &format!(
                        "{script}: exit code {} in {duration_ms} ms",
                        exit_code.map_or("-".to_string(), |c| c.to_string())
                    ),
                ),
                _ => {}
            },
        )
        .await?;
    if !ok {
        bail!("the demo script failed: {summary}");
    }
    crate::demo_license::walk(&vendor, &broker, &op, &sid).await?;
    op.end(&sid, "problem solved").await?;
    say("operator", "ended the session");
    let outcome = tokio::time::timeout(STEP_TIMEOUT, agent)
        .await
        .context("waiting for the agent to finish")?
        .context("agent task")??;
    let (summary, events) = op.report(&sid).await?;
    let report_text = reports.join(format!("report-{sid}.txt"));
    let report_json = reports.join(format!("report-{sid}.json"));
    std::fs::write(&report_text, report::to_text(&summary, &events))?;
    std::fs::write(&report_json, report::to_json(&summary, &events))?;
    let (audit_entries, _) = lifeline_core::audit::verify(&audit_log)?;

    println!();
    println!(
        "Demo finished: session {sid} ended by the {} ({}).",
        outcome.ended_by, outcome.reason
    );
    println!(
        "Report ({} events): {}",
        events.len(),
        report_text.display()
    );
    println!("JSON report:        {}", report_json.display());
    for e in &events {
        println!("  {:>2} {:<16} {:<8} {}", e.seq, e.kind, e.actor, e.text);
    }
    println!("Agent audit log: {audit_entries} entries, hash chain verified.");
    let kinds = events.iter().map(|e| e.kind.clone()).collect();
    broker.shutdown();
    let audit_log = if keep {
        let kept = data.keep();
        println!("Data kept in {}", kept.display());
        audit_log
    } else {
        audit_log
    };
    Ok(DemoResult {
        session_id: sid,
        report_text,
        report_json,
        audit_log,
        event_kinds: kinds,
    })
}

async fn wait_for(rx: &mut mpsc::UnboundedReceiver<String>, needle: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(l)) if l.contains(needle) => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) => bail!("the agent stopped before showing {needle:?}"),
            Err(_) => bail!("timed out waiting for the customer to see {needle:?}"),
        }
    }
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}

/// The example Lua plugin, embedded in the binary, signed with a fresh demo
/// publisher key that the demo agent trusts: the real signed-plugin path.
fn demo_plugins(root: &std::path::Path) -> Result<lifeline_agent::config::PluginsConfig> {
    use lifeline_runtime::bundle;
    let plugins = root.join("plugins");
    let embedded: [(&str, &str, &str); 3] = [
        (
            "hello-lua",
            include_str!("../../../plugins/hello-lua/plugin.toml"),
            include_str!("../../../plugins/hello-lua/main.lua"),
        ),
        (
            "scripts",
            include_str!("../../../plugins/scripts/plugin.toml"),
            include_str!("../../../plugins/scripts/main.lua"),
        ),
        (
            "license",
            include_str!("../../../plugins/license/plugin.toml"),
            include_str!("../../../plugins/license/main.lua"),
        ),
    ];
    for (id, manifest, code) in embedded {
        let dir = plugins.join(id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("plugin.toml"), manifest)?;
        std::fs::write(dir.join("main.lua"), code)?;
    }
    // The WASM system-information plugin, when it has been built
    // (scripts/build-plugins; scripts/demo does it first).
    let sysinfo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sysinfo");
    if sysinfo.join("plugin.wasm").is_file() {
        let dir = plugins.join("sysinfo");
        std::fs::create_dir_all(&dir)?;
        for f in ["plugin.toml", "plugin.wasm"] {
            std::fs::copy(sysinfo.join(f), dir.join(f))?;
        }
    }
    let key_file = root.join("demo-publisher.key");
    let public = bundle::keygen(&key_file)?;
    let key = bundle::load_signing_key(&key_file)?;
    for entry in std::fs::read_dir(&plugins)? {
        let dir = entry?.path();
        let mut files = bundle::read_dir_files(&dir)?;
        bundle::sign(&mut files, &key);
        std::fs::write(
            dir.join(bundle::SIGNATURE_FILE),
            &files[bundle::SIGNATURE_FILE],
        )?;
    }
    Ok(lifeline_agent::config::PluginsConfig {
        dirs: vec![plugins],
        trusted_keys: vec![bundle::public_key_string(&public)],
        allow_unsigned: false,
        hot_reload: false,
        http_proxy: None,
        folders: Default::default(),
        settings: Default::default(),
        commands: Default::default(),
    })
}
