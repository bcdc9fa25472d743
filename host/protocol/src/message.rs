//! Control messages exchanged as JSON inside [`crate::Frame::Control`].
//!
//! Connection flow:
//! 1. the client sends [`Message::Hello`]; the broker answers
//!    [`Message::Welcome`] or [`Message::Error`] and closes;
//! 2. an operator client sends [`Message::Request`]s and gets one
//!    [`Message::Reply`] per request id; an agent sends [`Message::Join`] and
//!    gets [`Message::Joined`] or an error;
//! 3. once a session has both sides, [`Message::Session`] messages are relayed
//!    between them by the broker, which records each one in the session report.

use serde::{Deserialize, Serialize};

use crate::types::{
    ConsentDecision, ErrorCode, FileUpload, InvitationInfo, JoinCredential, OperatorProfile, Party,
    PluginSummary, ReportEvent, ScriptInfo, ScriptMeta, Secret, SessionInfo, SessionState,
    SessionSummary,
};

/// Name carried in every `Hello` so a stray client of another protocol is
/// recognised at once.
pub const PROTOCOL_NAME: &str = "lifeline";

/// Version of this wire protocol. A broker refuses a client whose version it
/// does not speak, naming both versions.
pub const PROTOCOL_VERSION: u16 = 1;

/// Which role a connecting client plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientRole {
    Agent,
    Operator,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// First message of every client.
    Hello {
        protocol: String,
        version: u16,
        role: ClientRole,
        software: String,
    },
    /// The broker's answer to an accepted `Hello`.
    Welcome {
        version: u16,
        broker: String,
    },
    /// Liveness probe; the peer answers `Pong` with the same nonce.
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// A connection-level error; the sender closes the connection after it
    /// when the error is fatal.
    Error {
        code: ErrorCode,
        message: String,
    },
    /// Operator request; answered by one `Reply` with the same id.
    Request {
        id: u64,
        body: Request,
    },
    Reply {
        id: u64,
        body: ReplyBody,
    },
    /// Agent: join a session by connection ID or link.
    Join {
        credential: JoinCredential,
        /// Host name of the customer's computer, shown to the operator.
        host: String,
    },
    /// Broker → agent: the session the agent has joined, and who helps.
    Joined {
        session: SessionInfo,
        operator: OperatorProfile,
    },
    /// Traffic within a session, relayed and recorded by the broker.
    Session {
        session_id: String,
        msg: SessionMessage,
    },
    /// Agent → broker: a session message with the agent's number for it
    /// (1, 2, …, continuing across rejoins). The broker handles it as
    /// `Session` and records the number with the report event, so after a
    /// broker restart the agent sends again exactly what the broker had not
    /// recorded (`Rejoined::received`).
    Sequenced {
        session_id: String,
        msg: SessionMessage,
        seq: u64,
    },
    /// Agent → broker, before a consented reboot: issue a single-use rejoin
    /// ticket bound to this session. From the reply on, the session waits
    /// for the agent to rejoin (`Rebooting`) instead of ending when the
    /// connection drops.
    RejoinTicketRequest {
        /// What the customer was told, for the operator and the report.
        detail: String,
    },
    /// Broker → agent: the ticket (the broker keeps only its hash) and when
    /// it expires (Unix milliseconds).
    RejoinTicket {
        ticket: Secret,
        expires_at: i64,
    },
    /// Agent → broker: the power backend failed; the machine is not
    /// restarting after all and the session goes on.
    RebootCancelled {
        reason: String,
    },
    /// Agent, after a restart: rejoin the session the ticket is bound to.
    Rejoin {
        ticket: Secret,
        host: String,
    },
    /// Broker → agent, right after `Joined` or `Rejoined`: the credential
    /// with which this agent resumes the session after the broker
    /// restarted. The broker keeps only its hash; it is single use, and a
    /// new one follows every resume.
    ResumeCredential {
        credential: Secret,
    },
    /// Agent, after its connection to the broker was lost mid-session:
    /// resume the session the credential is bound to. Answered by
    /// `Rejoined` and a fresh `ResumeCredential`, or by an error.
    Resume {
        credential: Secret,
        host: String,
    },
    /// Broker → agent: back in the session (after a rejoin or a resume).
    Rejoined {
        session: SessionInfo,
        operator: OperatorProfile,
        /// True when the operator is attached right now.
        operator_present: bool,
        /// The highest `seq` of the agent's messages the broker has
        /// recorded for this session: a resumed agent sends again what came
        /// after it, a rejoined one numbers on from it.
        #[serde(default)]
        received: u64,
    },
}

