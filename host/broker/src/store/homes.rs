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

    /// Live sessions held by another node than `me`, with that node
    /// (rebooting ones wait for their rejoin ticket instead).
    pub fn sessions_held_elsewhere(&self, me: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.rows(Stmt::new(
            "SELECT id, home_node FROM sessions \
             WHERE state NOT IN ('invited', 'ended', 'rebooting') \
             AND home_node IS NOT NULL AND home_node <> ?1",
            vals![me],
        ))?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
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
