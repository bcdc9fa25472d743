//! The configuration files (TOML, parsed and validated): the first byte
//! picks the file, the rest is its text.
//! 0: broker (host/core/src/config.rs and config/*: back office, SMTP,
//!    limits), 1: operator client, 2: agent (host/agent/src/config.rs and
//!    config/*), 3: consent policy (host/core/src/config/policy.rs).
//! Paths in a file resolve next to it, in an empty scratch folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeline_core::config::{BrokerConfig, OperatorConfig};
use lifeline_core::consent::Policy;
use lifeline_fuzz::config::AgentConfig;

fuzz_target!(|data: &[u8]| {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let file = lifeline_fuzz::scratch().join("fuzz.toml");
    match which % 4 {
        0 => drop(BrokerConfig::parse(&file, text)),
        1 => drop(OperatorConfig::parse(&file, text)),
        2 => drop(AgentConfig::parse(&file, text)),
        _ => drop(Policy::parse(&file, text)),
    }
});
