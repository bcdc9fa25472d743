//! Capabilities: what a plugin may do. Every host call maps to exactly one
//! capability in [`HostCall::capability`], an exhaustive match without a
//! catch-all arm, so a new host call cannot compile without a permission
//! decision.

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
    /// Plugin-private key/value state.
    StateKv,
    /// Read system information.
    SystemInfo,
    /// A scoped temporary folder: create, read and write files in it.
    FsTemp,
    /// Spawn a process inside the scoped temporary folder.
    ProcessSpawn,
    /// HTTP requests to the manifest's allowed hosts, through the proxy.
    HttpRequest,
    /// Check the back office for an updated license and install it.
    LicenseUpdate,
}

/// Every capability, for listings and parsing.
pub const ALL: [Capability; 10] = [
    Capability::Log,
    Capability::Output,
    Capability::ChatSend,
    Capability::ReportWrite,
    Capability::StateKv,
    Capability::SystemInfo,
    Capability::FsTemp,
    Capability::ProcessSpawn,
    Capability::HttpRequest,
    Capability::LicenseUpdate,
];

impl Capability {
    /// The name used in manifests, consent requests and policies.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Output => "output",
            Capability::ChatSend => "chat.send",
            Capability::ReportWrite => "report.write",
            Capability::StateKv => "state.kv",
            Capability::SystemInfo => "system.info",
            Capability::FsTemp => "fs.temp",
            Capability::ProcessSpawn => "process.spawn",
            Capability::HttpRequest => "http.request",
            Capability::LicenseUpdate => "license.update",
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
            | Capability::StateKv => false,
            Capability::ChatSend
            | Capability::SystemInfo
            | Capability::FsTemp
            | Capability::ProcessSpawn
            | Capability::HttpRequest
            | Capability::LicenseUpdate => true,
        }
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

/// Every function of the host API (`sdk/wit/lifeline-plugin.wit`), for both
/// WASM and Lua.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCall {
    Log,
    SendOutput,
    SendChat,
    ReportLine,
    KvGet,
    KvSet,
    KvDelete,
    SystemInfo,
    TempDir,
    FsRead,
    FsWrite,
    Spawn,
    HttpRequest,
    LicenseAbout,
    LicenseCheck,
    LicenseInstall,
}

impl HostCall {
    /// The one capability this call needs. No catch-all arm: adding a call
    /// forces a decision here.
    pub fn capability(self) -> Capability {
        match self {
            HostCall::Log => Capability::Log,
            HostCall::SendOutput => Capability::Output,
            HostCall::SendChat => Capability::ChatSend,
            HostCall::ReportLine => Capability::ReportWrite,
            HostCall::KvGet => Capability::StateKv,
            HostCall::KvSet => Capability::StateKv,
            HostCall::KvDelete => Capability::StateKv,
            HostCall::SystemInfo => Capability::SystemInfo,
            HostCall::TempDir => Capability::FsTemp,
            HostCall::FsRead => Capability::FsTemp,
            HostCall::FsWrite => Capability::FsTemp,
            HostCall::Spawn => Capability::ProcessSpawn,
            HostCall::HttpRequest => Capability::HttpRequest,
            HostCall::LicenseAbout => Capability::LicenseUpdate,
            HostCall::LicenseCheck => Capability::LicenseUpdate,
            HostCall::LicenseInstall => Capability::LicenseUpdate,
        }
    }

    /// The function's name in the WIT interface and in the Lua table.
    pub fn name(self) -> &'static str {
        match self {
            HostCall::Log => "log",
            HostCall::SendOutput => "send_output",
            HostCall::SendChat => "send_chat",
            HostCall::ReportLine => "report_line",
            HostCall::KvGet => "kv_get",
            HostCall::KvSet => "kv_set",
            HostCall::KvDelete => "kv_delete",
            HostCall::SystemInfo => "system_info",
            HostCall::TempDir => "temp_dir",
            HostCall::FsRead => "fs_read",
            HostCall::FsWrite => "fs_write",
            HostCall::Spawn => "spawn",
            HostCall::HttpRequest => "http_request",
            HostCall::LicenseAbout => "license_about",
            HostCall::LicenseCheck => "license_check",
            HostCall::LicenseInstall => "license_install",
        }
    }

    /// True when the call asks for consent before the capability's first
    /// use. Reading the installed license and asking the back office change
    /// nothing on the machine; installing does.
    pub fn asks_consent(self) -> bool {
        match self {
            HostCall::LicenseAbout | HostCall::LicenseCheck => false,
            other => other.capability().needs_consent(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_consent_names() {
        for c in ALL {
            assert_eq!(Capability::parse(c.name()), Some(c));
            assert!(lifeline_core::consent::is_capability_name(c.name()));
        }
        assert!(!Capability::Log.needs_consent());
        assert!(Capability::ProcessSpawn.needs_consent());
    }
}
