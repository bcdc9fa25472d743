//! Command-line definitions (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "lifeline",
    version,
    about = "Remote support under the customer's consent"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run broker, agent and operator on loopback and walk one session end to end.
    Demo {
        /// Keep the demo's data folder (the report stays either way).
        #[arg(long)]
        keep: bool,
    },
    /// The organisation's server.
    #[command(subcommand)]
    Broker(BrokerCmd),
    /// The customer's side.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// The technician's client.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The agent's audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Plugins: writing and testing them (new, test, watch) and bundles
    /// (keys, packing, signing, verifying, installing).
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Licenses: show (About), vendor keys, signing, update eligibility.
    #[command(subcommand)]
    License(crate::license_cmd::LicenseCmd),
}

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// Write a working plugin folder PARENT/NAME: plugin.toml, the code, a
    /// test file (plugin.test.toml) and a README.
    New {
        /// rust (a WASM component) or lua.
        #[arg(long, value_enum)]
        lang: crate::plugin_dev::Lang,
        /// The plugin's id (lower-case letters, digits, '-' and '_').
        name: String,
        /// The folder to create NAME in.
        #[arg(long = "dir", value_name = "PARENT", default_value = ".")]
        parent: PathBuf,
    },
    /// Run a plugin locally against a fake session (no broker, no agent):
    /// one COMMAND, or the cases of DIR/plugin.test.toml. A Rust plugin is
    /// built for wasm32-wasip2 first.
    Test(crate::plugin_dev::TestArgs),
    /// Run `plugin test` again on every save in DIR, until Ctrl-C.
    Watch(crate::plugin_dev::TestArgs),
    #[command(flatten)]
    Bundle(BundleCmd),
}

