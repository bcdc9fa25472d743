//! The license back office: admins publish signed licenses (verified
//! against the vendor keys of `[back_office]`); agents fetch the newest one
//! for their serial over HTTPS, authenticated by their service organisation
//! ID and verification code. Failed codes are rate-limited per source
//! address and globally; the code is never logged.
//!
//! Each serial belongs to one organisation (`license_owners`, set when it is
//! first published): another organisation asking for it gets the same 404
//! as for a serial nobody published, so serials cannot be harvested across
//! organisations. Serials published before owners were recorded are served
//! only by a back office with a single organisation; publish them again with
//! `--organisation` to bind them.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lifeline_core::config::BrokerConfig;
use lifeline_core::config::back_office::{BackOfficeConfig, CodeCheck};
use lifeline_license::License;
use lifeline_license::document::valid_serial;
use lifeline_license::fetch::{CODE_HEADER, LICENSE_PATH, ORG_HEADER};
use sha2::{Digest, Sha256};

use crate::ratelimit::{BucketSpec, GuessLimiter};
use crate::store::{LicenseRow, Store};
use crate::{BrokerError, Shared};

/// Failed verification codes one source address may send at once.
pub const CODE_BURST: f64 = 5.0;
/// Time for a source address to earn one more failed attempt.
pub const CODE_REFILL: Duration = Duration::from_secs(30);
/// Failed attempts from all sources at once.
pub const CODE_GLOBAL_BURST: f64 = 50.0;
/// Time for the global budget to earn one more failed attempt.
pub const CODE_GLOBAL_REFILL: Duration = Duration::from_secs(2);
/// Longest organisation ID or verification code read from a request.
pub const MAX_HEADER_CHARS: usize = 256;

/// The source address of an HTTPS connection (set per connection).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

/// The limiter for wrong verification codes.
pub fn limiter() -> GuessLimiter {
    GuessLimiter::new(
        BucketSpec {
            capacity: CODE_BURST,
            refill_every: CODE_REFILL,
        },
        BucketSpec {
            capacity: CODE_GLOBAL_BURST,
            refill_every: CODE_GLOBAL_REFILL,
        },
    )
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(&format!("{LICENSE_PATH}/hello"), get(hello))
        .route(&format!("{LICENSE_PATH}/licenses/{{serial}}"), get(license))
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = (status, format!("{body}\n")).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn header_value<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_HEADER_CHARS)
}

/// Checks the organisation and code; `Err` is the reply to send.
async fn authenticate(s: &Shared, peer: IpAddr, h: &HeaderMap) -> Result<String, Response> {
    let Some(bo) = &s.cfg.back_office else {
        // Not 404: that means "no license for this serial" to agents.
        return Err(text(
            StatusCode::NOT_IMPLEMENTED,
            "this broker offers no license back office (no [back_office] in its configuration)"
                .into(),
        ));
    };
    if let Err(l) = s.code_limiter.acquire(peer) {
        return Err(text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many wrong verification codes from this address; try again in {} s",
                l.retry_after.as_secs().max(1)
            ),
        ));
    }
    let (Some(org), Some(code)) = (header_value(h, ORG_HEADER), header_value(h, CODE_HEADER))
    else {
        return Err(text(
            StatusCode::UNAUTHORIZED,
            format!(
                "send the service organisation ID ({ORG_HEADER}) and verification code ({CODE_HEADER})"
            ),
        ));
    };
    let found = bo.organisations.iter().find(|o| o.id == org);
    let ok = match found.map(|o| &o.code) {
        Some(CodeCheck::File(secret)) => {
            let a = Sha256::digest(secret.expose().as_bytes());
            let b = Sha256::digest(code.as_bytes());
            // Fixed-length digests compared without early exit.
            a.iter()
                .zip(b.iter())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
        }
        other => {
            // Unknown organisations cost the same work as known ones.
            let hash = match other {
                Some(CodeCheck::Argon2(h)) => h.clone(),
                _ => crate::accounts::dummy_hash().to_string(),
            };
            let code = code.to_string();
            let checked = s
                .hash_pool
                .run(move || crate::accounts::verify_password(&code, &hash))
                .await;
            match checked {
                Ok(verified) => verified.unwrap_or(false) && other.is_some(),
                Err(busy) => {
                    // Not a guess: give the attempt back.
                    s.code_limiter.refund(peer);
                    return Err(text(StatusCode::SERVICE_UNAVAILABLE, busy.to_string()));
                }
            }
        }
    };
    if ok {
        s.code_limiter.refund(peer);
        Ok(org.to_string())
    } else {
        tracing::info!(%peer, organisation = org, "back office: wrong organisation ID or verification code");
        Err(text(
            StatusCode::UNAUTHORIZED,
            "unknown service organisation ID or wrong verification code".into(),
        ))
    }
}

async fn hello(
    State(s): State<Arc<Shared>>,
    Extension(Peer(peer)): Extension<Peer>,
    h: HeaderMap,
) -> Response {
    match authenticate(&s, peer, &h).await {
        Ok(org) => text(
            StatusCode::OK,
            format!(
                "{}: license back office; organisation {org} accepted",
                s.name
            ),
        ),
        Err(r) => r,
    }
}

