//! A hostile WASM plugin for the isolation tests: each command misbehaves.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../sdk/wit",
});

use lifeline::plugin::host;
use lifeline::plugin::types::{HostError, InfoCategory};

struct Hostile;

fn describe(e: HostError) -> String {
    match e {
        HostError::NotDeclared(m) => format!("not-declared: {m}"),
        HostError::Denied(m) => format!("denied: {m}"),
        HostError::Limit(m) => format!("limit: {m}"),
        HostError::Failed(m) => format!("failed: {m}"),
    }
}

impl Guest for Hostile {
    fn run(command: String, _args: Vec<Arg>) -> Result<String, String> {
        match command.as_str() {
            "ok" => Ok("fine".into()),
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = i.wrapping_add(1);
                    std::hint::black_box(i);
                }
            }
            "alloc" => {
                let mut chunks: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut v = vec![0u8; 1 << 20];
                    v[0] = 1;
                    chunks.push(std::hint::black_box(v));
                }
            }
            "read-outside" => {
                // WASI has no preopened folder: the file system is not there.
                let direct = std::fs::read_to_string("/etc/passwd")
                    .map(|_| "READ".to_string())
                    .map_err(|e| e.to_string());
                // Through the host, only the temporary folder is reachable.
                let via_host = host::fs_read("../../../../etc/passwd")
                    .map(|_| "READ".to_string())
                    .map_err(describe);
                Err(format!("direct: {direct:?}; via host: {via_host:?}"))
            }
            "spawn" => host::spawn("sh", &["-c".to_string(), "id".to_string()], 1000)
                .map(|o| format!("ran: {}", String::from_utf8_lossy(&o.stdout)))
                .map_err(describe),
            "denied" => match host::system_info(InfoCategory::Os) {
                Ok(_) => Ok("allowed".into()),
                Err(HostError::Denied(m)) => Ok(format!("handled the denial: {m}")),
                Err(e) => Err(describe(e)),
            },
            "flood" => {
                let chunk = "x".repeat(64 * 1024);
                for _ in 0..1600 {
                    // 100 MB in all; the host stops accepting at the limit.
                    if let Err(e) = host::send_output(&chunk) {
                        return Err(describe(e));
                    }
                }
                Ok("flooded".into())
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

export!(Hostile);