/// Plugin bundles: keys, packing, signing, verifying, installing.
#[derive(Subcommand, Debug)]
pub enum BundleCmd {
    /// Create a publisher key pair: the secret goes to FILE (mode 0600), the
    /// public key (for agents' trusted_keys) is printed.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Pack a plugin folder into a bundle (unsigned).
    Pack {
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a bundle in place with a publisher's secret key.
    Sign {
        bundle: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
    /// Verify a bundle against publisher keys (`ed25519:…`) or an agent config's trusted keys.
    Verify {
        bundle: PathBuf,
        #[arg(long = "trusted-key")]
        trusted: Vec<String>,
        /// Use the trusted keys of this agent configuration.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Verify and install a bundle into the agent's first plugin folder.
    Install {
        bundle: PathBuf,
        /// The agent configuration (its [plugins] section).
        #[arg(short, long, env = "LIFELINE_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// Role configuration file (TOML).
    #[arg(short, long, env = "LIFELINE_CONFIG")]
    pub config: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum BrokerCmd {
    /// Serve agents and operators.
    Run(ConfigArg),
    /// Create an operator account (password read from stdin or prompted).
    AddOperator {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        title: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an operator's password.
    ResetPassword {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List operator accounts.
    ListOperators(ConfigArg),
    /// Print the broker certificate's SHA-256 fingerprint (creating it on first use).
    Fingerprint(ConfigArg),
    /// The license back office: publish licenses, hash verification codes.
    #[command(subcommand)]
    License(crate::license_cmd::BrokerLicenseCmd),
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Join a session: with the join file from the invitation's page (no
    /// configuration needed), or with a 6-digit connection ID or an
    /// invitation link (these need the agent's configuration).
    Join {
        /// The agent configuration (default: ~/.config/lifeline/agent.toml
        /// when it exists). With a join file, the file's broker and pin
        /// replace its [connection].
        #[arg(short, long, env = "LIFELINE_CONFIG")]
        config: Option<PathBuf>,
        /// The join file (`*.lifeline`) downloaded from the invitation's page.
        #[arg(long, value_name = "FILE", conflicts_with = "code_or_link")]
        file: Option<PathBuf>,
        /// A join file, a connection ID (e.g. 123456) or a link
        /// (https://…/j/… or https://…/s/…).
        #[arg(required_unless_present = "file")]
        code_or_link: Option<String>,
        #[command(flatten)]
        ui: crate::window_cmd::UiArgs,
    },
    /// The customer's window on the agent service's session after a
    /// restart (the autostart entry of `install-service` runs it at the
    /// desktop login).
    Window {
        /// The agent configuration (for `[customer] socket`).
        #[arg(short, long, env = "LIFELINE_CONFIG")]
        config: Option<PathBuf>,
        /// The service's customer socket (default: `[customer] socket`).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Wait for the service's socket; without a session, exit quietly.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        window: crate::window_cmd::WindowArgs,
    },
    /// Trust a broker once and write the agent's configuration: shows the
    /// broker certificate's fingerprint and asks to confirm it.
    Setup(SetupArgs),
    /// "Allow remote assistance" on this computer: `off` refuses every
    /// join until `on` (the administrator's
    /// `[agent] allow_remote_assistance = false` wins over `on`).
    AllowRemoteAssistance {
        /// The agent configuration (default: ~/.config/lifeline/agent.toml
        /// when it exists; else the default data folder).
        #[arg(short, long, env = "LIFELINE_CONFIG")]
        config: Option<PathBuf>,
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Register join files with the desktop: opening a `.lifeline` file
    /// runs `lifeline agent join FILE`.
    InstallDesktop {
        /// The user's data folder (default: $XDG_DATA_HOME or ~/.local/share).
        #[arg(long, value_name = "DIR")]
        data_home: Option<PathBuf>,
        /// Only write the files; do not update the desktop's databases.
        #[arg(long)]
        no_update: bool,
    },
    /// Run as the system service: after a reboot, rejoin the session a
    /// saved rejoin ticket is bound to (nothing to do without one).
    Service {
        #[command(flatten)]
        cfg: ConfigArg,
    },
    /// Internal: started by the agent while the operator controls the
    /// screen; releases what the operator held on `display` when the
    /// agent stops, even killed (see `agent/screen/guard.rs`).
    #[command(hide = true)]
    InputGuard {
        #[arg(long)]
        display: String,
    },
    /// Install the agent as a systemd service (enabled at boot, restarted on
    /// failure, running as the configured account).
    InstallService {
        #[command(flatten)]
        cfg: ConfigArg,
        /// Account the service runs as (default: `[service] account`).
        #[arg(long)]
        account: Option<String>,
        /// Folder for the unit file (default: `[service] unit_dir`).
        #[arg(long)]
        unit_dir: Option<std::path::PathBuf>,
        /// Folder for the window's autostart entry (default: `[customer]
        /// autostart_dir`).
        #[arg(long, value_name = "DIR")]
        autostart_dir: Option<std::path::PathBuf>,
        /// Only write the unit file; do not run systemctl.
        #[arg(long)]
        no_systemctl: bool,
    },
    /// Stop, disable and remove the agent's systemd service.
    UninstallService {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        unit_dir: Option<std::path::PathBuf>,
        /// Folder of the window's autostart entry (default: `[customer]
        /// autostart_dir`).
        #[arg(long, value_name = "DIR")]
        autostart_dir: Option<std::path::PathBuf>,
        #[arg(long)]
        no_systemctl: bool,
    },
    /// "Allow remote assistance" and who set it, broker, fingerprint, data
    /// folder, a waiting rejoin ticket, the service; with a configuration
    /// also the remote service (back office connection, last license
    /// check, installed license).
    Status {
        /// The agent configuration (default: ~/.config/lifeline/agent.toml
        /// when it exists).
        #[arg(short, long, env = "LIFELINE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check the back office for an updated license now (and install it if
    /// the policy allows "fs.folder"); --watch: every check interval.
    LicenseCheck {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        watch: bool,
    },
}

/// A switch's new state.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// `lifeline agent setup` / `lifeline operator setup`.
#[derive(Args, Debug)]
pub struct SetupArgs {
    /// The broker's session listener.
    #[arg(long, value_name = "HOST:PORT")]
    pub broker: String,
    /// The TLS server name (default: the broker's host).
    #[arg(long)]
    pub server_name: Option<String>,
    /// The configuration to write, or to update: only [connection]'s
    /// broker, server name and fingerprint change (default:
    /// ~/.config/lifeline/ROLE.toml).
    #[arg(short, long, env = "LIFELINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// For scripts: trust the broker without asking if, and only if, it
    /// presents exactly this certificate fingerprint.
    #[arg(long, value_name = "SHA256:…")]
    pub yes_fingerprint: Option<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum OperatorCmd {
    /// Trust a broker once and write the operator client's configuration:
    /// shows the broker certificate's fingerprint and asks to confirm it.
    Setup(SetupArgs),
    /// Log in and save a login token (password from stdin or prompted).
    Login {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// End the saved login.
    Logout(ConfigArg),
    /// Show or change the profile (name, e-mail, title).
    Profile {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        title: Option<String>,
    },
    /// Change the password (old and new read from stdin lines or prompted).
    Passwd {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List my sessions (or all).
    Sessions {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Create an invitation: prints the link, short link and connection ID.
    Invite {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        ticket: String,
        /// The customer's name.
        #[arg(long = "name")]
        end_user: String,
        /// Lifetime in seconds (default: the broker's).
        #[arg(long)]
        ttl: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Wait until the customer has joined (the session is ready).
    Wait {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Interactive console on a ready session: chat, /ask, /end, /report, /quit.
    Connect {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
    },
    /// Send one chat message.
    Chat {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        message: String,
    },
    /// Ask the customer's consent for an action; exit 3 when denied.
    Ask {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        #[arg(long)]
        plugin: String,
        /// The capability, e.g. system.info.
        #[arg(long)]
        action: String,
        #[arg(long)]
        detail: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// List the plugins of a session's agent.
    Plugins {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a plugin command in a session; output streams as it comes.
    Run {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        plugin: String,
        command: String,
        args: Vec<String>,
        /// Seconds to wait for the result (consent prompts included).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// When the plugin asks for a password (run-as login), read it from
        /// the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Save every stream the command opens into this folder, one file
        /// per stream (a latest-wins stream keeps its newest frame).
        #[arg(long, value_name = "DIR")]
        streams: Option<std::path::PathBuf>,
    },
    /// Log in as another user on the customer's computer (the run-as
    /// plugin): the customer consents, then you type the account's password.
    LoginAs {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        user: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// End the login as another user; the customer's access comes back.
    LogoutAs {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
    },
    /// Restart the customer's computer (the reboot plugin); the agent
    /// rejoins the session by itself when it is back.
    Reboot {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        /// Shown to the customer and in the report.
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Show the customer's system information (the sysinfo plugin), one
    /// category or all; run again to refresh.
    Sysinfo {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        /// os, cpu, memory, disks, network, processes, users, software, or all.
        #[arg(long, default_value = "all")]
        category: String,
        /// Only lines containing this text.
        #[arg(long)]
        filter: Option<String>,
        /// Also save all categories to this text file.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Share the customer's screen (the screen plugin; the customer
    /// consents): save a snapshot as PNG, or record the screen stream.
    Screen(ScreenArgs),
    /// Replay a screen recording (from `operator screen --record`) into
    /// PNG files DIR/frame-000001.png, …: the picture after the first
    /// update and after every Nth update from there.
    ScreenExport {
        /// The recording.
        file: PathBuf,
        /// The folder for the PNG files (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write the picture after every Nth update (1: after each).
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u64).range(1..))]
        every: u64,
        /// Draw the pointer into the pictures.
        #[arg(long)]
        cursor: bool,
    },
    /// The script library, and running scripts in a session.
    #[command(subcommand)]
    Scripts(ScriptsCmd),
    /// End a session.
    End {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Print or save a session report.
    Report {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Quality of a screen share.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScreenQuality {
    /// Lossless for text and windows, JPEG for photo-like areas when the
    /// link is slow.
    Auto,
    /// Every area lossless.
    Lossless,
}

/// `lifeline operator screen`: what to share and what to do with it.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("output").required(true).args(["snapshot", "record"])))]
pub struct ScreenArgs {
    #[command(flatten)]
    pub cfg: ConfigArg,
    /// The session (see `operator sessions`).
    pub session: String,
    /// The monitor to share: `all` (the whole display) or a monitor's
    /// index (0, 1, …).
    #[arg(long, value_name = "all|N", default_value = "all",
          value_parser = lifeline_operator::screen::parse_monitor)]
    pub monitor: lifeline_operator::screen::MonitorChoice,
    /// The picture's quality.
    #[arg(long, value_enum, default_value_t = ScreenQuality::Auto)]
    pub quality: ScreenQuality,
    /// Save the first complete picture to this PNG file, then stop sharing.
    #[arg(long, value_name = "FILE.png")]
    pub snapshot: Option<PathBuf>,
    /// Draw the pointer into the snapshot.
    #[arg(long, requires = "snapshot")]
    pub cursor: bool,
    /// Record every frame of the screen stream into FILE until the stream
    /// closes, Ctrl-C, or --seconds (replay it with `screen-export`).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Stop recording after N seconds.
    #[arg(long, value_name = "N", requires = "record")]
    pub seconds: Option<u64>,
    /// Seconds to wait for sharing to start (the customer's consent
    /// included).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Validate any role's configuration file.
    Check { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check that no entry was edited, removed or reordered.
    Verify { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum ScriptsCmd {
    /// Add a script to the library (yours until you publish it).
    Add {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        name: String,
        /// One of the site's categories (`scripts categories`).
        #[arg(long)]
        category: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The execution file (at most 1 MB).
        #[arg(long)]
        exec: PathBuf,
        /// An input file the execution file reads (at most 1 MB).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Change one of your scripts.
    Edit {
        #[command(flatten)]
        cfg: ConfigArg,
        name: String,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        exec: Option<PathBuf>,
        #[arg(long)]
        input: Option<PathBuf>,
        #[arg(long)]
        remove_input: bool,
    },
    /// Delete one of your scripts.
    Delete {
        #[command(flatten)]
        cfg: ConfigArg,
        name: String,
    },
    /// Share one of your scripts with every operator.
    Publish {
        #[command(flatten)]
        cfg: ConfigArg,
        name: String,
    },
    /// Stop sharing one of your scripts.
    Unpublish {
        #[command(flatten)]
        cfg: ConfigArg,
        name: String,
    },
    /// List your scripts and the shared ones.
    List {
        #[command(flatten)]
        cfg: ConfigArg,
        /// name, category, owner, published or updated.
        #[arg(long, default_value = "name")]
        sort: String,
        #[arg(long)]
        desc: bool,
        #[arg(long)]
        json: bool,
    },
    /// The site's script categories.
    Categories(ConfigArg),
    /// Run scripts, in the order given, on the customer's machine.
    Run {
        #[command(flatten)]
        cfg: ConfigArg,
        session: String,
        #[arg(required = true)]
        names: Vec<String>,
        /// Go on with the next script when one fails (default: stop).
        #[arg(long = "continue")]
        keep_going: bool,
        /// Seconds each script may run.
        #[arg(long)]
        timeout: Option<u64>,
    },
}
