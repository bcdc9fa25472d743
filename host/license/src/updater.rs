//! The agent's license update, step by step: read the installed license
//! (its serial identifies the installation), ask the back office, verify and
//! compare the offer, install it per the configured mode. Each check and
//! install is recorded in a status file in the agent's data folder, for
//! `lifeline agent status`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeline_core::remote_service::{LicenseMode, RemoteServiceConfig};
use lifeline_core::tls::Trust;
use serde::{Deserialize, Serialize};

use crate::LicenseError;
use crate::diff::{Changes, Verdict, compare};
use crate::document::{License, fmt_date};
use crate::fetch::{BackOffice, FETCH_TIMEOUT};
use crate::install;

/// File in the agent's data folder holding the last check's time and result.
pub const STATUS_FILE: &str = "license-status.json";

/// An update the back office offers.
#[derive(Debug, Clone)]
pub struct Offer {
    pub installed: License,
    pub candidate: License,
    /// The file as downloaded (installed byte for byte).
    pub bytes: Vec<u8>,
    pub changes: Changes,
}

/// What a check found.
#[derive(Debug, Clone)]
pub enum Check {
    /// The back office has the installed license.
    UpToDate(License),
    /// The back office has no license for this serial.
    NothingPublished(License),
    Available(Box<Offer>),
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Where the new license is.
    pub path: PathBuf,
    pub backup: Option<PathBuf>,
    /// The reload command's result, when one ran.
    pub reload: Option<Result<String, String>>,
    /// Manual mode: where the customer should copy the file.
    pub copy_to: Option<PathBuf>,
    /// For the customer, in full sentences.
    pub message: String,
}

/// The last check, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub last_check: String,
    pub ok: bool,
    pub result: String,
}

/// License checks and installs for one agent.
#[derive(Debug, Clone)]
pub struct Updater {
    pub cfg: RemoteServiceConfig,
    /// How the back office's certificate is trusted (the agent's connection trust).
    pub trust: Trust,
    /// The agent's data folder (status file).
    pub state_dir: PathBuf,
}

impl Updater {
    pub fn new(cfg: RemoteServiceConfig, trust: Trust, state_dir: PathBuf) -> Self {
        Updater {
            cfg,
            trust,
            state_dir,
        }
    }

    /// The back office client (`timeout` per step).
    pub fn back_office(&self, timeout: Duration) -> BackOffice {
        BackOffice {
            url: self.cfg.back_office.clone(),
            trust: self.trust.clone(),
            proxy: self.cfg.proxy.clone(),
            organisation_id: self.cfg.organisation_id.clone(),
            code: self.cfg.verification_code.clone(),
            timeout,
        }
    }

    /// The installed license, signature verified.
    pub fn installed(&self) -> Result<License, LicenseError> {
        let path = &self.cfg.license_file;
        let l = License::load(path)?;
        l.verify(path, &self.cfg.vendor_keys)?;
        Ok(l)
    }

    /// Asks the back office for a newer license. Never connects when the
    /// remote service is disabled. The result is recorded.
    pub fn check(&self) -> Result<Check, LicenseError> {
        if !self.cfg.enabled {
            return Err(LicenseError::Disabled);
        }
        let r = self.check_inner();
        let (ok, text) = match &r {
            Ok(Check::UpToDate(l)) => (true, format!("up to date (serial {})", l.serial)),
            Ok(Check::NothingPublished(l)) => (
                true,
                format!("no license published for serial {}", l.serial),
            ),
            Ok(Check::Available(o)) => (
                true,
                format!(
                    "update available for serial {} (issued {})",
                    o.candidate.serial,
                    o.candidate.issued.to_rfc3339()
                ),
            ),
            Err(e) => (false, e.to_string()),
        };
        self.record(ok, &text);
        r
    }

    fn check_inner(&self) -> Result<Check, LicenseError> {
        let installed = self.installed()?;
        let Some(bytes) = self
            .back_office(FETCH_TIMEOUT)
            .fetch_license(&installed.serial)?
        else {
            return Ok(Check::NothingPublished(installed));
        };
        let origin = PathBuf::from(format!(
            "{}{}/licenses/{}",
            self.cfg.back_office,
            crate::fetch::LICENSE_PATH,
            installed.serial
        ));
        let candidate = License::parse_bytes(&origin, &bytes)?;
        candidate.verify(&origin, &self.cfg.vendor_keys)?;
        match compare(&installed, &candidate) {
            Verdict::Same => Ok(Check::UpToDate(installed)),
            Verdict::Refused(why) => Err(LicenseError::Refused(why)),
            Verdict::Newer(changes) => Ok(Check::Available(Box::new(Offer {
                installed,
                candidate,
                bytes,
                changes,
            }))),
        }
    }

