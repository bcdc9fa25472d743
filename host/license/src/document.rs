//! The license document: a TOML file with one `[license]` table, signed with
//! ed25519 by the vendor's back-office key over a canonical encoding
//! ([`License::canonical`]). Parsing goes through `config::Doc`, so every
//! error names the file, the line and the field.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use lifeline_core::config::{ConfigError, Doc};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::LicenseError;

/// Domain separation: what the signature is over starts with this line.
pub const CANONICAL_PREFIX: &str = "lifeline-license-v1\n";
/// Prefix of keys and signatures.
pub const ED25519_PREFIX: &str = "ed25519:";
/// Largest license file read (from disk or the back office).
pub const MAX_LICENSE_BYTES: usize = 64 * 1024;
/// Longest serial number.
pub const MAX_SERIAL_CHARS: usize = 64;
/// Longest customer or product name, or feature name.
pub const MAX_FIELD_CHARS: usize = 200;
/// Most features one license may list.
pub const MAX_FEATURES: usize = 256;
/// Most users one license may grant.
pub const MAX_USERS: u64 = 1_000_000;

/// A verified-or-not license (see [`License::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    pub serial: String,
    pub customer: String,
    pub product: String,
    /// Sorted, without duplicates.
    pub features: Vec<String>,
    pub users: u64,
    pub issued: DateTime<Utc>,
    pub expires: NaiveDate,
    pub maintenance_end: NaiveDate,
    /// `ed25519:BASE64`; `None` before signing.
    pub signature: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    license: RawLicense,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLicense {
    serial: Spanned<String>,
    customer: Spanned<String>,
    product: Spanned<String>,
    features: Spanned<Vec<Spanned<String>>>,
    users: Spanned<u64>,
    issued: Spanned<String>,
    expires: Spanned<String>,
    maintenance_end: Spanned<String>,
    signature: Option<Spanned<String>>,
}

/// The fields in signing order (JSON keeps the order of a struct).
#[derive(Serialize)]
struct Canonical<'a> {
    serial: &'a str,
    customer: &'a str,
    product: &'a str,
    features: &'a [String],
    users: u64,
    issued: String,
    expires: String,
    maintenance_end: String,
}

#[derive(Serialize)]
struct OutFile<'a> {
    license: Out<'a>,
}

#[derive(Serialize)]
struct Out<'a> {
    serial: &'a str,
    customer: &'a str,
    product: &'a str,
    features: &'a [String],
    users: u64,
    issued: String,
    expires: String,
    maintenance_end: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
}

fn field(doc: &Doc<'_>, v: &Spanned<String>, key: &str, max: usize) -> Result<String, ConfigError> {
    let s = v.get_ref().trim();
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(doc.invalid(
            &v.span(),
            key,
            format!("must be 1 to {max} printable characters"),
        ));
    }
    Ok(s.to_string())
}

fn date(doc: &Doc<'_>, v: &Spanned<String>, key: &str) -> Result<NaiveDate, ConfigError> {
    NaiveDate::parse_from_str(v.get_ref(), "%Y-%m-%d").map_err(|_| {
        doc.invalid(
            &v.span(),
            key,
            format!(
                "{:?} is not a date; write \"YYYY-MM-DD\", e.g. \"2027-06-30\"",
                v.get_ref()
            ),
        )
    })
}

/// Formats a date as `YYYY-MM-DD`.
pub fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Parses `ed25519:BASE64` into a public key.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, LicenseError> {
    let bad = || LicenseError::BadKey(s.chars().take(60).collect());
    let b = s
        .trim()
        .strip_prefix(ED25519_PREFIX)
        .and_then(|b| B64.decode(b).ok())
        .ok_or_else(bad)?;
    let arr: [u8; 32] = b.try_into().map_err(|_| bad())?;
    VerifyingKey::from_bytes(&arr).map_err(|_| bad())
}

/// `ed25519:BASE64` of a public key.
pub fn public_key_string(k: &VerifyingKey) -> String {
    format!("{ED25519_PREFIX}{}", B64.encode(k.as_bytes()))
}

