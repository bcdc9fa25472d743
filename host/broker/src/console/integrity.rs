//! The console page's Subresource Integrity and the bundle's manifest
//! (docs/security.md, "Web console"; docs/console-protocol.md).
//!
//! `index.html` is served with an `integrity` attribute on every script
//! and stylesheet it names, a `<link rel="modulepreload" integrity>` for
//! every other JavaScript module of the bundle (the browser then runs an
//! imported module only if its bytes match), and the hashes of the files
//! the page fetches itself (the end-to-end WebAssembly module, the
//! translations) in `<meta name="lifeline-integrity">`, which the scripts
//! pass to `fetch`. So the page's bytes pin every byte of the bundle.
//!
//! The hashes are the SHA-256 that `rust-embed` computes at build time for
//! a release broker (a debug broker reads and hashes the folder as it
//! serves it, so the page stays right while the frontend changes).
//! `/console/assets/manifest.json` lists them with the broker's version
//! and the hash of the page itself: an administrator compares it with the
//! manifest of the release they installed (`GET` it, or hash the page).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Where in `index.html` the module preloads and the fetch hashes go.
pub const MARKER: &str = "<!-- lifeline:integrity -->";

/// The manifest's path under `/console/assets/`.
pub const MANIFEST_PATH: &str = "manifest.json";

/// The manifest's bundle name.
pub const BUNDLE_NAME: &str = "lifeline-console";

/// Why the page could not be put together (a file it names is not in the
/// bundle, or the template lost its marker): a broken build, which the
/// broker's tests catch.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("index.html names assets/{0}, which is not in the console bundle")]
    Missing(String),
    #[error("index.html has no {MARKER} line")]
    NoMarker,
    #[error("the console bundle has no index.html")]
    NoPage,
}

/// The SRI value (`sha256-…`) of a SHA-256 digest.
pub fn sri(sha256: &[u8; 32]) -> String {
    format!("sha256-{}", B64.encode(sha256))
}

/// Whether the page names `path` with an `integrity` attribute (scripts
/// and stylesheets; icons and images run no code and SRI ignores them).
fn pinned_by_attribute(path: &str) -> bool {
    path.ends_with(".js") || path.ends_with(".css")
}

/// Whether the page's scripts fetch `path` themselves (with the hash from
/// the `<meta>`): the WebAssembly module and JSON (translations).
fn fetched_by_script(path: &str) -> bool {
    path.ends_with(".wasm") || path.ends_with(".json")
}

