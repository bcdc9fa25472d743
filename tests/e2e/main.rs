//! End-to-end tests: the real broker on 127.0.0.1 port 0, real agents and
//! operator clients over real TLS — in-process through the libraries, and as
//! separate processes through the built `lifeline` binary.

#![allow(clippy::unwrap_used)]

mod bad_input;
mod cluster;
mod config_files;
mod console_browser;
mod console_http;
mod console_support;
mod customer_window;
mod e2e_capture;
mod e2e_mitm;
mod faults;
mod https;
mod join_file;
mod license;
mod license_support;
mod machine;
mod plugin_binary;
mod plugin_dev;
mod plugins;
pub mod processes;
mod proxy;
mod raw_e2e;
mod reboot;
mod runas;
mod screen;
mod screen_desk;
mod scripts;
mod sec_conn;
mod sec_consent;
mod sec_quota;
mod sec_rejoin;
mod sec_sandbox;
mod sessions;
mod store_postgres;
mod streams;
mod support;
mod survival;
mod tls_audit;
