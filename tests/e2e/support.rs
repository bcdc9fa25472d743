//! Shared test harness: a broker on port 0 in a temporary folder, operator
//! accounts, logged-in clients, and in-process agents with scripted input.

use std::sync::Arc;
use std::time::Duration;

use lifeline_agent::config::AgentConfig;
use lifeline_broker::Broker;
use lifeline_core::client::Endpoint;
use lifeline_core::config::BrokerConfig;
use lifeline_core::consent::Policy;
use lifeline_core::tls::Trust;
use lifeline_operator::{Client, Event};
use lifeline_protocol::{OperatorProfile, SessionMessage};
use tokio::sync::mpsc;

/// Bound on every wait in the tests (never a timing assertion).
pub const WAIT: Duration = Duration::from_secs(20);
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestBroker {
    pub dir: tempfile::TempDir,
    pub broker: Broker,
}

pub fn broker_config(dir: &std::path::Path, heartbeat: Duration) -> BrokerConfig {
    BrokerConfig {
        name: "Test broker".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        https_listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        data_dir: dir.join("broker"),
        cert_names: vec!["localhost".into(), "127.0.0.1".into()],
        tls_files: None,
        invitation_ttl: Duration::from_secs(600),
        rejoin_ttl: Duration::from_secs(900),
        heartbeat,
        script_categories: vec!["Diagnostics".into(), "Network".into()],
        back_office: None,
        limits: Default::default(),
        smtp: None,
        join: Default::default(),
        store: Default::default(),
        cluster: None,
    }
}

pub fn profile(username: &str, name: &str) -> OperatorProfile {
    OperatorProfile {
        username: username.into(),
        name: name.into(),
        email: format!("{username}@example.com"),
        title: "Support Engineer".into(),
    }
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(Duration::from_secs(15)).await
    }

    pub async fn start_with(heartbeat: Duration) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let cfg = broker_config(dir.path(), heartbeat);
        lifeline_broker::add_operator(&cfg, &profile("alice", "Alice Smith"), PASSWORD).unwrap();
        lifeline_broker::add_operator(&cfg, &profile("bob", "Bob Jones"), PASSWORD).unwrap();
        let broker = Broker::start(cfg).await.unwrap();
        TestBroker { dir, broker }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: self.broker.addr.to_string(),
            server_name: "localhost".into(),
            trust: Trust::Pinned(self.broker.fingerprint),
            heartbeat: Duration::from_secs(15),
        }
    }

    pub async fn operator(&self, username: &str) -> Client {
        let mut c = Client::connect(&self.endpoint()).await.unwrap();
        c.login(username, PASSWORD).await.unwrap();
        c
    }

    pub fn agent_config(
        &self,
        name: &str,
        policy: Option<Policy>,
        consent_timeout: Duration,
    ) -> AgentConfig {
        AgentConfig {
            endpoint: self.endpoint(),
            data_dir: self.dir.path().join(name),
            consent_timeout,
            policy,
            plugins: None,
            run_as: Default::default(),
            screen: Default::default(),
            power: Default::default(),
            service: Default::default(),
            remote_service: None,
            allow_remote_assistance: true,
        }
    }
}

/// What an in-process agent shows, collected for assertions.
pub struct Screen(pub mpsc::UnboundedSender<String>);

impl lifeline_agent::CustomerUi for Screen {
    fn show(&self, line: &str) {
        let _ = self.0.send(line.to_string());
    }
}

pub struct TestAgent {
    pub screen: mpsc::UnboundedReceiver<String>,
    pub input: mpsc::Sender<String>,
    pub task: tokio::task::JoinHandle<Result<lifeline_agent::Outcome, lifeline_agent::AgentError>>,
}

pub fn spawn_agent(cfg: AgentConfig, code: &str) -> TestAgent {
    let (stx, srx) = mpsc::unbounded_channel();
    let (itx, irx) = mpsc::channel(8);
    let code = code.to_string();
    let task =
        tokio::spawn(
            async move { lifeline_agent::run(&cfg, &code, Arc::new(Screen(stx)), irx).await },
        );
    TestAgent {
        screen: srx,
        input: itx,
        task,
    }
}

impl TestAgent {
    /// Waits until the customer's screen shows a line containing `needle`.
    pub async fn sees(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.screen.recv()).await {
                Ok(Some(l)) if l.contains(needle) => return l,
                Ok(Some(_)) => {}
                Ok(None) => panic!("agent stopped before showing {needle:?}"),
                Err(_) => panic!("customer never saw {needle:?}"),
            }
        }
    }
}

/// Waits for a session message on the operator client matching `pred`.
pub async fn operator_sees(c: &Client, pred: impl Fn(&SessionMessage) -> bool) -> SessionMessage {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, c.next_event()).await {
            Ok(Some(Event::Session { msg, .. })) if pred(&msg) => return msg,
            Ok(Some(_)) => {}
            Ok(None) => panic!("operator connection closed"),
            Err(_) => panic!("operator never saw the expected message"),
        }
    }
}

/// Invites, starts an agent with the connection ID, waits for ready and attaches.
pub async fn connected_session(
    tb: &TestBroker,
    op: &Client,
    agent_cfg: AgentConfig,
) -> (String, TestAgent) {
    let inv = op.invite("T-100", "Mario Rossi", None).await.unwrap();
    let mut agent = spawn_agent(agent_cfg, &inv.connection_id);
    op.wait_ready(&inv.session_id, WAIT).await.unwrap();
    op.attach(&inv.session_id).await.unwrap();
    agent.sees("is connected").await;
    let _ = tb;
    (inv.session_id, agent)
}

/// The report's events once one of them satisfies `pred` (polled, bounded
/// by `WAIT`): content is recorded by the customer's agent, which sends
/// the record after it showed the message, so a report read at once may
/// not hold it yet.
pub async fn report_once(
    op: &Client,
    sid: &str,
    pred: impl Fn(&lifeline_protocol::ReportEvent) -> bool,
) -> Vec<lifeline_protocol::ReportEvent> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = op.report(sid).await.unwrap().1;
        if events.iter().any(&pred) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the report never held the expected event: {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub async fn report_kinds(op: &Client, sid: &str) -> Vec<String> {
    op.report(sid)
        .await
        .unwrap()
        .1
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Plugins from `root`, unsigned allowed (test plugins), no hot reload.
pub fn unsigned_plugins(root: std::path::PathBuf) -> lifeline_agent::config::PluginsConfig {
    lifeline_agent::config::PluginsConfig {
        dirs: vec![root],
        trusted_keys: vec![],
        allow_unsigned: true,
        hot_reload: false,
        http_proxy: None,
        folders: Default::default(),
        settings: Default::default(),
        commands: Default::default(),
    }
}
