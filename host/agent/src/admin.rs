//! What the agent's admin names for plugins ([`AgentAdmin`], the
//! runtime's `AdminResources`): each plugin's settings, the vendor keys
//! signed documents are checked against, the back office endpoint (its
//! URL, trust, proxy and credentials stay here), and the admin's commands.
//! The license plugin's whole update (when to check, compare, announce,
//! install per mode) is the plugin's; this module only answers by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::remote_service::names;
use crate::config::{AgentConfig, PluginsConfig};
use lifeline_license::fetch::{BackOffice, FETCH_TIMEOUT};
use lifeline_license::{FetchError, License};
use lifeline_runtime::host::ProcessOutput;
use lifeline_runtime::{AdminResources, EndpointRequest, http, wit};

use crate::admin_command;

/// The agent's answers to plugins' `settings.read`, `document.verify`,
/// `http.endpoint` and `command.admin`.
pub struct AgentAdmin {
    settings: BTreeMap<String, BTreeMap<String, String>>,
    /// Keys (`ed25519:…`) signed licenses are checked against.
    vendor_keys: Vec<String>,
    back_office: Option<BackOffice>,
    commands: BTreeMap<String, Vec<String>>,
}

/// The agent's `[plugins]` with what `[remote_service]` gives the license
/// plugin (its folders, command and settings; the admin's own entries of
/// the same names win). `None` without `[plugins]`.
pub fn plugins_config(cfg: &AgentConfig) -> Option<PluginsConfig> {
    let mut pc = cfg.plugins.clone()?;
    if let Some(rs) = &cfg.remote_service {
        rs.plugin_resources(&mut pc);
    }
    Some(pc)
}

impl AgentAdmin {
    /// What an agent config names; `None` without `[plugins]`.
    pub fn new(cfg: &AgentConfig) -> Option<Arc<Self>> {
        let pc = plugins_config(cfg)?;
        let rs = cfg.remote_service.as_ref();
        let back_office = rs.filter(|r| r.enabled).map(|r| BackOffice {
            url: r.back_office.clone(),
            trust: cfg.endpoint.trust.clone(),
            proxy: r.proxy.clone(),
            organisation_id: r.organisation_id.clone(),
            code: r.verification_code.clone(),
            timeout: FETCH_TIMEOUT,
        });
        Some(Arc::new(AgentAdmin {
            settings: pc.settings,
            vendor_keys: rs.map(|r| r.vendor_keys.clone()).unwrap_or_default(),
            back_office,
            commands: pc.commands,
        }))
    }
}

/// A verified license as plugins see it.
pub fn license_record(l: &License) -> wit::LicenseDocument {
    use sha2::Digest;
    wit::LicenseDocument {
        serial: l.serial.clone(),
        customer: l.customer.clone(),
        product: l.product.clone(),
        features: l.features.clone(),
        users: l.users,
        issued: l.issued_text(),
        expires: lifeline_license::document::fmt_date(l.expires),
        maintenance_end: lifeline_license::document::fmt_date(l.maintenance_end),
        digest: hex::encode(sha2::Sha256::digest(l.canonical())),
    }
}

impl AdminResources for AgentAdmin {
    fn settings(&self, plugin: &str) -> Vec<(String, String)> {
        self.settings
            .get(plugin)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    fn verify_document(
        &self,
        kind: wit::DocumentKind,
        origin: &str,
        data: &[u8],
    ) -> Result<wit::VerifiedDocument, String> {
        match kind {
            wit::DocumentKind::License => {
                if self.vendor_keys.is_empty() {
                    return Err(
                        "this agent trusts no vendor keys ([remote_service] vendor_keys)".into(),
                    );
                }
                let origin = Path::new(origin);
                let l = License::parse_bytes(origin, data).map_err(|e| e.to_string())?;
                l.verify(origin, &self.vendor_keys)
                    .map_err(|e| e.to_string())?;
                Ok(wit::VerifiedDocument::License(license_record(&l)))
            }
        }
    }

    fn endpoint_request(
        &self,
        name: &str,
        req: &EndpointRequest<'_>,
        limit: usize,
    ) -> Result<http::Response, String> {
        if name != names::BACK_OFFICE {
            return Err(format!(
                "this agent has no endpoint {name:?}; it has {:?} when [remote_service] is enabled",
                names::BACK_OFFICE
            ));
        }
        let bo = self.back_office.as_ref().ok_or(
            "the remote service is disabled (remote_service.enabled = false) or not configured: no connection to the back office is made",
        )?;
        if req.method != "GET" || !req.body.is_empty() {
            return Err(format!(
                "the {name} endpoint answers GET without a body, not {}",
                req.method
            ));
        }
        let reply = bo.get(req.path).map_err(|e: FetchError| e.to_string())?;
        if reply.body.len() > limit {
            return Err(format!(
                "the {name} endpoint's answer ({} bytes) exceeds the plugin's output limit",
                reply.body.len()
            ));
        }
        Ok(http::Response {
            status: reply.status,
            headers: Vec::new(),
            body: reply.body,
        })
    }

    fn admin_command(&self, name: &str) -> Result<ProcessOutput, String> {
        let argv = self
            .commands
            .get(name)
            .ok_or_else(|| format!("this agent has no command {name:?} in [plugins.commands]"))?;
        admin_command::run(argv)
    }
}
