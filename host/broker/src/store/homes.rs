//! Which broker node holds a live session (`[cluster]`): set when the
//! session's agent enters on a node, read to find sessions whose node
//! stopped, and cleared when a node ends such a session.

use super::sql::{Stmt, vals};
use super::{Store, StoreError};

impl Store {
    /// Session `id` is held by node `node` from now on.
    pub fn set_home_node(&self, id: &str, node: &str) -> Result<(), StoreError> {
        self.changed(Stmt::new(
            "UPDATE sessions SET home_node = ?2 WHERE id = ?1",
            vals![id, node],
        ))?;
        Ok(())
    }

    /// The node holding live session `id` (a rebooting one included), if any:
    /// where other nodes send its requests and its agent's frames.
    pub fn home_node(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = self.row(Stmt::new(
            "SELECT home_node FROM sessions \
             WHERE id = ?1 AND state NOT IN ('invited', 'ended')",
            vals![id],
        ))?;
        Ok(match row {
            Some(r) => r.opt_text(0)?,
            None => None,
        })
    }

    /// The other nodes than `me` holding live sessions (rebooting ones
    /// wait for their rejoin ticket instead): one row per node, however
    /// many sessions.
    pub fn nodes_holding_sessions(&self, me: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.rows(Stmt::new(
            "SELECT DISTINCT home_node FROM sessions \
             WHERE state NOT IN ('invited', 'ended', 'rebooting') \
             AND home_node IS NOT NULL AND home_node <> ?1",
            vals![me],
        ))?;
        Ok(rows
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, super::sql::DbError>>()?)
    }

    /// The live sessions node `node` holds (rebooting ones aside).
    pub fn sessions_held_by(&self, node: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.rows(Stmt::new(
            "SELECT id FROM sessions \
             WHERE state NOT IN ('invited', 'ended', 'rebooting') AND home_node = ?1",
            vals![node],
        ))?;
        Ok(rows
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, super::sql::DbError>>()?)
    }

    /// Ends session `id` if it is still live and still held by `node`:
    /// true for the one caller that did (several nodes may try at once).
    pub fn end_if_held_by(&self, id: &str, node: &str) -> Result<bool, StoreError> {
        let now = lifeline_core::time::now_millis();
        let n = self.changed(Stmt::new(
            "UPDATE sessions SET state = 'ended', ended_at = COALESCE(ended_at, ?3) \
             WHERE id = ?1 AND home_node = ?2 AND state NOT IN ('invited', 'ended')",
            vals![id, node, now],
        ))?;
        Ok(n == 1)
    }
}
