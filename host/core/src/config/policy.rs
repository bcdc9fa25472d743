//! The unattended policy file (`[policy]`): raw → validated against the
//! capability registry.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Doc, read};
use crate::consent::{Policy, Rule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyFile {
    policy: RawPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default: Option<Spanned<String>>,
    #[serde(default)]
    capabilities: BTreeMap<String, Spanned<String>>,
}

fn rule(doc: &Doc<'_>, v: &Spanned<String>, key: &str) -> Result<Rule, ConfigError> {
    Rule::parse(v.get_ref()).ok_or_else(|| {
        doc.invalid(
            &v.span(),
            key,
            format!(
                "{:?} is not a rule; use \"allow\", \"deny\" or \"ask\"",
                v.get_ref()
            ),
        )
    })
}

impl Policy {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = read(file)?;
        Self::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let doc = Doc { file, text };
        let raw: RawPolicyFile = doc.parse()?;
        let default = match &raw.policy.default {
            Some(v) => rule(&doc, v, "policy.default")?,
            None => Rule::Ask,
        };
        let mut rules = BTreeMap::new();
        for (cap, v) in &raw.policy.capabilities {
            let key = format!("policy.capabilities.{cap}");
            if crate::capability::Capability::parse(cap).is_none() {
                return Err(doc.invalid(
                    &v.span(),
                    &key,
                    format!(
                        "{cap:?} is not a capability; known: {}",
                        crate::capability::Capability::known_names()
                    ),
                ));
            }
            rules.insert(cap.clone(), rule(&doc, v, &key)?);
        }
        Ok(Policy { default, rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rules_validate() {
        let p = Policy::parse(
            Path::new("p.toml"),
            "[policy]\ndefault = \"deny\"\n[policy.capabilities]\n\"system.info\" = \"allow\"\n",
        )
        .unwrap();
        assert_eq!(p.rule_for("system.info"), Rule::Allow);
        assert_eq!(p.rule_for("power.restart"), Rule::Deny);
        let err = Policy::parse(
            Path::new("p.toml"),
            "[policy]\n[policy.capabilities]\n\"system.info\" = \"maybe\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("p.toml:3") && err.contains("\"allow\", \"deny\" or \"ask\""),
            "{err}"
        );
        // A capability that does not exist is an error naming it and the
        // valid ones, not a rule that silently never applies.
        let err = Policy::parse(
            Path::new("p.toml"),
            "[policy]\n[policy.capabilities]\n\"system.info\" = \"allow\"\n\"screen.view\" = \"ask\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("p.toml:4")
                && err.contains("\"screen.view\" is not a capability")
                && err.contains(
                    "power.restart, document.verify, http.endpoint, command.admin, settings.read, session.stream, session.events, screen.capture, input.control, clipboard.text, script.run"
                ),
            "{err}"
        );
    }
}
