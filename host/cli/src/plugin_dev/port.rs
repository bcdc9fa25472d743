//! The fake session of `lifeline plugin test`: consent from `--allow`,
//! `--deny` and a policy file (nobody is asked), output, chat and report
//! printed as labelled lines, streams into files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use lifeline_core::consent::{Policy, Rule};
use lifeline_runtime::{Capability, Manifest, SessionPort, StreamHub};

/// Lines a run keeps for the test cases' expectations; later lines are
/// still printed but not kept (a plugin flooding its output cannot make
/// the tester hold it all).
pub const MAX_KEPT_LINES: usize = 10_000;

/// Prints labelled lines and keeps them for the test cases.
#[derive(Default)]
pub struct Console {
    kept: Mutex<Vec<String>>,
}

impl Console {
    /// Prints `[tag] text`, one line per line of `text`.
    pub fn tagged(&self, tag: &str, text: &str) {
        if text.is_empty() {
            return self.plain(&format!("[{tag}]"));
        }
        for line in text.lines() {
            self.plain(&format!("[{tag}] {line}"));
        }
    }

    /// Prints a line as it is (terminal controls removed) and keeps it.
    pub fn plain(&self, line: &str) {
        let line = lifeline_protocol::terminal_safe(line).into_owned();
        println!("{line}");
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < MAX_KEPT_LINES {
            kept.push(line);
        }
    }

    /// The lines kept since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// How a test answers consent: there is no customer to ask.
#[derive(Debug, Default)]
pub struct Consent {
    allow: BTreeSet<Capability>,
    deny: BTreeSet<Capability>,
    policy: Option<(PathBuf, Policy)>,
}

fn capability(name: &str, flag: &str) -> Result<Capability> {
    match Capability::parse(name) {
        Some(c) => Ok(c),
        None => bail!(
            "{flag} {name}: not a capability; known: {}",
            Capability::known_names()
        ),
    }
}

impl Consent {
    /// From `--allow CAP`, `--deny CAP` and `--policy FILE`.
    pub fn new(allow: &[String], deny: &[String], policy: Option<&Path>) -> Result<Consent> {
        let allow = allow
            .iter()
            .map(|n| capability(n, "--allow"))
            .collect::<Result<BTreeSet<_>>>()?;
        let deny = deny
            .iter()
            .map(|n| capability(n, "--deny"))
            .collect::<Result<BTreeSet<_>>>()?;
        if let Some(both) = allow.intersection(&deny).next() {
            bail!("{both} is given to both --allow and --deny");
        }
        let policy = match policy {
            Some(file) => Some((file.to_owned(), Policy::load(file)?)),
            None => None,
        };
        Ok(Consent {
            allow,
            deny,
            policy,
        })
    }

    /// `Ok(who allowed it)` or `Err(why not)`: `--deny`, then `--allow`,
    /// then the policy; "ask", or no rule at all, is a denial saying how
    /// to allow it.
    pub fn decide(&self, cap: Capability) -> Result<String, String> {
        if self.deny.contains(&cap) {
            return Err(format!("--deny {cap} was given"));
        }
        if self.allow.contains(&cap) {
            return Ok(format!("--allow {cap} was given"));
        }
        let how = format!("allow it with --allow {cap}");
        match &self.policy {
            Some((file, policy)) => match policy.rule_for(cap.name()) {
                Rule::Allow => Ok(format!("the policy {} allows it", file.display())),
                Rule::Deny => Err(format!("the policy {} denies it", file.display())),
                Rule::Ask => Err(format!(
                    "the policy {} says \"ask\" and there is nobody to ask in a test; {how}",
                    file.display()
                )),
            },
            None => Err(format!("nobody to ask in a test; {how} or a --policy file")),
        }
    }
}

/// The [`SessionPort`] of `lifeline plugin test`.
pub struct TestPort {
    consent: Consent,
    console: Arc<Console>,
    streams: Arc<StreamHub>,
}

impl TestPort {
    pub fn new(consent: Consent, console: Arc<Console>, streams: Arc<StreamHub>) -> TestPort {
        TestPort {
            consent,
            console,
            streams,
        }
    }
}

impl SessionPort for TestPort {
    fn consent(&self, _plugin: &Manifest, cap: Capability) -> Result<(), String> {
        let answer = self.consent.decide(cap);
        let line = match &answer {
            Ok(by) => format!("{cap}: allowed ({by})"),
            Err(why) => format!("{cap}: denied ({why})"),
        };
        self.console.tagged("consent", &line);
        answer.map(|_| ())
    }
    fn output(&self, _plugin: &str, text: &str) {
        self.console.tagged("output", text);
    }
    fn chat(&self, _plugin: &str, text: &str) {
        self.console.tagged("chat", text);
    }
    fn report(&self, _plugin: &str, text: &str) {
        self.console.tagged("report", text);
    }
    fn notify(&self, _plugin: &str, text: &str) {
        self.console.tagged("customer", text);
    }
    fn process_line(&self, _plugin: &str, stream: &str, line: &str) {
        self.console.tagged(stream, line);
    }
    fn streams(&self) -> Option<Arc<StreamHub>> {
        Some(Arc::clone(&self.streams))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_then_policy_then_denied_with_a_hint() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("policy.toml");
        std::fs::write(
            &file,
            "[policy]\ndefault = \"ask\"\n[policy.capabilities]\n\"chat.send\" = \"allow\"\n\"fs.temp\" = \"deny\"\n",
        )
        .unwrap();
        let c = Consent::new(&["system.info".into()], &["chat.send".into()], Some(&file)).unwrap();
        assert_eq!(
            c.decide(Capability::ChatSend).unwrap_err(),
            "--deny chat.send was given"
        );
        assert!(c.decide(Capability::SystemInfo).is_ok());
        assert!(
            c.decide(Capability::FsTemp)
                .unwrap_err()
                .ends_with("policy.toml denies it")
        );
        let ask = c.decide(Capability::ProcessSpawn).unwrap_err();
        assert!(
            ask.contains("says \"ask\"") && ask.contains("with --allow process.spawn"),
            "{ask}"
        );
        let none = Consent::new(&[], &[], None).unwrap();
        assert!(
            none.decide(Capability::SystemInfo)
                .unwrap_err()
                .contains("allow it with --allow system.info")
        );
        let err = Consent::new(&["screen.view".into()], &[], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--allow screen.view: not a capability; known: log"),
            "{err}"
        );
        let err = Consent::new(&["fs.temp".into()], &["fs.temp".into()], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("both --allow and --deny"), "{err}");
    }
}
