//! Shared parts of the fuzz targets (fuzz_targets/*.rs).
//!
//! The decoders of `lifeline-runtime` (plugin manifest, bundle and its
//! signature file) and of `lifeline-agent` (its configuration, the rejoin
//! ticket) are compiled here from their own source files, unchanged: both
//! crates depend on wasmtime, whose instrumented build would take longer
//! than the rest of the fuzz build together. The modules keep their crate
//! paths (`crate::capability`, `crate::manifest`, `crate::config`) through
//! the re-exports below; a new `crate::` import in one of them shows up as
//! a build error of `scripts/fuzz`, and is added here.

use std::path::PathBuf;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;

/// `lifeline-runtime`'s decoders: host/runtime/src/{capability,manifest,bundle}.rs.
#[path = "../../host/runtime/src"]
#[allow(dead_code, unused_imports, clippy::all)]
mod runtime_src {
    pub mod bundle;
    pub mod capability;
    pub mod manifest;
}

/// `lifeline-agent`'s decoders: host/agent/src/config.rs (and config/*) and
/// host/agent/src/reboot.rs.
#[path = "../../host/agent/src"]
#[allow(dead_code, unused_imports, clippy::all)]
mod agent_src {
    pub mod config;
    pub mod reboot;
}

pub use agent_src::{config, reboot};
pub use runtime_src::{bundle, capability, manifest};

/// Seed of the Ed25519 key the harness trusts (plugin publisher, license
/// vendor); seedgen signs the seed bundles and licenses with it, so the
/// fuzzer starts from inputs that pass the signature checks.
pub const FUZZ_KEY_SEED: [u8; 32] = [7; 32];

/// The harness's publisher / vendor key.
pub fn fuzz_key() -> SigningKey {
    SigningKey::from_bytes(&FUZZ_KEY_SEED)
}

/// One tokio runtime per fuzzing process (current thread: the inputs are
/// replayed one after the other).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the fuzz target")
    })
}

/// A scratch folder that lives as long as the fuzzing process.
pub fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("lifeline-fuzz-")
            .tempdir()
            .expect("a scratch folder for the fuzz target")
            .keep()
    })
}

/// The end-to-end layer's fixed channel (fuzz_targets/e2e.rs): both sides'
/// random seeds are constants, so the handshake, the code and every sealed
/// byte are the same in the harness and in seedgen, and the seeds seedgen
/// writes (real hellos, replies, sealed messages) open in the harness.
pub mod e2e_fixture {
    use lifeline_e2e::{Channel, Initiator, Responder};
    use lifeline_protocol::SessionMessage;
    use lifeline_protocol::e2e::{AgentEnds, AgentIncoming, OperatorEnd, OperatorIncoming};

    /// The session the fixed channel belongs to.
    pub const SESSION: &str = "fuzzsession1";
    /// The operator endpoint's number.
    pub const ENDPOINT: u64 = 7;
    /// The operator endpoint's seed (ephemeral key, committed value).
    pub const OPERATOR_SEED: [u8; 32] = [1; 32];
    /// The agent's seed (ephemeral key, its answer).
    pub const AGENT_SEED: [u8; 32] = [2; 32];
    /// Most chunks replayed from one input.
    pub const MAX_CHUNKS: usize = 64;

    /// The operator endpoint's hello, the agent's reply and the confirm,
    /// as bytes, with both ends of the channel they made.
    pub struct Handshake {
        pub hello: Vec<u8>,
        pub reply: Vec<u8>,
        pub confirm: Vec<u8>,
        pub operator: Channel,
        pub agent: Channel,
    }

    /// The fixed handshake, with `lifeline_e2e` directly.
    pub fn handshake() -> Handshake {
        let (init, hello) =
            Initiator::start(SESSION, ENDPOINT, OPERATOR_SEED).expect("the fixed hello");
        let (resp, reply) =
            Responder::accept(SESSION, ENDPOINT, &hello, AGENT_SEED).expect("the fixed reply");
        let (operator, confirm) = init.finish(&reply).expect("the fixed reply is read");
        let agent = resp.confirm(&confirm).expect("the fixed confirm is read");
        assert_eq!(operator.sas(), agent.sas(), "one code on both ends");
        Handshake {
            hello,
            reply,
            confirm,
            operator,
            agent,
        }
    }

    /// The fixed handshake through the protocol's ends (session
    /// messages), both ready.
    pub fn ends() -> (OperatorEnd, AgentEnds) {
        let (mut op, hello) =
            OperatorEnd::start(SESSION, ENDPOINT, OPERATOR_SEED).expect("the fixed hello");
        let mut agent = AgentEnds::new(SESSION);
        let AgentIncoming::Reply(reply) = agent.incoming(hello, AGENT_SEED) else {
            panic!("the agent answers the fixed hello")
        };
        let OperatorIncoming::Ready { confirm, .. } = op.incoming(reply) else {
            panic!("the operator end reads the fixed reply")
        };
        let AgentIncoming::Ready { .. } = agent.incoming(confirm, AGENT_SEED) else {
            panic!("the agent reads the fixed confirm")
        };
        (op, agent)
    }

    /// Splits an input into chunks, each `u16 length (BE)` then its bytes
    /// (the last one cut short at the end of the input).
    pub fn chunks(mut rest: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while out.len() < MAX_CHUNKS {
            let Some((len, tail)) = rest.split_first_chunk::<2>() else {
                break;
            };
            let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
            let (chunk, tail) = tail.split_at(len);
            out.push(chunk);
            rest = tail;
        }
        out
    }

    /// The input `chunks` reads back: `head`, then each chunk framed.
    pub fn framed(head: &[u8], chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = head.to_vec();
        for c in chunks {
            let len = u16::try_from(c.len()).expect("a seed chunk under 64 KiB");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    /// A session message's JSON, for seeds and the harness's bookkeeping.
    pub fn json(msg: &SessionMessage) -> Vec<u8> {
        serde_json::to_vec(msg).expect("session messages encode")
    }
}
