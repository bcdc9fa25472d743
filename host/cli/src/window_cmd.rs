//! The customer's window from the command line: `agent join --ui`, the
//! agent service's customer socket after a restart, and `agent window`
//! (the desktop user's side of that socket, started by the autostart
//! entry `install-service` writes).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use lifeline_agent::channel::{Hub, socket};
use lifeline_agent::config::AgentConfig;
use lifeline_agent::window::{Window, WindowOptions};
use lifeline_agent::{Customer, CustomerUi, Outcome, TerminalUi};

use crate::input;

/// How long the window stays up after the session ended, for the page to
/// show the end before its server goes.
pub const ENDED_LINGER: Duration = Duration::from_secs(3);
/// How long `agent window --wait` waits for the service's socket (the
/// desktop may start before the service has rejoined).
pub const SOCKET_WAIT: Duration = Duration::from_secs(120);
/// Pause between two looks for the socket.
const SOCKET_POLL: Duration = Duration::from_millis(500);
/// The autostart entry's file name.
pub const AUTOSTART_FILE: &str = "lifeline-window.desktop";

/// Where the customer sees the session.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum UiMode {
    /// The window when there is a graphical session and a browser opener,
    /// else the terminal.
    Auto,
    /// The agent's page in the browser (the terminal shows the same).
    Window,
    /// The terminal only.
    Terminal,
}

/// How the window is opened.
#[derive(Args, Debug, Clone, Default)]
pub struct WindowArgs {
    /// Do not start a browser: print the launcher file's path to open.
    #[arg(long)]
    pub no_browser: bool,
    /// The program that opens the window (default: $BROWSER, else xdg-open).
    #[arg(long, value_name = "PROGRAM")]
    pub browser: Option<String>,
}

impl WindowArgs {
    fn options(&self) -> WindowOptions {
        WindowOptions {
            browser: self.browser.clone(),
            no_browser: self.no_browser,
            runtime_dir: None,
        }
    }
}

fn wants_window(mode: UiMode, w: &WindowArgs) -> bool {
    match mode {
        UiMode::Window => true,
        UiMode::Terminal => false,
        UiMode::Auto => w.no_browser || lifeline_agent::window::available(w.browser.as_deref()),
    }
}

/// Starts the window over `hub` and says where it is.
async fn open_window(hub: Arc<Hub>, w: &WindowArgs) -> Result<Window> {
    let window = Window::start(hub, &w.options()).await?;
    if w.no_browser {
        println!(
            "The Lifeline window: open {} in a browser.",
            window.launcher.display()
        );
    } else {
        println!("The Lifeline window opens in your browser.");
    }
    Ok(window)
}

