//! Example WASM plugin: greets, counts its calls in plugin state, and shows
//! one category of system information after the customer's consent.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../sdk/wit",
});

use lifeline::plugin::host;
use lifeline::plugin::types::{HostError, InfoCategory, Level, OsInfo, SystemInfo};

struct Hello;

fn describe(e: HostError) -> String {
    match e {
        HostError::NotDeclared(m) => format!("not declared: {m}"),
        HostError::Denied(m) => format!("denied: {m}"),
        HostError::Limit(m) => format!("limit: {m}"),
        HostError::Failed(m) => format!("failed: {m}"),
    }
}

/// The `i`-th argument as text (bytes read as UTF-8, lossily).
fn text_arg(args: &[Arg], i: usize) -> Option<String> {
    args.get(i).map(|a| match a {
        Arg::Text(t) => t.clone(),
        Arg::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
    })
}

/// A string as a quoted, escaped JSON string (`null` when absent).
fn quoted(v: Option<&str>) -> String {
    let Some(s) = v else { return "null".into() };
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The OS record as one JSON object line, as the operator saw it in 0.1.
fn os_text(o: &OsInfo) -> String {
    format!(
        "{{\"name\":{},\"version\":{},\"kernel\":{},\"host_name\":{},\"uptime_secs\":{},\"boot_time\":{}}}",
        quoted(o.name.as_deref()),
        quoted(o.version.as_deref()),
        quoted(o.kernel.as_deref()),
        quoted(o.host_name.as_deref()),
        o.uptime_secs,
        o.boot_time
    )
}

impl Guest for Hello {
    fn run(command: String, args: Vec<Arg>) -> Result<String, String> {
        match command.as_str() {
            "greet" => {
                let who = text_arg(&args, 0).unwrap_or_else(|| "operator".into());
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
            "os" => match host::system_info(InfoCategory::Os) {
                Ok(SystemInfo::Os(o)) => Ok(os_text(&o)),
                Ok(_) => Err("the host answered another category than os".into()),
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
