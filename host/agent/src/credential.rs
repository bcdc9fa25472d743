//! What the customer types or clicks: a 6-digit connection ID, a
//! personalised link (`…/j/TOKEN`) or a short link (`…/s/CODE`).

use lifeline_protocol::JoinCredential;

/// Longest credential text accepted.
pub const MAX_CREDENTIAL_CHARS: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error(
        "{0:?} is neither a 6-digit connection ID nor an invitation link (https://…/j/… or https://…/s/…)"
    )]
    Unrecognised(String),
    #[error("the invitation link is cut short: the part after {0} is missing or damaged")]
    Truncated(&'static str),
}

/// Parses a connection ID ("123456", "123 456", "123-456") or a link.
pub fn parse_credential(s: &str) -> Result<JoinCredential, CredentialError> {
    let t = s.trim();
    if t.len() > MAX_CREDENTIAL_CHARS {
        let start: String = t.chars().take(32).collect();
        return Err(CredentialError::Unrecognised(format!("{start}…")));
    }
    let digits: String = t.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(JoinCredential::ConnectionId(digits));
    }
    if let Some(rest) = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
    {
        let path = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
        let path = path.split(['?', '#']).next().unwrap_or("");
        if let Some(tok) = path.strip_prefix("j/") {
            // Tokens are 43 URL-safe base64 characters.
            if tok.len() == 43
                && tok
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Ok(JoinCredential::LinkToken(tok.to_string()));
            }
            return Err(CredentialError::Truncated("/j/"));
        }
        if let Some(code) = path.strip_prefix("s/") {
            if code.len() == 10 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Ok(JoinCredential::ShortCode(code.to_string()));
            }
            return Err(CredentialError::Truncated("/s/"));
        }
    }
    Err(CredentialError::Unrecognised(t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_links() {
        assert_eq!(
            parse_credential(" 123 456 ").unwrap(),
            JoinCredential::ConnectionId("123456".into())
        );
        assert_eq!(
            parse_credential("012-345").unwrap(),
            JoinCredential::ConnectionId("012345".into())
        );
        let tok = "A".repeat(43);
        assert_eq!(
            parse_credential(&format!("https://b:7444/j/{tok}")).unwrap(),
            JoinCredential::LinkToken(tok.clone())
        );
        assert_eq!(
            parse_credential("https://b:7444/s/AbCdEfGh12").unwrap(),
            JoinCredential::ShortCode("AbCdEfGh12".into())
        );
        assert_eq!(
            parse_credential(&format!("https://b/j/{}", &tok[..20])).unwrap_err(),
            CredentialError::Truncated("/j/")
        );
        assert!(matches!(
            parse_credential("12345"),
            Err(CredentialError::Unrecognised(_))
        ));
        assert!(matches!(
            parse_credential("ftp://x/j/abc"),
            Err(CredentialError::Unrecognised(_))
        ));
    }

    #[test]
    fn overlong_text_is_cut_at_a_character_boundary() {
        // Byte 32 falls inside a two-byte character.
        let long = format!("a{}", "é".repeat(MAX_CREDENTIAL_CHARS));
        let err = parse_credential(&long).unwrap_err();
        assert_eq!(
            err,
            CredentialError::Unrecognised(format!("a{}…", "é".repeat(31)))
        );
    }
}
