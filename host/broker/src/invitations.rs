//! Invitation secrets: the 6-digit connection ID, the personalised-link
//! token and the short-link code, and the guessing limits that protect them.
//!
//! # Why guessing a live connection ID stays below 1 in 10,000
//!
//! A connection ID is drawn uniformly from 10^6 values by the OS CSPRNG, so
//! one wrong guess hits a given live code with probability 1/10^6 (even when
//! it hits *some* live code, only one code is at stake per guess). Every
//! failed join attempt — connection ID, short code, link token — pays one
//! token from a **global** bucket of [`GLOBAL_BURST`] tokens that refills so
//! that at most [`GLOBAL_GUESSES_PER_LIFETIME`] tokens are earned over an
//! invitation's lifetime `T` (refill every `T / 60`; 10 s for the default
//! 10 minutes). Over its whole life a code thus faces at most
//! `20 + 60 = 80` guesses from all sources together:
//!
//! ```text
//! P(code guessed) <= 80 / 10^6 = 8.0e-5 < 1e-4 = 1 in 10,000
//! ```
//!
//! The budget is derived from the configured lifetime, so the bound holds for
//! any TTL. A per-source bucket ([`PER_SOURCE_BURST`] attempts, one more per
//! [`PER_SOURCE_REFILL`]) keeps one noisy address from spending the global
//! budget alone. The price: a flood of wrong guesses makes honest customers
//! wait to type a code (they get the wait time); personalised links carry
//! 256 bits and still work.

use std::time::Duration;

use base64::Engine;
use rand::Rng;
use rand::RngCore;

use crate::ratelimit::{BucketSpec, GuessLimiter};

/// Digits in a connection ID.
pub const CONNECTION_ID_DIGITS: usize = 6;
/// Number of possible connection IDs.
pub const CONNECTION_ID_SPACE: u32 = 1_000_000;
/// Bytes of randomness in a personalised-link token (256 bits).
pub const LINK_TOKEN_BYTES: usize = 32;
/// Characters in a short-link code (62 symbols: about 59.5 bits).
pub const SHORT_CODE_CHARS: usize = 10;
/// Failed attempts all sources together may make at once.
pub const GLOBAL_BURST: f64 = 20.0;
/// Further failed attempts earned over one invitation lifetime.
pub const GLOBAL_GUESSES_PER_LIFETIME: f64 = 60.0;
/// Failed attempts one source address may make at once.
pub const PER_SOURCE_BURST: f64 = 5.0;
/// Time for one source address to earn one more attempt.
pub const PER_SOURCE_REFILL: Duration = Duration::from_secs(60);
/// Draws of a fresh connection ID before giving up (all live codes taken).
pub const MAX_CODE_DRAWS: usize = 64;

/// The limiter for join attempts, sized for invitations living `ttl`.
pub fn join_limiter(ttl: Duration) -> GuessLimiter {
    GuessLimiter::new(
        BucketSpec {
            capacity: PER_SOURCE_BURST,
            refill_every: PER_SOURCE_REFILL,
        },
        BucketSpec {
            capacity: GLOBAL_BURST,
            refill_every: ttl.div_f64(GLOBAL_GUESSES_PER_LIFETIME),
        },
    )
}

/// Upper bound of the chance that a live code is guessed over its lifetime.
pub fn guess_probability_bound() -> f64 {
    (GLOBAL_BURST + GLOBAL_GUESSES_PER_LIFETIME) / f64::from(CONNECTION_ID_SPACE)
}

/// A uniformly drawn 6-digit connection ID (leading zeros kept).
pub fn new_connection_id() -> String {
    let n: u32 = rand::rngs::OsRng.gen_range(0..CONNECTION_ID_SPACE);
    format!("{n:0width$}", width = CONNECTION_ID_DIGITS)
}

/// A personalised-link token: 256 random bits, URL-safe base64.
pub fn new_link_token() -> String {
    let mut b = [0u8; LINK_TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A short-link code of [`SHORT_CODE_CHARS`] alphanumerics.
pub fn new_short_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..SHORT_CODE_CHARS)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A session ID: 12 lower-case hex digits, not secret.
pub fn new_session_id() -> String {
    let mut b = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// True for strings that look like a connection ID.
pub fn is_connection_id(s: &str) -> bool {
    s.len() == CONNECTION_ID_DIGITS && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_bound() {
        let c = new_connection_id();
        assert!(is_connection_id(&c));
        assert_eq!(new_link_token().len(), 43);
        assert_eq!(new_short_code().len(), SHORT_CODE_CHARS);
        assert!(guess_probability_bound() < 1e-4);
        let l = join_limiter(Duration::from_secs(600));
        assert_eq!(l.global.refill_every, Duration::from_secs(10));
    }

    #[test]
    fn connection_ids_cover_the_space_uniformly() {
        // 20,000 draws: each leading digit should appear about 2,000 times.
        let mut counts = [0u32; 10];
        for _ in 0..20_000 {
            counts[(new_connection_id().as_bytes()[0] - b'0') as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (1_600..2_400).contains(&c)),
            "{counts:?}"
        );
    }
}
