//! The capability registry: every permission a plugin may hold or the
//! agent may ask for, by name. One list used everywhere: the runtime's gate
//! (each host call maps to one capability), the manifest parser, the
//! consent engine, the policy file, the broker's check of an operator's
//! question, the WIT file and the Lua table (a test compares them).

use std::fmt;

/// A permission a plugin declares in its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Write to the agent's log (always granted).
    Log,
    /// Stream output to the operator (always granted).
    Output,
    /// Post into the session chat.
    ChatSend,
    /// Add a line to the session report.
    ReportWrite,
    /// Show the customer a notice (the agent's window, or its terminal).
    CustomerNotify,
    /// Plugin-private key/value state.
    StateKv,
    /// Read system information.
    SystemInfo,
    /// A scoped temporary folder: create, read and write files in it.
    FsTemp,
    /// Read (and, where the admin allows, replace) files in folders the
    /// agent's admin names in `[plugins.folders]` (logs, a license folder).
    FsFolder,
    /// Spawn a process inside the scoped temporary folder.
    ProcessSpawn,
    /// HTTP requests to the manifest's allowed hosts, through the proxy.
    HttpRequest,
    /// Log the operator in as another user of the computer (PAM, with a
    /// password the operator types); the customer's own input is suspended
    /// meanwhile, and processes take that user's identity.
    AccountLogin,
    /// Restart the computer; the agent keeps a rejoin ticket and rejoins
    /// its session by itself.
    PowerRestart,
    /// Verify a vendor-signed document (a license) against the keys the
    /// agent's admin trusts, and read its fields.
    DocumentVerify,
    /// HTTP(S) to an endpoint the agent's admin names (its address, trust,
    /// proxy and credentials stay in the agent; the plugin sees none).
    HttpEndpoint,
    /// Run a command the agent's admin names (e.g. reload a server).
    CommandAdmin,
    /// Read the admin's settings for this plugin.
    SettingsRead,
    /// Open byte streams to the operator side of the session (and read
    /// what the operator sends back on them).
    SessionStream,
    /// Run as a long-lived plugin: receive the session's events, set timers.
    SessionEvents,
    /// See the computer's screen (an X11 display): changed areas, pixels,
    /// the pointer. While any plugin shares, the customer sees an indicator
    /// naming the operator, with a Stop button that withdraws this consent.
    ScreenCapture,
    /// Inject keyboard and pointer input into the shared display; asked
    /// separately from seeing it, and ends with the sharing.
    InputControl,
    /// Read and replace the text on the clipboard of the shared display;
    /// asked separately from seeing and controlling it, and works only
    /// while the plugin's screen share is open.
    ClipboardText,
    /// Run a batch of library scripts (asked by the agent for the whole
    /// batch with every script's name and hashes; no plugin declares it).
    ScriptRun,
}

/// Every capability, for listings and parsing.
pub const ALL: [Capability; 23] = [
    Capability::Log,
    Capability::Output,
    Capability::ChatSend,
    Capability::ReportWrite,
    Capability::CustomerNotify,
    Capability::StateKv,
    Capability::SystemInfo,
    Capability::FsTemp,
    Capability::FsFolder,
    Capability::ProcessSpawn,
    Capability::HttpRequest,
    Capability::AccountLogin,
    Capability::PowerRestart,
    Capability::DocumentVerify,
    Capability::HttpEndpoint,
    Capability::CommandAdmin,
    Capability::SettingsRead,
    Capability::SessionStream,
    Capability::SessionEvents,
    Capability::ScreenCapture,
    Capability::InputControl,
    Capability::ClipboardText,
    Capability::ScriptRun,
];

impl Capability {
    /// The name used in manifests, consent requests and policies.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Output => "output",
            Capability::ChatSend => "chat.send",
            Capability::ReportWrite => "report.write",
            Capability::CustomerNotify => "customer.notify",
            Capability::StateKv => "state.kv",
            Capability::SystemInfo => "system.info",
            Capability::FsTemp => "fs.temp",
            Capability::FsFolder => "fs.folder",
            Capability::ProcessSpawn => "process.spawn",
            Capability::HttpRequest => "http.request",
            Capability::AccountLogin => "account.login",
            Capability::PowerRestart => "power.restart",
            Capability::DocumentVerify => "document.verify",
            Capability::HttpEndpoint => "http.endpoint",
            Capability::CommandAdmin => "command.admin",
            Capability::SettingsRead => "settings.read",
            Capability::SessionStream => "session.stream",
            Capability::SessionEvents => "session.events",
            Capability::ScreenCapture => "screen.capture",
            Capability::InputControl => "input.control",
            Capability::ClipboardText => "clipboard.text",
            Capability::ScriptRun => "script.run",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        ALL.into_iter().find(|c| c.name() == s)
    }

    /// True when the customer (or policy) must consent before first use in a
    /// session. The others touch nothing outside the plugin and the session.
    pub fn needs_consent(self) -> bool {
        match self {
            Capability::Log
            | Capability::Output
            | Capability::ReportWrite
            // A notice only informs: the customer reads it marked with the
            // plugin's name, and the operator's side and the report see it.
            | Capability::CustomerNotify
            | Capability::StateKv
            // Settings and endpoints, commands and trusted keys are the
            // admin's: the agent's config names each one, and the plugin
            // can choose none of them (no address, no program, no key).
            // A signature check reads only what the plugin already has.
            | Capability::SettingsRead
            | Capability::DocumentVerify
            | Capability::HttpEndpoint
            | Capability::CommandAdmin
            // A stream carries only what the plugin could already read
            // (each source is its own capability); events tell the plugin
            // nothing outside its session.
            | Capability::SessionStream
            | Capability::SessionEvents => false,
            Capability::ChatSend
            | Capability::SystemInfo
            | Capability::FsTemp
            | Capability::FsFolder
            | Capability::ProcessSpawn
            | Capability::HttpRequest
            | Capability::AccountLogin
            | Capability::PowerRestart
            | Capability::ScreenCapture
            | Capability::InputControl
            | Capability::ClipboardText
            | Capability::ScriptRun => true,
        }
    }

    /// True when a plugin manifest may declare it; `script.run` is asked by
    /// the agent itself for a script batch.
    pub fn declarable(self) -> bool {
        !matches!(self, Capability::ScriptRun)
    }

    /// Every name, for error messages: "log, output, …".
    pub fn known_names() -> String {
        ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    }

    /// True when a plugin has it without declaring it.
    pub fn implicit(self) -> bool {
        matches!(self, Capability::Log | Capability::Output)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_consent_names() {
        for c in ALL {
            assert_eq!(Capability::parse(c.name()), Some(c));
            assert!(crate::consent::is_capability_name(c.name()));
        }
        assert_eq!(Capability::parse("screen.view"), None);
        assert_eq!(
            Capability::parse("screen.capture"),
            Some(Capability::ScreenCapture)
        );
        assert!(!Capability::ScriptRun.declarable());
    }
}
