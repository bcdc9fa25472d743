//! The license tests' harness: a vendor key, signed licenses, the broker
//! as back office with one organisation, and tinyproxy with Basic auth.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use lifeline_agent::config::remote_service::{LicenseMode, RemoteServiceConfig};
use lifeline_broker::Broker;
use lifeline_broker::store::LicenseRow;
use lifeline_core::config::back_office::{BackOfficeConfig, CodeCheck, Organisation};
use lifeline_core::proxy::{ManualProxy, ProxyAuth, ProxySetting, Secret};
use lifeline_license::BackOffice;
use lifeline_license::document::{License, public_key_string};

use crate::support::*;

pub const ORG: &str = "ORG-4711";
pub const CODE: &str = "verify-me-7f3a9c";
pub const PROXY_USER: &str = "lic";
pub const PROXY_PASSWORD: &str = "proxy-pw-91b2";
pub const SERIAL: &str = "LL-2026-0042";

pub fn vendor() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// A signed license for `serial` issued on `issued` (RFC 3339).
pub fn license(
    serial: &str,
    issued: &str,
    maintenance: &str,
    features: &[&str],
    users: u64,
) -> License {
    let mut l = License {
        serial: serial.into(),
        customer: "Rossi Stampa S.r.l.".into(),
        product: "PrintSuite".into(),
        features: {
            let mut f: Vec<String> = features.iter().map(|f| f.to_string()).collect();
            f.sort();
            f
        },
        users,
        issued: chrono::DateTime::parse_from_rfc3339(issued).unwrap().into(),
        expires: chrono::NaiveDate::from_ymd_opt(2030, 12, 31).unwrap(),
        maintenance_end: chrono::NaiveDate::parse_from_str(maintenance, "%Y-%m-%d").unwrap(),
        signature: None,
    };
    l.sign(&vendor());
    l
}

pub fn old_license() -> License {
    license(SERIAL, "2026-01-10T09:00:00Z", "2026-12-31", &["print"], 10)
}

pub fn new_license() -> License {
    license(
        SERIAL,
        "2026-11-20T09:00:00Z",
        "2027-12-31",
        &["print", "imposition"],
        25,
    )
}

/// The broker with a back office that knows one organisation.
pub struct Office {
    pub tb: TestBroker,
}

impl Office {
    pub async fn start() -> Office {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = broker_config(dir.path(), Duration::from_secs(15));
        cfg.back_office = Some(BackOfficeConfig {
            vendor_keys: vec![public_key_string(&vendor().verifying_key())],
            organisations: vec![Organisation {
                id: ORG.into(),
                code: CodeCheck::Argon2(lifeline_broker::accounts::hash_password(CODE).unwrap()),
            }],
        });
        lifeline_broker::add_operator(&cfg, &profile("alice", "Alice Smith"), PASSWORD).unwrap();
        let broker = Broker::start(cfg).await.unwrap();
        Office {
            tb: TestBroker { dir, broker },
        }
    }

    pub fn publish(&self, l: &License) {
        let f = self
            .tb
            .dir
            .path()
            .join(format!("publish-{}.toml", l.issued.timestamp()));
        std::fs::write(&f, l.to_toml()).unwrap();
        lifeline_broker::back_office::publish(&self.tb.broker.shared.cfg, &f).unwrap();
    }

    /// Puts a document straight into the store (what a compromised or
    /// buggy back office could serve).
    pub fn serve_raw(&self, issued: &str, document: String) {
        self.tb
            .broker
            .shared
            .store
            .insert_license(&LicenseRow {
                serial: SERIAL.into(),
                issued: issued.into(),
                document,
                published_at: 0,
            })
            .unwrap();
    }

    pub fn back_office_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.tb.broker.https_addr.port())
    }

    /// Remote-service settings with the old license installed.
    pub fn remote_service(
        &self,
        name: &str,
        mode: LicenseMode,
        proxy: ProxySetting,
    ) -> RemoteServiceConfig {
        let root = self.tb.dir.path().join(name);
        let license_file = root.join("licenses").join("license.toml");
        std::fs::create_dir_all(license_file.parent().unwrap()).unwrap();
        std::fs::write(&license_file, old_license().to_toml()).unwrap();
        RemoteServiceConfig {
            enabled: true,
            back_office: self.back_office_url(),
            organisation_id: ORG.into(),
            verification_code: Secret::new(CODE),
            vendor_keys: vec![public_key_string(&vendor().verifying_key())],
            check_interval: Duration::from_secs(3600),
            license_file,
            mode,
            download_folder: root.join("downloads"),
            proxy,
            service_account: None,
        }
    }

    /// The back office client the agent's `back-office` endpoint uses.
    pub fn back_office(&self, rs: &RemoteServiceConfig) -> BackOffice {
        BackOffice {
            url: rs.back_office.clone(),
            trust: self.tb.endpoint().trust,
            proxy: rs.proxy.clone(),
            organisation_id: rs.organisation_id.clone(),
            code: rs.verification_code.clone(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// tinyproxy with Basic authentication on a free loopback port.
pub struct Tinyproxy {
    child: std::process::Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Tinyproxy {
    pub fn start() -> Tinyproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\nMaxClients 20\nLogLevel Connect\nLogFile \"{}\"\nBasicAuth {PROXY_USER} {PROXY_PASSWORD}\n",
                dir.path().join("proxy.log").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tinyproxy is installed by scripts/setup");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Tinyproxy { child, port, dir }
    }

    pub fn setting(&self, password: &str) -> ProxySetting {
        ProxySetting::Manual(ManualProxy {
            host: "127.0.0.1".into(),
            port: self.port,
            auth: Some(ProxyAuth {
                user: PROXY_USER.into(),
                password: Secret::new(password),
                domain: None,
            }),
            no_proxy: vec![],
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
