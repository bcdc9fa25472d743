//! How long-running commands (the broker, the agent service) learn to
//! stop: Ctrl-C (SIGINT) or SIGTERM, which systemd sends to stop a service.

use std::future::Future;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

/// Completes at the first SIGINT or SIGTERM. The handlers are installed
/// when this is called, before the command says it runs, so a signal sent
/// right after that message stops it cleanly instead of killing it.
pub fn stop_signal() -> Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