async fn license(
    State(s): State<Arc<Shared>>,
    Extension(Peer(peer)): Extension<Peer>,
    UrlPath(serial): UrlPath<String>,
    h: HeaderMap,
) -> Response {
    let org = match authenticate(&s, peer, &h).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if !valid_serial(&serial) {
        return text(
            StatusCode::BAD_REQUEST,
            "a serial number is letters, digits, '-' or '_'".into(),
        );
    }
    let owned = match s.store.license_owner(&serial) {
        Ok(Some(owner)) => owner == org,
        // Not recorded (published before owners were): only a back office
        // with a single organisation can tell whose it is.
        Ok(None) => s
            .cfg
            .back_office
            .as_ref()
            .is_some_and(|bo| bo.organisations.len() == 1),
        Err(e) => {
            tracing::error!("license owner lookup: {e}");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the back office's database failed".into(),
            );
        }
    };
    let found = if owned {
        s.store.latest_license(&serial)
    } else {
        tracing::info!(
            organisation = org,
            serial,
            "license of another organisation asked for"
        );
        Ok(None)
    };
    match found {
        Ok(Some(row)) => {
            tracing::info!(
                organisation = org,
                serial,
                issued = row.issued,
                "license fetched"
            );
            let mut r = (StatusCode::OK, row.document).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/toml; charset=utf-8"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            format!("no license published for serial {serial}"),
        ),
        Err(e) => {
            tracing::error!("license lookup: {e}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the back office's database failed".into(),
            )
        }
    }
}

/// What publishing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    New(License),
    AlreadyThere(License),
}

/// Admin: [`publish_for`] the back office's only organisation.
pub fn publish(cfg: &BrokerConfig, file: &Path) -> Result<Published, BrokerError> {
    publish_for(cfg, file, None)
}

/// The organisation a license is published for: the one named (it must be
/// configured), else the only one configured.
fn owner_of(bo: &BackOfficeConfig, named: Option<&str>) -> Result<String, BrokerError> {
    let ids: Vec<&str> = bo.organisations.iter().map(|o| o.id.as_str()).collect();
    match (named, ids.as_slice()) {
        (Some(n), _) if ids.contains(&n) => Ok(n.to_string()),
        (Some(n), _) => Err(BrokerError::Admin(format!(
            "organisation {n:?} is not in [back_office] organisations (configured: {})",
            ids.join(", ")
        ))),
        (None, [only]) => Ok((*only).to_string()),
        (None, _) => Err(BrokerError::Admin(format!(
            "name the organisation that owns this license with --organisation (configured: {})",
            ids.join(", ")
        ))),
    }
}

/// Admin: verifies a signed license file against the vendor keys and
/// stores it as the newest license of its serial, owned by `organisation`
/// (see [`owner_of`]). A serial stays with the organisation it was first
/// published for.
pub fn publish_for(
    cfg: &BrokerConfig,
    file: &Path,
    organisation: Option<&str>,
) -> Result<Published, BrokerError> {
    let bo = cfg.back_office.as_ref().ok_or_else(|| {
        BrokerError::Admin(
            "this broker has no [back_office] section with vendor_keys; add one to publish licenses"
                .into(),
        )
    })?;
    let admin = |e: lifeline_license::LicenseError| BrokerError::Admin(e.to_string());
    let l = License::load(file).map_err(admin)?;
    l.verify(file, &bo.vendor_keys).map_err(admin)?;
    let owner = owner_of(bo, organisation)?;
    let store = Store::open_config(cfg)?;
    match store.license_owner(&l.serial)? {
        Some(o) if o != owner => {
            return Err(BrokerError::Admin(format!(
                "{}: serial {} belongs to organisation {o:?}, not {owner:?}",
                file.display(),
                l.serial
            )));
        }
        Some(_) => {}
        None => store.set_license_owner(&l.serial, &owner)?,
    }
    let issued = l.issued.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if let Some(latest) = store.latest_license(&l.serial)? {
        if latest.issued == issued {
            let same = License::parse(Path::new("stored"), &latest.document)
                .is_ok_and(|s| s.canonical() == l.canonical());
            return if same {
                Ok(Published::AlreadyThere(l))
            } else {
                Err(BrokerError::Admin(format!(
                    "{}: a different license with serial {} and issue time {issued} is already published; issue the new one with a later `issued` time",
                    file.display(),
                    l.serial
                )))
            };
        }
        if latest.issued > issued {
            return Err(BrokerError::Admin(format!(
                "{}: a newer license for serial {} (issued {}) is already published; agents would never take this older one",
                file.display(),
                l.serial,
                latest.issued
            )));
        }
    }
    store.insert_license(&LicenseRow {
        serial: l.serial.clone(),
        issued,
        document: l.to_toml(),
        published_at: lifeline_core::time::now_millis(),
    })?;
    Ok(Published::New(l))
}
