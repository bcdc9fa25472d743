//! Lifeline core: what every role shares — configuration, TLS, the framed
//! heartbeating link, the session lifecycle, consent and the audit log.

pub mod audit;
pub mod capability;
pub mod client;
pub mod config;
pub mod consent;
pub mod join_file;
pub mod lean_tls;
pub mod limits;
pub mod link;
pub mod probe;
pub mod proxy;
pub mod secrets;
pub mod session;
pub mod time;
pub mod tls;
