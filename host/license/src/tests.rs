//! Unit tests: parsing, signing, verifying, comparing.

use std::path::Path;

use ed25519_dalek::SigningKey;

use crate::LicenseError;
use crate::document::{License, public_key_string};

pub(crate) const SAMPLE: &str = r#"[license]
serial = "LL-2026-0001"
customer = "Rossi Stampa S.r.l."
product = "PrintSuite"
features = ["print", "archive"]
users = 10
issued = "2026-01-15T09:00:00Z"
expires = "2027-12-31"
maintenance_end = "2026-12-31"
"#;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn signed(text: &str, k: &SigningKey) -> License {
    let mut l = License::parse(Path::new("l.toml"), text).unwrap();
    l.sign(k);
    l
}

#[test]
fn sign_write_parse_verify_roundtrip() {
    let k = key(1);
    let l = signed(SAMPLE, &k);
    assert_eq!(l.features, ["archive", "print"]);
    let text = l.to_toml();
    let back = License::parse(Path::new("l.toml"), &text).unwrap();
    assert_eq!(back, l);
    let keys = [public_key_string(&k.verifying_key())];
    back.verify(Path::new("l.toml"), &keys).unwrap();
    // Another vendor's key does not verify it.
    let other = [public_key_string(&key(2).verifying_key())];
    let err = back.verify(Path::new("l.toml"), &other).unwrap_err();
    assert!(matches!(err, LicenseError::BadSignature(_)), "{err}");
    let about = back.about(chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap());
    assert!(
        about.starts_with("Serial number:    LL-2026-0001\nExpires:          2027-12-31"),
        "{about}"
    );
    assert!(
        about.contains("Maintenance:      until 2026-12-31 (213 days left)"),
        "{about}"
    );
}

#[test]
fn tampering_breaks_the_signature() {
    let k = key(1);
    let text = signed(SAMPLE, &k)
        .to_toml()
        .replace("users = 10", "users = 500");
    let l = License::parse(Path::new("t.toml"), &text).unwrap();
    let err = l
        .verify(
            Path::new("t.toml"),
            &[public_key_string(&k.verifying_key())],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("t.toml: `license.signature` does not match"),
        "{err}"
    );
    let unsigned = License::parse(Path::new("u.toml"), SAMPLE).unwrap();
    let err = unsigned
        .verify(Path::new("u.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("u.toml: `license.signature` is missing"),
        "{err}"
    );
}

#[test]
fn bad_input_names_file_line_and_field() {
    let cases = [
        (
            SAMPLE.replace("users = 10", "users = 10\nseats = 3"),
            "l.toml:7:",
            "seats",
        ),
        (SAMPLE.replace("users = 10\n", ""), "l.toml:1:", "users"),
        (
            SAMPLE.replace("\"2027-12-31\"", "\"31/12/2027\""),
            "l.toml:8: `license.expires`",
            "YYYY-MM-DD",
        ),
        (
            SAMPLE.replace("2026-01-15T09:00:00Z", "yesterday"),
            "l.toml:7: `license.issued`",
            "RFC 3339",
        ),
        (
            SAMPLE.replace("users = 10", "users = 0"),
            "l.toml:6: `license.users`",
            "between 1",
        ),
        (
            SAMPLE.replace("LL-2026-0001", "LL 2026/1"),
            "l.toml:2: `license.serial`",
            "letters",
        ),
        (
            format!("{SAMPLE}signature = \"ed25519:nope\"\n"),
            "l.toml:10: `license.signature`",
            "88 base64",
        ),
        (
            SAMPLE.replace("\"archive\"]", "\"print\"]"),
            "l.toml:5: `license.features`",
            "twice",
        ),
    ];
    for (text, place, what) in cases {
        let err = License::parse(Path::new("l.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(place) && err.contains(what),
            "{place} {what}: {err}"
        );
    }
}

#[test]
fn maintenance_covers_releases_up_to_its_end() {
    let old = signed(SAMPLE, &key(1));
    assert!(old.covers_release(chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()));
    assert!(!old.covers_release(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()));
}