/// Messages inside a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionMessage {
    /// A chat line; the broker fills in `from` from the connection's role.
    Chat { from: Party, text: String },
    /// Operator → customer: ask consent for a privileged action.
    ConsentRequest {
        request_id: u64,
        operator: String,
        plugin: String,
        action: String,
        detail: String,
    },
    /// Agent → operator: the customer's (or policy's) answer.
    ConsentAnswer {
        request_id: u64,
        decision: ConsentDecision,
        /// Who decided: "customer", "policy", or "timeout".
        decided_by: String,
        /// Hash of the agent's audit-log entry recording this decision.
        audit_hash: String,
    },
    /// Either side ends the session.
    End { by: Party, reason: String },
    /// Operator → agent: which plugins does the agent have?
    ListPlugins { request_id: u64 },
    /// Agent → operator: the answer to `ListPlugins`.
    Plugins {
        request_id: u64,
        plugins: Vec<PluginSummary>,
    },
    /// Operator → agent: run a plugin command.
    RunPlugin {
        call_id: u64,
        plugin: String,
        command: String,
        args: Vec<String>,
    },
    /// Agent → operator: a plugin's output while it runs. `stream` is
    /// "output", "chat" or "report".
    PluginOutput {
        call_id: u64,
        plugin: String,
        stream: String,
        text: String,
    },
    /// Agent → operator: the call ended; `ok` false means `text` says why.
    PluginDone {
        call_id: u64,
        plugin: String,
        ok: bool,
        text: String,
    },
    /// Agent → operator: a consent decision taken for a plugin's capability.
    ConsentDecided {
        plugin: String,
        action: String,
        decision: ConsentDecision,
        decided_by: String,
        audit_hash: String,
    },
    /// Agent → operator: plugin housekeeping (reloaded, reload failed).
    PluginNotice { text: String },
    /// Agent → operator: a plugin opened a stream (see [`crate::stream`]);
    /// its frames flow once an operator client grants credit.
    StreamOpened {
        stream: u32,
        plugin: String,
        name: String,
        content_type: String,
        latest_wins: bool,
    },
    /// Agent → operator: the stream ended, with what went through.
    StreamClosed {
        stream: u32,
        plugin: String,
        name: String,
        frames: u64,
        bytes: u64,
        dropped: u64,
        reason: String,
    },
    /// Broker → agent: run these scripts in this order (files follow in
    /// `ScriptFiles`, one message per script).
    ScriptBatch {
        batch_id: u64,
        operator: String,
        scripts: Vec<ScriptMeta>,
        stop_on_failure: bool,
        timeout_secs: u64,
    },
    /// Broker → agent: the files of script `index` of a batch (base64).
    ScriptFiles {
        batch_id: u64,
        index: usize,
        exec_b64: String,
        input_b64: Option<String>,
    },
    /// Agent → operator: a line a running script wrote.
    ScriptOutput {
        batch_id: u64,
        script: String,
        stream: String,
        line: String,
    },
    /// Agent → operator: one script finished.
    ScriptDone {
        batch_id: u64,
        script: String,
        exit_code: Option<i32>,
        duration_ms: u64,
        timed_out: bool,
        error: Option<String>,
    },
    /// Agent → operator: the batch is over.
    BatchDone {
        batch_id: u64,
        ok: bool,
        summary: String,
    },
    /// Broker → both: the session changed state.
    State { state: SessionState, detail: String },
    /// Agent → operator: plugin call `call_id` needs the password of `user`
    /// (asked only after the customer consented).
    CredentialRequest {
        call_id: u64,
        request_id: u64,
        user: String,
        prompt: String,
    },
    /// Operator → agent: the answer to a `CredentialRequest`; `None`
    /// declines. The broker relays it but records only that it was sent.
    CredentialReply {
        request_id: u64,
        secret: Option<Secret>,
    },
    /// Agent → broker and operator: the customer's own access is suspended
    /// while the operator works as `user` (run-as login), or restored.
    Access {
        suspended: bool,
        user: String,
        detail: String,
    },
    /// Operator endpoint → agent: start an end-to-end channel
    /// ([`crate::e2e`]). `noise`: the handshake's first message, base64.
    /// The broker fills in `operator` with the logged-in operator's name,
    /// which the agent shows beside the channel's code.
    E2eHello {
        endpoint: u64,
        #[serde(default)]
        operator: String,
        noise: String,
    },
    /// Agent → operator endpoints: the handshake's answer for `endpoint`
    /// (every other endpoint ignores it).
    E2eReply { endpoint: u64, noise: String },
    /// Either way: one session message sealed on the channel of
    /// `endpoint` (its JSON, then `lifeline_e2e` sealing), base64. The
    /// broker relays it without being able to read or alter it.
    Sealed { endpoint: u64, data: String },
    /// Agent → operator endpoint: the channel of `endpoint` is closed
    /// (a message failed to open, or the agent holds too many); the
    /// endpoint starts a new handshake. Broker → agent: the operator
    /// connection that said hello as `endpoint` left; the agent forgets
    /// the channel.
    E2eClosed { endpoint: u64, reason: String },
    /// Agent → broker: one report event for session content the broker
    /// relayed sealed (the customer's side keeps the report: see
    /// docs/security.md, "End-to-end encryption").
    Record {
        event: String,
        party: Party,
        text: String,
    },
}

