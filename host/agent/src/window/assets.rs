//! The page's static files: the window's own (`host/agent/window/`) and
//! the web console's DOM and translation helpers and vendored i18next,
//! reused by path. Release builds embed them; debug builds read them from
//! the source tree.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

/// The window's page, scripts, styles and translations.
#[derive(RustEmbed)]
#[folder = "window/"]
#[exclude = ".*"]
#[exclude = "*/.*"]
struct Page;

/// The console's helpers the page imports as `/lib/…`.
#[derive(RustEmbed)]
#[folder = "../broker/console/src/"]
#[include = "dom.js"]
#[include = "i18n.js"]
#[include = "integrity.js"]
struct ConsoleLib;

/// i18next as the console vendors it (`/vendor/i18next/…`, its licence
/// included).
#[derive(RustEmbed)]
#[folder = "../broker/console/vendor/i18next/"]
#[exclude = "*.sh"]
struct Vendor;

/// Longest asset path looked up.
pub const MAX_ASSET_PATH_CHARS: usize = 256;

/// A relative path of plain segments: no `..`, no empty or hidden
/// segment, no backslash.
pub fn safe(path: &str) -> bool {
    path.len() <= MAX_ASSET_PATH_CHARS
        && !path.contains('\\')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.'))
}

/// The file at `path` (without the leading slash), if it is one.
pub fn get(path: &str) -> Option<Response> {
    if !safe(path) {
        return None;
    }
    let file = if let Some(rest) = path.strip_prefix("lib/") {
        ConsoleLib::get(rest)
    } else if let Some(rest) = path.strip_prefix("vendor/i18next/") {
        Vendor::get(rest)
    } else {
        Page::get(path)
    }?;
    let mime = file.metadata.mimetype();
    let content_type = if mime.contains("charset") || !is_text(mime) {
        mime.to_string()
    } else {
        format!("{mime}; charset=utf-8")
    };
    let mut r = (StatusCode::OK, file.data.into_owned()).into_response();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Some(r)
}

fn is_text(mime: &str) -> bool {
    mime.starts_with("text/")
        || mime == "application/javascript"
        || mime == "application/json"
        || mime == "image/svg+xml"
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_and_its_helpers_are_served_and_nothing_else() {
        for ok in [
            "index.html",
            "app.js",
            "locales/en.json",
            "locales/it.json",
            "lib/dom.js",
            "lib/i18n.js",
            "lib/integrity.js",
            "vendor/i18next/i18next.js",
            "vendor/i18next/LICENSE",
        ] {
            assert!(super::get(ok).is_some(), "{ok}");
        }
        for bad in ["lib/app.js", "../Cargo.toml", "lib/../src/lib.rs", ".x", ""] {
            assert!(super::get(bad).is_none(), "{bad}");
        }
    }

    /// Every relative `import … from '…'` of a served script names a
    /// served file (a console helper that gains an import must be served
    /// too, or the page's modules do not load).
    #[test]
    fn every_import_of_a_served_script_is_served() {
        let scripts = super::Page::iter()
            .map(|p| p.to_string())
            .chain(super::ConsoleLib::iter().map(|p| format!("lib/{p}")))
            .filter(|p| p.ends_with(".js"));
        for script in scripts {
            let file = match script.strip_prefix("lib/") {
                Some(rest) => super::ConsoleLib::get(rest),
                None => super::Page::get(&script),
            };
            let data = file.expect("listed files are embedded").data;
            let text = String::from_utf8(data.into_owned()).expect("utf-8 script");
            for spec in text
                .split("from '")
                .skip(1)
                .filter_map(|rest| rest.split('\'').next())
                .filter(|s| s.starts_with('.'))
            {
                let target = resolve(&script, spec);
                assert!(
                    super::get(&target).is_some(),
                    "{script} imports {spec} ({target}), not served"
                );
            }
        }
    }

    /// `spec` relative to the folder of `from`, as an asset path.
    fn resolve(from: &str, spec: &str) -> String {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for seg in spec.split('/') {
            match seg {
                "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        parts.join("/")
    }
}
