//! The agent's license update: the back office service that plugins with
//! `license.update` use ([`AgentLicense`]), in a session or without one
//! (the license plugin schedules its own checks and answers the admin's
//! `agent license-check`, see [`crate::background`]).

use std::path::Path;
use std::sync::{Arc, Mutex};

use lifeline_core::config::AgentConfig;
use lifeline_license::updater::Offer;
use lifeline_license::{Check, Updater};
use lifeline_runtime::{LicenseService, wit};

use crate::CustomerUi;

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The updater for an agent config; `None` without `[remote_service]`.
pub fn updater(cfg: &AgentConfig) -> Option<Updater> {
    cfg.remote_service
        .as_ref()
        .map(|rs| Updater::new(rs.clone(), cfg.endpoint.trust.clone(), cfg.data_dir.clone()))
}

/// The back office as plugins see it, announcing to the customer.
pub struct AgentLicense {
    updater: Updater,
    ui: Arc<dyn CustomerUi>,
    /// The offer of the last check, installed by the next `install`.
    pending: Mutex<Option<Offer>>,
}

impl AgentLicense {
    pub fn new(cfg: &AgentConfig, ui: Arc<dyn CustomerUi>) -> Option<Arc<Self>> {
        updater(cfg).map(|updater| {
            Arc::new(AgentLicense {
                updater,
                ui,
                pending: Mutex::new(None),
            })
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<Offer>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The answer of a check, as plugins get it.
pub fn check_record(check: &Check) -> wit::LicenseCheck {
    let (status, text, changes) = match check {
        Check::UpToDate(l) => (
            wit::LicenseStatus::UpToDate,
            format!("The installed license (serial {}) is up to date.", l.serial),
            Vec::new(),
        ),
        Check::NothingPublished(l) => (
            wit::LicenseStatus::NothingPublished,
            format!("The back office has no license for serial {}.", l.serial),
            Vec::new(),
        ),
        Check::Available(o) => (
            wit::LicenseStatus::Available,
            Updater::announcement(o),
            o.changes.lines(),
        ),
    };
    wit::LicenseCheck {
        status,
        text,
        changes,
    }
}

impl LicenseService for AgentLicense {
    fn about(&self) -> Result<wit::LicenseAbout, String> {
        let l = self.updater.installed().map_err(|e| e.to_string())?;
        let last = Updater::last_status(&self.updater.state_dir);
        Ok(wit::LicenseAbout {
            about: l.about(today()),
            serial: l.serial.to_string(),
            remote_service: if self.updater.cfg.enabled {
                "enabled"
            } else {
                "disabled"
            }
            .into(),
            mode: self.updater.cfg.mode.name().into(),
            last_check: last.as_ref().map(|s| s.last_check.clone()),
            last_result: last.map(|s| s.result),
            check_interval_secs: self.updater.cfg.check_interval.as_secs(),
        })
    }

    fn check(&self) -> Result<wit::LicenseCheck, String> {
        let check = self.updater.check().map_err(|e| e.to_string())?;
        let answer = check_record(&check);
        if let Check::Available(offer) = check {
            self.ui.show(&Updater::announcement(&offer));
            *self.pending() = Some(*offer);
        }
        Ok(answer)
    }

    fn install(&self) -> Result<wit::LicenseInstall, String> {
        let offer = match self.pending().take() {
            Some(o) => o,
            None => match self.updater.check().map_err(|e| e.to_string())? {
                Check::Available(o) => {
                    self.ui.show(&Updater::announcement(&o));
                    *o
                }
                other => {
                    return Err(format!(
                        "no newer license to install: {}",
                        check_record(&other).text
                    ));
                }
            },
        };
        let out = self.updater.install(&offer).map_err(|e| e.to_string())?;
        self.ui.show(&out.message);
        Ok(wit::LicenseInstall {
            installed: out.copy_to.is_none(),
            message: out.message,
            path: out.path.display().to_string(),
            backup: out.backup.map(|b| b.display().to_string()),
            reload_output: out.reload,
            copy_to: out.copy_to.map(|c| c.display().to_string()),
            about: offer.candidate.about(today()),
        })
    }
}

/// The last check recorded in `data_dir`.
pub fn last_status(data_dir: &Path) -> Option<lifeline_license::updater::Status> {
    Updater::last_status(data_dir)
}
