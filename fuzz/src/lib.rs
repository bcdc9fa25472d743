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
