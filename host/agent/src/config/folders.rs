//! `[plugins.folders]` in the agent's config: folders the admin lets
//! plugins holding `fs.folder` reach by name (a log folder to collect, a
//! license folder to update). Nothing else on disk is reachable by name.
//!
//! ```toml
//! [plugins.folders]
//! logs = { path = "/var/log/myapp" }                      # read only
//! license = { path = "/etc/myapp/license", write = true } # atomic replace
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use lifeline_core::config::{MAX_FOLDER_NAME_CHARS, valid_folder_name as valid_name};

use super::{ConfigError, Doc};

/// One folder as the admin wrote it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFolder {
    path: Spanned<String>,
    #[serde(default)]
    write: bool,
}

/// A folder plugins may reach by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderConfig {
    pub path: PathBuf,
    /// Plugins may replace files in it (atomically), not only read them.
    pub write: bool,
}

pub(super) fn validate(
    doc: &Doc<'_>,
    raw: &BTreeMap<Spanned<String>, RawFolder>,
) -> Result<BTreeMap<String, FolderConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, f) in raw {
        if !valid_name(name.get_ref()) {
            return Err(doc.invalid(
                &name.span(),
                "plugins.folders",
                format!(
                    "{:?} is not a folder name: 1 to {MAX_FOLDER_NAME_CHARS} of a-z, 0-9 and -",
                    name.get_ref()
                ),
            ));
        }
        if !PathBuf::from(f.path.get_ref()).is_absolute() {
            return Err(doc.invalid(
                &f.path.span(),
                &format!("plugins.folders.{}.path", name.get_ref()),
                "an absolute path such as \"/var/log/myapp\"",
            ));
        }
        out.insert(
            name.get_ref().clone(),
            FolderConfig {
                path: doc.path(&f.path),
                write: f.write,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::AgentConfig;

    const BASE: &str = "[agent]\ndata_dir = \"d\"\n[connection]\nbroker = \"127.0.0.1:1\"\nserver_name = \"localhost\"\nfingerprint = \"abababababababababababababababababababababababababababababababab\"\n[plugins]\ndirs = [\"p\"]\n";

    fn parse(extra: &str) -> Result<AgentConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent.toml");
        std::fs::write(&f, format!("{BASE}{extra}")).unwrap();
        AgentConfig::load(&f).map_err(|e| e.to_string())
    }

    #[test]
    fn folders_are_named_absolute_and_read_only_by_default() {
        let cfg = parse(
            "[plugins.folders]\nlogs = { path = \"/var/log/app\" }\nout = { path = \"/srv/out\", write = true }\n",
        );
        let cfg = cfg.unwrap_or_else(|e| panic!("{e}"));
        let f = &cfg.plugins.expect("plugins").folders;
        assert_eq!(f["logs"].path, Path::new("/var/log/app"));
        assert!(!f["logs"].write && f["out"].write);
        let err = parse("[plugins.folders]\nLogs = { path = \"/x\" }\n").unwrap_err();
        assert!(
            err.contains("agent.toml:10") && err.contains("not a folder name"),
            "{err}"
        );
        let err = parse("[plugins.folders]\nlogs = { path = \"relative\" }\n").unwrap_err();
        assert!(
            err.contains("plugins.folders.logs.path") && err.contains("absolute"),
            "{err}"
        );
    }
}
