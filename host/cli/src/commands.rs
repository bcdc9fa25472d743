//! The top-level commands.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use lifeline_agent::config::AgentConfig;
use lifeline_core::config::{BrokerConfig, OperatorConfig};
use lifeline_operator::{Client, report, token};
use lifeline_protocol::{ConsentDecision, OperatorProfile, ReplyBody, Request};

use crate::cli::{AgentCmd, AuditCmd, BrokerCmd, Command, ConfigCmd, OperatorCmd, ReportFormat};
use crate::input;

pub async fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Demo { keep } => crate::demo::run(keep).await.map(|_| ExitCode::SUCCESS),
        Command::Broker(b) => broker(b).await,
        Command::Agent(a) => agent(a).await,
        Command::Operator(o) => operator(o).await,
        Command::Config(ConfigCmd::Check { file }) => {
            if is_plugin_manifest(&file) {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let m = lifeline_runtime::Manifest::parse(&file, &text)?;
                println!(
                    "{}: valid plugin manifest ({} {})",
                    file.display(),
                    m.id,
                    m.version
                );
                return Ok(ExitCode::SUCCESS);
            }
            let role = crate::config_check::check_file(&file)?;
            println!("{}: valid {role:?} configuration", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(p) => crate::plugin_dev::plugin(p).await,
        Command::License(l) => crate::license_cmd::license(l).await,
        Command::Audit(AuditCmd::Verify { file }) => {
            let (n, hash) = lifeline_core::audit::verify(&file)?;
            println!("{}: {n} entries, chain intact, head {hash}", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn broker(cmd: BrokerCmd) -> Result<ExitCode> {
    match cmd {
        BrokerCmd::Run(c) => {
            let cfg = BrokerConfig::load(&c.config)?;
            let b = lifeline_broker::Broker::start(cfg).await?;
            if b.generated_certificate {
                println!("Created a self-signed certificate.");
            }
            println!(
                "Broker listening on {} (sessions) and https://{} (links)",
                b.addr, b.https_addr
            );
            println!("Certificate fingerprint: {}", b.fingerprint);
            let stop = crate::signals::stop_signal()?;
            println!(
                "Agents and operators trust it with `lifeline agent setup` / `lifeline operator setup --broker HOST:PORT`; customers with a join file need nothing. Ctrl-C stops."
            );
            stop.await;
            b.shutdown();
            Ok(ExitCode::SUCCESS)
        }
        BrokerCmd::AddOperator {
            cfg,
            username,
            name,
            email,
            title,
            password_stdin,
        } => {
            let cfg = BrokerConfig::load(&cfg.config)?;
            let pw = input::password("New operator's password: ", password_stdin)?;
            let p = OperatorProfile {
                username: username.clone(),
                name,
                email,
                title,
            };
            lifeline_broker::add_operator(&cfg, &p, &pw)?;
            println!("Operator {username} created.");
            Ok(ExitCode::SUCCESS)
        }
        BrokerCmd::ResetPassword {
            cfg,
            username,
            password_stdin,
        } => {
            let cfg = BrokerConfig::load(&cfg.config)?;
            let pw = input::password("New password: ", password_stdin)?;
            lifeline_broker::reset_password(&cfg, &username, &pw)?;
            println!("Password of {username} changed.");
            Ok(ExitCode::SUCCESS)
        }
        BrokerCmd::ListOperators(c) => {
            let cfg = BrokerConfig::load(&c.config)?;
            for p in lifeline_broker::list_operators(&cfg)? {
                println!("{}\t{}\t{}\t{}", p.username, p.name, p.email, p.title);
            }
            Ok(ExitCode::SUCCESS)
        }
        BrokerCmd::Fingerprint(c) => {
            let cfg = BrokerConfig::load(&c.config)?;
            std::fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
            let files = cfg
                .tls_files
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path()));
            let id =
                lifeline_core::tls::load_or_create_identity(&cfg.data_dir, files, &cfg.cert_names)?;
            println!("{}", id.fingerprint);
            Ok(ExitCode::SUCCESS)
        }
        BrokerCmd::License(l) => crate::license_cmd::broker(l),
    }
}

async fn agent(cmd: AgentCmd) -> Result<ExitCode> {
    // The screen's input guard runs as this same program.
    if let Ok(exe) = std::env::current_exe() {
        lifeline_agent::screen::guard::set_program(exe);
    }
    match cmd {
        AgentCmd::InputGuard { display } => {
            lifeline_agent::screen::guard::run(&display).map_err(|e| anyhow::anyhow!(e))?;
            Ok(ExitCode::SUCCESS)
        }
        AgentCmd::Join {
            config,
            file,
            code_or_link,
            ui,
        } => crate::join_cmd::join(config, file, code_or_link, ui).await,
        AgentCmd::Window {
            config,
            socket,
            wait,
            window,
        } => crate::window_cmd::window(config.as_deref(), socket, wait, &window).await,
        AgentCmd::Setup(args) => {
            crate::setup_cmd::setup(crate::setup_cmd::SetupRole::Agent, args).await
        }
        AgentCmd::AllowRemoteAssistance { config, state } => {
            crate::join_cmd::allow(config, state == crate::cli::OnOff::On)
        }
        AgentCmd::InstallDesktop {
            data_home,
            no_update,
        } => crate::desktop_cmd::install(data_home, no_update),
        AgentCmd::Service { cfg } => {
            let cfg = AgentConfig::load(&cfg.config)?;
            match crate::window_cmd::service_rejoin(&cfg).await? {
                Some(outcome) => println!(
                    "Session {} is over ({}).",
                    outcome.session.session_id, outcome.reason
                ),
                None => println!("No rejoin ticket is waiting: nothing to rejoin."),
            }
            // Then the long-lived plugins run in the background (the
            // license plugin's periodic check), after the session: one
            // writer of the audit log at a time.
            let stop = crate::signals::stop_signal()?;
            println!("Running plugins in the background (Ctrl-C stops).");
            lifeline_agent::background::run(&cfg, Arc::new(lifeline_agent::TerminalUi), stop)
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        AgentCmd::InstallService {
            cfg,
            account,
            unit_dir,
            autostart_dir,
            no_systemctl,
        } => crate::service_cmd::install(
            &cfg.config,
            account,
            (unit_dir, autostart_dir),
            !no_systemctl,
        ),
        AgentCmd::UninstallService {
            cfg,
            unit_dir,
            autostart_dir,
            no_systemctl,
        } => crate::service_cmd::uninstall(&cfg.config, (unit_dir, autostart_dir), !no_systemctl),
        AgentCmd::Status { config } => {
            let config = crate::join_cmd::config_path(config);
            crate::join_cmd::status(config.as_deref())?;
            match config {
                Some(config) => {
                    crate::license_cmd::agent_status(crate::cli::ConfigArg { config }).await
                }
                None => Ok(ExitCode::SUCCESS),
            }
        }
        AgentCmd::LicenseCheck { cfg, watch } => {
            crate::license_cmd::license_check(cfg, watch).await
        }
    }
}

pub(crate) async fn logged_in(cfg: &OperatorConfig) -> Result<Client> {
    Client::connect_logged_in(cfg).await.map_err(Into::into)
}

async fn operator(cmd: OperatorCmd) -> Result<ExitCode> {
    match cmd {
        OperatorCmd::Setup(args) => {
            crate::setup_cmd::setup(crate::setup_cmd::SetupRole::Operator, args).await
        }
        OperatorCmd::Login {
            cfg,
            username,
            password_stdin,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let username = username
                .or_else(|| cfg.username.clone())
                .context("give --username or set [operator] username in the config")?;
            let pw = match (&cfg.password, password_stdin) {
                (Some(p), false) => p.clone(),
                _ => input::password(&format!("Password for {username}: "), password_stdin)?,
            };
            let mut c = Client::connect(&cfg.endpoint).await?;
            let tok = c.login(&username, &pw).await?;
            token::save(&cfg.data_dir, &username, &tok)?;
            let p = c
                .profile
                .clone()
                .unwrap_or_else(|| unreachable_profile(&username));
            println!(
                "Logged in to {} as {} ({}).",
                c.broker_name, p.name, p.username
            );
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Logout(c) => {
            let cfg = OperatorConfig::load(&c.config)?;
            if let Ok(client) = logged_in(&cfg).await {
                client.request(Request::Logout).await?;
            }
            token::remove(&cfg.data_dir);
            println!("Logged out.");
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Profile {
            cfg,
            name,
            email,
            title,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            let req = if name.is_none() && email.is_none() && title.is_none() {
                Request::Profile
            } else {
                Request::UpdateProfile { name, email, title }
            };
            if let ReplyBody::Profile(p) = c.request(req).await? {
                println!(
                    "Username: {}\nName:     {}\nE-mail:   {}\nTitle:    {}",
                    p.username, p.name, p.email, p.title
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Passwd {
            cfg,
            password_stdin,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            let old = input::password("Current password: ", password_stdin)?;
            let new = input::password("New password: ", password_stdin)?;
            c.request(Request::ChangePassword { old, new }).await?;
            println!("Password changed.");
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Sessions { cfg, all, json } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let list = logged_in(&cfg).await?.sessions(all).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<13} {:<10} {:<12} {:<20} {:<20} CREATED",
                    "SESSION", "STATE", "OPERATOR", "TICKET", "CUSTOMER"
                );
                for s in list {
                    let state = if s.state == lifeline_protocol::SessionState::Waiting {
                        "ready".to_string()
                    } else {
                        s.state.to_string()
                    };
                    say!(
                        "{:<13} {:<10} {:<12} {:<20} {:<20} {}",
                        s.session_id,
                        state,
                        s.operator,
                        s.ticket,
                        s.end_user,
                        s.created_at
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Invite {
            cfg,
            ticket,
            end_user,
            ttl,
            json,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            let inv = c.invite(&ticket, &end_user, ttl).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inv)?);
            } else {
                let p = c
                    .profile
                    .clone()
                    .unwrap_or_else(|| unreachable_profile("?"));
                println!("Session:        {}", inv.session_id);
                println!("Ticket:         {}  ({})", inv.ticket, inv.end_user);
                println!("Connection ID:  {}", inv.connection_id);
                println!("Link:           {}", inv.link);
                println!("Short link:     {}", inv.short_link);
                println!("Expires:        {}", inv.expires_at);
                println!("E-mail:         {}", lifeline_operator::mailto(&inv, &p));
            }
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Wait {
            cfg,
            session,
            timeout,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let s = logged_in(&cfg)
                .await?
                .wait_ready(&session, Duration::from_secs(timeout))
                .await?;
            println!(
                "Session {} is ready: {} joined from {}.",
                s.session_id,
                s.end_user,
                s.customer_host.unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Connect { cfg, session } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            crate::console::run(&cfg, logged_in(&cfg).await?, &session).await
        }
        OperatorCmd::Chat {
            cfg,
            session,
            message,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            crate::console::attach(&c, &session).await?;
            c.chat(&session, &message).await?;
            // The reply to detach comes after the chat was relayed and recorded.
            c.detach(&session).await?;
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Ask {
            cfg,
            session,
            plugin,
            action,
            detail,
            timeout,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            crate::console::attach(&c, &session).await?;
            let res = c
                .ask_consent(
                    &session,
                    &plugin,
                    &action,
                    &detail,
                    Duration::from_secs(timeout),
                )
                .await;
            let _ = c.detach(&session).await;
            let (decision, by) = res?;
            println!("{} ({by})", decision.as_str());
            Ok(if decision == ConsentDecision::Deny {
                ExitCode::from(crate::EXIT_DENIED)
            } else {
                ExitCode::SUCCESS
            })
        }
        OperatorCmd::Plugins { cfg, session, json } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            crate::plugin_cmd::list(&logged_in(&cfg).await?, &session, json).await
        }
        OperatorCmd::Run {
            cfg,
            session,
            plugin,
            command,
            args,
            timeout,
            password_stdin,
            streams,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            if let Some(dir) = streams {
                let wait = Duration::from_secs(timeout);
                return crate::stream_cmd::run(&c, &session, &plugin, &command, &args, wait, &dir)
                    .await;
            }
            crate::plugin_cmd::run(
                &c,
                &session,
                &plugin,
                &command,
                &args,
                Duration::from_secs(timeout),
                password_stdin,
            )
            .await
        }
        OperatorCmd::LoginAs {
            cfg,
            session,
            user,
            password_stdin,
            timeout,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            let args = [user];
            let wait = Duration::from_secs(timeout);
            crate::plugin_cmd::run(&c, &session, "run-as", "login", &args, wait, password_stdin)
                .await
        }
        OperatorCmd::LogoutAs { cfg, session } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            let wait = Duration::from_secs(60);
            crate::plugin_cmd::run(&c, &session, "run-as", "logout", &[], wait, false).await
        }
        OperatorCmd::Reboot {
            cfg,
            session,
            reason,
            timeout,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            let args: Vec<String> = [reason].into_iter().filter(|r| !r.is_empty()).collect();
            let wait = Duration::from_secs(timeout);
            crate::plugin_cmd::run(&c, &session, "reboot", "reboot", &args, wait, false).await
        }
        OperatorCmd::Sysinfo {
            cfg,
            session,
            category,
            filter,
            save,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let c = logged_in(&cfg).await?;
            crate::plugin_cmd::sysinfo(&c, &session, &category, filter.as_deref(), save.as_deref())
                .await
        }
        OperatorCmd::Screen(args) => crate::screen_cmd::screen(args).await,
        OperatorCmd::ScreenExport {
            file,
            out,
            every,
            cursor,
        } => crate::screen_cmd::export(&file, &out, every, cursor),
        OperatorCmd::Scripts(cmd) => crate::scripts_cmd::run(cmd).await,
        OperatorCmd::End {
            cfg,
            session,
            reason,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            logged_in(&cfg).await?.end(&session, &reason).await?;
            println!("Session {session} ended.");
            Ok(ExitCode::SUCCESS)
        }
        OperatorCmd::Report {
            cfg,
            session,
            format,
            output,
        } => {
            let cfg = OperatorConfig::load(&cfg.config)?;
            let (s, events) = logged_in(&cfg).await?.report(&session).await?;
            let text = match format {
                ReportFormat::Text => report::to_text(&s, &events),
                ReportFormat::Json => report::to_json(&s, &events),
            };
            match output {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("Report written to {}", path.display());
                }
                None => print!("{}", lifeline_protocol::terminal_safe(&text)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn unreachable_profile(username: &str) -> OperatorProfile {
    OperatorProfile {
        username: username.into(),
        name: username.into(),
        email: String::new(),
        title: String::new(),
    }
}

/// A plugin manifest (`plugin.toml`, top-level `[plugin]` table) rather
/// than a role's configuration.
fn is_plugin_manifest(file: &std::path::Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("plugin"))
}