/// Creates a vendor signing key: the secret goes to `out` (mode 0600).
pub fn keygen(out: &Path) -> Result<VerifyingKey, LicenseError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let text = format!("{}\n", B64.encode(key.to_bytes()));
    lifeline_core::secrets::write_private(out, text.as_bytes())?;
    Ok(key.verifying_key())
}

/// Reads a vendor signing key (the file must be private).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, LicenseError> {
    lifeline_core::secrets::check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| LicenseError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let arr: [u8; 32] = B64
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| LicenseError::BadKeyFile(path.to_owned()))?;
    Ok(SigningKey::from_bytes(&arr))
}

impl License {
    /// Reads and parses a license file (signature not checked yet).
    pub fn load(path: &Path) -> Result<License, LicenseError> {
        let bytes = std::fs::read(path).map_err(|e| LicenseError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::parse_bytes(path, &bytes)
    }

    /// Parses license bytes; `origin` names them in errors.
    pub fn parse_bytes(origin: &Path, bytes: &[u8]) -> Result<License, LicenseError> {
        if bytes.len() > MAX_LICENSE_BYTES {
            return Err(LicenseError::TooLarge {
                origin: origin.to_owned(),
                max: MAX_LICENSE_BYTES,
            });
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| LicenseError::NotText(origin.to_owned()))?;
        Ok(Self::parse(origin, text)?)
    }

    /// Parses license text; errors name `file`, the line and the field.
    pub fn parse(file: &Path, text: &str) -> Result<License, ConfigError> {
        let doc = Doc::new(file, text);
        let raw: RawFile = doc.parse()?;
        let l = raw.license;
        let serial = text_serial(&doc, &l.serial)?;
        let mut features = Vec::new();
        for f in l.features.get_ref() {
            let name = field(&doc, f, "license.features", MAX_FIELD_CHARS)?;
            if features.contains(&name) {
                return Err(doc.invalid(
                    &f.span(),
                    "license.features",
                    format!("{name:?} is listed twice"),
                ));
            }
            features.push(name);
        }
        if features.len() > MAX_FEATURES {
            return Err(doc.invalid(
                &l.features.span(),
                "license.features",
                format!("at most {MAX_FEATURES} features"),
            ));
        }
        features.sort();
        let users = *l.users.get_ref();
        if users == 0 || users > MAX_USERS {
            return Err(doc.invalid(
                &l.users.span(),
                "license.users",
                format!("must be between 1 and {MAX_USERS}, got {users}"),
            ));
        }
        let issued = DateTime::parse_from_rfc3339(l.issued.get_ref())
            .map_err(|_| {
                doc.invalid(
                    &l.issued.span(),
                    "license.issued",
                    format!(
                        "{:?} is not a time; write RFC 3339, e.g. \"2026-11-26T10:00:00Z\"",
                        l.issued.get_ref()
                    ),
                )
            })?
            .with_timezone(&Utc);
        let expires = date(&doc, &l.expires, "license.expires")?;
        let maintenance_end = date(&doc, &l.maintenance_end, "license.maintenance_end")?;
        if issued.date_naive() > expires {
            return Err(doc.invalid(
                &l.expires.span(),
                "license.expires",
                "is before the issue date",
            ));
        }
        let signature = match &l.signature {
            None => None,
            Some(s) => {
                let ok = s
                    .get_ref()
                    .strip_prefix(ED25519_PREFIX)
                    .and_then(|b| B64.decode(b).ok())
                    .is_some_and(|b| b.len() == 64);
                if !ok {
                    return Err(doc.invalid(
                        &s.span(),
                        "license.signature",
                        "a signature is \"ed25519:\" and 88 base64 characters (`lifeline license sign` writes it)",
                    ));
                }
                Some(s.get_ref().clone())
            }
        };
        Ok(License {
            serial,
            customer: field(&doc, &l.customer, "license.customer", MAX_FIELD_CHARS)?,
            product: field(&doc, &l.product, "license.product", MAX_FIELD_CHARS)?,
            features,
            users,
            issued,
            expires,
            maintenance_end,
            signature,
        })
    }

    /// What the signature covers.
    pub fn canonical(&self) -> Vec<u8> {
        // Features are a set: signed sorted, whatever order they came in.
        let mut features = self.features.clone();
        features.sort();
        features.dedup();
        let c = Canonical {
            serial: &self.serial,
            customer: &self.customer,
            product: &self.product,
            features: &features,
            users: self.users,
            issued: fmt_time(self.issued),
            expires: fmt_date(self.expires),
            maintenance_end: fmt_date(self.maintenance_end),
        };
        let mut out = CANONICAL_PREFIX.as_bytes().to_vec();
        out.extend(serde_json::to_vec(&c).expect("plain strings and numbers always serialise"));
        out
    }

    /// Signs (replacing any signature).
    pub fn sign(&mut self, key: &SigningKey) {
        let sig = key.sign(&self.canonical());
        self.signature = Some(format!("{ED25519_PREFIX}{}", B64.encode(sig.to_bytes())));
    }

    /// Checks the signature against the vendor keys (`ed25519:…`).
    pub fn verify(&self, origin: &Path, keys: &[String]) -> Result<(), LicenseError> {
        let sig = self
            .signature
            .as_deref()
            .and_then(|s| s.strip_prefix(ED25519_PREFIX))
            .and_then(|b| B64.decode(b).ok())
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or_else(|| LicenseError::Unsigned(origin.to_owned()))?;
        let sig = Signature::from_bytes(&sig);
        let msg = self.canonical();
        for k in keys {
            if parse_public_key(k)?.verify(&msg, &sig).is_ok() {
                return Ok(());
            }
        }
        Err(LicenseError::BadSignature(origin.to_owned()))
    }

    /// The file text (TOML), with the signature when signed.
    pub fn to_toml(&self) -> String {
        let out = OutFile {
            license: Out {
                serial: &self.serial,
                customer: &self.customer,
                product: &self.product,
                features: &self.features,
                users: self.users,
                issued: fmt_time(self.issued),
                expires: fmt_date(self.expires),
                maintenance_end: fmt_date(self.maintenance_end),
                signature: self.signature.as_deref(),
            },
        };
        format!(
            "# Lifeline license, signed by the vendor: any change breaks the signature.\n{}",
            toml::to_string(&out).expect("plain strings and numbers always serialise")
        )
    }

    /// The issue time as signed: RFC 3339, UTC, seconds.
    pub fn issued_text(&self) -> String {
        fmt_time(self.issued)
    }

    /// True when maintenance covers a product update released on `release`.
    pub fn covers_release(&self, release: NaiveDate) -> bool {
        release <= self.maintenance_end
    }

    /// The "About" box: serial, expiry and maintenance first.
    pub fn about(&self, today: NaiveDate) -> String {
        let state = |d: NaiveDate| {
            if d < today {
                " (ended)".to_string()
            } else {
                format!(" ({} days left)", (d - today).num_days())
            }
        };
        format!(
            "Serial number:    {}\nExpires:          {}{}\nMaintenance:      until {}{}\nCustomer:         {}\nProduct:          {}\nUsers:            {}\nFeatures:         {}\nIssued:           {}",
            self.serial,
            fmt_date(self.expires),
            state(self.expires),
            fmt_date(self.maintenance_end),
            state(self.maintenance_end),
            self.customer,
            self.product,
            self.users,
            if self.features.is_empty() {
                "-".to_string()
            } else {
                self.features.join(", ")
            },
            fmt_time(self.issued),
        )
    }

    /// A JSON summary (for plugins and status).
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::json!({
            "serial": self.serial,
            "customer": self.customer,
            "product": self.product,
            "features": self.features,
            "users": self.users,
            "issued": fmt_time(self.issued),
            "expires": fmt_date(self.expires),
            "maintenance_end": fmt_date(self.maintenance_end),
        })
    }
}

fn text_serial(doc: &Doc<'_>, v: &Spanned<String>) -> Result<String, ConfigError> {
    let s = v.get_ref();
    if s.is_empty()
        || s.len() > MAX_SERIAL_CHARS
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(doc.invalid(
            &v.span(),
            "license.serial",
            format!(
                "a serial number is 1 to {MAX_SERIAL_CHARS} letters, digits, '-' or '_', got {s:?}"
            ),
        ));
    }
    Ok(s.clone())
}

/// Checks a serial number's shape (used by the back office for URLs).
pub fn valid_serial(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SERIAL_CHARS
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
