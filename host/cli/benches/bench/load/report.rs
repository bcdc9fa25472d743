//! The broker's reports counted against what the bench sent, and the rows
//! of the summary table.
//!
//! For every session the report is fetched after the end, and each kind of
//! event the session's steps cause is counted against the number they must
//! cause ([`expected`]); a chat line counts only if its exact text is there
//! once, with the right author. "lost" is what is missing, "extra" what is
//! there beyond the expected count; the sequence numbers must run 1, 2, …
//! without a gap.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeline_protocol::{Party, ReportEvent};

use super::session::{Sent, Session};
use super::{Measured, SCRIPTS, p50_p99, pair};
use crate::{Row, ms, row};

/// Events of each kind the steps of a session must leave in its report:
/// every event they cause (the scripts print one line each; the stream
/// plugin's capability needs no consent).
pub fn expected(sent: &Sent) -> BTreeMap<&'static str, usize> {
    let chats = sent.chat_operator.len() + sent.chat_customer.len();
    let (b, s) = (sent.batches, sent.streams);
    let scripts = b * SCRIPTS.len();
    BTreeMap::from([
        ("invitation", 1),
        ("join", 1),
        ("connect", 1),
        ("chat", chats),
        ("consent_request", sent.questions),
        // The answer to each question, and the customer's grant of a batch.
        ("consent", sent.questions + b),
        ("scripts_run", b),
        ("script_output", scripts),
        ("script_done", scripts),
        ("scripts_done", b),
        ("plugin_run", s),
        // Opened and closed.
        ("stream", 2 * s),
        ("plugin_done", s),
        ("end", 1),
    ])
}

/// The count of one session, or of all of them added up.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub sessions: usize,
    pub expected: usize,
    pub found: usize,
    pub lost: usize,
    pub extra: usize,
    /// Sequence numbers missing from 1..=last.
    pub gaps: usize,
    /// Chat lines sent whose text is not in the report exactly once.
    pub chat_missing: usize,
    /// Every event of the report, of any kind.
    pub total: usize,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.sessions += o.sessions;
        self.expected += o.expected;
        self.found += o.found;
        self.lost += o.lost;
        self.extra += o.extra;
        self.gaps += o.gaps;
        self.chat_missing += o.chat_missing;
        self.total += o.total;
    }

    fn show(&self) -> String {
        format!(
            "{} lost, {} extra of {} expected ({} chat lines missing, {} sequence gaps; {} events in all, {} sessions)",
            self.lost,
            self.extra,
            self.expected,
            self.chat_missing,
            self.gaps,
            self.total,
            self.sessions
        )
    }
}

fn chat_found(events: &[ReportEvent], actor: Party, text: &str) -> bool {
    let hits = events
        .iter()
        .filter(|e| e.kind == "chat" && e.actor == actor && e.text == text)
        .count();
    hits == 1
}

/// Counts one session's report.
pub fn count(s: &Session) -> Tally {
    let events = &s.report;
    let mut t = Tally {
        sessions: 1,
        total: events.len(),
        ..Tally::default()
    };
    for (kind, want) in expected(&s.sent) {
        let got = events.iter().filter(|e| e.kind == kind).count();
        t.expected += want;
        t.found += got.min(want);
        t.lost += want.saturating_sub(got);
        t.extra += got.saturating_sub(want);
    }
    let lines = [
        (Party::Operator, &s.sent.chat_operator),
        (Party::Customer, &s.sent.chat_customer),
    ];
    for (actor, sent) in lines {
        t.chat_missing += sent
            .iter()
            .filter(|l| !chat_found(events, actor, l))
            .count();
    }
    let last = events.iter().map(|e| e.seq).max().unwrap_or(0);
    let mut seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    seqs.sort();
    seqs.dedup();
    t.gaps = usize::try_from(last).unwrap_or(usize::MAX) - seqs.len();
    t
}

