//! The broker's `[smtp]` table: the mail server the web console sends
//! invitations through. Raw → typed through [`Doc`], so errors name the
//! file, the line and the key.
//!
//! The password is never written in the config: it is read from a file only
//! its owner may read (`password_file`, mode 0600), and it is never shown by
//! `Debug`.

use serde::Deserialize;
use toml::Spanned;

use super::fields::{MAX_NAME_CHARS, read_secret};
use super::{ConfigError, Doc};
use crate::proxy::Secret;

/// How the broker talks TLS to the mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on the same machine or network.
    None,
    /// SMTP, upgraded with STARTTLS before anything is sent (refused when
    /// the server does not offer it).
    StartTls,
    /// TLS from the first byte ("SMTPS", usually port 465).
    Tls,
}

impl SmtpTls {
    /// The usual port of each mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// Validated `[smtp]` of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// The mail server's host name (also the name its certificate is
    /// checked against).
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The sender, `support@example.com` or `Example Support
    /// <support@example.com>`; checked by the broker when it starts (the
    /// mail crate parses it).
    pub from: String,
    /// User name and password (from `password_file`), when the server
    /// wants a login.
    pub credentials: Option<(String, Secret)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    host: Spanned<String>,
    port: Option<Spanned<u64>>,
    tls: Option<Spanned<String>>,
    from: Spanned<String>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
}

/// Validates `[smtp]` (called from `BrokerConfig::parse`).
pub(super) fn validate_smtp(doc: &Doc<'_>, raw: &RawSmtp) -> Result<SmtpConfig, ConfigError> {
    super::fields::inline_refused(doc, &raw.password, "smtp.password", "smtp.password_file")?;
    let host = raw.host.get_ref().trim();
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    {
        return Err(doc.invalid(
            &raw.host.span(),
            "smtp.host",
            format!(
                "{:?} is not a host name or IP address, e.g. \"mail.example.com\"",
                raw.host.get_ref()
            ),
        ));
    }
    let tls = match &raw.tls {
        None => SmtpTls::StartTls,
        Some(t) => match t.get_ref().as_str() {
            "none" => SmtpTls::None,
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Tls,
            other => {
                return Err(doc.invalid(
                    &t.span(),
                    "smtp.tls",
                    format!("{other:?} is not one of \"none\", \"starttls\" or \"tls\""),
                ));
            }
        },
    };
    let port = doc.bounded(
        &raw.port,
        "smtp.port",
        u64::from(tls.default_port()),
        u64::from(u16::MAX),
        "",
    )?;
    let from = raw.from.get_ref().trim();
    if from.is_empty() || from.chars().count() > 2 * MAX_NAME_CHARS || from.contains(['\r', '\n']) {
        return Err(doc.invalid(
            &raw.from.span(),
            "smtp.from",
            "an e-mail address, optionally with a name: \"Example Support <support@example.com>\"",
        ));
    }
    let credentials = match (&raw.username, &raw.password_file) {
        (None, None) => None,
        (Some(u), Some(f)) => {
            let user = super::fields::name(doc, u, "smtp.username")?;
            Some((user, read_secret(doc, f, "smtp.password_file")?))
        }
        (Some(s), None) | (None, Some(s)) => {
            return Err(doc.invalid(
                &s.span(),
                "smtp.username/password_file",
                "give both username and password_file (a file only you can read, chmod 600), or neither",
            ));
        }
    };
    Ok(SmtpConfig {
        host: host.to_string(),
        port: u16::try_from(port).expect("bounded to u16::MAX above"),
        tls,
        from: from.to_string(),
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::secrets;

    const BASE: &str = "[broker]\nlisten = \"127.0.0.1:1\"\nhttps_listen = \"127.0.0.1:2\"\ndata_dir = \"d\"\n[smtp]\nhost = \"mail.example.com\"\nfrom = \"Support <support@example.com>\"\n";

    #[test]
    fn smtp_defaults_modes_and_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broker.toml");
        let parse = |extra: &str| BrokerConfig::parse(&f, &format!("{BASE}{extra}"));
        let c = parse("").unwrap().smtp.unwrap();
        assert_eq!((c.tls, c.port), (SmtpTls::StartTls, 587));
        assert!(c.credentials.is_none());
        let c = parse("tls = \"tls\"\n").unwrap().smtp.unwrap();
        assert_eq!((c.tls, c.port), (SmtpTls::Tls, 465));
        let c = parse("tls = \"none\"\nport = 2525\n")
            .unwrap()
            .smtp
            .unwrap();
        assert_eq!((c.tls, c.port), (SmtpTls::None, 2525));

        let err = parse("tls = \"ssl\"\n").unwrap_err().to_string();
        assert!(err.contains("broker.toml:8: `smtp.tls`"), "{err}");
        let err = parse("port = 70000\n").unwrap_err().to_string();
        assert!(err.contains("`smtp.port`"), "{err}");
        let err = parse("password = \"hunter2\"\n").unwrap_err().to_string();
        assert!(err.contains("password_file"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse("username = \"mailer\"\n").unwrap_err().to_string();
        assert!(err.contains("give both"), "{err}");

        let pw = dir.path().join("smtp.secret");
        std::fs::write(&pw, "s3cret-mail\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let with_login = "username = \"mailer\"\npassword_file = \"smtp.secret\"\n";
        let err = parse(with_login).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        secrets::write_private(&pw, b"s3cret-mail\n").unwrap();
        let c = parse(with_login).unwrap();
        let (user, secret) = c.smtp.as_ref().unwrap().credentials.as_ref().unwrap();
        assert_eq!((user.as_str(), secret.expose()), ("mailer", "s3cret-mail"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn smtp_host_and_from_are_checked() {
        let f = std::path::Path::new("b.toml");
        let err = BrokerConfig::parse(f, &BASE.replace("mail.example.com", "mail example"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`smtp.host`"), "{err}");
        let err = BrokerConfig::parse(f, &BASE.replace("Support <support@example.com>", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`smtp.from`"), "{err}");
        let none = BASE.split("[smtp]").next().unwrap();
        assert!(BrokerConfig::parse(f, none).unwrap().smtp.is_none());
    }
}
