//! System information plugin: the host gathers the facts natively (the
//! `system.info` capability, after the customer's consent); this plugin
//! shapes them into one readable panel per category and filters them.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../sdk/wit",
});

mod panels;

use lifeline::plugin::host;
use lifeline::plugin::types::HostError;

/// Categories in display order, with their panel titles.
pub const CATEGORIES: [(&str, &str); 8] = [
    ("os", "Operating system"),
    ("cpu", "Hardware and CPU"),
    ("memory", "Memory"),
    ("disks", "Disks and file systems"),
    ("network", "Network interfaces"),
    ("processes", "Running processes"),
    ("users", "Logged-in users"),
    ("software", "Installed software"),
];

struct SysInfo;

fn describe(e: HostError) -> String {
    match e {
        HostError::NotDeclared(m) | HostError::Limit(m) | HostError::Failed(m) => m,
        HostError::Denied(m) => format!("the customer did not allow reading system information ({m})"),
    }
}

fn panel(category: &str, title: &str, filter: Option<&str>) -> Result<String, String> {
    let json = host::system_info(category).map_err(describe)?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| format!("{category}: {e}"))?;
    let mut lines = panels::render(category, &v);
    if let Some(f) = filter {
        let f = f.to_lowercase();
        lines.retain(|l| l.to_lowercase().contains(&f));
    }
    let mut text = format!("== {title} ==\n");
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    Ok(text)
}

impl Guest for SysInfo {
    fn run(command: String, args: Vec<String>) -> Result<String, String> {
        match command.as_str() {
            "categories" => Ok(CATEGORIES.iter().map(|(c, t)| format!("{c:<10} {t}")).collect::<Vec<_>>().join("\n")),
            "show" => {
                let which = args.first().map(String::as_str).filter(|s| !s.is_empty()).unwrap_or("all");
                let filter = args.get(1).map(String::as_str).filter(|s| !s.is_empty());
                let chosen: Vec<(&str, &str)> = if which == "all" {
                    CATEGORIES.to_vec()
                } else {
                    let c = CATEGORIES.iter().find(|(c, _)| *c == which).ok_or_else(|| {
                        let names: Vec<&str> = CATEGORIES.iter().map(|(c, _)| *c).collect();
                        format!("unknown category {which:?}; use all or one of {}", names.join(", "))
                    })?;
                    vec![*c]
                };
                for (c, title) in &chosen {
                    let text = panel(c, title, filter)?;
                    host::send_output(&text).map_err(describe)?;
                }
                Ok(format!("{} categor{} shown", chosen.len(), if chosen.len() == 1 { "y" } else { "ies" }))
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

export!(SysInfo);
