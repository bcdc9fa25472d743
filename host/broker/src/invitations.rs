//! Invitation secrets: the 6-digit connection ID, the personalised-link
//! token and the short-link code, and the guessing limit that protects the
//! connection ID.
//!
//! # Which credentials pay
//!
//! Only **wrong connection IDs** are charged, and only they can be refused
//! for guessing. A personalised link carries [`LINK_TOKEN_BYTES`] = 256 random
//! bits and a short link [`SHORT_CODE_CHARS`] = 10 characters of 62 (about
//! 59.5 bits); both are drawn by the OS CSPRNG. With `L` live invitations, an
//! attacker making `g` guesses hits one with probability at most
//! `g · L / 62^10`: even at a million guesses a second for a whole day
//! (`g` ≈ 8.6 × 10^10) against `L` = 1,000 live links that is
//! 8.6 × 10^13 / 8.4 × 10^17 ≈ 10^-4, and the HTTPS side (`/s/`, `/j/`) and
//! the join both need a round trip per guess, so real rates are orders of
//! magnitude lower. Links and short links therefore need no budget, and an
//! attacker spending the connection-ID budget never blocks them: the
//! customer who got a link can always join. (Rejoin tickets are 256-bit
//! secrets too.)
//!
//! # The odds of guessing a live connection ID
//!
//! A connection ID is drawn uniformly from [`CONNECTION_ID_SPACE`] = 10^6
//! values. An attacker who takes whichever of the `L` live codes he hits wins
//! with probability `L / 10^6` per checked guess. Today's budget (20 + 60
//! guesses per lifetime, whatever `L`) gave him `80 · L / 10^6` per code
//! lifetime: 0.08 for `L` = 1,000.
//!
//! The risk of a guess grows with `L`, so its price does too: checking a
//! connection ID reserves `cost = max(L, 1)` tokens (`L` counted at that
//! moment) from a per-source bucket and from a global bucket, and is only
//! allowed while both hold at least one token (they may then go into debt).
//! A right code gets its tokens back: only wrong IDs (unknown, used, expired)
//! are paid for. One token thus stands for a risk of 10^-6, and the global
//! bucket earns [`WRONG_ID_RISK_PER_LIFETIME`] = 70 tokens per invitation
//! lifetime `T` on top of a burst of [`WRONG_ID_RISK_BURST`] = 25. Over `n`
//! lifetimes the attacker's chance is at most
//!
//! ```text
//! P(n) <= (BURST + n · PER_LIFETIME + (L - 1)) / 10^6
//!      (the last term: a check may start with one token and cost L)
//! long run, per code lifetime:  PER_LIFETIME / 10^6 = 7.0e-5 < 1e-4  for every L
//! worst single lifetime:  (25 + 70 + L - 1) / 10^6
//!      = 9.5e-5 for L = 1,   1.09e-3 for L = 1,000
//! ```
//!
//! The worst single lifetime cannot be below 10^-4 for `L` = 1,000 with any
//! budget that checks a code at all: one guess alone is a 10^-3 chance. What
//! the budget guarantees is that such a guess is rare: after it the global
//! bucket is ~1,000 tokens in debt and connection IDs pause for
//! `(L - 25) / 70` lifetimes (about 2.3 hours with 10-minute invitations).
//! `guess_odds_bound` computes these numbers; a unit test asserts the
//! long-run odds stay below 10^-4 for `L` = 1,000 and simulates an attack.
//!
//! # The trade-off for customers
//!
//! A right code costs nothing, but it is checked only while the budgets hold
//! a token: checking it when they are empty would give an attacker's guess
//! the same check, i.e. unlimited guesses. So while someone keeps the global
//! budget empty, customers typing a connection ID are asked to wait (they are
//! told how long) or to use the invitation link, which always works. The
//! per-source bucket (an IPv4 address or an IPv6 /64) earns
//! [`PER_SOURCE_RISK_PER_LIFETIME`] = 10 tokens per lifetime, a seventh of
//! the global rate, from a burst of [`PER_SOURCE_RISK_BURST`] = 5: holding
//! the global budget down takes at least 7 sources spending continuously,
//! and while one noisy address or /64 has spent its own budget, customers
//! elsewhere still join with the right code. The burst of 25 leaves room for
//! several sources' checks while fewer than 25 codes are live; with more
//! live codes one wrong guess can empty it (its risk is that high).

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
/// Global risk tokens (one = one wrong connection ID while one code is
/// live) available at once. Guards: a burst of guesses from many sources.
pub const WRONG_ID_RISK_BURST: f64 = 25.0;
/// Global risk tokens earned per invitation lifetime. Guards: the odds of a
/// botnet guessing any live code, `PER_LIFETIME / 10^6` per code lifetime.
pub const WRONG_ID_RISK_PER_LIFETIME: f64 = 70.0;
/// Risk tokens one source (IPv4 address or IPv6 /64) holds at once.
pub const PER_SOURCE_RISK_BURST: f64 = 5.0;
/// Risk tokens one source earns per invitation lifetime (one per minute with
/// 10-minute invitations). Guards: one address spending the global budget.
pub const PER_SOURCE_RISK_PER_LIFETIME: f64 = 10.0;
/// Draws of a fresh connection ID before giving up (all live codes taken).
pub const MAX_CODE_DRAWS: usize = 64;

