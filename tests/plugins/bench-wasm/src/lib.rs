//! The benchmark plugin: `run("ok")` returns "ok" and the `echo*` exports
//! return their input, so the host's call and copy costs can be measured on
//! their own. It is also a (minimal) long-lived plugin: `on-event` answers
//! each session event with one output line, to measure event delivery.

wit_bindgen::generate!({
    world: "bench-plugin",
    path: "../../../sdk/wit",
});

use lifeline::plugin::host;

struct Bench;

impl Guest for Bench {
    fn run(command: String, _args: Vec<Arg>) -> Result<String, String> {
        match command.as_str() {
            "ok" => Ok("ok".into()),
            other => Err(format!("unknown command {other:?}")),
        }
    }

    fn start(_reason: StartReason) -> Result<(), String> {
        Ok(())
    }

    fn on_event(_event: SessionEvent) -> Result<(), String> {
        let _ = host::send_output("e");
        Ok(())
    }

    fn stop() {}

    fn echo(data: Vec<u8>) -> Vec<u8> {
        data
    }

    fn echo16(lo: u64, hi: u64) -> (u64, u64) {
        (lo, hi)
    }

    fn echo_bytes16(data: Vec<u8>) -> Vec<u8> {
        data
    }

    fn echo_record(row: ProcessRow) -> ProcessRow {
        row
    }
}

export!(Bench);
