//! The measurements: logins, joins seen by a watching console, memory per console tab and per operator connection.

use super::*;

pub(super) fn ms_of(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------- 1. login → list

pub(super) struct LoginFigures {
    pub(super) console: Series,
    pub(super) frame: Series,
    pub(super) load: Series,
    pub(super) post: Series,
    pub(super) ws_new: Series,
    pub(super) ws_open: Series,
    pub(super) list_reply: Series,
    pub(super) operator: Series,
    pub(super) get: Series,
    pub(super) rows: u64,
}

pub(super) async fn logins(
    node: &mut NodeProcess,
    b: &Broker,
    warmup: usize,
    n: usize,
) -> Result<LoginFigures> {
    let mut f = LoginFigures {
        console: Series::default(),
        frame: Series::default(),
        load: Series::default(),
        post: Series::default(),
        ws_new: Series::default(),
        ws_open: Series::default(),
        list_reply: Series::default(),
        operator: Series::default(),
        get: Series::default(),
        rows: 0,
    };
    for i in 0..warmup + n {
        let page = node.call(json!({"cmd": "login", "url": b.console})).await?;
        let get = node.call(json!({"cmd": "get", "url": b.console})).await?;
        let t = Instant::now();
        let mut op = step("operator connect", Client::connect(&b.ep)).await?;
        step("operator login", op.login(USERNAME, PASSWORD)).await?;
        let listed = step("operator list", op.sessions(false)).await?;
        let base = t.elapsed();
        drop(op);
        if i < warmup {
            continue;
        }
        f.console.push(num(&page, "ms")?);
        f.frame.push(num(&page, "frameMs")?);
        f.load.push(num(&page, "loadMs")?);
        for (s, k) in [
            (&mut f.post, "postMs"),
            (&mut f.ws_new, "wsNewMs"),
            (&mut f.ws_open, "wsOpenMs"),
            (&mut f.list_reply, "listReplyMs"),
        ] {
            if let Some(v) = page[k].as_f64() {
                s.push(v);
            }
        }
        f.rows = page["rows"].as_u64().unwrap_or(0);
        f.get.push(num(&get, "ms")?);
        f.operator.push(ms_of(base));
        if listed.len() as u64 != f.rows {
            bail!(
                "the page listed {} sessions, the operator client {}",
                f.rows,
                listed.len()
            );
        }
    }
    Ok(f)
}

// ---------------------------------------------------------------- 2. join → row

#[derive(Default)]
pub(super) struct JoinFigures {
    /// Join call start → row inserted (page clock mapped onto ours).
    pub(super) row: Series,
    /// ... → the next animation frame after it.
    pub(super) frame: Series,
    /// Socket message handled in the page → row inserted (page clock only).
    pub(super) in_page: Series,
    /// Join call start → the message reaches the page's socket handler.
    pub(super) to_page: Series,
    /// Join call start → the agent has `Joined`.
    pub(super) joined: Series,
    /// Baseline: join call start → the operator client's pushed event.
    pub(super) operator: Series,
    /// Joins whose row was (was not) in the page when the push arrived,
    /// against what the case wanted.
    pub(super) other_path: usize,
    /// Rows in the page's list when the session's row appeared: fewest, most.
    pub(super) rows: (u64, u64),
}

/// An operator client whose pushed "ready" notices (`State { Waiting }`)
/// are timestamped as they arrive.
pub(super) async fn watching_operator(
    ep: &Endpoint,
) -> Result<(Arc<Client>, mpsc::UnboundedReceiver<(String, Instant)>)> {
    let mut op = step("operator connect", Client::connect(ep)).await?;
    step("operator login", op.login(USERNAME, PASSWORD)).await?;
    let op = Arc::new(op);
    let (tx, rx) = mpsc::unbounded_channel();
    let reader = Arc::clone(&op);
    tokio::spawn(async move {
        while let Some(ev) = reader.next_event().await {
            if let Event::Session {
                session_id,
                msg:
                    SessionMessage::State {
                        state: SessionState::Waiting,
                        ..
                    },
            } = ev
            {
                let _ = tx.send((session_id, Instant::now()));
            }
        }
    });
    Ok((op, rx))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn joins(
    node: &mut NodeProcess,
    b: &Broker,
    op: &Client,
    events: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    offset: f64,
    listed: bool,
    warmup: usize,
    n: usize,
) -> Result<JoinFigures> {
    let mut f = JoinFigures::default();
    let tag = if listed { "LISTED" } else { "NEW" };
    for i in 0..warmup + n {
        let inv = step("invite", op.invite(&format!("{tag}-{i}"), "Customer", None)).await?;
        let sid = inv.session_id.clone();
        if listed {
            node.call(json!({"cmd": "list", "sid": sid})).await?;
        }
        node.call(json!({"cmd": "arm", "sid": sid})).await?;
        // Nothing older than this join may be mistaken for its notice.
        while events.try_recv().is_ok() {}
        let (t0, w0) = (Instant::now(), wall_ms());
        let code = JoinCredential::ConnectionId(inv.connection_id.clone());
        let (agent, _) = step("agent join", join(&b.ep, code)).await?;
        let joined = t0.elapsed();
        let notice = tokio::time::timeout(STEP, async {
            while let Some((s, at)) = events.recv().await {
                if s == sid {
                    return Some(at);
                }
            }
            None
        })
        .await;
        let at = match notice {
            Ok(Some(at)) => at,
            Ok(None) => bail!("the operator client's connection ended"),
            Err(_) => bail!("the operator client got no notice of {sid} within {STEP:?}"),
        };
        let w = node.call(json!({"cmd": "collect", "sid": sid})).await?;
        step("end", op.end(&sid, "benchmark join over")).await?;
        drop(agent);
        if i < warmup {
            continue;
        }
        let (ws_at, row_at, frame_at) = (num(&w, "wsAt")?, num(&w, "rowAt")?, num(&w, "frameAt")?);
        if w["rowAtMsg"].as_bool() != Some(listed) {
            f.other_path += 1;
        }
        let rows = w["rowsInList"].as_u64().unwrap_or(0);
        f.rows = if f.row.0.is_empty() {
            (rows, rows)
        } else {
            (f.rows.0.min(rows), f.rows.1.max(rows))
        };
        f.row.push(row_at - offset - w0);
        f.frame.push(frame_at - offset - w0);
        f.to_page.push(ws_at - offset - w0);
        f.in_page.push(row_at - ws_at);
        f.joined.push(ms_of(joined));
        f.operator.push(ms_of(at.duration_since(t0)));
    }
    Ok(f)
}

// ---------------------------------------------------------------- 3. memory

pub(super) struct Memory {
    pub(super) before: u64,
    pub(super) after: u64,
    /// After a heartbeat on every connection (full mode).
    pub(super) beat: Option<u64>,
    pub(super) n: usize,
}

impl Memory {
    pub(super) fn kib(&self, rss: u64) -> f64 {
        rss.saturating_sub(self.before) as f64 / self.n as f64 / 1024.0
    }
    pub(super) fn show(&self) -> String {
        let mut s = format!("{:.1} KiB", self.kib(self.after));
        if let Some(b) = self.beat {
            s = format!("{:.1} KiB ({s} 3 s after the last)", self.kib(b));
        }
        s
    }
    pub(super) fn primary(&self) -> f64 {
        self.kib(self.beat.unwrap_or(self.after))
    }
}

/// Waits the settle time (and, in a full run, a heartbeat) reading the RSS.
pub(super) async fn settle(
    b: &mut Broker,
    t_last: Instant,
    quick: bool,
) -> Result<(u64, Option<u64>)> {
    tokio::time::sleep(SETTLE.saturating_sub(t_last.elapsed())).await;
    let after = b.rss()?;
    let beat = if quick {
        None
    } else {
        // Past the HTTPS keep-alive (10 s) and one heartbeat (15 s).
        let at = t_last + HEARTBEAT + Duration::from_secs(1);
        tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
        Some(b.rss()?)
    };
    Ok((after, beat))
}

pub(super) async fn console_memory(
    node: &mut NodeProcess,
    n: usize,
    quick: bool,
) -> Result<Memory> {
    let mut b = start_broker(true)?;
    let url = b.console.clone();
    let limit = NODE_STEP * (MEMORY_WARMUP.max(n) as u32);
    node.call_for(
        json!({"cmd": "tabs", "url": url, "n": MEMORY_WARMUP}),
        limit,
    )
    .await?;
    node.call(json!({"cmd": "close_tabs"})).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = b.rss()?;
    let r = node
        .call_for(json!({"cmd": "tabs", "url": url, "n": n}), limit)
        .await?;
    let (after, beat) = settle(&mut b, Instant::now(), quick).await?;
    println!(
        "  {n} console tabs opened in {:.1} s; broker RSS {:.1} → {:.1} MiB",
        num(&r, "secs")?,
        before as f64 / 1048576.0,
        beat.unwrap_or(after) as f64 / 1048576.0
    );
    node.call(json!({"cmd": "close_tabs"})).await?;
    Ok(Memory {
        before,
        after,
        beat,
        n,
    })
}

pub(super) async fn operator_memory(n: usize, quick: bool) -> Result<Memory> {
    let mut b = start_broker(true)?;
    for _ in 0..MEMORY_WARMUP {
        drop(crate::login(&b.ep).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = b.rss()?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(crate::login(&b.ep).await?);
    }
    let (after, beat) = settle(&mut b, Instant::now(), quick).await?;
    println!(
        "  {n} operator connections; broker RSS {:.1} → {:.1} MiB",
        before as f64 / 1048576.0,
        beat.unwrap_or(after) as f64 / 1048576.0
    );
    drop(ops);
    Ok(Memory {
        before,
        after,
        beat,
        n,
    })
}

// ---------------------------------------------------------------- the benchmark
