//! Capabilities: what a plugin may do. Every host call maps to exactly one
//! capability in [`HostCall::capability`], an exhaustive match without a
//! catch-all arm, so a new host call cannot compile without a permission
//! decision.

pub use lifeline_core::capability::{ALL, Capability};

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
    TempRenew,
    FsRead,
    FsWrite,
    FolderList,
    FolderRead,
    FolderWrite,
    Spawn,
    HttpRequest,
    RunAsLogin,
    RunAsLogout,
    RunAsStatus,
    Reboot,
    LicenseAbout,
    LicenseCheck,
    LicenseInstall,
    StreamOpen,
    StreamCredit,
    StreamSend,
    StreamRecv,
    StreamClose,
    TimerSet,
}

/// Every host call, for listings and the registry test.
pub const ALL_CALLS: [HostCall; 30] = [
    HostCall::Log,
    HostCall::SendOutput,
    HostCall::SendChat,
    HostCall::ReportLine,
    HostCall::KvGet,
    HostCall::KvSet,
    HostCall::KvDelete,
    HostCall::SystemInfo,
    HostCall::TempDir,
    HostCall::TempRenew,
    HostCall::FsRead,
    HostCall::FsWrite,
    HostCall::FolderList,
    HostCall::FolderRead,
    HostCall::FolderWrite,
    HostCall::Spawn,
    HostCall::HttpRequest,
    HostCall::RunAsLogin,
    HostCall::RunAsLogout,
    HostCall::RunAsStatus,
    HostCall::Reboot,
    HostCall::LicenseAbout,
    HostCall::LicenseCheck,
    HostCall::LicenseInstall,
    HostCall::StreamOpen,
    HostCall::StreamCredit,
    HostCall::StreamSend,
    HostCall::StreamRecv,
    HostCall::StreamClose,
    HostCall::TimerSet,
];

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
            HostCall::TempRenew => Capability::FsTemp,
            HostCall::FsRead => Capability::FsTemp,
            HostCall::FsWrite => Capability::FsTemp,
            HostCall::FolderList => Capability::FsFolder,
            HostCall::FolderRead => Capability::FsFolder,
            HostCall::FolderWrite => Capability::FsFolder,
            HostCall::Spawn => Capability::ProcessSpawn,
            HostCall::HttpRequest => Capability::HttpRequest,
            HostCall::RunAsLogin => Capability::AccountRunAs,
            HostCall::RunAsLogout => Capability::AccountRunAs,
            HostCall::RunAsStatus => Capability::AccountRunAs,
            HostCall::Reboot => Capability::PowerReboot,
            HostCall::LicenseAbout => Capability::LicenseUpdate,
            HostCall::LicenseCheck => Capability::LicenseUpdate,
            HostCall::LicenseInstall => Capability::LicenseUpdate,
            HostCall::StreamOpen => Capability::SessionStream,
            HostCall::StreamCredit => Capability::SessionStream,
            HostCall::StreamSend => Capability::SessionStream,
            HostCall::StreamRecv => Capability::SessionStream,
            HostCall::StreamClose => Capability::SessionStream,
            HostCall::TimerSet => Capability::SessionEvents,
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
            | HostCall::TempRenew
            | HostCall::FsRead
            | HostCall::FsWrite
            | HostCall::FolderList
            | HostCall::FolderRead
            | HostCall::FolderWrite
            | HostCall::Spawn
            | HostCall::HttpRequest
            | HostCall::RunAsLogin
            | HostCall::Reboot
            | HostCall::LicenseInstall
            | HostCall::StreamOpen
            | HostCall::StreamCredit
            | HostCall::StreamSend
            | HostCall::StreamRecv
            | HostCall::StreamClose
            | HostCall::TimerSet => false,
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
            HostCall::TempRenew => "temp_renew",
            HostCall::FsRead => "fs_read",
            HostCall::FsWrite => "fs_write",
            HostCall::FolderList => "folder_list",
            HostCall::FolderRead => "folder_read",
            HostCall::FolderWrite => "folder_write",
            HostCall::Spawn => "spawn",
            HostCall::HttpRequest => "http_request",
            HostCall::RunAsLogin => "run_as_login",
            HostCall::RunAsLogout => "run_as_logout",
            HostCall::RunAsStatus => "run_as_status",
            HostCall::Reboot => "reboot",
            HostCall::LicenseAbout => "license_about",
            HostCall::LicenseCheck => "license_check",
            HostCall::LicenseInstall => "license_install",
            HostCall::StreamOpen => "stream_open",
            HostCall::StreamCredit => "stream_credit",
            HostCall::StreamSend => "stream_send",
            HostCall::StreamRecv => "stream_recv",
            HostCall::StreamClose => "stream_close",
            HostCall::TimerSet => "timer_set",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_consent_names() {
        assert!(!Capability::Log.needs_consent());
        assert!(Capability::ProcessSpawn.needs_consent());
        assert!(HostCall::RunAsLogin.asks_consent());
        assert!(!HostCall::RunAsLogout.asks_consent());
        assert!(HostCall::Reboot.asks_consent());
    }

    /// The WIT file's host interface and the registry agree: every WIT
    /// function is a host call and every host call is in the WIT file, and
    /// every capability is reached by a host call (but `script.run`, which
    /// the agent asks for a script batch).
    #[test]
    fn wit_host_calls_and_registry_agree() {
        let wit = include_str!("../../../sdk/wit/lifeline-plugin.wit");
        let host = wit
            .split("interface host {")
            .nth(1)
            .and_then(|rest| rest.split("\n}").next())
            .expect("the WIT file has an interface host");
        let mut in_wit: Vec<String> = host
            .lines()
            .filter_map(|l| l.trim().split_once(": func"))
            .map(|(name, _)| name.trim().to_string())
            .collect();
        in_wit.sort();
        let mut in_code: Vec<String> = ALL_CALLS
            .iter()
            .map(|c| c.name().replace('_', "-"))
            .collect();
        in_code.sort();
        assert_eq!(in_wit, in_code, "sdk/wit and HostCall disagree");
        let mut reached: Vec<Capability> = ALL_CALLS.iter().map(|c| c.capability()).collect();
        reached.push(Capability::ScriptRun);
        for cap in ALL {
            assert!(reached.contains(&cap), "{cap} is reached by no host call");
        }
    }
}
