//! The `mailto:` link an operator sends an invitation with.

use lifeline_protocol::{InvitationInfo, OperatorProfile};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// A `mailto:` link that sends the invitation to the customer.
pub fn mailto(inv: &InvitationInfo, operator: &OperatorProfile) -> String {
    let subject = format!("Remote support for ticket {}", inv.ticket);
    let body = format!(
        "Hello {},\n\nto start the remote-support session for ticket {}, open this link:\n{}\n\n\
         or run `lifeline agent join {}` and, if asked, give the connection ID {}.\n\
         The invitation expires at {} (UTC).\n\n{}\n{}",
        inv.end_user,
        inv.ticket,
        inv.short_link,
        inv.link,
        inv.connection_id,
        inv.expires_at,
        operator.name,
        operator.title
    );
    format!("mailto:?subject={}&body={}", pct(&subject), pct(&body))
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn pct(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_is_encoded() {
        let inv = InvitationInfo {
            session_id: "s".into(),
            ticket: "T 1&2".into(),
            end_user: "Mario".into(),
            connection_id: "123456".into(),
            link: "https://x/j/abc".into(),
            short_link: "https://x/s/abc".into(),
            expires_at: "2026".into(),
        };
        let p = OperatorProfile {
            username: "a".into(),
            name: "Alice".into(),
            email: String::new(),
            title: String::new(),
        };
        let m = mailto(&inv, &p);
        assert!(m.starts_with("mailto:?subject=Remote%20support%20for%20ticket%20T%201%262&body="));
        assert!(!m.contains(' ') && !m.contains('\n'));
    }
}
