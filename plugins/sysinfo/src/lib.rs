//! System information plugin: the host gathers the facts natively (the
//! `system.info` capability, after the customer's consent); this plugin
//! shapes them into one readable panel per category and filters them.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../sdk/wit",
});

mod panels;

use lifeline::plugin::host;
use lifeline::plugin::types::{HostError, InfoCategory};

/// Categories in display order, with their panel titles.
pub const CATEGORIES: [(&str, InfoCategory, &str); 8] = [
    ("os", InfoCategory::Os, "Operating system"),
    ("cpu", InfoCategory::Cpu, "Hardware and CPU"),
    ("memory", InfoCategory::Memory, "Memory"),
    ("disks", InfoCategory::Disks, "Disks and file systems"),
    ("network", InfoCategory::Network, "Network interfaces"),
    ("processes", InfoCategory::Processes, "Running processes"),
    ("users", InfoCategory::Users, "Logged-in users"),
    ("software", InfoCategory::Software, "Installed software"),
];

struct SysInfo;

fn describe(e: HostError) -> String {
    match e {
        HostError::NotDeclared(m) | HostError::Limit(m) | HostError::Failed(m) => m,
        HostError::Denied(m) => format!("the customer did not allow reading system information ({m})"),
    }
}

/// The `i`-th argument as text (bytes read as UTF-8, lossily).
fn text_arg(args: &[Arg], i: usize) -> Option<String> {
    args.get(i).map(|a| match a {
        Arg::Text(t) => t.clone(),
        Arg::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
    })
}

fn panel(category: InfoCategory, title: &str, filter: Option<&str>) -> Result<String, String> {
    let info = host::system_info(category).map_err(describe)?;
    let mut lines = panels::render(&info);
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
    fn run(command: String, args: Vec<Arg>) -> Result<String, String> {
        match command.as_str() {
            "categories" => Ok(CATEGORIES.iter().map(|(c, _, t)| format!("{c:<10} {t}")).collect::<Vec<_>>().join("\n")),
            "show" => {
                let which = text_arg(&args, 0).filter(|s| !s.is_empty()).unwrap_or_else(|| "all".into());
                let filter = text_arg(&args, 1).filter(|s| !s.is_empty());
                let chosen: Vec<(&str, InfoCategory, &str)> = if which == "all" {
                    CATEGORIES.to_vec()
                } else {
                    let c = CATEGORIES.iter().find(|(c, _, _)| *c == which).ok_or_else(|| {
                        let names: Vec<&str> = CATEGORIES.iter().map(|(c, _, _)| *c).collect();
                        format!("unknown category {which:?}; use all or one of {}", names.join(", "))
                    })?;
                    vec![*c]
                };
                for (_, c, title) in &chosen {
                    let text = panel(*c, title, filter.as_deref())?;
                    host::send_output(&text).map_err(describe)?;
                }
                Ok(format!("{} categor{} shown", chosen.len(), if chosen.len() == 1 { "y" } else { "ies" }))
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

export!(SysInfo);
