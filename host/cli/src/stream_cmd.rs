//! `lifeline operator run … --streams DIR`: runs a plugin command and saves
//! every stream it opens into DIR, one file per stream
//! (`<id>-<name>.bin`): a queued stream's frames appended in order, a
//! latest-wins stream's newest frame (an image, a status) replacing the
//! file. Credit is granted as frames are written, so a slow disk holds
//! back the plugin instead of filling memory anywhere.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lifeline_operator::{Client, Event};
use lifeline_protocol::SessionMessage;
use lifeline_protocol::stream::DEFAULT_WINDOW_BYTES;

/// A stream being saved.
struct Saving {
    path: PathBuf,
    file: Option<std::fs::File>,
    latest_wins: bool,
    bytes: u64,
}

/// A file name from a stream's name: letters, digits, `-`, `_` and `.`
/// kept, anything else (a `/`, a control character) becomes `_`.
fn file_name(id: u32, name: &str) -> String {
    let safe: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{id}-{}.bin", safe.trim_start_matches('.'))
}

impl Saving {
    fn open(dir: &Path, id: u32, name: &str, latest_wins: bool) -> Result<Saving> {
        let path = dir.join(file_name(id, name));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Saving {
            path,
            file: Some(file),
            latest_wins,
            bytes: 0,
        })
    }

    fn write(&mut self, body: &[u8]) -> Result<()> {
        if self.latest_wins {
            // The newest frame replaces the file as a whole.
            let tmp = self.path.with_extension("bin.part");
            std::fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &self.path)
                .with_context(|| format!("replacing {}", self.path.display()))?;
        } else if let Some(f) = self.file.as_mut() {
            f.write_all(body)
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        self.bytes += body.len() as u64;
        Ok(())
    }
}

/// Runs `plugin command args` in `session`, saving its streams into `dir`.
pub async fn run(
    c: &Client,
    session: &str,
    plugin: &str,
    command: &str,
    args: &[String],
    wait: Duration,
    dir: &Path,
) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::console::attach(c, session).await?;
    let msg = SessionMessage::RunPlugin {
        call_id: 1,
        plugin: plugin.into(),
        command: command.into(),
        args: args.to_vec(),
    };
    c.send(session, msg).await?;
    let outcome = tokio::time::timeout(wait, follow(c, session, dir)).await;
    let _ = c.detach(session).await;
    let (ok, text) = match outcome {
        Ok(r) => r?,
        Err(_) => bail!("{plugin} {command} did not finish within {wait:?}"),
    };
    let res = if ok { Ok(text) } else { Err(text) };
    Ok(crate::plugin_cmd::print_result(plugin, command, res))
}

/// Handles the call's events until it is done: (ok, result text).
async fn follow(c: &Client, session: &str, dir: &Path) -> Result<(bool, String)> {
    let mut saving: HashMap<u32, Saving> = HashMap::new();
    // The security code shown when attaching; a new channel's is shown too.
    let mut shown = c.sas(session);
    loop {
        let Some(ev) = c.next_event().await else {
            bail!("the connection to the broker was lost");
        };
        match ev {
            Event::Stream {
                session_id,
                stream,
                body,
            } if session_id == session => {
                if let Some(s) = saving.get_mut(&stream) {
                    s.write(&body)?;
                    c.stream_credit(session, stream, body.len() as u64).await?;
                }
            }
            Event::Session { session_id, msg } if session_id == session => match msg {
                SessionMessage::StreamOpened {
                    stream,
                    name,
                    content_type,
                    latest_wins,
                    ..
                } => {
                    let s = Saving::open(dir, stream, &name, latest_wins)?;
                    esay!(
                        "[stream {stream}] {name} ({content_type}) → {}",
                        s.path.display()
                    );
                    saving.insert(stream, s);
                    c.stream_credit(session, stream, DEFAULT_WINDOW_BYTES)
                        .await?;
                }
                SessionMessage::StreamClosed {
                    stream,
                    frames,
                    dropped,
                    reason,
                    ..
                } => {
                    if let Some(s) = saving.remove(&stream) {
                        esay!(
                            "[stream {stream}] closed: {frames} frames, {} bytes saved, {dropped} dropped ({reason})",
                            s.bytes
                        );
                    }
                }
                SessionMessage::PluginOutput { stream, text, .. } => match stream.as_str() {
                    "output" => say!("{text}"),
                    other => esay!("[{other}] {text}"),
                },
                SessionMessage::ConsentDecided {
                    action,
                    decision,
                    decided_by,
                    ..
                } => esay!("[consent] {action}: {} ({decided_by})", decision.as_str()),
                SessionMessage::PluginDone {
                    call_id: 1,
                    ok,
                    text,
                    ..
                } => return Ok((ok, text)),
                SessionMessage::End { reason, .. } => bail!("the session ended: {reason}"),
                _ => {}
            },
            Event::Error(m) => esay!("! {m}"),
            Event::Secured { session_id, sas }
                if session_id == session && shown.as_ref() != Some(&sas) =>
            {
                esay!("{}", crate::console::security_line(&sas));
                shown = Some(sas);
            }
            Event::Session { .. }
            | Event::Stream { .. }
            | Event::Data { .. }
            | Event::Secured { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stream_names_become_safe_file_names() {
        assert_eq!(super::file_name(3, "screen"), "3-screen.bin");
        assert_eq!(
            super::file_name(4, "../../etc/passwd"),
            "4-_.._etc_passwd.bin"
        );
        assert_eq!(super::file_name(5, "a\nb"), "5-a_b.bin");
    }
}
