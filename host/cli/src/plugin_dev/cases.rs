//! `plugin.test.toml`: a plugin's test cases, each a command, its
//! arguments and texts its transcript must contain.
//!
//! ```toml
//! [[case]]
//! name = "greets by name"          # optional
//! command = "hello"
//! args = ["Ada"]                   # optional
//! expect = ["[output] Hello, Ada!", "ok: greeted 1 times"]
//! fails = false                    # optional: true when the call must fail
//! ```

use std::path::Path;

use anyhow::{Result, bail};
use lifeline_core::config::{ConfigError, Doc, read};
use serde::Deserialize;

/// File name of a plugin's test cases inside its folder.
pub const TEST_FILE: &str = "plugin.test.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

/// One test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: Option<String>,
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Texts that must appear in the case's transcript.
    #[serde(default)]
    pub expect: Vec<String>,
    /// The call must end with an error.
    #[serde(default)]
    pub fails: bool,
}

impl Case {
    /// The case's name, or its command line.
    pub fn title(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => std::iter::once(self.command.as_str())
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Why the case failed, from the lines it printed (result included)
    /// and whether the call failed; `None` when it passed.
    pub fn verdict(&self, lines: &[String], call_failed: bool) -> Option<String> {
        let mut why = Vec::new();
        match (self.fails, call_failed) {
            (false, true) => why.push("the call failed".to_string()),
            (true, false) => why.push("the call should have failed".to_string()),
            _ => {}
        }
        let transcript = lines.join("\n");
        why.extend(
            self.expect
                .iter()
                .filter(|e| !transcript.contains(e.as_str()))
                .map(|e| format!("{e:?} not found")),
        );
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Parses a test file's text.
pub fn parse(file: &Path, text: &str) -> Result<Vec<Case>, ConfigError> {
    let raw: RawFile = Doc::new(file, text).parse()?;
    Ok(raw.cases)
}

/// Reads `DIR/plugin.test.toml`.
pub fn load(dir: &Path) -> Result<Vec<Case>> {
    let file = dir.join(TEST_FILE);
    if !file.is_file() {
        bail!(
            "{} is missing: give a COMMAND to run, or write test cases there ([[case]] command, args, expect; `lifeline plugin new` writes an example)",
            file.display()
        );
    }
    let cases = parse(&file, &read(&file)?)?;
    if cases.is_empty() {
        bail!(
            "{} has no [[case]]: add one (command, args, expect)",
            file.display()
        );
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_name_what_is_missing() {
        let cases = parse(
            Path::new("t.toml"),
            "[[case]]\ncommand = \"hello\"\nargs = [\"Ada\"]\nexpect = [\"Hello, Ada!\", \"ok:\"]\n",
        )
        .unwrap();
        let c = &cases[0];
        assert_eq!(c.title(), "hello Ada");
        let lines = vec!["[output] Hello, Ada!".to_string(), "ok: done".to_string()];
        assert_eq!(c.verdict(&lines, false), None);
        let why = c.verdict(&lines[..1], true).unwrap();
        assert!(
            why.contains("the call failed") && why.contains("\"ok:\" not found"),
            "{why}"
        );
        let err = parse(
            Path::new("t.toml"),
            "[[case]]\ncommand = \"x\"\nexpected = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("t.toml:3") && err.contains("unknown field"),
            "{err}"
        );
    }
}
