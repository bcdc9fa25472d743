//! The plugin bundle reader and its signature file
//! (host/runtime/src/bundle.rs): a `.tar.gz` as the agent receives it
//! (`plugin install`, a plugin folder admin), read with its entry checks,
//! its `SIGNATURE.json` checked against the trusted publisher key, its
//! manifest parsed, then installed into a scratch plugin folder: nothing may
//! be written outside that folder.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lifeline_fuzz::bundle;
use lifeline_fuzz::manifest::{MANIFEST_FILE, Manifest};

fuzz_target!(|data: &[u8]| {
    let scratch = lifeline_fuzz::scratch();
    let file = scratch.join("fuzz.llplugin");
    std::fs::write(&file, data).expect("the bundle file is written");
    let Ok(files) = bundle::read_bundle(&file) else {
        return;
    };
    let trusted = [lifeline_fuzz::fuzz_key().verifying_key()];
    let _ = bundle::verify(&files, &file, &trusted);
    if let Some(text) = files.get(MANIFEST_FILE)
        && let Ok(text) = std::str::from_utf8(text)
    {
        let _ = Manifest::parse(Path::new(MANIFEST_FILE), text);
    }
    let root = scratch.join("plugins");
    std::fs::create_dir_all(&root).expect("the scratch plugin folder");
    if let Ok(installed) = bundle::install(&files, &root, "fuzz") {
        assert!(installed.starts_with(&root));
        for entry in std::fs::read_dir(scratch).expect("the scratch folder lists") {
            let name = entry.expect("a scratch entry").file_name();
            assert!(
                name == "plugins" || name == "fuzz.llplugin",
                "install wrote {name:?} outside the plugin folder"
            );
        }
    }
    std::fs::remove_dir_all(&root).expect("the scratch plugin folder is removed");
});
