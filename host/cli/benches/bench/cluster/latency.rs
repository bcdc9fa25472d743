//! Join latency and chat round trip on each setup of the cluster
//! benchmark, interleaved: one iteration runs one session on every setup
//! in turn, plus the bare TLS connect of benchmark 1 as a baseline.
//!
//! Timed per session, as in benchmark 1: the agent's TCP + TLS + `Hello`,
//! `Join` by connection ID until `Joined`, the operator's `attach` until its
//! end-to-end channel is ready ("join"); then the operator's chat message until the agent reads
//! it, and the agent's answer until the operator reads it ("chat round
//! trip"). Counted around each session: PostgreSQL round trips (the
//! counting proxies) and NATS messages (`/varz`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use lifeline_core::client::{self, Endpoint};
use lifeline_core::link::Link;
use lifeline_operator::{Client, Event};
use lifeline_protocol::{ClientRole, Frame, JoinCredential, Message, Party, SessionMessage};
use tokio::sync::{Mutex, mpsc};

use super::infra::{Nats, PgProxy, operator};
use crate::raw_e2e::RawE2e;
use crate::{STEP, join, step};

/// Chat messages from customers, as the operator client got them.
type Chats = Mutex<mpsc::UnboundedReceiver<(String, String)>>;

/// One setup: where the operator is and where its customers' agents join.
pub struct Setup {
    pub label: &'static str,
    op: Arc<Client>,
    chats: Chats,
    agent_ep: Endpoint,
    pub samples: Samples,
}

/// Per-session measurements of one setup.
#[derive(Default)]
pub struct Samples {
    pub total: Vec<Duration>,
    pub connect: Vec<Duration>,
    pub joined: Vec<Duration>,
    pub attach: Vec<Duration>,
    pub chat_rtt: Vec<Duration>,
    pub to_agent: Vec<Duration>,
    /// PostgreSQL round trips: join (connect → `Joined`), attach, chat.
    pub pg: [u64; 3],
    /// Of all those, simple queries (`BEGIN`, `COMMIT`).
    pub pg_simple: u64,
    /// NATS messages in and out at the server, join to chat answer.
    pub nats: [u64; 2],
    pub sessions: u64,
}

impl Setup {
    /// An operator logged in at `op_ep` for agents joining at `agent_ep`.
    pub async fn new(label: &'static str, op_ep: &Endpoint, agent_ep: &Endpoint) -> Result<Setup> {
        let (tx, rx) = mpsc::unbounded_channel();
        let op = operator(op_ep, move |ev| {
            if let Event::Session {
                session_id,
                msg:
                    SessionMessage::Chat {
                        from: Party::Customer,
                        text,
                    },
            } = ev
            {
                let _ = tx.send((session_id, text));
            }
        })
        .await?;
        Ok(Setup {
            label,
            op,
            chats: Mutex::new(rx),
            agent_ep: agent_ep.clone(),
            samples: Samples::default(),
        })
    }
}

/// What one iteration measures on every setup.
pub struct Counters<'a> {
    pub pg: &'a [&'a PgProxy],
    pub nats: &'a Nats,
}

impl Counters<'_> {
    /// PostgreSQL round trips of every broker: all, simple queries.
    fn pg(&self) -> [u64; 2] {
        let sum = |k: usize| self.pg.iter().map(|p| p.round_trips()[k]).sum();
        [sum(0), sum(1)]
    }

    /// Waits (bounded) until no broker has talked to PostgreSQL for
    /// [`QUIET`]: what a session's end set going is over before the next
    /// session is timed.
    async fn settle(&self) {
        let mut last = self.pg();
        for _ in 0..QUIET_POLLS {
            tokio::time::sleep(QUIET).await;
            let now = self.pg();
            if now == last {
                return;
            }
            last = now;
        }
    }
}

/// No PostgreSQL traffic for this long counts as quiet.
const QUIET: Duration = Duration::from_millis(5);
/// Bound on the wait for quiet (× [`QUIET`]).
const QUIET_POLLS: usize = 400;