/// An operator endpoint's end-to-end hello carried by its `Attach`
/// request (the fields of [`SessionMessage::E2eHello`] the endpoint
/// fills in; the broker adds the operator's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct E2eOffer {
    pub endpoint: u64,
    pub noise: String,
}

/// Operator requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Login {
        username: String,
        password: String,
    },
    /// Authenticate this connection with a token from an earlier `Login`.
    Resume {
        token: String,
    },
    Logout,
    ChangePassword {
        old: String,
        new: String,
    },
    Profile,
    UpdateProfile {
        name: Option<String>,
        email: Option<String>,
        title: Option<String>,
    },
    /// One page of the session list, newest first. `after` is the `next`
    /// cursor of the previous page (absent for the first page).
    ListSessions {
        all: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    CreateInvitation {
        ticket: String,
        end_user: String,
        /// Lifetime in seconds; the broker's default when absent.
        ttl_secs: Option<u64>,
    },
    /// An invitation of the operator's that is still open (not used, not
    /// expired), again in every form: to send it once more (the web
    /// console's e-mail). Answered with `Invitation`.
    Invitation {
        session_id: String,
    },
    /// Connect to a ready session: from now on its traffic reaches this
    /// connection. `e2e_hello`: this endpoint's end-to-end hello, which the
    /// broker relays to the agent as an `E2eHello` right after attaching
    /// (one round trip fewer than sending it after the reply); the reply
    /// says whether it did.
    Attach {
        session_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        e2e_hello: Option<E2eOffer>,
    },
    Detach {
        session_id: String,
    },
    EndSession {
        session_id: String,
        reason: String,
    },
    /// One page of a session's report: the events after sequence number
    /// `after_seq` (0 for the first page).
    Report {
        session_id: String,
        #[serde(default)]
        after_seq: u64,
    },
    /// Script library: create a script (owner: the logged-in operator).
    ScriptCreate {
        name: String,
        category: String,
        description: String,
        exec: FileUpload,
        input: Option<FileUpload>,
    },
    /// Change one's own script; absent fields stay.
    ScriptUpdate {
        name: String,
        category: Option<String>,
        description: Option<String>,
        exec: Option<FileUpload>,
        input: Option<FileUpload>,
        remove_input: bool,
    },
    ScriptDelete {
        name: String,
    },
    ScriptPublish {
        name: String,
        published: bool,
    },
    /// Mine and the published ones, sorted by name, category, owner,
    /// published or updated.
    ScriptList {
        sort: String,
        descending: bool,
    },
    ScriptCategories,
    /// Run library scripts, in this order, in an attached session.
    RunScripts {
        session_id: String,
        names: Vec<String>,
        stop_on_failure: bool,
        timeout_secs: Option<u64>,
    },
}

/// Reply to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ReplyBody {
    LoggedIn {
        token: Option<String>,
        profile: OperatorProfile,
    },
    Ok,
    Profile(OperatorProfile),
    /// A page of sessions; `next` is the cursor of the following page, absent
    /// on the last one. Every page fits well inside one frame.
    Sessions {
        sessions: Vec<SessionSummary>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    Invitation(InvitationInfo),
    Attached {
        session: SessionSummary,
        /// The attach's `e2e_hello` went on to the agent. False when there
        /// was none, or the agent could not be reached (then the client
        /// starts the channel itself once the agent is there).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        e2e_hello_relayed: bool,
    },
    /// A page of a report; `next` is the `after_seq` of the following page,
    /// absent on the last one. Every page fits well inside one frame.
    Report {
        session: SessionSummary,
        events: Vec<ReportEvent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<u64>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Scripts {
        scripts: Vec<ScriptInfo>,
    },
    Script(ScriptInfo),
    Categories {
        categories: Vec<String>,
    },
    ScriptBatch {
        batch_id: u64,
    },
}
