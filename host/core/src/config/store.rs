//! The broker's `[store]` table: where it keeps its data. SQLite in the
//! data folder (the default, embedded) or a PostgreSQL server shared by
//! several brokers. Raw → typed through [`Doc`], so errors name the file,
//! the line and the key.
//!
//! A PostgreSQL password is never written in the broker's file (nor
//! logged): it comes from `password_file`, or the whole URL from
//! `url_file`; both files must be private (0600) like every other secret.

use serde::Deserialize;
use toml::Spanned;

use super::fields::read_secret;
use super::{ConfigError, Doc};
use crate::proxy::Secret;

/// Where the broker keeps its data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreConfig {
    /// `broker.db` in the data folder (SQLite, WAL).
    #[default]
    Sqlite,
    /// A PostgreSQL database.
    Postgres(PostgresConfig),
}

/// How to reach the PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/database?…`: from `url` (then it holds no
    /// password), or from `url_file` (then it may).
    pub url: Secret,
    /// The password, from `password_file`.
    pub password: Option<Secret>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    kind: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    url_file: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
}

/// `sslmode` values that need TLS, which the store's client does not
/// speak yet: refused rather than failing at the first connection.
const TLS_MODES: [&str; 3] = ["require", "verify-ca", "verify-full"];

const KINDS: &str = "\"sqlite\" (the default: broker.db in the data folder) or \"postgres\"";

/// Validates `[store]` (called from `BrokerConfig::parse`).
pub(super) fn validate_store(doc: &Doc<'_>, raw: &RawStore) -> Result<StoreConfig, ConfigError> {
    match raw.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("sqlite", _)) => sqlite_only(doc, raw),
        Some(("postgres", _)) => postgres(doc, raw).map(StoreConfig::Postgres),
        Some((other, span)) => Err(doc.invalid(
            &span,
            "store.kind",
            format!("{other:?} is not a store kind; use {KINDS}"),
        )),
    }
}

fn sqlite_only(doc: &Doc<'_>, raw: &RawStore) -> Result<StoreConfig, ConfigError> {
    for (v, key) in [
        (&raw.url, "store.url"),
        (&raw.url_file, "store.url_file"),
        (&raw.password_file, "store.password_file"),
    ] {
        if let Some(v) = v {
            return Err(doc.invalid(
                &v.span(),
                key,
                "only for kind = \"postgres\"; SQLite keeps broker.db in broker.data_dir",
            ));
        }
    }
    Ok(StoreConfig::Sqlite)
}

fn postgres(doc: &Doc<'_>, raw: &RawStore) -> Result<PostgresConfig, ConfigError> {
    let password = raw
        .password_file
        .as_ref()
        .map(|p| read_secret(doc, p, "store.password_file"))
        .transpose()?;
    let url = match (&raw.url, &raw.url_file) {
        (Some(u), None) => {
            check_url(doc, u, "store.url", true)?;
            Secret::new(u.get_ref().trim())
        }
        (None, Some(f)) => {
            let url = read_secret(doc, f, "store.url_file")?;
            let located = Spanned::new(f.span(), url.expose().to_string());
            check_url(doc, &located, "store.url_file", false)?;
            url
        }
        (Some(s), Some(_)) => {
            return Err(doc.invalid(&s.span(), "store.url", "give url or url_file, not both"));
        }
        (None, None) => {
            let span = raw.kind.as_ref().map(|k| k.span()).unwrap_or(0..0);
            return Err(doc.invalid(
                &span,
                "store.url",
                "kind = \"postgres\" needs url = \"postgres://user@host:5432/database\" (password in password_file) or url_file",
            ));
        }
    };
    Ok(PostgresConfig { url, password })
}

