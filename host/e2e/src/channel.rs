//! An established end-to-end channel: sealing and opening messages.
//!
//! A sealed message is `counter: u64 BE` then the ChaCha20-Poly1305
//! ciphertext and tag. The AEAD nonce is `2 × counter + kind` (kind 0 for
//! control messages, 1 for stream data), so the two sequences never share
//! a nonce under one key; the additional data binds the message to the
//! session, the endpoint and the direction.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

use crate::{E2eError, MAX_PLAINTEXT_BYTES};

/// Bytes a sealed message adds to its plaintext: the counter and the tag.
pub const OVERHEAD_BYTES: usize = 8 + 16;

/// Which side of the channel this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The operator endpoint (Noise initiator).
    Operator,
    /// The agent (Noise responder).
    Agent,
}

#[derive(Clone, Copy)]
enum Kind {
    Control = 0,
    Data = 1,
}

/// One established channel between an operator endpoint and the agent.
pub struct Channel {
    send: ChaCha20Poly1305,
    recv: ChaCha20Poly1305,
    sas: String,
    /// The handshake's prologue (session and endpoint), then the sender's
    /// role byte, as additional data.
    binding: Vec<u8>,
    role: Role,
    next_send: [u64; 2],
    /// Control: the number due next. Data: the lowest number accepted.
    next_recv: [u64; 2],
}

impl Channel {
    pub(crate) fn new(
        role: Role,
        keys: ([u8; 32], [u8; 32]),
        sas: String,
        binding: Vec<u8>,
    ) -> Channel {
        let (k1, k2) = (Zeroizing::new(keys.0), Zeroizing::new(keys.1));
        // Noise's Split: the first key encrypts initiator → responder.
        let (send, recv) = match role {
            Role::Operator => (k1, k2),
            Role::Agent => (k2, k1),
        };
        Channel {
            send: ChaCha20Poly1305::new(Key::from_slice(send.as_ref())),
            recv: ChaCha20Poly1305::new(Key::from_slice(recv.as_ref())),
            sas,
            binding,
            role,
            next_send: [0, 0],
            next_recv: [0, 0],
        }
    }

    pub(crate) fn set_sas(&mut self, sas: String) {
        self.sas = sas;
    }

    /// The short authentication string, "123 456": the same on both ends
    /// unless the keys were substituted on the way.
    pub fn sas(&self) -> &str {
        &self.sas
    }

    /// Seals one control message (a session message's JSON).
    pub fn seal_control(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, E2eError> {
        self.seal(Kind::Control, plaintext)
    }

    /// Seals one stream data frame.
    pub fn seal_data(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, E2eError> {
        self.seal(Kind::Data, plaintext)
    }

    /// Opens a control message: it must be the next one, none missing.
    pub fn open_control(&mut self, sealed: &[u8]) -> Result<Vec<u8>, E2eError> {
        self.open(Kind::Control, sealed)
    }

    /// Opens a stream data frame: frames may be skipped, never repeated.
    pub fn open_data(&mut self, sealed: &[u8]) -> Result<Vec<u8>, E2eError> {
        self.open(Kind::Data, sealed)
    }

    fn seal(&mut self, kind: Kind, plaintext: &[u8]) -> Result<Vec<u8>, E2eError> {
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(E2eError::TooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_BYTES,
            });
        }
        let counter = self.next_send[kind as usize];
        if counter >= 1 << 62 {
            return Err(E2eError::Exhausted);
        }
        self.next_send[kind as usize] = counter + 1;
        let aad = self.aad(self.role);
        let ct = self
            .send
            .encrypt(
                &nonce(kind, counter),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| E2eError::TooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_BYTES,
            })?;
        let mut out = Vec::with_capacity(8 + ct.len());
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open(&mut self, kind: Kind, sealed: &[u8]) -> Result<Vec<u8>, E2eError> {
        if sealed.len() < OVERHEAD_BYTES {
            return Err(E2eError::Short(sealed.len()));
        }
        if sealed.len() > MAX_PLAINTEXT_BYTES + OVERHEAD_BYTES {
            return Err(E2eError::TooLarge {
                len: sealed.len(),
                max: MAX_PLAINTEXT_BYTES + OVERHEAD_BYTES,
            });
        }
        let (head, ct) = sealed.split_at(8);
        let counter = u64::from_be_bytes(head.try_into().expect("8 bytes split off"));
        let due = self.next_recv[kind as usize];
        let in_order = match kind {
            Kind::Control => counter == due,
            Kind::Data => counter >= due && counter < 1 << 62,
        };
        if !in_order {
            return Err(E2eError::OutOfOrder {
                what: match kind {
                    Kind::Control => "control",
                    Kind::Data => "data",
                },
                got: counter,
                expected: due,
            });
        }
        let peer = match self.role {
            Role::Operator => Role::Agent,
            Role::Agent => Role::Operator,
        };
        let aad = self.aad(peer);
        let plaintext = self
            .recv
            .decrypt(&nonce(kind, counter), Payload { msg: ct, aad: &aad })
            .map_err(|_| E2eError::Forged)?;
        // Only an authentic message moves the window: forged bytes cannot
        // make this side skip what the real peer sends next.
        self.next_recv[kind as usize] = counter + 1;
        Ok(plaintext)
    }

    fn aad(&self, sender: Role) -> Vec<u8> {
        let mut aad = self.binding.clone();
        aad.push(match sender {
            Role::Operator => b'o',
            Role::Agent => b'a',
        });
        aad
    }
}

fn nonce(kind: Kind, counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&(counter * 2 + kind as u64).to_le_bytes());
    *Nonce::from_slice(&n)
}
