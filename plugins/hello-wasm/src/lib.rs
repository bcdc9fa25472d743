//! Example WASM plugin: greets, counts its calls in plugin state, and shows
//! one category of system information after the customer's consent.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../sdk/wit",
});

use lifeline::plugin::host;
use lifeline::plugin::types::{HostError, Level};

struct Hello;

fn describe(e: HostError) -> String {
    match e {
        HostError::NotDeclared(m) => format!("not declared: {m}"),
        HostError::Denied(m) => format!("denied: {m}"),
        HostError::Limit(m) => format!("limit: {m}"),
        HostError::Failed(m) => format!("failed: {m}"),
    }
}

impl Guest for Hello {
    fn run(command: String, args: Vec<String>) -> Result<String, String> {
        match command.as_str() {
            "greet" => {
                let who = args.first().map(String::as_str).unwrap_or("operator");
                host::log(Level::Info, &format!("greeting {who}"));
                host::send_output(&format!("Hello, {who}!")).map_err(describe)?;
                let n: u64 = host::kv_get("greetings")
                    .map_err(describe)?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
                    + 1;
                host::kv_set("greetings", &n.to_string()).map_err(describe)?;
                Ok(format!("greeted {n} times"))
            }
            "os" => match host::system_info("os") {
                Ok(json) => Ok(json),
                Err(HostError::Denied(m)) => Ok(format!(
                    "The customer did not allow reading system information ({m})."
                )),
                Err(e) => Err(describe(e)),
            },
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

export!(Hello);