/// The served page: `template` (index.html) with the integrity of every
/// asset, from `hashes` (bundle path → SRI value, index.html excluded).
pub fn index_html(
    template: &str,
    hashes: &BTreeMap<String, String>,
) -> Result<String, IntegrityError> {
    let mut out = String::with_capacity(template.len() + 64 * hashes.len());
    let mut named = Vec::new();
    let mut rest = template;
    // Every src="assets/P" or href="assets/P" of a script or stylesheet.
    while let Some((at, attr_len)) = next_asset_attr(rest) {
        let start = at + attr_len;
        let Some(len) = rest[start..].find('"') else {
            break;
        };
        let path = &rest[start..start + len];
        out.push_str(&rest[..start + len + 1]);
        if pinned_by_attribute(path) {
            let hash = hashes
                .get(path)
                .ok_or_else(|| IntegrityError::Missing(path.to_string()))?;
            out.push_str(&format!(" integrity=\"{hash}\""));
            named.push(path.to_string());
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);

    let mut block = String::new();
    for (path, hash) in hashes {
        if path.ends_with(".js") && !named.contains(path) {
            block.push_str(&format!(
                "<link rel=\"modulepreload\" href=\"assets/{path}\" integrity=\"{hash}\">\n  "
            ));
        }
    }
    let fetched: Vec<String> = hashes
        .iter()
        .filter(|(p, _)| fetched_by_script(p))
        .map(|(p, h)| format!("{p} {h}"))
        .collect();
    block.push_str(&format!(
        "<meta name=\"lifeline-integrity\" content=\"{}\">",
        fetched.join(" ")
    ));
    if !out.contains(MARKER) {
        return Err(IntegrityError::NoMarker);
    }
    Ok(out.replacen(MARKER, &block, 1))
}

/// The next ` src="assets/` or ` href="assets/` in `s`: its offset and
/// length.
fn next_asset_attr(s: &str) -> Option<(usize, usize)> {
    const SRC: &str = " src=\"assets/";
    const HREF: &str = " href=\"assets/";
    match (s.find(SRC), s.find(HREF)) {
        (Some(a), Some(b)) if a < b => Some((a, SRC.len())),
        (_, Some(b)) => Some((b, HREF.len())),
        (Some(a), None) => Some((a, SRC.len())),
        (None, None) => None,
    }
}

/// The bundle's manifest (JSON): its name and version, the SRI value of
/// the page as served, and every file's.
pub fn manifest(version: &str, index: &str, hashes: &BTreeMap<String, String>) -> String {
    let doc = serde_json::json!({
        "bundle": BUNDLE_NAME,
        "version": version,
        "hash": "sha256",
        "index.html": index,
        "files": hashes,
    });
    serde_json::to_string_pretty(&doc).expect("a JSON value always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes() -> BTreeMap<String, String> {
        [
            ("app.js", "sha256-A"),
            ("style.css", "sha256-S"),
            ("icon.svg", "sha256-I"),
            ("src/api.js", "sha256-P"),
            ("vendor/i18next/i18next.js", "sha256-V"),
            ("wasm/lifeline-e2e.wasm", "sha256-W"),
            ("locales/en.json", "sha256-E"),
        ]
        .into_iter()
        .map(|(p, h)| (p.to_string(), h.to_string()))
        .collect()
    }

    #[test]
    fn every_script_style_module_and_fetched_file_is_pinned() {
        let template = "<head>\n  <link rel=\"icon\" href=\"assets/icon.svg\">\n  <link rel=\"stylesheet\" href=\"assets/style.css\">\n  <!-- lifeline:integrity -->\n  <script type=\"module\" src=\"assets/app.js\"></script>\n</head>";
        let page = index_html(template, &hashes()).expect("page");
        assert!(page.contains("href=\"assets/icon.svg\">"), "{page}");
        assert!(
            page.contains("href=\"assets/style.css\" integrity=\"sha256-S\">"),
            "{page}"
        );
        assert!(
            page.contains("src=\"assets/app.js\" integrity=\"sha256-A\"></script>"),
            "{page}"
        );
        assert!(
            page.contains(
                "<link rel=\"modulepreload\" href=\"assets/src/api.js\" integrity=\"sha256-P\">"
            ),
            "{page}"
        );
        assert!(
            page.contains("href=\"assets/vendor/i18next/i18next.js\" integrity=\"sha256-V\""),
            "{page}"
        );
        assert!(
            !page.contains("modulepreload\" href=\"assets/app.js"),
            "app.js is the script itself"
        );
        assert!(
            page.contains("<meta name=\"lifeline-integrity\" content=\"locales/en.json sha256-E wasm/lifeline-e2e.wasm sha256-W\">"),
            "{page}"
        );
        assert!(!page.contains(MARKER));
    }

    #[test]
    fn a_named_file_missing_from_the_bundle_is_an_error() {
        let template =
            "<script type=\"module\" src=\"assets/gone.js\"></script>\n<!-- lifeline:integrity -->";
        assert!(
            matches!(index_html(template, &hashes()), Err(IntegrityError::Missing(p)) if p == "gone.js")
        );
        assert!(matches!(
            index_html("<p></p>", &hashes()),
            Err(IntegrityError::NoMarker)
        ));
    }

    #[test]
    fn the_manifest_names_the_version_the_page_and_every_file() {
        let m: serde_json::Value =
            serde_json::from_str(&manifest("1.2.3", "sha256-X", &hashes())).expect("json");
        assert_eq!(m["bundle"], BUNDLE_NAME);
        assert_eq!(m["version"], "1.2.3");
        assert_eq!(m["index.html"], "sha256-X");
        assert_eq!(m["files"]["wasm/lifeline-e2e.wasm"], "sha256-W");
    }

    #[test]
    fn sri_is_base64_of_the_digest() {
        use sha2::Digest;
        let d: [u8; 32] = sha2::Sha256::digest(b"alert(1)").into();
        // openssl dgst -sha256 -binary | base64, by hand.
        assert_eq!(
            sri(&d),
            "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
        );
    }
}
