//! The agent's license update: the back office service that plugins with
//! `license.update` use ([`AgentLicense`]), in a session or in the
//! background (the license plugin schedules its own checks, see
//! [`crate::background`]), and the admin's one-shot check
//! ([`check_once`]), where consent comes from the agent's policy file (no
//! customer is asked).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::audit::AuditLog;
use lifeline_core::config::AgentConfig;
use lifeline_core::consent::{ConsentEngine, ConsentRequest, Prompter, RequestKind};
use lifeline_license::updater::Offer;
use lifeline_license::{Check, LicenseError, Updater};
use lifeline_protocol::ConsentDecision;
use lifeline_runtime::{LicenseService, wit};

use crate::{AUDIT_FILE, CustomerUi};

/// Session ID consent decisions outside a session are recorded under.
pub const SERVICE_SESSION: &str = "license-service";
/// Plugin name recorded for checks the agent runs itself.
pub const SERVICE_PLUGIN: &str = "license";
/// Capability name of license installs (same as the plugin's).
pub const CAPABILITY: &str = "license.update";

/// Why a check outside a session failed.
#[derive(Debug, thiserror::Error)]
pub enum LicenseRunError {
    #[error(transparent)]
    License(#[from] LicenseError),
    #[error(transparent)]
    Audit(#[from] lifeline_core::audit::AuditError),
    #[error(
        "installing the license was not allowed ({0}); set \"license.update\" = \"allow\" in the agent's policy to install unattended"
    )]
    Denied(String),
    #[error("the check stopped unexpectedly: {0}")]
    Join(String),
}

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

/// Outside a session nobody is asked: only the policy decides.
pub(crate) struct NoCustomer;

impl Prompter for NoCustomer {
    fn ask<'a>(
        &'a self,
        _request: &'a ConsentRequest,
        _timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Option<ConsentDecision>> + Send + 'a>> {
        Box::pin(async { None })
    }
}

/// One unattended check: ask the back office; when a newer license is
/// offered, announce it, decide consent by the agent's policy (recorded in
/// the audit log), and install it. Returns what happened, for the log.
pub async fn check_once(
    cfg: &AgentConfig,
    ui: Arc<dyn CustomerUi>,
) -> Result<String, LicenseRunError> {
    let up = updater(cfg).ok_or(LicenseError::NotConfigured)?;
    let u = up.clone();
    let check = tokio::task::spawn_blocking(move || u.check())
        .await
        .map_err(|e| LicenseRunError::Join(e.to_string()))??;
    let offer = match check {
        Check::Available(o) => *o,
        other => {
            return Ok(check_record(&other).text);
        }
    };
    let announcement = Updater::announcement(&offer);
    ui.show(&announcement);
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| LicenseError::Io {
        path: cfg.data_dir.clone(),
        reason: e.to_string(),
    })?;
    let audit = AuditLog::open(&cfg.data_dir.join(AUDIT_FILE))?;
    let mut engine = ConsentEngine::new(cfg.policy.clone(), cfg.consent_timeout, audit);
    let req = ConsentRequest {
        session_id: SERVICE_SESSION.into(),
        operator: "the agent service".into(),
        plugin: SERVICE_PLUGIN.into(),
        action: CAPABILITY.into(),
        detail: announcement.clone(),
        kind: RequestKind::Capability,
    };
    let d = engine.decide(&req, &NoCustomer).await?;
    if !d.decision.is_allowed() {
        return Err(LicenseRunError::Denied(d.decided_by.as_str().into()));
    }
    let out = tokio::task::spawn_blocking(move || up.install(&offer))
        .await
        .map_err(|e| LicenseRunError::Join(e.to_string()))??;
    ui.show(&out.message);
    Ok(format!("{announcement}\n{}", out.message))
}

/// The last check recorded in `data_dir`.
pub fn last_status(data_dir: &Path) -> Option<lifeline_license::updater::Status> {
    Updater::last_status(data_dir)
}
