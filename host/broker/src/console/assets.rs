//! The console's static files (`host/broker/console/`): `index.html` at
//! `/console/`, everything else under `/console/assets/`. Release builds
//! embed them in the broker binary; debug builds read that folder, so the
//! frontend can change without a rebuild.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::error::ApiError;

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

/// `GET /console/`.
pub async fn index() -> Response {
    serve("index.html").unwrap_or_else(not_found)
}

/// `GET /console/assets/{*path}`: `assets/{path}` of the console folder,
/// or `{path}` at its root.
pub async fn file(Path(path): Path<String>) -> Response {
    if !safe(&path) {
        return not_found();
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
    let mut r = (StatusCode::OK, f.data.into_owned()).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // Revalidate every time: a new broker version brings new files under
    // the same names.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(r)
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
    fn the_index_is_there_and_tooling_is_not() {
        assert!(super::is_served("index.html"));
        for tooling in ["package.json", "tests/helpers.js", "vendor/update.sh"] {
            assert!(!super::is_served(tooling), "{tooling}");
        }
    }
}
