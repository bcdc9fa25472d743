//! System information gathered natively for the `system.info` capability,
//! one category at a time, as JSON.

use serde_json::{Value, json};
use sysinfo::{Disks, Networks, ProcessesToUpdate, System, Users};

/// The categories `system-info` answers.
pub const CATEGORIES: [&str; 8] = [
    "os",
    "cpu",
    "memory",
    "disks",
    "network",
    "processes",
    "users",
    "software",
];
/// Installed packages listed at most (the count is always complete).
pub const MAX_PACKAGES: usize = 5000;
/// Time a platform tool (`who`, `dpkg-query`, `rpm`) may take.
pub const TOOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs a platform tool; `None` when it is missing or fails.
fn tool(program: &str, args: &[&str]) -> Option<String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let dir = std::env::temp_dir();
    let out = crate::process::run(program, &args, &dir, TOOL_TIMEOUT, 64 << 20).ok()?;
    (out.exit_code == 0).then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Logged-in users from `who`: user, terminal, since, from.
fn logged_in() -> Vec<Value> {
    tool("who", &[])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let user = f.next()?;
            let tty = f.next()?;
            let rest: Vec<&str> = f.collect();
            let from = rest
                .iter()
                .find(|s| s.starts_with('('))
                .map(|s| s.trim_matches(|c| c == '(' || c == ')').to_string());
            let since = rest
                .iter()
                .filter(|s| !s.starts_with('('))
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            Some(json!({"user": user, "terminal": tty, "since": since, "from": from}))
        })
        .collect()
}

/// Installed software from the platform's package manager.
fn software() -> Value {
    let (manager, list) = if let Some(out) =
        tool("dpkg-query", &["-W", "-f", "${Package}\t${Version}\n"])
    {
        ("dpkg", out)
    } else if let Some(out) = tool(
        "rpm",
        &["-qa", "--queryformat", "%{NAME}\t%{VERSION}-%{RELEASE}\n"],
    ) {
        ("rpm", out)
    } else {
        return json!({"manager": null, "count": 0, "packages": [], "note": "this platform does not tell (no dpkg or rpm)"});
    };
    let mut pkgs: Vec<(String, String)> = list
        .lines()
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(n, v)| (n.to_string(), v.to_string()))
        })
        .collect();
    pkgs.sort();
    let count = pkgs.len();
    let packages: Vec<Value> = pkgs
        .into_iter()
        .take(MAX_PACKAGES)
        .map(|(n, v)| json!({"name": n, "version": v}))
        .collect();
    json!({"manager": manager, "count": count, "packages": packages})
}
/// Processes listed per ordering (by CPU and by memory).
pub const TOP_PROCESSES: usize = 10;

/// One category as JSON; an unknown category names the valid ones.
pub fn category(name: &str) -> Result<Value, String> {
    match name {
        "os" => Ok(json!({
            "name": System::name(),
            "version": System::long_os_version(),
            "kernel": System::kernel_version(),
            "host_name": System::host_name(),
            "uptime_secs": System::uptime(),
            "boot_time": System::boot_time(),
        })),
        "cpu" => {
            let mut s = System::new();
            s.refresh_cpu_all();
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            s.refresh_cpu_all();
            let cpus: Vec<Value> = s
                .cpus()
                .iter()
                .map(|c| json!({"name": c.name(), "brand": c.brand(), "frequency_mhz": c.frequency(), "usage_percent": c.cpu_usage()}))
                .collect();
            let physical = System::physical_core_count();
            Ok(
                json!({"count": cpus.len(), "physical_cores": physical, "arch": System::cpu_arch(), "cpus": cpus}),
            )
        }
        "memory" => {
            let mut s = System::new();
            s.refresh_memory();
            Ok(json!({
                "total_bytes": s.total_memory(),
                "used_bytes": s.used_memory(),
                "available_bytes": s.available_memory(),
                "swap_total_bytes": s.total_swap(),
                "swap_used_bytes": s.used_swap(),
            }))
        }
        "disks" => {
            let disks = Disks::new_with_refreshed_list();
            Ok(Value::Array(
                disks
                    .iter()
                    .map(|d| {
                        json!({
                            "name": d.name().to_string_lossy(),
                            "mount_point": d.mount_point().display().to_string(),
                            "file_system": d.file_system().to_string_lossy(),
                            "total_bytes": d.total_space(),
                            "available_bytes": d.available_space(),
                            "removable": d.is_removable(),
                        })
                    })
                    .collect(),
            ))
        }
        "network" => {
            let nets = Networks::new_with_refreshed_list();
            let mut list: Vec<Value> = nets
                .iter()
                .map(|(name, n)| json!({
                    "name": name,
                    "mac": n.mac_address().to_string(),
                    "addresses": n.ip_networks().iter().map(|ip| format!("{}/{}", ip.addr, ip.prefix)).collect::<Vec<_>>(),
                    "received_bytes": n.total_received(),
                    "transmitted_bytes": n.total_transmitted(),
                }))
                .collect();
            list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            Ok(Value::Array(list))
        }
        "processes" => {
            let mut s = System::new();
            s.refresh_processes(ProcessesToUpdate::All, true);
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            s.refresh_processes(ProcessesToUpdate::All, true);
            let mut procs: Vec<_> = s.processes().values().collect();
            let row = |p: &sysinfo::Process| {
                json!({
                    "pid": p.pid().as_u32(),
                    "name": p.name().to_string_lossy(),
                    "cpu_percent": p.cpu_usage(),
                    "memory_bytes": p.memory(),
                })
            };
            procs.sort_by(|a, b| b.cpu_usage().total_cmp(&a.cpu_usage()));
            let by_cpu: Vec<Value> = procs.iter().take(TOP_PROCESSES).map(|p| row(p)).collect();
            procs.sort_by_key(|p| std::cmp::Reverse(p.memory()));
            let by_memory: Vec<Value> = procs.iter().take(TOP_PROCESSES).map(|p| row(p)).collect();
            Ok(json!({"count": procs.len(), "top_by_cpu": by_cpu, "top_by_memory": by_memory}))
        }
        "users" => {
            let users = Users::new_with_refreshed_list();
            let mut names: Vec<String> = users.iter().map(|u| u.name().to_string()).collect();
            names.sort();
            Ok(json!({"logged_in": logged_in(), "accounts": names}))
        }
        "software" => Ok(software()),
        other => Err(format!(
            "unknown category {other:?}; use one of {}",
            CATEGORIES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_category_answers() {
        for c in super::CATEGORIES {
            let v = super::category(c).unwrap();
            assert!(!v.is_null(), "{c}");
        }
        assert!(super::category("gpu").unwrap_err().contains("os, cpu"));
    }
}