/// `agent join`'s choice of where the customer sees the session.
#[derive(Args, Debug, Clone)]
pub struct UiArgs {
    /// Where to show the session: the window (the agent's page in the
    /// browser), the terminal, or auto (the window when there is a
    /// graphical session and a browser).
    #[arg(long, value_enum, default_value_t = UiMode::Auto)]
    pub ui: UiMode,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// The customer of `agent join`: the terminal, or the window as well
/// (whose server runs until [`finish`]).
pub async fn customer(args: &UiArgs) -> Result<(Customer, Option<Window>)> {
    if !wants_window(args.ui, &args.window) {
        let ui = Arc::new(TerminalUi);
        return Ok((Customer::terminal(ui, input::stdin_lines()), None));
    }
    let (hub, commands) = Hub::new(Some(Arc::new(TerminalUi) as Arc<dyn CustomerUi>));
    let window = open_window(Arc::clone(&hub), &args.window).await?;
    let customer = Customer {
        ui: hub,
        input: input::stdin_lines(),
        commands,
    };
    Ok((customer, Some(window)))
}

/// After the session: the window shows the end a moment before it goes.
pub async fn finish(window: Option<Window>) {
    if window.is_some() {
        tokio::time::sleep(ENDED_LINGER).await;
    }
}

/// `agent service`'s rejoin: the customer channel goes on the socket of
/// `[customer] socket` for the desktop user who joined (and `[customer]
/// users`, and root) while the session runs.
pub async fn service_rejoin(cfg: &AgentConfig) -> Result<Option<Outcome>> {
    // Nobody reads the service's output live: without a connected window,
    // consent the policy leaves to the customer is refused at once.
    let log = Arc::new(lifeline_agent::ServiceLogUi) as Arc<dyn CustomerUi>;
    let (hub, commands) = Hub::new(Some(log));
    let ticket = lifeline_agent::reboot::load(&cfg.data_dir).ok().flatten();
    let server = match &ticket {
        Some(t) => {
            let allowed = socket::Allowed::resolve(t.customer_uid, &cfg.service.customer.users);
            match socket::serve(
                &cfg.service.customer.socket,
                Arc::clone(&hub),
                allowed,
                t.customer_uid,
            ) {
                Ok(s) => Some(s),
                Err(e) => {
                    // The session still rejoins; consent falls back to the policy.
                    eprintln!("! {e}");
                    None
                }
            }
        }
        None => None,
    };
    let customer = Customer {
        ui: Arc::clone(&hub) as Arc<dyn CustomerUi>,
        input: input::stdin_lines(),
        commands,
    };
    let outcome = lifeline_agent::rejoin_with(cfg, customer).await;
    if server.is_some() && hub.listeners() > 0 {
        tokio::time::sleep(ENDED_LINGER).await;
    }
    drop(server);
    Ok(outcome?)
}

/// The socket `agent window` connects to.
fn socket_path(config: Option<&Path>, socket: Option<PathBuf>) -> PathBuf {
    socket
        .or_else(|| {
            let cfg = AgentConfig::load(config?).ok()?;
            Some(cfg.service.customer.socket)
        })
        .unwrap_or_else(|| PathBuf::from(lifeline_agent::config::customer::DEFAULT_SOCKET))
}

/// `agent window`: the desktop user's window on the agent service's
/// session. With `wait`, a missing socket (no session) ends it quietly.
pub async fn window(
    config: Option<&Path>,
    socket: Option<PathBuf>,
    wait: bool,
    w: &WindowArgs,
) -> Result<ExitCode> {
    let path = socket_path(config, socket);
    if wait {
        let deadline = Instant::now() + SOCKET_WAIT;
        while !path.exists() && Instant::now() < deadline {
            tokio::time::sleep(SOCKET_POLL).await;
        }
    }
    let stream = match socket::connect(&path).await {
        Ok(s) => s,
        Err(_) if wait => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).context("is a session running in the agent service?"),
    };
    let (hub, commands) = Hub::new(None);
    let mut first = hub.subscribe().events;
    let mut relay = tokio::spawn(socket::relay(stream, Arc::clone(&hub), commands));
    // The service speaks first: the session, or why this account may not
    // see it (then no window opens).
    tokio::select! {
        _ = first.recv() => {}
        done = &mut relay => {
            done.context("the connection to the agent service failed")??;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let window = open_window(Arc::clone(&hub), w).await?;
    let relayed = relay
        .await
        .context("the connection to the agent service failed")?;
    if hub.ended() {
        tokio::time::sleep(ENDED_LINGER).await;
    }
    drop(window);
    relayed?;
    Ok(ExitCode::SUCCESS)
}

/// The XDG autostart entry: the window comes back at the desktop login
/// after a restart (and exits at once when no session waits).
pub fn autostart_entry(exe: &Path, config: &Path) -> String {
    format!(
        "# Installed by `lifeline agent install-service`.
[Desktop Entry]
Type=Application
Name=Lifeline
Comment=Your remote-support session after a restart
Exec=\"{}\" agent window --wait --config \"{}\"
Terminal=false
NoDisplay=true
X-GNOME-Autostart-enabled=true
",
        exe.display(),
        config.display()
    )
}
