//! Paged replies: a report or a session list of any length goes out as
//! pages that each fit in one frame ([`crate::quota::REPLY_PAGE_BYTES`]);
//! the operator client fetches the following pages by cursor.
//!
//! Report pages are keyed by sequence number (`after_seq`), session pages by
//! the (creation time, session ID) of the last row sent, so sessions created
//! while an operator pages through the list neither repeat nor vanish.

use lifeline_protocol::{ReportEvent, SessionSummary};

use crate::quota::{CLIP_NOTE_CHARS, MAX_RECORDED_TEXT_CHARS, PAGE_ROWS, fit_page};
use crate::store::{Store, StoreError};

/// A page of items and the cursor of the next page, if any.
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl Store {
    /// Report events after `after_seq`, as many as fit in one reply page.
    /// Texts longer than [`MAX_RECORDED_TEXT_CHARS`] and its clip note
    /// (written by older brokers) are cut on the way out.
    pub fn events_page(
        &self,
        session: &str,
        after_seq: u64,
    ) -> Result<Page<ReportEvent, u64>, StoreError> {
        let max = MAX_RECORDED_TEXT_CHARS + CLIP_NOTE_CHARS;
        let rows: Vec<ReportEvent> = self
            .event_rows_after(session, after_seq, max, PAGE_ROWS + 1)?
            .into_iter()
            .map(|r| {
                let mut event = r.event;
                let more = (r.full_chars as usize).saturating_sub(max);
                if more > 0 {
                    event.text = format!("{}… [{more} more characters not shown]", event.text);
                }
                event
            })
            .collect();
        let had_more_rows = rows.len() > PAGE_ROWS;
        let mut rows = rows;
        rows.truncate(PAGE_ROWS);
        let (items, cut) = fit_page(rows);
        let next = (cut || had_more_rows)
            .then(|| items.last().map(|e| e.seq))
            .flatten();
        Ok(Page { items, next })
    }

    /// Sessions of one operator (or all), newest first, after `after`.
    pub fn sessions_page(
        &self,
        operator_id: Option<i64>,
        after: Option<&SessionCursor>,
    ) -> Result<Page<SessionSummary, SessionCursor>, StoreError> {
        let rows = self.session_rows_after(operator_id, after)?;
        let had_more_rows = rows.len() > PAGE_ROWS;
        let cursors: Vec<SessionCursor> = rows
            .iter()
            .map(|r| SessionCursor {
                created_at: r.created_at,
                id: r.id.clone(),
            })
            .collect();
        let mut summaries: Vec<SessionSummary> = rows.iter().map(|r| r.summary()).collect();
        summaries.truncate(PAGE_ROWS);
        let (items, cut) = fit_page(summaries);
        let next = (cut || had_more_rows)
            .then(|| items.len().checked_sub(1).map(|i| cursors[i].clone()))
            .flatten();
        Ok(Page { items, next })
    }
}

/// Where a page of the session list ends: sessions are sorted by creation
/// time (newest first), then ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor {
    pub created_at: i64,
    pub id: String,
}

impl SessionCursor {
    /// The cursor as it travels in the protocol: `created_at.id`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    /// Parses [`Self::encode`]'s form; `None` when it is not one.
    pub fn decode(s: &str) -> Option<SessionCursor> {
        let (at, id) = s.split_once('.')?;
        let ok_id = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        Some(SessionCursor {
            created_at: at.parse().ok()?,
            id: ok_id.then(|| id.to_string())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = SessionCursor {
            created_at: 1_700_000_000_123,
            id: "0a1b2c3d4e5f".into(),
        };
        assert_eq!(SessionCursor::decode(&c.encode()), Some(c));
        assert_eq!(SessionCursor::decode("x.abc"), None);
        assert_eq!(SessionCursor::decode("12.not hex"), None);
        assert_eq!(SessionCursor::decode("12"), None);
    }
}