/// A `postgres://` or `postgresql://` URL; with `inline` (written in the
/// config file) it must not carry a password.
fn check_url(
    doc: &Doc<'_>,
    u: &Spanned<String>,
    key: &str,
    inline: bool,
) -> Result<(), ConfigError> {
    let text = u.get_ref().trim();
    let Some(rest) = text
        .strip_prefix("postgres://")
        .or_else(|| text.strip_prefix("postgresql://"))
    else {
        return Err(doc.invalid(
            &u.span(),
            key,
            "must be a URL such as \"postgres://lifeline@db.example.com:5432/lifeline\"",
        ));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let user_info = authority.rsplit_once('@').map(|(u, _)| u);
    let has_password = user_info.is_some_and(|u| u.contains(':'))
        || rest
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("password=")));
    if inline && has_password {
        return Err(doc.invalid(
            &u.span(),
            key,
            "a password is not written in the config file; put it in a file only you can read (chmod 600) and set password_file = \"path\" (or the whole URL in url_file)",
        ));
    }
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    if query
        .split('&')
        .any(|p| TLS_MODES.iter().any(|m| p == format!("sslmode={m}")))
    {
        return Err(doc.invalid(
            &u.span(),
            key,
            "TLS to PostgreSQL is not supported yet (sslmode=require/verify-*): reach the database over loopback or a private network, or leave sslmode out",
        ));
    }
    if authority.rsplit('@').next().unwrap_or("").is_empty() {
        return Err(doc.invalid(&u.span(), key, "the URL names no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::secrets;

    const BASE: &str = "[broker]\nlisten = \"127.0.0.1:1\"\nhttps_listen = \"127.0.0.1:2\"\ndata_dir = \"d\"\n[store]\n";

    #[test]
    fn store_kinds_validate() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broker.toml");
        let parse = |extra: &str| BrokerConfig::parse(&f, &format!("{BASE}{extra}"));
        let err = |extra: &str| parse(extra).unwrap_err().to_string();
        assert_eq!(parse("").unwrap().store, StoreConfig::Sqlite);
        assert_eq!(
            parse("kind = \"sqlite\"\n").unwrap().store,
            StoreConfig::Sqlite
        );
        let e = err("kind = \"mysql\"\n");
        assert!(e.contains("broker.toml:6: `store.kind`"), "{e}");
        let e = err("url = \"postgres://x@h/db\"\n");
        assert!(
            e.contains("`store.url`: only for kind = \"postgres\""),
            "{e}"
        );
        let e = err("kind = \"postgres\"\n");
        assert!(e.contains("needs url"), "{e}");
        let e = err("kind = \"postgres\"\nurl = \"mysql://h/db\"\n");
        assert!(e.contains("broker.toml:7: `store.url`"), "{e}");
        let e = err("kind = \"postgres\"\nurl = \"postgres://u:hunter2@h/db\"\n");
        assert!(e.contains("password_file"), "{e}");
        let e = err("kind = \"postgres\"\nurl = \"postgres://u@h/db?password=x\"\n");
        assert!(e.contains("password_file"), "{e}");
        let e = err("kind = \"postgres\"\nurl = \"postgres://u@h/db?sslmode=require\"\n");
        assert!(e.contains("TLS to PostgreSQL"), "{e}");
        let c = parse("kind = \"postgres\"\nurl = \"postgres://lifeline@127.0.0.1:5432/ll\"\n")
            .unwrap();
        let StoreConfig::Postgres(p) = &c.store else {
            panic!("postgres")
        };
        assert_eq!(p.url.expose(), "postgres://lifeline@127.0.0.1:5432/ll");
        assert!(p.password.is_none());
    }

    #[test]
    fn postgres_secrets_come_from_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broker.toml");
        let parse = |extra: &str| BrokerConfig::parse(&f, &format!("{BASE}{extra}"));
        let pg = "kind = \"postgres\"\n";
        secrets::write_private(&dir.path().join("pw"), b"hunter2\n").unwrap();
        let c = parse(&format!(
            "{pg}url = \"postgres://lifeline@db/ll\"\npassword_file = \"pw\"\n"
        ))
        .unwrap();
        let StoreConfig::Postgres(p) = &c.store else {
            panic!("postgres")
        };
        assert_eq!(p.password.as_ref().unwrap().expose(), "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        secrets::write_private(&dir.path().join("url"), b"postgres://u:hunter2@db/ll\n").unwrap();
        let c = parse(&format!("{pg}url_file = \"url\"\n")).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        std::fs::write(dir.path().join("open"), "postgres://u:x@db/ll\n").unwrap();
        let open = dir.path().join("open");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(parse(&format!("{pg}url_file = \"open\"\n")).is_err());
        let e = parse(&format!(
            "{pg}url = \"postgres://u@db/ll\"\nurl_file = \"url\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not both"), "{e}");
    }
}
