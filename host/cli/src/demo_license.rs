//! The demo's license update: a vendor key, the demo broker as back office,
//! an installed license on a local "license server" folder, then a newer
//! license published and installed by the license plugin under consent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use ed25519_dalek::SigningKey;
use lifeline_agent::config::remote_service::{LicenseMode, RemoteServiceConfig};
use lifeline_core::config::back_office::{BackOfficeConfig, CodeCheck, Organisation};
use lifeline_core::proxy::{ProxySetting, Secret};
use lifeline_license::License;
use lifeline_license::document::public_key_string;
use lifeline_operator::Client;

use crate::demo::STEP_TIMEOUT;

/// The demo's service organisation.
pub const DEMO_ORG: &str = "DEMO-ORG";
/// The demo installation's serial number.
pub const DEMO_SERIAL: &str = "DEMO-2026-0001";

/// The demo vendor: a fresh key and verification code per run.
pub struct Vendor {
    key: SigningKey,
    code: Secret,
    folder: PathBuf,
}

fn say(who: &str, what: &str) {
    for l in what.lines() {
        println!("{who:>9} │ {l}");
    }
}

impl Vendor {
    pub fn new(root: &Path) -> Result<Vendor> {
        let key_file = root.join("demo-vendor.key");
        lifeline_license::document::keygen(&key_file)?;
        Ok(Vendor {
            key: lifeline_license::document::load_signing_key(&key_file)?,
            code: Secret::new(lifeline_broker::accounts::new_token()),
            folder: root.to_owned(),
        })
    }

    fn public(&self) -> String {
        public_key_string(&self.key.verifying_key())
    }

    pub fn back_office(&self) -> BackOfficeConfig {
        BackOfficeConfig {
            vendor_keys: vec![self.public()],
            organisations: vec![Organisation {
                id: DEMO_ORG.into(),
                code: CodeCheck::File(self.code.clone()),
            }],
        }
    }

    fn license(
        &self,
        issued: &str,
        maintenance: &str,
        features: &[&str],
        users: u64,
    ) -> Result<License> {
        let mut l = License {
            serial: DEMO_SERIAL.into(),
            customer: "Demo Customer Ltd".into(),
            product: "PrintSuite".into(),
            features: features.iter().map(|f| f.to_string()).collect(),
            users,
            issued: chrono::DateTime::parse_from_rfc3339(issued)?.into(),
            expires: chrono::NaiveDate::from_ymd_opt(2030, 12, 31).expect("literal date"),
            maintenance_end: chrono::NaiveDate::parse_from_str(maintenance, "%Y-%m-%d")?,
            signature: None,
        };
        l.features.sort();
        l.sign(&self.key);
        Ok(l)
    }

    /// The agent's settings, with the current license installed on the
    /// local license server (a folder under the demo's data).
    pub fn remote_service(&self, root: &Path, https: SocketAddr) -> Result<RemoteServiceConfig> {
        let license_file = root.join("license-server").join("license.toml");
        std::fs::create_dir_all(root.join("license-server"))?;
        let current = self.license("2026-01-10T09:00:00Z", "2026-12-31", &["print"], 10)?;
        std::fs::write(&license_file, current.to_toml())?;
        Ok(RemoteServiceConfig {
            enabled: true,
            back_office: format!("https://{https}"),
            organisation_id: DEMO_ORG.into(),
            verification_code: self.code.clone(),
            vendor_keys: vec![self.public()],
            check_interval: Duration::from_secs(24 * 3600),
            license_file,
            mode: LicenseMode::Local {
                reload_command: None,
            },
            download_folder: root.join("license-downloads"),
            proxy: ProxySetting::None,
            service_account: None,
        })
    }
}

/// Publishes a newer license and has the license plugin install it.
pub async fn walk(
    vendor: &Vendor,
    broker: &lifeline_broker::Broker,
    op: &Client,
    sid: &str,
) -> Result<()> {
    let newer = vendor.license(
        "2026-11-20T09:00:00Z",
        "2027-12-31",
        &["print", "imposition"],
        25,
    )?;
    let file = vendor.folder.join("renewed-license.toml");
    std::fs::write(&file, newer.to_toml())?;
    lifeline_broker::back_office::publish(&broker.shared.cfg, &file)?;
    say(
        "broker",
        &format!(
            "the vendor published a renewed license for serial {DEMO_SERIAL} (maintenance to 2027-12-31, +imposition, 25 users)"
        ),
    );
    let print = |stream: &str, text: &str| {
        if stream == "output" || stream == "consent" {
            for l in text.lines() {
                say("operator", &format!("[license {stream}] {l}"));
            }
        }
    };
    say("operator", "runs the license plugin: update");
    let started = std::time::Instant::now();
    match op
        .run_plugin(sid, "license", "update", &[], STEP_TIMEOUT, print)
        .await?
    {
        Ok(_) => say(
            "operator",
            &format!(
                "license updated in {} ms (check, announce, consent, install)",
                started.elapsed().as_millis()
            ),
        ),
        Err(why) => bail!("the license update failed: {why}"),
    }
    Ok(())
}
