//! Session reports as text and JSON: what `lifeline operator report` writes
//! and the web console downloads (the broker's `console::report`).

use std::future::Future;

use crate::message::{ReplyBody, Request};
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

/// Every page of session `session_id`'s report, read with `request` (the
/// operator client's connection, or the console's), at most `max_pages`
/// pages. `Err(Ok(text))`: the broker answered out of protocol (a reply of
/// another kind, a page that does not advance, too many pages), said in
/// `text`; `Err(Err(e))`: the request itself failed.
pub async fn all_pages<E, F, Fut>(
    session_id: &str,
    max_pages: usize,
    mut request: F,
) -> Result<(SessionSummary, Vec<ReportEvent>), Result<String, E>>
where
    F: FnMut(Request) -> Fut,
    Fut: Future<Output = Result<ReplyBody, E>>,
{
    let mut all = Vec::new();
    let mut after_seq = 0;
    for _ in 0..max_pages {
        let req = Request::Report {
            session_id: session_id.to_string(),
            after_seq,
        };
        match request(req).await.map_err(Err)? {
            ReplyBody::Report {
                session,
                events,
                next,
            } => {
                all.extend(events);
                match next {
                    None => return Ok((session, all)),
                    Some(n) if n <= after_seq => {
                        return Err(Ok(format!(
                            "the report's next page ({n}) does not advance past {after_seq}"
                        )));
                    }
                    Some(n) => after_seq = n,
                }
            }
            other => {
                return Err(Ok(format!(
                    "unexpected reply to a report request: {other:?}"
                )));
            }
        }
    }
    Err(Ok(format!(
        "the report did not end within {max_pages} pages"
    )))
}