/// Counts of every kind in one report, for the log: "chat 10, end 1, …".
pub fn kinds(events: &[ReportEvent]) -> String {
    let mut k: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events {
        *k.entry(e.kind.as_str()).or_default() += 1;
    }
    let parts: Vec<String> = k.iter().map(|(k, n)| format!("{k} {n}")).collect();
    parts.join(", ")
}

fn tally(m: &Measured) -> Tally {
    let mut t = Tally::default();
    for s in &m.sessions {
        t.add(count(s));
    }
    t
}

/// The samples of one figure over every session.
fn samples(m: &Measured, f: impl Fn(&Session) -> Vec<Duration>) -> Vec<Duration> {
    m.sessions.iter().flat_map(f).collect()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

fn timed_rows(n: usize, base: &Measured, load: &Measured) -> Vec<Row> {
    type Pick = fn(&Session) -> Vec<Duration>;
    let figures: [(&str, Pick); 5] = [
        (
            "join by connection ID → operator attached, p50 / p99",
            |s| vec![s.times.join],
        ),
        (
            "chat round trip operator → customer → operator, p50 / p99",
            |s| s.times.chat.clone(),
        ),
        (
            "consent round trip (question → customer's answer), p50 / p99",
            |s| vec![s.times.consent],
        ),
        (
            "script batch (2 scripts, consent included), p50 / p99",
            |s| vec![s.times.scripts],
        ),
        ("1 MiB stream plugin → operator client, p50 / p99", |s| {
            vec![s.times.stream]
        }),
    ];
    figures
        .iter()
        .map(|(what, pick)| {
            let (mut l, mut b) = (samples(load, pick), samples(base, pick));
            let base = format!("N = 1: {}", pair(p50_p99(&mut b)));
            row(
                B,
                &format!("{what}, N = {n}"),
                pair(p50_p99(&mut l)),
                &base,
                None,
            )
        })
        .collect()
}

const B: &str = "8 load";

pub fn rows(n: usize, base: &Measured, load: &Measured) -> Vec<Row> {
    let runs = base.sessions.len();
    let mut rows = timed_rows(n, base, load);
    let cpu = load.after.cpu - load.before.cpu;
    let base_cpu = (base.after.cpu - base.before.cpu) / runs.max(1) as f64;
    rows.push(row(
        B,
        &format!("broker CPU during the {n} sessions' steps (per session)"),
        format!("{cpu:.2} s ({:.1} ms)", cpu * 1e3 / n as f64),
        &format!("N = 1: {:.1} ms per session", base_cpu * 1e3),
        None,
    ));
    rows.push(row(
        B,
        "broker RSS: before the steps → peak (VmHWM over its life)",
        format!(
            "{} → {} ({})",
            mib(load.before.rss),
            mib(load.sampled.peak_rss),
            mib(load.after.hwm)
        ),
        &format!("after the N = 1 sessions: {}", mib(base.after.rss)),
        None,
    ));
    let (tl, tb) = (tally(load), tally(base));
    rows.push(row(
        B,
        "report events counted against what was sent",
        tl.show(),
        &format!("N = 1: {}", tb.show()),
        Some((
            "0 lost",
            tl.lost == 0 && tl.chat_missing == 0 && tl.gaps == 0,
        )),
    ));
    rows.push(row(
        B,
        "wall time of the steps; this process's CPU (agents, operators)",
        format!("{:.1} s; {:.1} s", load.wall.as_secs_f64(), load.bench_cpu),
        &format!(
            "N = 1: {} per session; {:.0} ms per session",
            ms(base.wall / runs.max(1) as u32),
            base.bench_cpu * 1e3 / runs.max(1) as f64
        ),
        None,
    ));
    rows.push(row(
        B,
        "1-minute load average: before → peak → after the steps",
        format!(
            "{:.2} → {:.2} → {:.2}",
            load.load_before, load.sampled.peak_load, load.load_after
        ),
        &format!("N = 1: {:.2} → {:.2}", base.load_before, base.load_after),
        None,
    ));
    rows
}
