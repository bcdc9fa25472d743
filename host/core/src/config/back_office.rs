//! The broker's `[back_office]` table (vendor keys, organisations). Raw →
//! typed like every other config, through [`Doc`], so errors name the file,
//! the line and the key. The agent's `[remote_service]` lives in the agent
//! crate (`lifeline_agent::config::remote_service`).
//!
//! Secrets (an organisation's verification code) are never written inline:
//! they are read from a file that only its owner may read.

use serde::Deserialize;
use toml::Spanned;

use super::fields::{inline_refused, keys, name, read_secret};
use super::{ConfigError, Doc};
use crate::proxy::Secret;

/// How the broker checks an organisation's verification code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// An argon2id hash (`lifeline broker license hash-code`).
    Argon2(String),
    /// The code itself, read from a private file.
    File(Secret),
}

/// A service organisation agents authenticate as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub code: CodeCheck,
}

/// Validated `[back_office]` of a broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackOfficeConfig {
    /// Keys (`ed25519:…`) whose signed licenses may be published.
    pub vendor_keys: Vec<String>,
    pub organisations: Vec<Organisation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackOffice {
    vendor_keys: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    organisations: Vec<RawOrganisation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganisation {
    id: Spanned<String>,
    verification_code: Option<Spanned<String>>,
    verification_code_hash: Option<Spanned<String>>,
    verification_code_file: Option<Spanned<String>>,
}

/// Validates `[back_office]` (called from `BrokerConfig::parse`).
pub(super) fn validate_back_office(
    doc: &Doc<'_>,
    raw: &RawBackOffice,
) -> Result<BackOfficeConfig, ConfigError> {
    if raw.vendor_keys.get_ref().is_empty() {
        return Err(doc.invalid(
            &raw.vendor_keys.span(),
            "back_office.vendor_keys",
            "list at least one vendor key (\"ed25519:…\", from `lifeline license keygen`)",
        ));
    }
    let vendor_keys = keys(doc, raw.vendor_keys.get_ref(), "back_office.vendor_keys")?;
    let mut organisations = Vec::new();
    for o in &raw.organisations {
        let key = "back_office.organisations";
        inline_refused(
            doc,
            &o.verification_code,
            &format!("{key}.verification_code"),
            "verification_code_file or verification_code_hash",
        )?;
        let id = name(doc, &o.id, &format!("{key}.id"))?;
        if organisations.iter().any(|x: &Organisation| x.id == id) {
            return Err(doc.invalid(
                &o.id.span(),
                &format!("{key}.id"),
                format!("organisation {id:?} is listed twice"),
            ));
        }
        let code = match (&o.verification_code_hash, &o.verification_code_file) {
            (Some(h), None) if h.get_ref().starts_with("$argon2id$") => {
                CodeCheck::Argon2(h.get_ref().clone())
            }
            (Some(h), None) => {
                return Err(doc.invalid(
                    &h.span(),
                    &format!("{key}.verification_code_hash"),
                    "an argon2id hash (\"$argon2id$…\") as printed by `lifeline broker license hash-code`",
                ));
            }
            (None, Some(f)) => CodeCheck::File(read_secret(
                doc,
                f,
                &format!("{key}.verification_code_file"),
            )?),
            _ => {
                return Err(doc.invalid(
                    &o.id.span(),
                    &format!("{key}.verification_code_hash"),
                    format!("organisation {id:?} needs exactly one of verification_code_hash or verification_code_file"),
                ));
            }
        };
        organisations.push(Organisation { id, code });
    }
    Ok(BackOfficeConfig {
        vendor_keys,
        organisations,
    })
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::secrets;

    const KEY: &str = "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn back_office_organisations_validate() {
        use crate::config::BrokerConfig;
        let dir = tempfile::tempdir().unwrap();
        let base = format!(
            "[broker]\nlisten = \"127.0.0.1:1\"\nhttps_listen = \"127.0.0.1:2\"\ndata_dir = \"d\"\n[back_office]\nvendor_keys = [\"{KEY}\"]\n[[back_office.organisations]]\nid = \"ORG-1\"\n"
        );
        let f = dir.path().join("broker.toml");
        let parse = |extra: &str| BrokerConfig::parse(&f, &format!("{base}{extra}"));
        let c = parse("verification_code_hash = \"$argon2id$v=19$m=19456,t=2,p=1$x$y\"\n").unwrap();
        assert!(matches!(
            c.back_office.unwrap().organisations[0].code,
            CodeCheck::Argon2(_)
        ));
        let err = parse("verification_code = \"1234\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("broker.toml:9: `back_office.organisations.verification_code`"),
            "{err}"
        );
        let err = parse("verification_code_hash = \"1234\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("argon2id"), "{err}");
        let err = parse("").unwrap_err().to_string();
        assert!(err.contains("needs exactly one of"), "{err}");
        secrets::write_private(&dir.path().join("org.secret"), b"code-1\n").unwrap();
        let c = parse("verification_code_file = \"org.secret\"\n").unwrap();
        let CodeCheck::File(code) = &c.back_office.as_ref().unwrap().organisations[0].code else {
            panic!("file code")
        };
        assert_eq!(code.expose(), "code-1");
        assert!(!format!("{c:?}").contains("code-1"));
        let err = BrokerConfig::parse(&f, &base.replace(KEY, "ed25519:short"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`back_office.vendor_keys`"), "{err}");
    }
}
