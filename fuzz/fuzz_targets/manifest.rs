//! The plugin manifest (host/runtime/src/manifest.rs): `plugin.toml` of a
//! plugin folder or bundle, parsed and validated.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lifeline_fuzz::manifest::{MANIFEST_FILE, Manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Manifest::parse(Path::new(MANIFEST_FILE), text);
    }
});
