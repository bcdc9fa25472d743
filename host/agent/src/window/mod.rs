//! The customer's window: the agent's own page in the customer's browser,
//! served on loopback (`127.0.0.1`, a port the system picks) by a small
//! HTTP + WebSocket server over the customer channel ([`crate::channel`]).
//!
//! - [`launcher`]: the single-use launch token, written into an owner-only
//!   HTML file in the customer's runtime folder; the browser opens that
//!   file (no secret in any URL or process list), which POSTs the token to
//!   `/open`; the answer is an `HttpOnly; SameSite=Strict` cookie and the
//!   token is burnt (the file deleted);
//! - [`http`]: the routes, the Host check (DNS rebinding), the static files
//!   (`host/agent/window/`, embedded in release builds) under a strict CSP;
//! - [`socket`]: the page's WebSocket (cookie and Origin checked): the
//!   channel's events out, the customer's commands in.

mod assets;
mod http;
pub mod launcher;
mod socket;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::channel::Hub;

/// Name of the window's cookie.
pub const COOKIE: &str = "lifeline_window";
/// The `Content-Security-Policy` of every answer: the page's own scripts,
/// styles and socket, nothing inline, no frames, no forms.
pub const WINDOW_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("cannot listen on 127.0.0.1 for the customer's window: {0}")]
    Listen(#[source] std::io::Error),
    #[error("cannot write the window's launcher file in {dir}: {source}")]
    Launcher {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the browser {program:?}: {source}")]
    Browser {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// How the window is opened.
#[derive(Debug, Clone, Default)]
pub struct WindowOptions {
    /// The program that opens the launcher file (default: `$BROWSER`, else
    /// `xdg-open`).
    pub browser: Option<String>,
    /// Do not start a browser (the caller prints the launcher's path).
    pub no_browser: bool,
    /// Where the launcher file goes (default: `$XDG_RUNTIME_DIR`, else an
    /// owner-only temporary folder).
    pub runtime_dir: Option<PathBuf>,
}

/// What the server checks: the port (Host and Origin), the launch token
/// (until used) and the cookie it is exchanged for.
pub(crate) struct Auth {
    pub port: u16,
    pub token: Mutex<Option<String>>,
    pub cookie: String,
    pub launcher: PathBuf,
}

/// A running window server.
pub struct Window {
    pub addr: SocketAddr,
    /// The launcher file to open in a browser (deleted once used).
    pub launcher: PathBuf,
    server: tokio::task::JoinHandle<()>,
    /// An owner-only folder made for the launcher, removed at the end.
    _tmp: Option<launcher::TempDir>,
}

impl Window {
    /// Serves `hub` on loopback and writes the launcher file; opens the
    /// browser unless `no_browser`.
    pub async fn start(hub: Arc<Hub>, opts: &WindowOptions) -> Result<Window, WindowError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(WindowError::Listen)?;
        let addr = listener.local_addr().map_err(WindowError::Listen)?;
        let (dir, tmp) = launcher::runtime_dir(opts.runtime_dir.as_deref())?;
        let token = launcher::secret();
        let path = launcher::write(&dir, addr.port(), &token)?;
        let auth = Arc::new(Auth {
            port: addr.port(),
            token: Mutex::new(Some(token)),
            cookie: launcher::secret(),
            launcher: path.clone(),
        });
        let app = http::router(hub, auth);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the customer's window server stopped: {e}");
            }
        });
        if !opts.no_browser {
            launcher::open_browser(opts.browser.as_deref(), &path)?;
        }
        Ok(Window {
            addr,
            launcher: path,
            server,
            _tmp: tmp,
        })
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_file(&self.launcher);
    }
}

/// Whether a window can be shown here: a graphical session (`$DISPLAY` or
/// `$WAYLAND_DISPLAY`) and a program to open the browser.
pub fn available(browser: Option<&str>) -> bool {
    let graphical = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    graphical && launcher::find_program(&launcher::opener(browser)).is_some()
}
