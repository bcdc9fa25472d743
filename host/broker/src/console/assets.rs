//! The console's static files (`host/broker/console/`): `index.html` at
//! `/console/`, everything else under `/console/assets/`. Release builds
//! embed them in the broker binary; debug builds read that folder, so the
//! frontend can change without a rebuild. The page is served with the
//! integrity of every file it loads, and the bundle's manifest at
//! `/console/assets/manifest.json` (`integrity`).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;
use super::integrity;

/// The console folder without the frontend's own tooling (its tests, npm
/// files, scripts), which browsers never need.
#[derive(RustEmbed)]
#[folder = "console/"]
#[exclude = ".*"]
#[exclude = "*/.*"]
#[exclude = "tests/**"]
#[exclude = "node_modules/**"]
#[exclude = "package.json"]
#[exclude = "package-lock.json"]
#[exclude = "*.sh"]
struct Files;

/// Whether `path` (relative to the console folder) is served; for tests.
pub fn is_served(path: &str) -> bool {
    Files::get(path).is_some()
}

/// Longest asset path served. Threat: none beyond sanity; paths are
/// looked up in a fixed table.
pub const MAX_ASSET_PATH_CHARS: usize = 256;

/// `GET /console/`: index.html with the integrity of every file it loads.
pub async fn index() -> Response {
    match page() {
        Ok(page) => respond(page.into_bytes(), "text/html; charset=utf-8"),
        Err(e) => broken(e),
    }
}

/// The page as served, or why it cannot be.
fn page() -> Result<String, integrity::IntegrityError> {
    let template = Files::get("index.html").ok_or(integrity::IntegrityError::NoPage)?;
    integrity::index_html(&String::from_utf8_lossy(&template.data), &hashes())
}

/// Every served file's SRI value, by its path under `/console/assets/`
/// (the page itself aside). A release broker's hashes were computed when
/// it was built.
pub fn hashes() -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for path in Files::iter() {
        if path == "index.html" {
            continue;
        }
        let served = path.strip_prefix("assets/").unwrap_or(&path).to_string();
        // assets/{path} wins over {path}, as in `file`.
        if out.contains_key(&served) && !path.starts_with("assets/") {
            continue;
        }
        if let Some(f) = Files::get(&path) {
            out.insert(served, integrity::sri(&f.metadata.sha256_hash()));
        }
    }
    out
}

/// `GET /console/assets/manifest.json`: the bundle's manifest.
fn manifest() -> Response {
    match page() {
        Ok(page) => {
            use sha2::Digest;
            let index = integrity::sri(&sha2::Sha256::digest(page.as_bytes()).into());
            let doc = integrity::manifest(env!("CARGO_PKG_VERSION"), &index, &hashes());
            respond(doc.into_bytes(), "application/json; charset=utf-8")
        }
        Err(e) => broken(e),
    }
}

fn broken(e: integrity::IntegrityError) -> Response {
    tracing::error!("the console page cannot be served: {e}");
    ApiError::Internal(e.to_string()).into_response()
}

/// `GET /console/assets/{*path}`: `assets/{path}` of the console folder,
/// or `{path}` at its root.
pub async fn file(Path(path): Path<String>) -> Response {
    if !safe(&path) {
        return not_found();
    }
    if path == integrity::MANIFEST_PATH {
        return manifest();
    }
    serve(&format!("assets/{path}"))
        .or_else(|| serve(&path))
        .unwrap_or_else(not_found)
}

/// A relative path of plain segments: no `..`, no empty or hidden
/// segment, no backslash.
fn safe(path: &str) -> bool {
    path.len() <= MAX_ASSET_PATH_CHARS
        && !path.contains('\\')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.'))
}

fn serve(path: &str) -> Option<Response> {
    let f = Files::get(path)?;
    let mime = f.metadata.mimetype();
    // Text types are UTF-8 throughout the console.
    let content_type = if (mime.starts_with("text/")
        || mime == "application/javascript"
        || mime == "text/javascript"
        || mime == "application/json"
        || mime == "image/svg+xml")
        && !mime.contains("charset")
    {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    Some(respond(f.data.into_owned(), &content_type))
}

fn respond(body: Vec<u8>, content_type: &str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // Revalidate every time: a new broker version brings new files under
    // the same names.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn not_found() -> Response {
    ApiError::NotFound("no such file".into()).into_response()
}

/// `/console/*` that is no route: 404.
pub async fn no_route() -> Response {
    not_found()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_relative_paths_are_served() {
        for ok in ["app.js", "locales/en.json", "vendor/x-1.2.min.js"] {
            assert!(super::safe(ok), "{ok}");
        }
        for bad in [
            "../Cargo.toml",
            "a/../../b",
            "/etc/passwd",
            ".hidden",
            "a//b",
            "a\\b",
            "",
        ] {
            assert!(!super::safe(bad), "{bad}");
        }
    }

    #[test]
    fn the_served_page_pins_every_script_and_the_e2e_module() {
        let page = super::page().expect("the page");
        let hashes = super::hashes();
        for (path, hash) in &hashes {
            if path.ends_with(".js") {
                assert!(
                    page.contains(&format!("href=\"assets/{path}\" integrity=\"{hash}\""))
                        || page.contains(&format!("src=\"assets/{path}\" integrity=\"{hash}\"")),
                    "{path} is not pinned in the page:\n{page}"
                );
            }
        }
        assert!(page.contains("href=\"assets/style.css\" integrity=\"sha256-"));
        assert!(page.contains("<meta name=\"lifeline-integrity\" content=\""));
    }

    #[test]
    fn the_index_is_there_and_tooling_is_not() {
        assert!(super::is_served("index.html"));
        for tooling in ["package.json", "tests/helpers.js", "vendor/update.sh"] {
            assert!(!super::is_served(tooling), "{tooling}");
        }
    }
}