/// The limiter for wrong connection IDs, sized for invitations living `ttl`
/// (charge `wrong_id_cost` per attempt, refund right codes).
pub fn join_limiter(ttl: Duration) -> GuessLimiter {
    GuessLimiter::new(
        BucketSpec {
            capacity: PER_SOURCE_RISK_BURST,
            refill_every: ttl.div_f64(PER_SOURCE_RISK_PER_LIFETIME),
        },
        BucketSpec {
            capacity: WRONG_ID_RISK_BURST,
            refill_every: ttl.div_f64(WRONG_ID_RISK_PER_LIFETIME),
        },
    )
}

/// Tokens a connection-ID attempt reserves while `live` codes are live.
pub fn wrong_id_cost(live: u64) -> f64 {
    live.max(1) as f64
}

/// Upper bound of the chance that an attacker who takes whichever of `live`
/// codes he hits guesses one within `lifetimes` invitation lifetimes.
pub fn guess_odds_bound(live: u64, lifetimes: u32) -> f64 {
    let tokens = WRONG_ID_RISK_BURST
        + f64::from(lifetimes) * WRONG_ID_RISK_PER_LIFETIME
        + (wrong_id_cost(live) - 1.0);
    tokens / f64::from(CONNECTION_ID_SPACE)
}

/// The bound per code lifetime over a long attack (any number of live codes).
pub fn long_run_odds_per_lifetime() -> f64 {
    WRONG_ID_RISK_PER_LIFETIME / f64::from(CONNECTION_ID_SPACE)
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
        let l = join_limiter(Duration::from_secs(600));
        assert_eq!(
            l.global.refill_every,
            Duration::from_secs(600).div_f64(70.0)
        );
        assert_eq!(l.per_source.refill_every, Duration::from_secs(60));
    }

    #[test]
    fn odds_for_a_thousand_live_codes_stay_below_one_in_ten_thousand() {
        let space = f64::from(CONNECTION_ID_SPACE);
        // Before: 20 + 60 guesses per lifetime whatever the number of codes.
        let old = (20.0 + 60.0) * 1000.0 / space;
        assert!(old > 0.07, "{old}");
        // Now, per code lifetime over a long attack, for any L.
        assert!(long_run_odds_per_lifetime() < 1e-4);
        // Over 1,000 lifetimes (a week of 10-minute codes) with L = 1,000.
        let per_lifetime = guess_odds_bound(1000, 1000) / 1000.0;
        assert!(per_lifetime < 1e-4, "{per_lifetime}");
        // A single lifetime with one live code.
        assert!(guess_odds_bound(1, 1) < 1e-4, "{}", guess_odds_bound(1, 1));
        // A single lifetime with 1,000 live codes: one check alone is 1e-3.
        assert!((guess_odds_bound(1000, 1) - 1.094e-3).abs() < 1e-9);
        // The per-source rate is a seventh of the global one.
        assert_eq!(
            WRONG_ID_RISK_PER_LIFETIME / PER_SOURCE_RISK_PER_LIFETIME,
            7.0
        );
    }

    /// An attacker with 10,000 sources guessing every second for 100
    /// lifetimes while 1,000 codes are live: the summed chance of the
    /// guesses the limiter let through stays below 10^-4 per lifetime.
    #[test]
    fn simulated_botnet_gets_the_bounded_odds() {
        let ttl = Duration::from_secs(600);
        let l = join_limiter(ttl);
        let live = 1000;
        let t0 = std::time::Instant::now();
        let lifetimes = 100u32;
        let mut risk = 0.0;
        for sec in 0..u64::from(lifetimes) * ttl.as_secs() {
            let src = std::net::IpAddr::from([10, 0, (sec % 100) as u8, (sec / 100 % 100) as u8]);
            let now = t0 + Duration::from_secs(sec);
            if l.acquire_at(src, wrong_id_cost(live), now).is_ok() {
                risk += live as f64 / f64::from(CONNECTION_ID_SPACE);
            }
        }
        let per_lifetime = risk / f64::from(lifetimes);
        assert!(per_lifetime < 1e-4, "{per_lifetime}");
        assert!(risk <= guess_odds_bound(live, lifetimes), "{risk}");
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
