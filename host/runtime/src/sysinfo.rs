//! System information gathered natively for the `system.info` capability,
//! one category at a time, as the WIT records of `sdk/wit`.

use crate::wit;
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
fn logged_in() -> Vec<wit::Login> {
    tool("who", &[])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let user = f.next()?.to_string();
            let terminal = f.next()?.to_string();
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
            Some(wit::Login {
                user,
                terminal,
                since,
                from,
            })
        })
        .collect()
}

/// Installed software from the platform's package manager.
fn software() -> wit::SoftwareInfo {
    let (manager, list) =
        if let Some(out) = tool("dpkg-query", &["-W", "-f", "${Package}\t${Version}\n"]) {
            ("dpkg", out)
        } else if let Some(out) = tool(
            "rpm",
            &["-qa", "--queryformat", "%{NAME}\t%{VERSION}-%{RELEASE}\n"],
        ) {
            ("rpm", out)
        } else {
            return wit::SoftwareInfo {
                manager: None,
                count: 0,
                packages: Vec::new(),
                note: Some("this platform does not tell (no dpkg or rpm)".into()),
            };
        };
    let mut pkgs: Vec<(String, String)> = list
        .lines()
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(n, v)| (n.to_string(), v.to_string()))
        })
        .collect();
    pkgs.sort();
    let count = u32::try_from(pkgs.len()).unwrap_or(u32::MAX);
    let packages = pkgs
        .into_iter()
        .take(MAX_PACKAGES)
        .map(|(name, version)| wit::Package { name, version })
        .collect();
    wit::SoftwareInfo {
        manager: Some(manager.into()),
        count,
        packages,
        note: None,
    }
}
/// Processes listed per ordering (by CPU and by memory).
pub const TOP_PROCESSES: usize = 10;

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn cpu() -> wit::CpuInfo {
    let mut s = System::new();
    s.refresh_cpu_all();
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    s.refresh_cpu_all();
    let cpus: Vec<wit::CpuCore> = s
        .cpus()
        .iter()
        .map(|c| wit::CpuCore {
            name: c.name().into(),
            brand: c.brand().into(),
            frequency_mhz: c.frequency(),
            usage_percent: c.cpu_usage(),
        })
        .collect();
    wit::CpuInfo {
        count: count(cpus.len()),
        physical_cores: System::physical_core_count().map(count),
        arch: System::cpu_arch(),
        cpus,
    }
}

fn processes() -> wit::ProcessesInfo {
    let mut s = System::new();
    s.refresh_processes(ProcessesToUpdate::All, true);
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    s.refresh_processes(ProcessesToUpdate::All, true);
    let mut procs: Vec<_> = s.processes().values().collect();
    let row = |p: &&sysinfo::Process| wit::ProcessRow {
        pid: p.pid().as_u32(),
        name: p.name().to_string_lossy().into_owned(),
        cpu_percent: p.cpu_usage(),
        memory_bytes: p.memory(),
    };
    procs.sort_by(|a, b| b.cpu_usage().total_cmp(&a.cpu_usage()));
    let top_by_cpu = procs.iter().take(TOP_PROCESSES).map(row).collect();
    procs.sort_by_key(|p| std::cmp::Reverse(p.memory()));
    let top_by_memory = procs.iter().take(TOP_PROCESSES).map(row).collect();
    wit::ProcessesInfo {
        count: count(procs.len()),
        top_by_cpu,
        top_by_memory,
    }
}

fn network() -> Vec<wit::NetworkInterface> {
    let nets = Networks::new_with_refreshed_list();
    let mut list: Vec<wit::NetworkInterface> = nets
        .iter()
        .map(|(name, n)| wit::NetworkInterface {
            name: name.clone(),
            mac: n.mac_address().to_string(),
            addresses: n
                .ip_networks()
                .iter()
                .map(|ip| format!("{}/{}", ip.addr, ip.prefix))
                .collect(),
            received_bytes: n.total_received(),
            transmitted_bytes: n.total_transmitted(),
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

/// One category of facts.
pub fn category(which: wit::InfoCategory) -> wit::SystemInfo {
    use wit::InfoCategory as C;
    match which {
        C::Os => wit::SystemInfo::Os(wit::OsInfo {
            name: System::name(),
            version: System::long_os_version(),
            kernel: System::kernel_version(),
            host_name: System::host_name(),
            uptime_secs: System::uptime(),
            boot_time: System::boot_time(),
        }),
        C::Cpu => wit::SystemInfo::Cpu(cpu()),
        C::Memory => {
            let mut s = System::new();
            s.refresh_memory();
            wit::SystemInfo::Memory(wit::MemoryInfo {
                total_bytes: s.total_memory(),
                used_bytes: s.used_memory(),
                available_bytes: s.available_memory(),
                swap_total_bytes: s.total_swap(),
                swap_used_bytes: s.used_swap(),
            })
        }
        C::Disks => wit::SystemInfo::Disks(
            Disks::new_with_refreshed_list()
                .iter()
                .map(|d| wit::Disk {
                    name: d.name().to_string_lossy().into_owned(),
                    mount_point: d.mount_point().display().to_string(),
                    file_system: d.file_system().to_string_lossy().into_owned(),
                    total_bytes: d.total_space(),
                    available_bytes: d.available_space(),
                    removable: d.is_removable(),
                })
                .collect(),
        ),
        C::Network => wit::SystemInfo::Network(network()),
        C::Processes => wit::SystemInfo::Processes(processes()),
        C::Users => {
            let users = Users::new_with_refreshed_list();
            let mut accounts: Vec<String> = users.iter().map(|u| u.name().to_string()).collect();
            accounts.sort();
            wit::SystemInfo::Users(wit::UsersInfo {
                logged_in: logged_in(),
                accounts,
            })
        }
        C::Software => wit::SystemInfo::Software(software()),
    }
}

/// The category named `name` (as Lua plugins pass it); an unknown name
/// lists the valid ones.
pub fn parse_category(name: &str) -> Result<wit::InfoCategory, String> {
    use wit::InfoCategory as C;
    let all = [
        C::Os,
        C::Cpu,
        C::Memory,
        C::Disks,
        C::Network,
        C::Processes,
        C::Users,
        C::Software,
    ];
    CATEGORIES
        .iter()
        .position(|c| *c == name)
        .map(|i| all[i])
        .ok_or_else(|| {
            format!(
                "unknown category {name:?}; use one of {}",
                CATEGORIES.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_category_answers() {
        for c in super::CATEGORIES {
            let which = super::parse_category(c).unwrap();
            let info = super::category(which);
            let json = serde_json::to_value(&info).unwrap();
            assert!(
                json.as_object().is_some_and(|o| o.len() == 1),
                "{c}: {json}"
            );
        }
        assert!(
            super::parse_category("gpu")
                .unwrap_err()
                .contains("os, cpu")
        );
    }
}
