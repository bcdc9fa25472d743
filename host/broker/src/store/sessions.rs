//! Sessions with their invitations (connection ID, link token, short code).

use lifeline_protocol::SessionState;

use super::sql::{DbError, Row, Stmt, Value, vals};
use super::{Store, StoreError, state};

/// A session row with its invitation.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub operator_id: i64,
    pub operator: String,
    pub ticket: String,
    pub end_user: String,
    pub state: SessionState,
    pub connection_id: String,
    pub link_token: String,
    pub short_code: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub customer_host: Option<String>,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

/// A new invitation to insert.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub operator_id: i64,
    pub ticket: &'a str,
    pub end_user: &'a str,
    pub connection_id: &'a str,
    pub link_token: &'a str,
    pub short_code: &'a str,
    pub expires_at: i64,
}

const SESSION_COLS: &str = "s.id, s.operator_id, o.username, s.ticket, s.end_user, s.state, \
    s.connection_id, s.link_token, s.short_code, s.expires_at, s.used_at, s.customer_host, \
    s.created_at, s.ended_at";

fn session_row(r: &Row) -> Result<SessionRow, DbError> {
    Ok(SessionRow {
        id: r.text(0)?,
        operator_id: r.int(1)?,
        operator: r.text(2)?,
        ticket: r.text(3)?,
        end_user: r.text(4)?,
        state: state(&r.text(5)?),
        connection_id: r.text(6)?,
        link_token: r.text(7)?,
        short_code: r.text(8)?,
        expires_at: r.int(9)?,
        used_at: r.opt_int(10)?,
        customer_host: r.opt_text(11)?,
        created_at: r.int(12)?,
        ended_at: r.opt_int(13)?,
    })
}

fn session_rows(rows: &[Row]) -> Result<Vec<SessionRow>, StoreError> {
    Ok(rows.iter().map(session_row).collect::<Result<_, _>>()?)
}

fn ids(rows: &[Row]) -> Result<Vec<String>, StoreError> {
    Ok(rows.iter().map(|r| r.text(0)).collect::<Result<_, _>>()?)
}

impl Store {
    pub fn insert_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        let now = lifeline_core::time::now_millis();
        self.essential(vec![Stmt::new(
            "INSERT INTO sessions (id, operator_id, ticket, end_user, state, connection_id, link_token, short_code, expires_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, 'invited', ?5, ?6, ?7, ?8, ?9)",
            vals![
                s.id,
                s.operator_id,
                s.ticket,
                s.end_user,
                s.connection_id,
                s.link_token,
                s.short_code,
                s.expires_at,
                now
            ],
        )])?;
        Ok(())
    }

    fn session_where(&self, clause: &str, arg: &str) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions s JOIN operators o ON o.id = s.operator_id WHERE {clause} \
             ORDER BY (s.state = 'invited') DESC, s.created_at DESC LIMIT 1"
        );
        let row = self.row(Stmt::new(sql, vals![arg]))?;
        Ok(row.map(|r| session_row(&r)).transpose()?)
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("s.id = ?1", id)
    }

    /// The newest session with this connection ID (a live one first).
    pub fn session_by_connection_id(&self, code: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("s.connection_id = ?1", code)
    }

    pub fn session_by_link_token(&self, token: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("s.link_token = ?1", token)
    }

    pub fn session_by_short_code(&self, code: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("s.short_code = ?1", code)
    }

    /// True when a live (invited, unexpired) invitation holds this code.
    pub fn connection_id_in_use(&self, code: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self
            .row(Stmt::new(
                "SELECT 1 FROM sessions WHERE connection_id = ?1 AND state = 'invited' AND expires_at >= ?2",
                vals![code, now],
            ))?
            .is_some())
    }

    /// Invitations that can still be joined by connection ID right now.
    pub fn live_connection_ids(&self, now: i64) -> Result<u64, StoreError> {
        let row = self.row(Stmt::new(
            "SELECT COUNT(*) FROM sessions WHERE state = 'invited' AND expires_at >= ?1",
            vals![now],
        ))?;
        Ok(row.map(|r| r.int(0)).transpose()?.unwrap_or(0) as u64)
    }

    /// Marks the invitation used, atomically: false when it already was.
    pub fn claim_invitation(
        &self,
        id: &str,
        host: &str,
        now: i64,
        home_node: Option<&str>,
    ) -> Result<bool, StoreError> {
        // The home node (with `[cluster]`) in the same statement as the
        // state: a session is never ready without a home, even when its
        // node is lost right after the join (`cluster::orphans` finds it).
        let n = self.essential_changed(vec![Stmt::new(
            "UPDATE sessions SET used_at = ?2, customer_host = ?3, state = 'waiting', \
             home_node = COALESCE(?4, home_node) \
             WHERE id = ?1 AND used_at IS NULL AND state = 'invited' AND expires_at >= ?2",
            vals![id, now, host, home_node],
        )])?;
        Ok(n == 1)
    }

    pub fn set_state(&self, id: &str, state: SessionState) -> Result<(), StoreError> {
        let ended = (state == SessionState::Ended).then(lifeline_core::time::now_millis);
        self.essential(vec![Stmt::new(
            "UPDATE sessions SET state = ?2, ended_at = COALESCE(ended_at, ?3) WHERE id = ?1",
            vals![id, state.as_str(), ended],
        )])?;
        Ok(())
    }

    /// Invitations past their expiry that nobody used.
    pub fn expired_invitations(&self, now: i64) -> Result<Vec<String>, StoreError> {
        ids(&self.rows(Stmt::new(
            "SELECT id FROM sessions WHERE state = 'invited' AND expires_at < ?1",
            vals![now],
        ))?)
    }

    /// Sessions a broker that stopped left live (restored at start: `resume`).
    pub fn live_sessions(&self) -> Result<Vec<String>, StoreError> {
        ids(&self.rows(Stmt::new(
            "SELECT id FROM sessions WHERE state NOT IN ('invited', 'ended')",
            vec![],
        ))?)
    }

    /// Sessions of one operator, or of all, newest first.
    pub fn list_sessions(&self, operator_id: Option<i64>) -> Result<Vec<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE (CAST(?1 AS BIGINT) IS NULL OR s.operator_id = ?1) ORDER BY s.created_at DESC, s.id"
        );
        session_rows(&self.rows(Stmt::new(sql, vals![operator_id]))?)
    }

    /// Up to [`crate::quota::PAGE_ROWS`] + 1 sessions (newest first) that
    /// sort after `after`.
    pub(crate) fn session_rows_after(
        &self,
        operator_id: Option<i64>,
        after: Option<&crate::pages::SessionCursor>,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE (CAST(?1 AS BIGINT) IS NULL OR s.operator_id = ?1) \
             AND (CAST(?2 AS BIGINT) IS NULL OR s.created_at < ?2 OR (s.created_at = ?2 AND s.id > ?3)) \
             ORDER BY s.created_at DESC, s.id LIMIT ?4"
        );
        let params = vec![
            Value::from(operator_id),
            Value::from(after.map(|c| c.created_at)),
            Value::from(after.map(|c| c.id.as_str())),
            Value::from(crate::quota::PAGE_ROWS as i64 + 1),
        ];
        session_rows(&self.rows(Stmt::new(sql, params))?)
    }
}
