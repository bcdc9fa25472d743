//! Per-session quotas on what a session may make the broker store, and the
//! size of paged replies.
//!
//! A customer's agent decides how much output, how many chat lines and how
//! many consent answers a session produces; left alone it decides how big
//! the report grows and how much of the broker's disk it fills. Every live
//! session therefore has a budget of recorded events and bytes:
//!
//! - *traffic* (messages relayed between the sides: chat, output, consent
//!   answers, plugin and script events) is recorded while the session is
//!   below [`MAX_REPORT_EVENTS`] and [`MAX_REPORT_BYTES`]; the first message
//!   over the quota adds one note ([`QUOTA_NOTE`]), later ones are relayed
//!   but not recorded;
//! - *lifecycle* events (join, connect, state changes, reboot, end) are
//!   bounded by other limits and keep being recorded, up to
//!   [`LIFECYCLE_RESERVE_EVENTS`] and [`LIFECYCLE_RESERVE_BYTES`] past the
//!   quota, so a session's report never exceeds 20,501 events or 9 MiB.
//!
//! Recorded texts are cut at [`MAX_RECORDED_TEXT_CHARS`].

use serde::Serialize;

/// Events of traffic one session may record. Guards: an agent sending
/// endless short lines to grow the report and the broker's disk.
pub const MAX_REPORT_EVENTS: u64 = 20_000;
/// Bytes of recorded text (kind + text) one session may record. Guards: an
/// agent sending long lines to fill the broker's disk.
pub const MAX_REPORT_BYTES: u64 = 8 << 20;
/// Lifecycle events recorded past the quota (joins, state changes, end):
/// keeps the end of an over-quota session in its report, still bounded.
pub const LIFECYCLE_RESERVE_EVENTS: u64 = 500;
/// Bytes of lifecycle events recorded past the byte quota.
pub const LIFECYCLE_RESERVE_BYTES: u64 = 1 << 20;
/// Longest text recorded for one event; the rest is replaced by a note of
/// how much was cut. Guards: one huge output line taking the whole quota
/// and making a report event larger than a reply page.
pub const MAX_RECORDED_TEXT_CHARS: usize = 8 * 1024;
/// Room for the note [`clip`] appends ("… [N more characters not recorded]").
pub const CLIP_NOTE_CHARS: usize = 64;
/// Longest chat line a customer may send (the operator's limit too);
/// longer lines are refused, not relayed. Guards: chat as a bulk channel.
pub const MAX_CHAT_CHARS: usize = crate::operator_side::MAX_TEXT_CHARS;
/// Rejoin tickets one session may ask for (one per consented restart).
/// Guards: an agent filling the ticket table and the report.
pub const MAX_REJOIN_TICKETS: u32 = 10;
/// Bytes of items (JSON) in one page of a paged reply: a quarter of the
/// frame limit, so a page with its envelope always fits in one frame.
pub const REPLY_PAGE_BYTES: usize = lifeline_protocol::MAX_FRAME_BYTES / 4;
/// Rows read from the database for one page at most.
pub const PAGE_ROWS: usize = 2_000;

/// The note recorded once when a session reaches its quota.
pub const QUOTA_NOTE: &str = "report quota reached: later output is relayed but not recorded";

/// Which budget a report event draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Relayed session messages: chat, output, consent answers.
    Traffic,
    /// The session's own events: join, connect, state changes, end.
    Lifecycle,
}

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    Record,
    /// This event crossed the quota: record [`QUOTA_NOTE`] instead.
    QuotaReached,
    Drop,
}

/// What a live session has recorded so far.
#[derive(Debug, Clone, Default)]
pub struct ReportUsage {
    events: u64,
    bytes: u64,
    over: bool,
}

impl ReportUsage {
    /// Charges one event of `bytes` bytes.
    pub fn charge(&mut self, bytes: usize, class: Class) -> Charge {
        let bytes = bytes as u64;
        match class {
            Class::Traffic if self.over => Charge::Drop,
            Class::Traffic
                if self.events >= MAX_REPORT_EVENTS || self.bytes + bytes > MAX_REPORT_BYTES =>
            {
                self.over = true;
                self.events += 1;
                Charge::QuotaReached
            }
            Class::Lifecycle
                if self.events >= MAX_REPORT_EVENTS + LIFECYCLE_RESERVE_EVENTS
                    || self.bytes + bytes > MAX_REPORT_BYTES + LIFECYCLE_RESERVE_BYTES =>
            {
                Charge::Drop
            }
            Class::Traffic | Class::Lifecycle => {
                self.events += 1;
                self.bytes += bytes;
                Charge::Record
            }
        }
    }
}

/// `text` cut to [`MAX_RECORDED_TEXT_CHARS`], saying how much was cut.
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_RECORDED_TEXT_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((at, _)) => {
            let rest = text[at..].chars().count();
            std::borrow::Cow::Owned(format!(
                "{}… [{rest} more characters not recorded]",
                &text[..at]
            ))
        }
    }
}

/// The longest prefix of `items` whose JSON fits in [`REPLY_PAGE_BYTES`]
/// (at least one item), and whether items were left over.
pub fn fit_page<T: Serialize>(mut items: Vec<T>) -> (Vec<T>, bool) {
    let mut used = 0;
    let mut keep = 0;
    for item in &items {
        let size = serde_json::to_vec(item).map(|v| v.len() + 1).unwrap_or(0);
        if keep > 0 && used + size > REPLY_PAGE_BYTES {
            break;
        }
        used += size;
        keep += 1;
    }
    let more = keep < items.len();
    items.truncate(keep);
    (items, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_stops_at_the_quota_with_one_note_lifecycle_goes_on() {
        let mut u = ReportUsage::default();
        for _ in 0..MAX_REPORT_EVENTS {
            assert_eq!(u.charge(10, Class::Traffic), Charge::Record);
        }
        assert_eq!(u.charge(10, Class::Traffic), Charge::QuotaReached);
        assert_eq!(u.charge(10, Class::Traffic), Charge::Drop);
        assert_eq!(u.charge(10, Class::Lifecycle), Charge::Record);
        for _ in 0..LIFECYCLE_RESERVE_EVENTS {
            u.charge(10, Class::Lifecycle);
        }
        assert_eq!(u.charge(10, Class::Lifecycle), Charge::Drop);
    }

    #[test]
    fn bytes_quota_and_clipping() {
        let mut u = ReportUsage::default();
        let line = "x".repeat(MAX_RECORDED_TEXT_CHARS * 2);
        let clipped = clip(&line);
        assert!(clipped.ends_with(&format!(
            "… [{MAX_RECORDED_TEXT_CHARS} more characters not recorded]"
        )));
        assert_eq!(clip("short"), "short");
        let per = clipped.len();
        let fit = (MAX_REPORT_BYTES as usize) / per;
        for _ in 0..fit {
            assert_eq!(u.charge(per, Class::Traffic), Charge::Record);
        }
        assert_eq!(u.charge(per, Class::Traffic), Charge::QuotaReached);
    }

    #[test]
    fn pages_fit_the_budget_and_never_stall() {
        let items: Vec<String> = (0..100)
            .map(|_| "y".repeat(REPLY_PAGE_BYTES / 10))
            .collect();
        let (page, more) = fit_page(items);
        assert!(more);
        assert_eq!(page.len(), 9);
        let (page, more) = fit_page(vec!["z".repeat(REPLY_PAGE_BYTES * 2)]);
        assert_eq!((page.len(), more), (1, false));
    }
}
