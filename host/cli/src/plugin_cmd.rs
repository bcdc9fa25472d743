//! `lifeline plugin …` (bundles) and the operator's plugin commands.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lifeline_agent::config::AgentConfig;
use lifeline_operator::Client;
use lifeline_runtime::bundle;
use lifeline_runtime::manifest::{MANIFEST_FILE, Manifest};

use crate::cli::BundleCmd;

/// Time to wait for the agent's plugin list.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn bundle(cmd: BundleCmd) -> Result<ExitCode> {
    match cmd {
        BundleCmd::Keygen { out } => {
            let public = bundle::keygen(&out)?;
            println!("Secret key written to {} (keep it private).", out.display());
            println!("Public key for agents' [plugins] trusted_keys:");
            println!("{}", bundle::public_key_string(&public));
        }
        BundleCmd::Pack { dir, out } => {
            let manifest = Manifest::load_dir(&dir)?;
            if !manifest.entry.is_file() {
                bail!(
                    "{}: the entry file {} is missing (build the plugin first)",
                    dir.display(),
                    manifest.entry.display()
                );
            }
            let mut files = bundle::read_dir_files(&dir)?;
            files.remove(bundle::SIGNATURE_FILE);
            bundle::write_bundle(&out, &files)?;
            println!(
                "Packed {} {} ({} files) into {} (unsigned).",
                manifest.id,
                manifest.version,
                files.len(),
                out.display()
            );
        }
        BundleCmd::Sign { bundle: path, key } => {
            let key = bundle::load_signing_key(&key)?;
            let mut files = bundle::read_bundle(&path)?;
            bundle::sign(&mut files, &key);
            // A fresh random name in the bundle's folder (O_EXCL), never a
            // predictable one a planted link could redirect.
            let folder = match path.parent() {
                Some(f) if !f.as_os_str().is_empty() => f,
                _ => std::path::Path::new("."),
            };
            let tmp = tempfile::Builder::new()
                .prefix(".signing-")
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .tempfile_in(folder)
                .with_context(|| format!("creating a temporary file in {}", folder.display()))?;
            bundle::write_bundle(tmp.path(), &files)?;
            tmp.persist(&path)
                .with_context(|| format!("replacing {}", path.display()))?;
            println!(
                "Signed {} with {}.",
                path.display(),
                bundle::public_key_string(&key.verifying_key())
            );
        }
        BundleCmd::Verify {
            bundle: path,
            trusted,
            config,
        } => {
            let mut keys = trusted;
            if let Some(c) = config {
                let cfg = AgentConfig::load(&c)?;
                keys.extend(cfg.plugins.map(|p| p.trusted_keys).unwrap_or_default());
            }
            let keys = keys
                .iter()
                .map(|k| bundle::parse_public_key(k))
                .collect::<Result<Vec<_>, _>>()?;
            let files = bundle::read_bundle(&path)?;
            let who = bundle::verify(&files, &path, &keys)?;
            println!(
                "{}: signature valid, signed by trusted key {}.",
                path.display(),
                bundle::public_key_string(&who)
            );
        }
        BundleCmd::Install {
            bundle: path,
            config,
        } => {
            let cfg = AgentConfig::load(&config)?;
            let Some(pc) = cfg.plugins else {
                bail!(
                    "{}: no [plugins] section, so the agent runs no plugins",
                    config.display()
                );
            };
            let root = pc.dirs.first().context("[plugins] dirs is empty")?;
            let files = bundle::read_bundle(&path)?;
            if pc.allow_unsigned {
                eprintln!(
                    "warning: allow_unsigned is set (development only): the signature is not required"
                );
            } else {
                let keys = pc
                    .trusted_keys
                    .iter()
                    .map(|k| bundle::parse_public_key(k))
                    .collect::<Result<Vec<_>, _>>()?;
                bundle::verify(&files, &path, &keys)?;
            }
            let text = String::from_utf8_lossy(&files[MANIFEST_FILE]).to_string();
            let manifest = Manifest::parse(&path.join(MANIFEST_FILE), &text)?;
            std::fs::create_dir_all(root)
                .with_context(|| format!("creating {}", root.display()))?;
            let dir = bundle::install(&files, root, &manifest.id)?;
            println!(
                "Installed {} {} into {}.",
                manifest.id,
                manifest.version,
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(c: &Client, session: &str, json: bool) -> Result<ExitCode> {
    crate::console::attach(c, session).await?;
    let code = c.sas(session);
    let res = c.plugins(session, LIST_TIMEOUT).await;
    let _ = c.detach(session).await;
    let plugins = res?;
    if json {
        let out = serde_json::json!({
            "security_code": code,
            "plugins": plugins,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        crate::console::print_plugins(&plugins);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one plugin command; a password the plugin asks for (run-as login)
/// comes from standard input's first line with `password_stdin`, otherwise
/// from a prompt without echo.
pub async fn run(
    c: &Client,
    session: &str,
    plugin: &str,
    command: &str,
    args: &[String],
    wait: Duration,
    password_stdin: bool,
) -> Result<ExitCode> {
    crate::console::attach(c, session).await?;
    let res = c
        .run_plugin_with(
            session,
            plugin,
            command,
            args,
            wait,
            |stream, text| match stream {
                "output" => say!("{text}"),
                other => esay!("[{other}] {text}"),
            },
            |user, prompt| {
                esay!("The customer consented to a login as {user}.");
                match crate::input::password(&format!("{prompt}: "), password_stdin) {
                    Ok(pw) => Some(lifeline_protocol::Secret::new(pw)),
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        None
                    }
                }
            },
        )
        .await;
    let _ = c.detach(session).await;
    Ok(print_result(plugin, command, res?))
}

/// Prints a plugin call's result (or why it failed) and its exit code.
pub(crate) fn print_result(plugin: &str, command: &str, res: Result<String, String>) -> ExitCode {
    match res {
        Ok(result) => {
            if !result.is_empty() {
                say!("{result}");
            }
            ExitCode::SUCCESS
        }
        Err(why) => {
            esay!("error: {plugin} {command}: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `sysinfo show CATEGORY [FILTER]` and returns the panels' text.
async fn sysinfo_text(
    c: &Client,
    session: &str,
    category: &str,
    filter: Option<&str>,
) -> Result<String> {
    let mut args = vec![category.to_string()];
    args.extend(filter.map(str::to_string));
    let mut text = String::new();
    let r = c
        .run_plugin(
            session,
            "sysinfo",
            "show",
            &args,
            Duration::from_secs(600),
            |stream, t| {
                if stream == "output" {
                    text.push_str(t);
                    text.push('\n');
                } else {
                    esay!("[{stream}] {t}");
                }
            },
        )
        .await?;
    match r {
        Ok(_) => Ok(text),
        Err(why) => bail!("system information: {why}"),
    }
}

/// `lifeline operator sysinfo`: show a category (or all) and optionally
/// save all categories to a text file.
pub async fn sysinfo(
    c: &Client,
    session: &str,
    category: &str,
    filter: Option<&str>,
    save: Option<&std::path::Path>,
) -> Result<ExitCode> {
    crate::console::attach(c, session).await?;
    let res = async {
        let shown = sysinfo_text(c, session, category, filter).await?;
        print!("{}", lifeline_protocol::terminal_safe(&shown));
        if let Some(path) = save {
            let all = if category == "all" {
                shown
            } else {
                sysinfo_text(c, session, "all", filter).await?
            };
            let header = format!(
                "Lifeline system information — session {session}, saved {}\n\n",
                lifeline_core::time::now_rfc3339()
            );
            std::fs::write(path, header + &all)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("Saved all categories to {}", path.display());
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let _ = c.detach(session).await;
    res.map(|()| ExitCode::SUCCESS)
}
