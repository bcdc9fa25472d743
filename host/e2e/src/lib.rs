//! End-to-end encryption between an operator endpoint (the operator client
//! or the web console) and the agent, inside the session the broker relays.
//!
//! # Construction
//!
//! - **Handshake:** [`NOISE_PARAMS`] (`Noise_NN_25519_ChaChaPoly_BLAKE2s`),
//!   the operator endpoint initiating, with the prologue binding it to the
//!   session ID and the endpoint number. NN because both sides' keys are
//!   fresh for each session anyway: who is at the other end is settled by
//!   the short authentication string, which the operator reads to the
//!   customer.
//! - **Short authentication string (SAS):** [`SAS_DIGITS`] digits from the
//!   handshake hash and a random value the operator endpoint *committed to*
//!   in the first handshake message and reveals only after the agent's
//!   answer (as in ZRTP). Without the commitment a relay sitting in the
//!   middle could try keys until both halves showed the same digits; with
//!   it, every value the relay chooses is fixed before the SAS can be
//!   computed, so its two halves match by chance only (1 in 10^6).
//! - **Transport:** ChaCha20-Poly1305 with the two keys Noise's `Split`
//!   gives (one per direction) and an explicit 64-bit counter in every
//!   message: control messages must arrive in order with none missing
//!   (a relay that drops, repeats or reorders one is detected), stream
//!   data may skip (the agent's latest-wins streams drop frames) but never
//!   go back. Noise's own transport messages stop at 64 KiB; screen frames
//!   are up to 1 MiB, hence the explicit AEAD (the construction WireGuard
//!   uses after its Noise handshake).
//!
//! Nothing here knows the wire format around these bytes: the caller puts
//! them into session messages (`lifeline_protocol`), which keeps this crate
//! free of tokio so that it compiles to WebAssembly for the web console.

mod channel;
mod handshake;

pub use channel::Channel;
pub use handshake::{Initiator, Responder};

/// The Noise protocol name of the handshake.
pub const NOISE_PARAMS: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";

/// Bytes of the operator endpoint's committed random value.
pub const REVEAL_BYTES: usize = 32;

/// Digits of the short authentication string: a relay that substitutes
/// keys passes unnoticed with probability 10^-SAS_DIGITS per session.
pub const SAS_DIGITS: u32 = 6;

/// Largest handshake message either side accepts (Noise's own limit).
pub const MAX_HANDSHAKE_BYTES: usize = 65_535;

/// Largest plaintext one sealed message carries: a frame's payload
/// (`lifeline_protocol::MAX_FRAME_BYTES`, 4 MiB) at most.
pub const MAX_PLAINTEXT_BYTES: usize = 4 << 20;

/// Why a handshake or a sealed message was refused. Every case means the
/// peer (or the relay between) sent something this side must not accept;
/// the caller drops the channel and says so.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error("the end-to-end handshake failed: {0}")]
    Noise(#[source] snow::Error),
    #[error("the end-to-end handshake message is {len} bytes, more than {max}")]
    TooLong { len: usize, max: usize },
    #[error(
        "the operator endpoint's first message carries {0} bytes where a {REVEAL_BYTES}-byte commitment belongs"
    )]
    BadCommitment(usize),
    #[error("the agent's answer carries {0} bytes where a {REVEAL_BYTES}-byte value belongs")]
    BadAnswer(usize),
    #[error(
        "the operator endpoint's revealed value does not match its commitment: the keys were substituted on the way"
    )]
    CommitmentMismatch,
    #[error("a sealed message failed authentication (altered, or not for this channel)")]
    Forged,
    #[error(
        "sealed {what} message number {got} arrived where number {expected} was due (dropped, repeated or reordered on the way)"
    )]
    OutOfOrder {
        what: &'static str,
        got: u64,
        expected: u64,
    },
    #[error("a sealed message of {0} bytes is shorter than its counter and tag")]
    Short(usize),
    #[error("a sealed message of {len} bytes exceeds {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the channel has sent 2^63 messages one way; start a new one")]
    Exhausted,
}

impl From<snow::Error> for E2eError {
    fn from(e: snow::Error) -> Self {
        E2eError::Noise(e)
    }
}

/// The short authentication string both sides show, "123 456", from the
/// handshake hash and the revealed value.
fn sas(handshake_hash: &[u8], reveal: &[u8; REVEAL_BYTES]) -> String {
    use blake2::Digest;
    let mut h = blake2::Blake2s256::new();
    h.update(b"lifeline e2e sas v1");
    h.update(handshake_hash);
    h.update(reveal);
    let digest = h.finalize();
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let n = n % 10u32.pow(SAS_DIGITS);
    let digits = format!("{n:0width$}", width = SAS_DIGITS as usize);
    let (a, b) = digits.split_at(digits.len() / 2);
    format!("{a} {b}")
}

#[cfg(test)]
mod tests;
