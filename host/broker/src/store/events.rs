//! Session report events, numbered per session from 1.

use lifeline_protocol::{Party, ReportEvent};

use super::sql::{DbError, Row, Stmt, vals};
use super::{Store, StoreError, parse_party, party_str};

/// A stored event and its text's full length (the text may be cut).
pub(crate) struct EventRow {
    pub event: ReportEvent,
    pub full_chars: u64,
}

fn event_row(r: &Row) -> Result<EventRow, DbError> {
    Ok(EventRow {
        event: ReportEvent {
            seq: r.int(0)? as u64,
            at: lifeline_core::time::millis_to_rfc3339(r.int(1)?),
            kind: r.text(2)?,
            actor: parse_party(&r.text(3)?),
            text: r.text(4)?,
        },
        full_chars: r.int(5)? as u64,
    })
}

/// Most events one session's report holds, whichever broker node records
/// them. Each node's registry charges the session's quota
/// ([`crate::quota`]) for the sessions it holds; a node that records for a
/// session homed elsewhere (an operator's connect and leave) does not see
/// that quota, so the store holds the line for all: the quota's events
/// plus its lifecycle reserve, and one for the quota's note.
pub const MAX_SESSION_EVENTS: u64 =
    crate::quota::MAX_REPORT_EVENTS + crate::quota::LIFECYCLE_RESERVE_EVENTS + 1;

impl Store {
    /// Appends an event to a session's report; returns its sequence number.
    /// On a full disk the event is not written ([`StoreError::is_disk_full`])
    /// and the reserve is freed for the small writes.
    pub fn record(
        &self,
        session: &str,
        kind: &str,
        actor: Party,
        text: &str,
    ) -> Result<u64, StoreError> {
        self.record_from(session, kind, actor, text, None)
    }

    /// [`Store::record`] for a message of the customer's agent numbered
    /// `agent_seq` (kept with the event: see [`Store::agent_seq_recorded`]).
    pub fn record_from(
        &self,
        session: &str,
        kind: &str,
        actor: Party,
        text: &str,
        agent_seq: Option<u64>,
    ) -> Result<u64, StoreError> {
        if self.reserve.is_full() {
            return Err(StoreError::RecordingPaused);
        }
        let res = self.insert_event(session, kind, actor, text, agent_seq);
        if let Err(e) = &res
            && e.is_disk_full()
        {
            self.reserve.release();
        }
        res
    }

    /// The highest agent message number recorded in a session's report
    /// (0: none): what a resumed agent need not send again.
    pub fn agent_seq_recorded(&self, session: &str) -> Result<u64, StoreError> {
        let row = self.row(Stmt::new(
            "SELECT MAX(agent_seq) FROM session_events WHERE session_id = ?1",
            vals![session],
        ))?;
        let max = match row {
            Some(r) => r.opt_int(0)?,
            None => None,
        };
        Ok(max.map_or(0, |m| m.max(0) as u64))
    }

    fn insert_event(
        &self,
        session: &str,
        kind: &str,
        actor: Party,
        text: &str,
        agent_seq: Option<u64>,
    ) -> Result<u64, StoreError> {
        // Taking the session's row first makes writers of one session (other
        // connections, other brokers) number their events one after the
        // other: each INSERT sees the rows committed before it.
        let lock = Stmt::new(
            "UPDATE sessions SET state = state WHERE id = ?1",
            vals![session],
        );
        // Nothing past MAX_SESSION_EVENTS, whichever node writes.
        let insert = Stmt::new(
            "INSERT INTO session_events (session_id, seq, at, kind, actor, text, agent_seq) \
             SELECT CAST(?1 AS TEXT), n.seq, CAST(?2 AS BIGINT), CAST(?3 AS TEXT), \
             CAST(?4 AS TEXT), CAST(?5 AS TEXT), CAST(?6 AS BIGINT) FROM \
             (SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM session_events WHERE session_id = ?1) n \
             WHERE n.seq <= CAST(?7 AS BIGINT) \
             RETURNING seq",
            vals![
                session,
                lifeline_core::time::now_millis(),
                kind,
                party_str(actor),
                text,
                agent_seq.and_then(|s| i64::try_from(s).ok()),
                MAX_SESSION_EVENTS as i64
            ],
        );
        let out = self.run(vec![lock, insert])?;
        let Some(row) = out.last().and_then(|o| o.rows.first()) else {
            return Err(StoreError::ReportFull {
                session: session.to_string(),
                max: MAX_SESSION_EVENTS,
            });
        };
        Ok(row.int(0)? as u64)
    }

    pub fn events(&self, session: &str) -> Result<Vec<ReportEvent>, StoreError> {
        let rows = self.rows(Stmt::new(
            "SELECT seq, at, kind, actor, text, length(text) FROM session_events \
             WHERE session_id = ?1 ORDER BY seq",
            vals![session],
        ))?;
        Ok(rows
            .iter()
            .map(|r| event_row(r).map(|e| e.event))
            .collect::<Result<_, _>>()?)
    }

    /// Up to `limit` events after `after_seq`, texts cut to `max_chars`.
    pub(crate) fn event_rows_after(
        &self,
        session: &str,
        after_seq: u64,
        max_chars: usize,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = self.rows(Stmt::new(
            "SELECT seq, at, kind, actor, substr(text, 1, ?3), length(text) \
             FROM session_events WHERE session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?4",
            vals![session, after_seq as i64, max_chars as i64, limit as i64],
        ))?;
        Ok(rows.iter().map(event_row).collect::<Result<_, _>>()?)
    }
}
