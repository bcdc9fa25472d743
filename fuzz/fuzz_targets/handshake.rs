//! The broker's side of the versioned handshake (host/broker/src/server.rs)
//! on the bytes a client sends after TLS: the `Hello` under the handshake
//! limit, a precise error otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeline_fuzz::runtime().block_on(async {
        let mut conn = tokio::io::join(data, tokio::io::sink());
        let _ = lifeline_broker::server::handshake(&mut conn, "fuzz broker").await;
    });
});
