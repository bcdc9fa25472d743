//! The Lifeline plugin runtime: manifests, capabilities, the host API
//! implemented once for WASM (wasmtime) and Lua (mlua/Luau), limits,
//! isolation, hot reload and signed bundles.

pub mod bundle;
pub mod capability;
pub mod cgroup;
pub mod engine;
pub mod folder;
pub mod host;
pub mod http;
pub mod kv;
pub mod lua;
mod lua_admin;
pub mod manifest;
pub mod plugins;
pub mod process;
pub mod screen;
pub mod service;
pub mod stream;
pub mod sysinfo;
pub mod tempfs;
pub mod wasm;
#[doc(hidden)]
pub mod wasm_bench;
pub mod wasm_cache;
mod wasm_live;
pub mod watch;

pub use capability::{Capability, HostCall};
pub use engine::CallError;
pub use host::{
    AdminResources, CallContext, EndpointRequest, HostEnv, HostError, Natives, SessionPort,
};
pub use manifest::Manifest;
pub use plugins::{PluginHost, PluginInfo, RuntimeConfig};
pub use process::Identity;
pub use screen::ScreenAccess;
pub use service::Services;
pub use stream::StreamHub;
/// The records and variants of the host API (`sdk/wit`), shared by both
/// runtimes (Lua sees them as tables).
pub use wasm::lifeline::plugin::types as wit;
pub use wit::Arg;

#[cfg(test)]
mod clipboard_tests;
#[cfg(test)]
mod folder_tests;
#[cfg(test)]
mod natives_tests;
#[cfg(test)]
mod notify_tests;
#[cfg(test)]
mod sandbox_tests;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;
