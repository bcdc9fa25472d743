//! The `lifeline` command line: argument parsing and the top-level commands.
//! Each role's work lives in its own crate; this crate wires them to the CLI.

/// `println!` for text that carries anything from the other side (chat,
/// host names, plugin and script output): terminal controls are removed
/// first (see [`lifeline_protocol::terminal_safe`]).
macro_rules! say {
    ($($t:tt)*) => { println!("{}", lifeline_protocol::terminal_safe(&format!($($t)*))) };
}
/// `eprintln!` likewise.
macro_rules! esay {
    ($($t:tt)*) => { eprintln!("{}", lifeline_protocol::terminal_safe(&format!($($t)*))) };
}

pub mod cli;
pub mod commands;
pub mod config_check;
pub mod console;
pub mod demo;
pub mod demo_license;
pub mod desktop_cmd;
pub mod input;
pub mod join_cmd;
pub mod license_cmd;
pub mod plugin_cmd;
pub mod plugin_dev;
pub mod screen_cmd;
pub mod scripts_cmd;
pub mod service_cmd;
pub mod setup_cmd;
pub mod signals;
pub mod stream_cmd;
pub mod window_cmd;

use std::process::ExitCode;

use clap::Parser;

/// Exit code of `lifeline operator ask` when consent was denied.
pub const EXIT_DENIED: u8 = 3;

/// Parses arguments, sets up logging and a runtime, runs the command.
pub fn main_entry() -> ExitCode {
    let args = cli::Cli::parse();
    let default_level = match &args.command {
        cli::Command::Broker(cli::BrokerCmd::Run { .. }) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(commands::run(args.command));
    // A blocking read of the terminal may still be pending: do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
