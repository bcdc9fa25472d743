//! Session reports as text and JSON: what `lifeline operator report` writes
//! and the web console downloads (the broker's `console::report`).

use crate::types::{ReportEvent, SessionSummary};
use serde::Serialize;

#[derive(Serialize)]
struct JsonReport<'a> {
    session: &'a SessionSummary,
    events: &'a [ReportEvent],
}

/// The report as pretty JSON.
pub fn to_json(session: &SessionSummary, events: &[ReportEvent]) -> String {
    serde_json::to_string_pretty(&JsonReport { session, events }).expect("reports always serialise")
}

/// The report as readable text: a header, then one line per event.
pub fn to_text(s: &SessionSummary, events: &[ReportEvent]) -> String {
    let mut out = String::new();
    out.push_str(&format!("Lifeline session report {}\n", s.session_id));
    out.push_str(&format!("Ticket:    {}\n", s.ticket));
    out.push_str(&format!(
        "Customer:  {}{}\n",
        s.end_user,
        s.customer_host
            .as_deref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default()
    ));
    out.push_str(&format!("Operator:  {}\n", s.operator));
    out.push_str(&format!("State:     {}\n", s.state));
    out.push_str(&format!("Created:   {}\n", s.created_at));
    if let Some(e) = &s.ended_at {
        out.push_str(&format!("Ended:     {e}\n"));
    }
    out.push_str(&format!("\n{} events:\n", events.len()));
    for e in events {
        let text = e
            .text
            .replace('\n', "\n                                            ");
        out.push_str(&format!(
            "{:>4}  {}  {:<8}  {:<15}  {}\n",
            e.seq, e.at, e.actor, e.kind, text
        ));
    }
    out
}
