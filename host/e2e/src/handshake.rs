//! The Noise NN handshake with the committed SAS value.
//!
//! ```text
//! operator endpoint (initiator)            agent (responder)
//!   hello:   e, payload = BLAKE2s(reveal)  ->
//!                                          <-  reply: e, ee, payload = agent's random
//!   confirm: sealed control message 0 = reveal ->   (agent checks the commitment)
//! ```
//!
//! The operator endpoint's channel is usable as soon as it has read the
//! reply; the agent's once the confirm checked out.

use blake2::Digest;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::resolvers::{BoxedCryptoResolver, CryptoResolver, DefaultResolver, FallbackResolver};
use snow::{Builder, HandshakeState};
use zeroize::Zeroizing;

use crate::channel::{Channel, Role};
use crate::{E2eError, MAX_HANDSHAKE_BYTES, NOISE_PARAMS, REVEAL_BYTES, sas};

/// The operator endpoint's half, between its hello and the agent's reply.
pub struct Initiator {
    hs: HandshakeState,
    reveal: Zeroizing<[u8; REVEAL_BYTES]>,
    prologue: Vec<u8>,
}

/// The agent's half, between its reply and the operator's confirm.
pub struct Responder {
    hs: HandshakeState,
    commitment: [u8; REVEAL_BYTES],
    prologue: Vec<u8>,
}

impl Initiator {
    /// Starts a handshake for `session_id` as endpoint `endpoint`; `seed`:
    /// 32 bytes from the platform's secure random source (it keys the
    /// ephemeral key and the committed value). Returns the hello to send.
    pub fn start(
        session_id: &str,
        endpoint: u64,
        seed: [u8; 32],
    ) -> Result<(Initiator, Vec<u8>), E2eError> {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut reveal = Zeroizing::new([0u8; REVEAL_BYTES]);
        rng.fill_bytes(reveal.as_mut());
        let prologue = prologue(session_id, endpoint);
        let mut hs = builder(&prologue, rng)?.build_initiator()?;
        let mut msg = vec![0u8; MAX_HANDSHAKE_BYTES];
        let n = hs.write_message(&commit(&reveal), &mut msg)?;
        msg.truncate(n);
        Ok((
            Initiator {
                hs,
                reveal,
                prologue,
            },
            msg,
        ))
    }

    /// Reads the agent's reply: the channel is ready, and the first
    /// message on it (the confirm, already sealed: send it before anything
    /// else) reveals the committed value.
    pub fn finish(mut self, reply: &[u8]) -> Result<(Channel, Vec<u8>), E2eError> {
        check_len(reply)?;
        let mut payload = vec![0u8; MAX_HANDSHAKE_BYTES];
        let n = self.hs.read_message(reply, &mut payload)?;
        if n != REVEAL_BYTES {
            return Err(E2eError::BadAnswer(n));
        }
        let sas = sas(self.hs.get_handshake_hash(), &self.reveal);
        let keys = self.hs.dangerously_get_raw_split();
        let mut channel = Channel::new(Role::Operator, keys, sas, self.prologue);
        let confirm = channel.seal_control(self.reveal.as_ref())?;
        Ok((channel, confirm))
    }
}

impl Responder {
    /// Answers an operator endpoint's hello for `session_id`, endpoint
    /// `endpoint`. Returns the reply to send.
    pub fn accept(
        session_id: &str,
        endpoint: u64,
        hello: &[u8],
        seed: [u8; 32],
    ) -> Result<(Responder, Vec<u8>), E2eError> {
        check_len(hello)?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut answer = [0u8; REVEAL_BYTES];
        rng.fill_bytes(&mut answer);
        let prologue = prologue(session_id, endpoint);
        let mut hs = builder(&prologue, rng)?.build_responder()?;
        let mut payload = vec![0u8; MAX_HANDSHAKE_BYTES];
        let n = hs.read_message(hello, &mut payload)?;
        let commitment: [u8; REVEAL_BYTES] = payload[..n]
            .try_into()
            .map_err(|_| E2eError::BadCommitment(n))?;
        let mut msg = vec![0u8; MAX_HANDSHAKE_BYTES];
        let n = hs.write_message(&answer, &mut msg)?;
        msg.truncate(n);
        Ok((
            Responder {
                hs,
                commitment,
                prologue,
            },
            msg,
        ))
    }

    /// Reads the operator endpoint's confirm (sealed control message 0):
    /// the channel is ready once the revealed value matches the commitment.
    pub fn confirm(mut self, sealed: &[u8]) -> Result<Channel, E2eError> {
        let keys = self.hs.dangerously_get_raw_split();
        // The SAS needs the reveal; open first with a placeholder.
        let mut channel = Channel::new(Role::Agent, keys, String::new(), self.prologue);
        let reveal = Zeroizing::new(channel.open_control(sealed)?);
        let reveal: [u8; REVEAL_BYTES] = reveal
            .as_slice()
            .try_into()
            .map_err(|_| E2eError::CommitmentMismatch)?;
        if commit(&reveal) != self.commitment {
            return Err(E2eError::CommitmentMismatch);
        }
        channel.set_sas(sas(self.hs.get_handshake_hash(), &reveal));
        Ok(channel)
    }
}

/// What binds a handshake to its session and endpoint.
fn prologue(session_id: &str, endpoint: u64) -> Vec<u8> {
    let mut p = b"lifeline e2e v1\0".to_vec();
    p.extend_from_slice(session_id.as_bytes());
    p.push(0);
    p.extend_from_slice(&endpoint.to_be_bytes());
    p
}

fn commit(reveal: &[u8; REVEAL_BYTES]) -> [u8; REVEAL_BYTES] {
    let mut h = blake2::Blake2s256::new();
    h.update(b"lifeline e2e commitment v1");
    h.update(reveal);
    h.finalize().into()
}

fn check_len(msg: &[u8]) -> Result<(), E2eError> {
    if msg.len() > MAX_HANDSHAKE_BYTES {
        return Err(E2eError::TooLong {
            len: msg.len(),
            max: MAX_HANDSHAKE_BYTES,
        });
    }
    Ok(())
}

fn builder(prologue: &[u8], rng: ChaCha20Rng) -> Result<Builder<'_>, E2eError> {
    let params = NOISE_PARAMS.parse().map_err(E2eError::Noise)?;
    let resolver: BoxedCryptoResolver = Box::new(FallbackResolver::new(
        Box::new(SeededRng(std::sync::Mutex::new(Some(rng)))),
        Box::new(DefaultResolver),
    ));
    Ok(Builder::with_resolver(params, resolver).prologue(prologue)?)
}

/// Hands snow the caller-seeded generator (snow asks for it once per
/// handshake).
struct SeededRng(std::sync::Mutex<Option<ChaCha20Rng>>);

struct Rng(ChaCha20Rng);

impl snow::types::Random for Rng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for SeededRng {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        let rng = self.0.lock().ok()?.take()?;
        Some(Box::new(Rng(rng)))
    }
    fn resolve_dh(&self, _: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        None
    }
    fn resolve_hash(&self, _: &snow::params::HashChoice) -> Option<Box<dyn snow::types::Hash>> {
        None
    }
    fn resolve_cipher(
        &self,
        _: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        None
    }
}
