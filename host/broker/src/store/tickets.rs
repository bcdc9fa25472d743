//! Rejoin tickets (a rebooting customer's way back) and resume credentials
//! (an agent's way back after a broker restart): hashes only, bound to a
//! session, single use, expiring.

use super::sql::{Row, Stmt, vals};
use super::{Store, StoreError};

/// A ticket or credential row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub session_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

fn ticket_row(r: Option<Row>) -> Result<Option<TicketRow>, StoreError> {
    let Some(r) = r else { return Ok(None) };
    Ok(Some(TicketRow {
        session_id: r.text(0)?,
        expires_at: r.int(1)?,
        used_at: r.opt_int(2)?,
    }))
}

impl Store {
    pub(crate) fn insert_rejoin_ticket(
        &self,
        hash: &str,
        session_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.one(Stmt::new(
            "INSERT INTO rejoin_tickets (ticket_hash, session_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
            vals![hash, session_id, now, expires_at],
        ))?;
        Ok(())
    }

    pub(crate) fn rejoin_ticket(&self, hash: &str) -> Result<Option<TicketRow>, StoreError> {
        ticket_row(self.row(Stmt::new(
            "SELECT session_id, expires_at, used_at FROM rejoin_tickets WHERE ticket_hash = ?1",
            vals![hash],
        ))?)
    }

    /// Marks a ticket used, atomically: false when it already was.
    pub(crate) fn use_rejoin_ticket(&self, hash: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.changed(Stmt::new(
            "UPDATE rejoin_tickets SET used_at = ?2 WHERE ticket_hash = ?1 AND used_at IS NULL",
            vals![hash, now],
        ))?;
        Ok(n == 1)
    }

    /// When the newest unused rejoin ticket of a session expires.
    pub(crate) fn rejoin_deadline(&self, session_id: &str) -> Result<Option<i64>, StoreError> {
        let row = self.row(Stmt::new(
            "SELECT MAX(expires_at) FROM rejoin_tickets WHERE session_id = ?1 AND used_at IS NULL",
            vals![session_id],
        ))?;
        Ok(row.map(|r| r.opt_int(0)).transpose()?.flatten())
    }

    /// Stores a new credential for a session; the session's older unused
    /// ones stop being valid (one credential per agent connection).
    pub(crate) fn insert_resume_credential(
        &self,
        hash: &str,
        session_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.essential(vec![
            Stmt::new(
                "UPDATE resume_credentials SET used_at = ?2 WHERE session_id = ?1 AND used_at IS NULL",
                vals![session_id, now],
            ),
            Stmt::new(
                "INSERT INTO resume_credentials (credential_hash, session_id, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                vals![hash, session_id, now, expires_at],
            ),
        ])?;
        Ok(())
    }

    pub(crate) fn resume_credential(&self, hash: &str) -> Result<Option<TicketRow>, StoreError> {
        ticket_row(self.row(Stmt::new(
            "SELECT session_id, expires_at, used_at FROM resume_credentials WHERE credential_hash = ?1",
            vals![hash],
        ))?)
    }

    /// Marks a credential used, atomically: false when it already was.
    pub(crate) fn use_resume_credential(&self, hash: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.essential_changed(vec![Stmt::new(
            "UPDATE resume_credentials SET used_at = ?2 WHERE credential_hash = ?1 AND used_at IS NULL",
            vals![hash, now],
        )])?;
        Ok(n == 1)
    }
}
