//! One panel of readable lines per category, from the host's typed records.

use crate::lifeline::plugin::types::{ProcessRow, SystemInfo};

fn bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < units.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{x:.1} {}", units[i]) }
}

/// An optional value, or "-" when the host does not know it.
fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), T::to_string)
}

fn kv(k: &str, v: String) -> String {
    format!("{k:<18} {v}")
}

fn process(p: &ProcessRow) -> String {
    format!("  {:>7} {:<24} {:>6.1} % {:>12}", p.pid, p.name, p.cpu_percent, bytes(p.memory_bytes))
}

pub fn render(info: &SystemInfo) -> Vec<String> {
    match info {
        SystemInfo::Os(v) => {
            let up = v.uptime_secs;
            vec![
                kv("Name", opt(&v.name)),
                kv("Version", opt(&v.version)),
                kv("Kernel", opt(&v.kernel)),
                kv("Host name", opt(&v.host_name)),
                kv("Up for", format!("{} d {} h {} min", up / 86400, up % 86400 / 3600, up % 3600 / 60)),
            ]
        }
        SystemInfo::Cpu(v) => {
            let usage: f64 = v.cpus.iter().map(|c| f64::from(c.usage_percent)).sum::<f64>() / v.cpus.len().max(1) as f64;
            let first = v.cpus.first();
            vec![
                kv("Model", first.map(|c| c.brand.clone()).unwrap_or_default()),
                kv("Architecture", v.arch.clone()),
                kv("Logical CPUs", v.count.to_string()),
                kv("Physical cores", opt(&v.physical_cores)),
                kv("Frequency", format!("{} MHz", opt(&first.map(|c| c.frequency_mhz)))),
                kv("Usage", format!("{usage:.1} %")),
            ]
        }
        SystemInfo::Memory(v) => vec![
            kv("Total", bytes(v.total_bytes)),
            kv("Used", bytes(v.used_bytes)),
            kv("Available", bytes(v.available_bytes)),
            kv("Swap total", bytes(v.swap_total_bytes)),
            kv("Swap used", bytes(v.swap_used_bytes)),
        ],
        SystemInfo::Disks(disks) => {
            let mut l = vec![format!("{:<24} {:<10} {:>12} {:>12}  {}", "MOUNT POINT", "FS", "SIZE", "FREE", "DEVICE")];
            for d in disks {
                l.push(format!(
                    "{:<24} {:<10} {:>12} {:>12}  {}{}",
                    d.mount_point,
                    d.file_system,
                    bytes(d.total_bytes),
                    bytes(d.available_bytes),
                    d.name,
                    if d.removable { " (removable)" } else { "" }
                ));
            }
            l
        }
        SystemInfo::Network(nets) => nets
            .iter()
            .map(|n| {
                format!(
                    "{:<12} {}  {}  rx {} tx {}",
                    n.name,
                    n.mac,
                    if n.addresses.is_empty() { "-".to_string() } else { n.addresses.join(", ") },
                    bytes(n.received_bytes),
                    bytes(n.transmitted_bytes)
                )
            })
            .collect(),
        SystemInfo::Processes(v) => {
            let mut l = vec![kv("Processes", v.count.to_string()), "Top by CPU:".into()];
            l.extend(v.top_by_cpu.iter().map(process));
            l.push("Top by memory:".into());
            l.extend(v.top_by_memory.iter().map(process));
            l
        }
        SystemInfo::Users(v) => {
            let mut l: Vec<String> = v
                .logged_in
                .iter()
                .map(|u| {
                    format!(
                        "{:<16} {:<10} since {}{}",
                        u.user,
                        u.terminal,
                        u.since,
                        u.from.as_ref().map(|f| format!(" from {f}")).unwrap_or_default()
                    )
                })
                .collect();
            if l.is_empty() {
                l.push("nobody is logged in".into());
            }
            l.push(kv("Local accounts", v.accounts.len().to_string()));
            l
        }
        SystemInfo::Software(v) => {
            let mut l = vec![kv("Package manager", opt(&v.manager)), kv("Packages", v.count.to_string())];
            if let Some(note) = &v.note {
                l.push(note.clone());
            }
            l.extend(v.packages.iter().map(|p| format!("{:<40} {}", p.name, p.version)));
            l
        }
    }
}
