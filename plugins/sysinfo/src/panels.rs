//! One panel of readable lines per category, from the host's JSON.

use serde_json::Value;

fn bytes(v: &Value) -> String {
    let b = v.as_f64().unwrap_or(0.0);
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < units.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{x:.1} {}", units[i]) }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn kv(k: &str, v: String) -> String {
    format!("{k:<18} {v}")
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

pub fn render(category: &str, v: &Value) -> Vec<String> {
    match category {
        "os" => {
            let up = v["uptime_secs"].as_u64().unwrap_or(0);
            vec![
                kv("Name", s(&v["name"])),
                kv("Version", s(&v["version"])),
                kv("Kernel", s(&v["kernel"])),
                kv("Host name", s(&v["host_name"])),
                kv("Up for", format!("{} d {} h {} min", up / 86400, up % 86400 / 3600, up % 3600 / 60)),
            ]
        }
        "cpu" => {
            let cpus = arr(&v["cpus"]);
            let usage: f64 = cpus.iter().filter_map(|c| c["usage_percent"].as_f64()).sum::<f64>() / cpus.len().max(1) as f64;
            vec![
                kv("Model", cpus.first().map(|c| s(&c["brand"])).unwrap_or_default()),
                kv("Architecture", s(&v["arch"])),
                kv("Logical CPUs", s(&v["count"])),
                kv("Physical cores", s(&v["physical_cores"])),
                kv("Frequency", format!("{} MHz", s(&cpus.first().map(|c| c["frequency_mhz"].clone()).unwrap_or(Value::Null)))),
                kv("Usage", format!("{usage:.1} %")),
            ]
        }
        "memory" => vec![
            kv("Total", bytes(&v["total_bytes"])),
            kv("Used", bytes(&v["used_bytes"])),
            kv("Available", bytes(&v["available_bytes"])),
            kv("Swap total", bytes(&v["swap_total_bytes"])),
            kv("Swap used", bytes(&v["swap_used_bytes"])),
        ],
        "disks" => {
            let mut l = vec![format!("{:<24} {:<10} {:>12} {:>12}  {}", "MOUNT POINT", "FS", "SIZE", "FREE", "DEVICE")];
            for d in arr(v) {
                l.push(format!(
                    "{:<24} {:<10} {:>12} {:>12}  {}{}",
                    s(&d["mount_point"]),
                    s(&d["file_system"]),
                    bytes(&d["total_bytes"]),
                    bytes(&d["available_bytes"]),
                    s(&d["name"]),
                    if d["removable"].as_bool() == Some(true) { " (removable)" } else { "" }
                ));
            }
            l
        }
        "network" => arr(v)
            .iter()
            .map(|n| {
                let addrs: Vec<String> = arr(&n["addresses"]).iter().map(s).collect();
                format!(
                    "{:<12} {}  {}  rx {} tx {}",
                    s(&n["name"]),
                    s(&n["mac"]),
                    if addrs.is_empty() { "-".to_string() } else { addrs.join(", ") },
                    bytes(&n["received_bytes"]),
                    bytes(&n["transmitted_bytes"])
                )
            })
            .collect(),
        "processes" => {
            let row = |p: &Value| format!("  {:>7} {:<24} {:>6.1} % {:>12}", s(&p["pid"]), s(&p["name"]), p["cpu_percent"].as_f64().unwrap_or(0.0), bytes(&p["memory_bytes"]));
            let mut l = vec![kv("Processes", s(&v["count"])), "Top by CPU:".into()];
            l.extend(arr(&v["top_by_cpu"]).iter().map(row));
            l.push("Top by memory:".into());
            l.extend(arr(&v["top_by_memory"]).iter().map(row));
            l
        }
        "users" => {
            let mut l: Vec<String> = arr(&v["logged_in"])
                .iter()
                .map(|u| format!("{:<16} {:<10} since {}{}", s(&u["user"]), s(&u["terminal"]), s(&u["since"]), u["from"].as_str().map(|f| format!(" from {f}")).unwrap_or_default()))
                .collect();
            if l.is_empty() {
                l.push("nobody is logged in".into());
            }
            l.push(kv("Local accounts", arr(&v["accounts"]).len().to_string()));
            l
        }
        "software" => {
            let mut l = vec![kv("Package manager", s(&v["manager"])), kv("Packages", s(&v["count"]))];
            if let Some(note) = v["note"].as_str() {
                l.push(note.to_string());
            }
            l.extend(arr(&v["packages"]).iter().map(|p| format!("{:<40} {}", s(&p["name"]), s(&p["version"]))));
            l
        }
        _ => vec![v.to_string()],
    }
}