    /// Where manual mode leaves a downloaded license.
    pub fn download_path(&self, l: &License) -> PathBuf {
        self.cfg.download_folder.join(format!(
            "{}-{}.toml",
            l.serial,
            l.issued.format("%Y%m%dT%H%M%SZ")
        ))
    }

    /// Installs an offer per the configured mode. The result is recorded.
    pub fn install(&self, offer: &Offer) -> Result<Outcome, LicenseError> {
        let r = self.install_inner(offer);
        match &r {
            Ok(o) => self.record(true, &o.message),
            Err(e) => self.record(false, &format!("install failed: {e}")),
        }
        r
    }

    fn install_inner(&self, offer: &Offer) -> Result<Outcome, LicenseError> {
        // Verify again: the offer may have waited for consent.
        let again = License::parse_bytes(Path::new("offered license"), &offer.bytes)?;
        again.verify(Path::new("offered license"), &self.cfg.vendor_keys)?;
        if again != offer.candidate {
            return Err(LicenseError::Refused(
                "the offer changed after it was checked".into(),
            ));
        }
        let dest = &self.cfg.license_file;
        match &self.cfg.mode {
            LicenseMode::Local { reload_command } => {
                let done = install::install(dest, &offer.bytes)?;
                let reload = reload_command.as_ref().map(|c| install::reload(c));
                let mut message = format!(
                    "The new license is installed on the local license server: {}{}.",
                    done.path.display(),
                    kept(&done.backup)
                );
                match &reload {
                    Some(Ok(_)) => message.push_str(" The license server was reloaded."),
                    Some(Err(e)) => message.push_str(&format!(
                        " Reloading the license server failed ({e}); restart it to use the new license."
                    )),
                    None => {}
                }
                Ok(Outcome {
                    path: done.path,
                    backup: done.backup,
                    reload,
                    copy_to: None,
                    message,
                })
            }
            LicenseMode::Remote => {
                let done = install::install(dest, &offer.bytes)?;
                Ok(Outcome {
                    message: format!(
                        "The new license is installed in the shared license folder of the remote license server: {}{}.",
                        done.path.display(),
                        kept(&done.backup)
                    ),
                    path: done.path,
                    backup: done.backup,
                    reload: None,
                    copy_to: None,
                })
            }
            LicenseMode::Manual => {
                let path = self.download_path(&offer.candidate);
                let done = install::install(&path, &offer.bytes)?;
                Ok(Outcome {
                    message: format!(
                        "The new license was downloaded to {}. Copy it to {} on the license server and install it there.",
                        done.path.display(),
                        dest.display()
                    ),
                    path: done.path,
                    backup: None,
                    reload: None,
                    copy_to: Some(dest.clone()),
                })
            }
        }
    }

    /// The announcement for the customer: what the new license changes.
    pub fn announcement(offer: &Offer) -> String {
        let mut lines = vec![format!(
            "A new license is available for {} (serial {}), issued {}:",
            offer.candidate.product,
            offer.candidate.serial,
            fmt_date(offer.candidate.issued.date_naive())
        )];
        let changes = offer.changes.lines();
        if changes.is_empty() {
            lines.push("  - re-issued with the same terms".into());
        }
        lines.extend(changes.into_iter().map(|l| format!("  - {l}")));
        lines.join("\n")
    }

    fn record(&self, ok: bool, result: &str) {
        let s = Status {
            last_check: lifeline_core::time::now_rfc3339(),
            ok,
            result: result.to_string(),
        };
        let path = self.state_dir.join(STATUS_FILE);
        let text = serde_json::to_vec_pretty(&s).expect("strings always serialise");
        if let Err(e) = std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                lifeline_core::secrets::write_private(&path, &text).map_err(|e| e.to_string())
            })
        {
            tracing::warn!("cannot record the license check in {}: {e}", path.display());
        }
    }

    /// The last recorded check.
    pub fn last_status(state_dir: &Path) -> Option<Status> {
        let text = std::fs::read(state_dir.join(STATUS_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

fn kept(backup: &Option<PathBuf>) -> String {
    backup
        .as_ref()
        .map(|b| format!(" (the previous license is kept as {})", b.display()))
        .unwrap_or_default()
}
