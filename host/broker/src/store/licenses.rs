//! Published license documents and which organisation owns each serial.

use super::sql::{Stmt, vals};
use super::{Store, StoreError};

/// A published license document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRow {
    pub serial: String,
    /// RFC 3339 UTC, seconds (sorts by time).
    pub issued: String,
    pub document: String,
    pub published_at: i64,
}

impl Store {
    /// The newest license published for `serial` (by issue time).
    pub fn latest_license(&self, serial: &str) -> Result<Option<LicenseRow>, StoreError> {
        let row = self.row(Stmt::new(
            "SELECT serial, issued, document, published_at FROM license_documents \
             WHERE serial = ?1 ORDER BY issued DESC LIMIT 1",
            vals![serial],
        ))?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(LicenseRow {
            serial: r.text(0)?,
            issued: r.text(1)?,
            document: r.text(2)?,
            published_at: r.int(3)?,
        }))
    }

    /// Stores a license; false when one with the same serial and issue time
    /// is already there (it is left unchanged).
    pub fn insert_license(&self, row: &LicenseRow) -> Result<bool, StoreError> {
        let n = self.changed(Stmt::new(
            "INSERT INTO license_documents (serial, issued, document, published_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            vals![&row.serial, &row.issued, &row.document, row.published_at],
        ))?;
        Ok(n == 1)
    }

    /// The organisation a serial was published for, if recorded.
    pub fn license_owner(&self, serial: &str) -> Result<Option<String>, StoreError> {
        let row = self.row(Stmt::new(
            "SELECT organisation FROM license_owners WHERE serial = ?1",
            vals![serial],
        ))?;
        Ok(row.map(|r| r.text(0)).transpose()?)
    }

    /// Records the owner of a serial (first publish; a later one for the
    /// same serial leaves it unchanged).
    pub fn set_license_owner(&self, serial: &str, organisation: &str) -> Result<(), StoreError> {
        self.one(Stmt::new(
            "INSERT INTO license_owners (serial, organisation) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            vals![serial, organisation],
        ))?;
        Ok(())
    }
}
