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
    NotifyCustomer,
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
    UserLogin,
    UserLogout,
    UserCurrent,
    PowerRestart,
    PluginSettings,
    VerifyDocument,
    EndpointRequest,
    AdminCommand,
    StreamOpen,
    StreamCredit,
    StreamSend,
    StreamRecv,
    StreamClose,
    TimerSet,
    ScreenOpen,
    ScreenChanges,
    ScreenRead,
    ScreenCursor,
    ScreenClose,
    InputSend,
    ClipboardRead,
    ClipboardWrite,
}

/// Every host call, for listings and the registry test.
pub const ALL_CALLS: [HostCall; 40] = [
    HostCall::Log,
    HostCall::SendOutput,
    HostCall::SendChat,
    HostCall::ReportLine,
    HostCall::NotifyCustomer,
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
    HostCall::UserLogin,
    HostCall::UserLogout,
    HostCall::UserCurrent,
    HostCall::PowerRestart,
    HostCall::PluginSettings,
    HostCall::VerifyDocument,
    HostCall::EndpointRequest,
    HostCall::AdminCommand,
    HostCall::StreamOpen,
    HostCall::StreamCredit,
    HostCall::StreamSend,
    HostCall::StreamRecv,
    HostCall::StreamClose,
    HostCall::TimerSet,
    HostCall::ScreenOpen,
    HostCall::ScreenChanges,
    HostCall::ScreenRead,
    HostCall::ScreenCursor,
    HostCall::ScreenClose,
    HostCall::InputSend,
    HostCall::ClipboardRead,
    HostCall::ClipboardWrite,
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
            HostCall::NotifyCustomer => Capability::CustomerNotify,
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
            HostCall::UserLogin => Capability::AccountLogin,
            HostCall::UserLogout => Capability::AccountLogin,
            HostCall::UserCurrent => Capability::AccountLogin,
            HostCall::PowerRestart => Capability::PowerRestart,
            HostCall::PluginSettings => Capability::SettingsRead,
            HostCall::VerifyDocument => Capability::DocumentVerify,
            HostCall::EndpointRequest => Capability::HttpEndpoint,
            HostCall::AdminCommand => Capability::CommandAdmin,
            HostCall::StreamOpen => Capability::SessionStream,
            HostCall::StreamCredit => Capability::SessionStream,
            HostCall::StreamSend => Capability::SessionStream,
            HostCall::StreamRecv => Capability::SessionStream,
            HostCall::StreamClose => Capability::SessionStream,
            HostCall::TimerSet => Capability::SessionEvents,
            HostCall::ScreenOpen => Capability::ScreenCapture,
            HostCall::ScreenChanges => Capability::ScreenCapture,
            HostCall::ScreenRead => Capability::ScreenCapture,
            HostCall::ScreenCursor => Capability::ScreenCapture,
            HostCall::ScreenClose => Capability::ScreenCapture,
            HostCall::InputSend => Capability::InputControl,
            HostCall::ClipboardRead => Capability::ClipboardText,
            HostCall::ClipboardWrite => Capability::ClipboardText,
        }
    }

    /// True when this call asks the customer before its capability's first
    /// use in a call. Ending a login as another user (which gives the
    /// customer's input back) and asking whether one is active never ask.
    /// Reading a folder the admin named for plugins never asks (the admin
    /// chose what it holds; sending it anywhere takes another capability
    /// that asks); replacing a file in it does.
    pub fn asks_consent(self) -> bool {
        let gives_back_or_looks = match self {
            // Give the customer's access back, or only look: never asked.
            HostCall::UserLogout
            | HostCall::UserCurrent
            | HostCall::FolderList
            | HostCall::FolderRead => true,
            // Only `screen-open` asks: the other screen calls work on an
            // open share only (the host refuses them otherwise), so a
            // long-lived plugin's every frame does not ask again, and a
            // share the customer stopped stays stopped until the operator
            // asks anew.
            HostCall::ScreenChanges
            | HostCall::ScreenRead
            | HostCall::ScreenCursor
            | HostCall::ScreenClose => true,
            // Both clipboard calls ask: either may be the first, and
            // they work on an open share only (like `input-send`).
            HostCall::ScreenOpen
            | HostCall::InputSend
            | HostCall::ClipboardRead
            | HostCall::ClipboardWrite => false,
            HostCall::Log
            | HostCall::SendOutput
            | HostCall::SendChat
            | HostCall::ReportLine
            | HostCall::NotifyCustomer
            | HostCall::KvGet
            | HostCall::KvSet
            | HostCall::KvDelete
            | HostCall::SystemInfo
            | HostCall::TempDir
            | HostCall::TempRenew
            | HostCall::FsRead
            | HostCall::FsWrite
            | HostCall::FolderWrite
            | HostCall::Spawn
            | HostCall::HttpRequest
            | HostCall::UserLogin
            | HostCall::PowerRestart
            | HostCall::PluginSettings
            | HostCall::VerifyDocument
            | HostCall::EndpointRequest
            | HostCall::AdminCommand
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
            HostCall::NotifyCustomer => "notify_customer",
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
            HostCall::UserLogin => "user_login",
            HostCall::UserLogout => "user_logout",
            HostCall::UserCurrent => "user_current",
            HostCall::PowerRestart => "power_restart",
            HostCall::PluginSettings => "plugin_settings",
            HostCall::VerifyDocument => "verify_document",
            HostCall::EndpointRequest => "endpoint_request",
            HostCall::AdminCommand => "admin_command",
            HostCall::StreamOpen => "stream_open",
            HostCall::StreamCredit => "stream_credit",
            HostCall::StreamSend => "stream_send",
            HostCall::StreamRecv => "stream_recv",
            HostCall::StreamClose => "stream_close",
            HostCall::TimerSet => "timer_set",
            HostCall::ScreenOpen => "screen_open",
            HostCall::ScreenChanges => "screen_changes",
            HostCall::ScreenRead => "screen_read",
            HostCall::ScreenCursor => "screen_cursor",
            HostCall::ScreenClose => "screen_close",
            HostCall::InputSend => "input_send",
            HostCall::ClipboardRead => "clipboard_read",
            HostCall::ClipboardWrite => "clipboard_write",
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
        assert!(HostCall::UserLogin.asks_consent());
        assert!(!HostCall::UserLogout.asks_consent());
        assert!(!HostCall::UserCurrent.asks_consent());
        assert!(HostCall::PowerRestart.asks_consent());
        assert!(!HostCall::NotifyCustomer.asks_consent());
        assert!(HostCall::ClipboardRead.asks_consent());
        assert!(HostCall::ClipboardWrite.asks_consent());
        assert_eq!(
            HostCall::ClipboardWrite.capability(),
            Capability::ClipboardText
        );
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