/// Waits (bounded) until the agent of an ended session hears of the end
/// (or its link closes).
async fn agent_closed(agent: &mut Link) {
    let ended = async {
        while let Some(f) = agent.rx.recv().await {
            if let Frame::Control(Message::Session {
                msg: SessionMessage::End { .. },
                ..
            }) = f
            {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(STEP, ended).await;
}

/// Waits on the agent's link for the operator's chat message `text`
/// (sealed end to end: opened as the agent does).
async fn agent_reads(agent: &mut Link, e2e: &mut RawE2e, text: &str) -> Result<()> {
    loop {
        match tokio::time::timeout(STEP, agent.rx.recv()).await {
            Err(_) => bail!("the agent got no chat within {STEP:?}"),
            Ok(None) => bail!("agent link closed: {}", agent.close_reason.get()),
            Ok(Some(frame)) => {
                if let Some(SessionMessage::Chat { text: t, .. }) = e2e.open(frame)
                    && t == text
                {
                    return Ok(());
                }
            }
        }
    }
}

/// Waits for the customer's chat message `text` in session `sid`.
async fn operator_reads(chats: &Chats, sid: &str, text: &str) -> Result<()> {
    let mut rx = chats.lock().await;
    loop {
        match tokio::time::timeout(STEP, rx.recv()).await {
            Err(_) => bail!("the operator got no chat within {STEP:?}"),
            Ok(None) => bail!("the operator's connection closed"),
            Ok(Some((s, t))) if s == sid && t == text => return Ok(()),
            Ok(Some(_)) => {}
        }
    }
}

/// The chat round trip of session `sid`; returns (round trip, operator →
/// agent leg).
async fn chat(
    s: &Setup,
    agent: &mut Link,
    e2e: &mut RawE2e,
    sid: &str,
    i: usize,
) -> Result<(Duration, Duration)> {
    let (ping, pong) = (format!("ping {i}"), format!("pong {i}"));
    let t0 = Instant::now();
    step("operator chat", s.op.chat(sid, &ping)).await?;
    agent_reads(agent, e2e, &ping).await?;
    let leg = t0.elapsed();
    let answer = SessionMessage::Chat {
        from: Party::Customer,
        text: pong.clone(),
    };
    // The report's record, then the answer sealed, as the agent sends it.
    for frame in e2e.content(&answer)? {
        agent
            .tx
            .send(frame)
            .await
            .map_err(|_| anyhow!("agent link closed"))?;
    }
    operator_reads(&s.chats, sid, &pong).await?;
    Ok((t0.elapsed(), leg))
}

/// One session on setup `s`: invite, join, attach, chat, end.
pub async fn session(s: &mut Setup, c: &Counters<'_>, i: usize, keep: bool) -> Result<()> {
    let inv = step("invite", s.op.invite(&format!("CL-{i}"), "Customer", None)).await?;
    let (v0, pg0) = (c.nats.varz().await?, c.pg());
    let t0 = Instant::now();
    let code = JoinCredential::ConnectionId(inv.connection_id.clone());
    let (mut agent, connect) = step("agent join", join(&s.agent_ep, code)).await?;
    let joined = t0.elapsed();
    let pg1 = c.pg();
    let mut e2e = crate::raw_e2e::attach(&s.op, &mut agent, &inv.session_id).await?;
    let total = t0.elapsed();
    let pg2 = c.pg();
    let (rtt, leg) = chat(s, &mut agent, &mut e2e, &inv.session_id, i).await?;
    let (v1, pg3) = (c.nats.varz().await?, c.pg());
    step("end", s.op.end(&inv.session_id, "iteration over")).await?;
    agent_closed(&mut agent).await;
    drop(agent);
    c.settle().await;
    if keep {
        let m = &mut s.samples;
        m.total.push(total);
        m.connect.push(connect);
        m.joined.push(joined - connect);
        m.attach.push(total - joined);
        m.chat_rtt.push(rtt);
        m.to_agent.push(leg);
        let pg = [pg1[0] - pg0[0], pg2[0] - pg1[0], pg3[0] - pg2[0]];
        m.pg.iter_mut().zip(pg).for_each(|(a, d)| *a += d);
        m.pg_simple += pg3[1] - pg0[1];
        m.nats[0] += v1.in_msgs - v0.in_msgs;
        m.nats[1] += v1.out_msgs - v0.out_msgs;
        m.sessions += 1;
    }
    Ok(())
}

/// The baseline of benchmark 1: TCP + TLS + one `Hello`/`Welcome`.
pub async fn bare_connect(ep: &Endpoint) -> Result<Duration> {
    let t = Instant::now();
    let link = step("baseline", client::connect(ep, ClientRole::Agent)).await?;
    let d = t.elapsed();
    drop(link);
    Ok(d)
}
