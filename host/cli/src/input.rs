//! Reading lines and passwords from the terminal or standard input.

use anyhow::{Context, Result, bail};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// Reads a password: the first line of stdin with `from_stdin`, otherwise a
/// prompt without echo.
pub fn password(prompt: &str, from_stdin: bool) -> Result<String> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        rpassword::prompt_password(prompt)
            .context("reading the password (use --password-stdin when not on a terminal)")?
    };
    if pw.is_empty() {
        bail!("empty password");
    }
    Ok(pw)
}

/// Lines typed on standard input, as a channel (closes at end of input).
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if tx.send(l).await.is_err() {
                break;
            }
        }
    });
    rx
}
