//! Operators' login tokens (stored as SHA-256 hashes).

use super::sql::{Stmt, vals};
use super::{Store, StoreError};

impl Store {
    pub fn add_token(
        &self,
        token_hash: &str,
        operator_id: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.essential(vec![
            Stmt::new(
                "DELETE FROM login_tokens WHERE expires_at < ?1",
                vals![lifeline_core::time::now_millis()],
            ),
            Stmt::new(
                "INSERT INTO login_tokens (token_hash, operator_id, expires_at) VALUES (?1, ?2, ?3)",
                vals![token_hash, operator_id, expires_at],
            ),
        ])?;
        Ok(())
    }

    /// The operator a live token belongs to.
    pub fn token_operator(&self, token_hash: &str) -> Result<Option<i64>, StoreError> {
        let row = self.row(Stmt::new(
            "SELECT operator_id FROM login_tokens WHERE token_hash = ?1 AND expires_at >= ?2",
            vals![token_hash, lifeline_core::time::now_millis()],
        ))?;
        Ok(row.map(|r| r.int(0)).transpose()?)
    }

    pub fn delete_token(&self, token_hash: &str) -> Result<(), StoreError> {
        self.essential(vec![Stmt::new(
            "DELETE FROM login_tokens WHERE token_hash = ?1",
            vals![token_hash],
        )])?;
        Ok(())
    }
}
