//! The benchmark plugin: `run("ok")` returns "ok" and `echo` returns its
//! input, so the host's call and copy costs can be measured on their own.

wit_bindgen::generate!({
    world: "bench-plugin",
    path: "../../../sdk/wit",
});

struct Bench;

impl Guest for Bench {
    fn run(command: String, _args: Vec<String>) -> Result<String, String> {
        match command.as_str() {
            "ok" => Ok("ok".into()),
            other => Err(format!("unknown command {other:?}")),
        }
    }

    fn echo(data: Vec<u8>) -> Vec<u8> {
        data
    }

    fn echo16(lo: u64, hi: u64) -> (u64, u64) {
        (lo, hi)
    }
}

export!(Bench);
