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
    /// Log the operator in as another user (PAM); the customer's own access
    /// is suspended meanwhile.
    AccountRunAs,
    /// Restart the customer's computer; the agent rejoins by itself.
    PowerReboot,
    /// Check the back office for an updated license and install it.
    LicenseUpdate,
}

/// Every capability, for listings and parsing.
pub const ALL: [Capability; 12] = [
    Capability::Log,
    Capability::Output,
    Capability::ChatSend,
    Capability::ReportWrite,
    Capability::StateKv,
    Capability::SystemInfo,
    Capability::FsTemp,
    Capability::ProcessSpawn,
    Capability::HttpRequest,
    Capability::AccountRunAs,
    Capability::PowerReboot,
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
            Capability::AccountRunAs => "account.run-as",
            Capability::PowerReboot => "power.reboot",
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
            | Capability::AccountRunAs
            | Capability::PowerReboot
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
    RunAsLogin,
    RunAsLogout,
    RunAsStatus,
    Reboot,
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
            HostCall::RunAsLogin => Capability::AccountRunAs,
            HostCall::RunAsLogout => Capability::AccountRunAs,
            HostCall::RunAsStatus => Capability::AccountRunAs,
            HostCall::Reboot => Capability::PowerReboot,
            HostCall::LicenseAbout => Capability::LicenseUpdate,
            HostCall::LicenseCheck => Capability::LicenseUpdate,
            HostCall::LicenseInstall => Capability::LicenseUpdate,
        }
    }

    /// True when this call asks the customer before its capability's first
    /// use in a call. Ending a run-as login (which gives the customer's
    /// access back) and asking whether one is active never ask.
    pub fn asks_consent(self) -> bool {
        let gives_back_or_looks = match self {
            // Give the customer's access back, or only look: never asked.
            HostCall::RunAsLogout
            | HostCall::RunAsStatus
            | HostCall::LicenseAbout
            | HostCall::LicenseCheck => true,
            HostCall::Log
            | HostCall::SendOutput
            | HostCall::SendChat
            | HostCall::ReportLine
            | HostCall::KvGet
            | HostCall::KvSet
            | HostCall::KvDelete
            | HostCall::SystemInfo
            | HostCall::TempDir
            | HostCall::FsRead
            | HostCall::FsWrite
            | HostCall::Spawn
            | HostCall::HttpRequest
            | HostCall::RunAsLogin
            | HostCall::Reboot
            | HostCall::LicenseInstall => false,
        };
        self.capability().needs_consent() && !gives_back_or_looks
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
            HostCall::RunAsLogin => "run_as_login",
            HostCall::RunAsLogout => "run_as_logout",
            HostCall::RunAsStatus => "run_as_status",
            HostCall::Reboot => "reboot",
            HostCall::LicenseAbout => "license_about",
            HostCall::LicenseCheck => "license_check",
            HostCall::LicenseInstall => "license_install",
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
        assert!(HostCall::RunAsLogin.asks_consent());
        assert!(!HostCall::RunAsLogout.asks_consent());
        assert!(HostCall::Reboot.asks_consent());
    }
}
