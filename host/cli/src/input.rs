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

/// Turns terminal echo off on standard input until dropped (nothing when
/// standard input is not a terminal), for a password typed into a line
/// reader that is already running.
pub struct EchoOff(Option<nix::sys::termios::Termios>);

impl EchoOff {
    pub fn new() -> Self {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return EchoOff(None);
        };
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        if tcsetattr(&stdin, SetArg::TCSANOW, &quiet).is_err() {
            return EchoOff(None);
        }
        EchoOff(Some(saved))
    }
}

impl Default for EchoOff {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = self.0.take() {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &saved,
            );
        }
    }
}
