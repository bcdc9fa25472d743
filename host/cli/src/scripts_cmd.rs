//! `lifeline operator scripts …`: the script library and script runs.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use lifeline_core::config::OperatorConfig;
use lifeline_protocol::{FileUpload, ReplyBody, Request, ScriptInfo, SessionMessage};

use crate::cli::ScriptsCmd;
use crate::commands::logged_in;

/// Longest a `scripts run` waits for a batch (consent prompt included).
pub const RUN_WAIT: Duration = Duration::from_secs(4 * 3600);

fn upload(path: &Path) -> Result<FileUpload> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("the file has no name")?
        .to_string();
    Ok(FileUpload {
        name,
        data_b64: base64::engine::general_purpose::STANDARD.encode(data),
    })
}

fn print_script(s: &ScriptInfo) {
    println!(
        "{} [{}] by {}{} — {} ({} bytes, sha256 {}){}",
        s.name,
        s.category,
        s.owner,
        if s.published { ", published" } else { "" },
        s.exec_name,
        s.exec_bytes,
        &s.sha256[..12],
        s.input_name
            .as_ref()
            .map(|i| format!(", input {i}"))
            .unwrap_or_default()
    );
}

pub async fn run(cmd: ScriptsCmd) -> Result<ExitCode> {
    let (cfg, req) = match cmd {
        ScriptsCmd::Add {
            cfg,
            name,
            category,
            description,
            exec,
            input,
        } => {
            let exec = upload(&exec)?;
            let input = input.as_deref().map(upload).transpose()?;
            (
                cfg,
                Request::ScriptCreate {
                    name,
                    category,
                    description,
                    exec,
                    input,
                },
            )
        }
        ScriptsCmd::Edit {
            cfg,
            name,
            category,
            description,
            exec,
            input,
            remove_input,
        } => {
            let exec = exec.as_deref().map(upload).transpose()?;
            let input = input.as_deref().map(upload).transpose()?;
            (
                cfg,
                Request::ScriptUpdate {
                    name,
                    category,
                    description,
                    exec,
                    input,
                    remove_input,
                },
            )
        }
        ScriptsCmd::Delete { cfg, name } => (cfg, Request::ScriptDelete { name }),
        ScriptsCmd::Publish { cfg, name } => (
            cfg,
            Request::ScriptPublish {
                name,
                published: true,
            },
        ),
        ScriptsCmd::Unpublish { cfg, name } => (
            cfg,
            Request::ScriptPublish {
                name,
                published: false,
            },
        ),
        ScriptsCmd::List {
            cfg,
            sort,
            desc,
            json,
        } => {
            let c = logged_in(&OperatorConfig::load(&cfg.config)?).await?;
            let ReplyBody::Scripts { scripts } = c
                .request(Request::ScriptList {
                    sort,
                    descending: desc,
                })
                .await?
            else {
                bail!("unexpected reply from the broker");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&scripts)?);
            } else {
                println!(
                    "{:<24} {:<14} {:<12} {:<9} UPDATED",
                    "NAME", "CATEGORY", "OWNER", "PUBLISHED"
                );
                for s in &scripts {
                    let published = if s.published { "yes" } else { "no" };
                    println!(
                        "{:<24} {:<14} {:<12} {:<9} {}",
                        s.name, s.category, s.owner, published, s.updated_at
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        ScriptsCmd::Categories(cfg) => (cfg, Request::ScriptCategories),
        ScriptsCmd::Run {
            cfg,
            session,
            names,
            keep_going,
            timeout,
        } => {
            let c = logged_in(&OperatorConfig::load(&cfg.config)?).await?;
            crate::console::attach(&c, &session).await?;
            let res = c
                .run_scripts(
                    &session,
                    &names,
                    !keep_going,
                    timeout,
                    RUN_WAIT,
                    |ev| match ev {
                        SessionMessage::ScriptOutput {
                            script,
                            stream,
                            line,
                            ..
                        } => {
                            if stream == "stderr" {
                                esay!("[{script}] {line}");
                            } else {
                                say!("[{script}] {line}");
                            }
                        }
                        SessionMessage::ScriptDone {
                            script,
                            exit_code,
                            duration_ms,
                            timed_out,
                            error,
                            ..
                        } => {
                            let how = lifeline_protocol::script_outcome(
                                *exit_code,
                                *timed_out,
                                error.as_deref(),
                            );
                            println!("* {script}: {how} in {duration_ms} ms");
                        }
                        SessionMessage::ConsentDecided {
                            decision,
                            decided_by,
                            ..
                        } => {
                            println!("* consent: {} ({decided_by})", decision.as_str());
                        }
                        _ => {}
                    },
                )
                .await;
            let _ = c.detach(&session).await;
            let (ok, summary) = res?;
            println!("* {summary}");
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    };
    let c = logged_in(&OperatorConfig::load(&cfg.config)?).await?;
    match c.request(req).await? {
        ReplyBody::Script(s) => print_script(&s),
        ReplyBody::Categories { categories } => println!("{}", categories.join("\n")),
        ReplyBody::Ok => println!("Done."),
        other => bail!("unexpected reply from the broker: {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}
