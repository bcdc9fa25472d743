//! Comparing an installed license with a candidate from the back office:
//! is it for this installation, is it really newer, and what changed (for
//! the customer's announcement).

use chrono::NaiveDate;

use crate::document::{License, fmt_date};

/// What a candidate license changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub maintenance: Option<(NaiveDate, NaiveDate)>,
    pub expires: Option<(NaiveDate, NaiveDate)>,
    pub added_features: Vec<String>,
    pub removed_features: Vec<String>,
    pub users: Option<(u64, u64)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// One line per change, in the customer's words.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((a, b)) = self.maintenance {
            let verb = if b > a { "extended" } else { "shortened" };
            out.push(format!(
                "Maintenance {verb}: until {} (was {})",
                fmt_date(b),
                fmt_date(a)
            ));
        }
        if let Some((a, b)) = self.expires {
            out.push(format!(
                "License expiry date: {} (was {})",
                fmt_date(b),
                fmt_date(a)
            ));
        }
        if !self.added_features.is_empty() {
            out.push(format!(
                "Added features: {}",
                self.added_features.join(", ")
            ));
        }
        if !self.removed_features.is_empty() {
            out.push(format!(
                "Features no longer licensed: {}",
                self.removed_features.join(", ")
            ));
        }
        if let Some((a, b)) = self.users {
            let verb = if b > a { "added" } else { "removed" };
            out.push(format!("Users: {b} (was {a}; {} {verb})", b.abs_diff(a)));
        }
        out
    }
}

/// The verdict on a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Newer and different: install it.
    Newer(Changes),
    /// Same issue date and content: nothing to do.
    Same,
    /// Refused, with the reason.
    Refused(String),
}

/// Compares `candidate` with `installed`.
pub fn compare(installed: &License, candidate: &License) -> Verdict {
    if candidate.serial != installed.serial {
        return Verdict::Refused(format!(
            "the back office sent a license for serial {}, but this installation has serial {}",
            candidate.serial, installed.serial
        ));
    }
    if candidate.product != installed.product {
        return Verdict::Refused(format!(
            "the license is for the product {:?}, the installed one for {:?}",
            candidate.product, installed.product
        ));
    }
    if candidate.issued == installed.issued && candidate.canonical() == installed.canonical() {
        return Verdict::Same;
    }
    if candidate.issued <= installed.issued {
        return Verdict::Refused(format!(
            "the offered license (issued {}) is not newer than the installed one (issued {})",
            candidate.issued.to_rfc3339(),
            installed.issued.to_rfc3339()
        ));
    }
    let mut c = Changes::default();
    if candidate.maintenance_end != installed.maintenance_end {
        c.maintenance = Some((installed.maintenance_end, candidate.maintenance_end));
    }
    if candidate.expires != installed.expires {
        c.expires = Some((installed.expires, candidate.expires));
    }
    c.added_features = candidate
        .features
        .iter()
        .filter(|f| !installed.features.contains(f))
        .cloned()
        .collect();
    c.removed_features = installed
        .features
        .iter()
        .filter(|f| !candidate.features.contains(f))
        .cloned()
        .collect();
    if candidate.users != installed.users {
        c.users = Some((installed.users, candidate.users));
    }
    // Empty changes: re-issued with the same terms (e.g. the customer's
    // name corrected); still newer, installed quietly.
    Verdict::Newer(c)
}
