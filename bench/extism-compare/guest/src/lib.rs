//! The Extism side of the echo benchmark, written with the Extism Rust PDK:
//! `echo` returns its input (the same guest work as bench-wasm's `echo`).

use extism_pdk::{FnResult, plugin_fn};

#[plugin_fn]
pub fn echo(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(input)
}
