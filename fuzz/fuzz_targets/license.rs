//! The license document (host/license/src/document.rs) as the agent reads
//! it from disk or from the back office: parsed, its signature checked
//! against the vendor key, written back (what `license install` stores)
//! and read again.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lifeline_license::document::{License, public_key_string};

fuzz_target!(|data: &[u8]| {
    let origin = Path::new("license.toml");
    let Ok(license) = License::parse_bytes(origin, data) else {
        return;
    };
    let key = public_key_string(&lifeline_fuzz::fuzz_key().verifying_key());
    let verified = license.verify(origin, std::slice::from_ref(&key)).is_ok();
    let _ = license.summary_json();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).expect("a date");
    let _ = license.about(today);
    let _ = license.covers_release(today);
    let text = license.to_toml();
    let again = License::parse(origin, &text).expect("a license written back parses");
    assert_eq!(again, license, "a license survives writing and reading");
    assert_eq!(
        again.verify(origin, &[key]).is_ok(),
        verified,
        "same signature check"
    );
});
