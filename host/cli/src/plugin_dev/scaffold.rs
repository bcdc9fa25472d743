//! `lifeline plugin new`: a working plugin folder from the templates in
//! `host/cli/templates/plugin`. The WIT file, the wit-bindgen pin and the
//! Cargo.lock come from the repository at build time (`sdk/wit`,
//! `plugins/hello-wasm`), so a new plugin always builds against the
//! current API with the versions the in-tree plugins use.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use lifeline_runtime::manifest::{MANIFEST_FILE, MAX_ID_CHARS, is_identifier};

use super::cases::TEST_FILE;

/// The plugin API every new plugin is built against.
pub const WIT: &str = include_str!("../../../../sdk/wit/lifeline-plugin.wit");
/// Where the copy of the WIT file goes in a Rust plugin's folder.
pub const WIT_COPY: &str = "wit/lifeline-plugin.wit";
/// The in-tree example whose wit-bindgen pin, release profile and lock
/// file a new Rust plugin shares (so builds share compiled dependencies).
const HELLO_WASM_CARGO: &str = include_str!("../../../../plugins/hello-wasm/Cargo.toml");
const HELLO_WASM_LOCK: &str = include_str!("../../../../plugins/hello-wasm/Cargo.lock");
/// The example's package name in its lock file, replaced by the new one.
const HELLO_WASM_PACKAGE: &str = "name = \"hello-wasm\"";

const PLUGIN_TOML: &str = include_str!("../../templates/plugin/plugin.toml.tmpl");
const TEST_TOML: &str = include_str!("../../templates/plugin/plugin.test.toml.tmpl");
const MAIN_LUA: &str = include_str!("../../templates/plugin/main.lua.tmpl");
const CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("../../templates/plugin/lib.rs.tmpl");
const README_RUST: &str = include_str!("../../templates/plugin/README-rust.md.tmpl");
const README_LUA: &str = include_str!("../../templates/plugin/README-lua.md.tmpl");
const GITIGNORE: &str = include_str!("../../templates/plugin/gitignore.tmpl");

/// Names a Rust plugin cannot have: its crate would clash with a keyword
/// or a crate of the standard library.
pub const RUST_RESERVED: [&str; 12] = [
    "alloc",
    "core",
    "crate",
    "proc_macro",
    "self",
    "std",
    "super",
    "test",
    "fn",
    "mod",
    "type",
    "use",
];

/// The language of a new plugin.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust, built into a WASM component (wasm32-wasip2).
    Rust,
    /// Lua (Luau), run as written.
    Lua,
}

/// The wit-bindgen dependency line of `plugins/hello-wasm/Cargo.toml`.
pub fn wit_bindgen_dependency() -> &'static str {
    HELLO_WASM_CARGO
        .lines()
        .find(|l| l.starts_with("wit-bindgen "))
        .expect("plugins/hello-wasm/Cargo.toml depends on wit-bindgen (checked by a test)")
}

fn render(template: &str, lang: Lang, name: &str) -> String {
    let (runtime, entry) = match lang {
        Lang::Rust => ("wasm", "plugin.wasm"),
        Lang::Lua => ("lua", "main.lua"),
    };
    template
        .replace("{{name}}", name)
        .replace("{{crate}}", &name.replace('-', "_"))
        .replace("{{runtime}}", runtime)
        .replace("{{entry}}", entry)
        .replace("{{wit_bindgen}}", wit_bindgen_dependency())
}

/// The files of a new plugin: path inside its folder, content.
pub fn files(lang: Lang, name: &str) -> Vec<(&'static str, String)> {
    let mut files = vec![
        (MANIFEST_FILE, render(PLUGIN_TOML, lang, name)),
        (TEST_FILE, render(TEST_TOML, lang, name)),
    ];
    match lang {
        Lang::Lua => files.extend([
            ("main.lua", render(MAIN_LUA, lang, name)),
            ("README.md", render(README_LUA, lang, name)),
        ]),
        Lang::Rust => files.extend([
            ("Cargo.toml", render(CARGO_TOML, lang, name)),
            (
                "Cargo.lock",
                HELLO_WASM_LOCK.replacen(HELLO_WASM_PACKAGE, &format!("name = \"{name}\""), 1),
            ),
            ("src/lib.rs", render(LIB_RS, lang, name)),
            (WIT_COPY, WIT.to_string()),
            ("README.md", render(README_RUST, lang, name)),
            (".gitignore", GITIGNORE.to_string()),
        ]),
    }
    files
}

/// Refuses a name that cannot be a plugin id (or a Rust crate).
fn check_name(lang: Lang, name: &str, dir: &Path) -> Result<()> {
    if !is_identifier(name) {
        bail!(
            "{name:?} is not a valid plugin id (it would be plugin.id in {}): use lower-case letters, digits, '-' and '_', starting with a letter, at most {MAX_ID_CHARS} characters",
            dir.join(MANIFEST_FILE).display()
        );
    }
    if lang == Lang::Rust && RUST_RESERVED.contains(&name.replace('-', "_").as_str()) {
        bail!(
            "{name:?} cannot name a Rust plugin: its crate would clash with Rust's own {name:?}; choose another name"
        );
    }
    Ok(())
}

/// Refuses a folder that exists and is not empty (or is not a folder).
fn check_free(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        bail!("{} exists and is not a folder", dir.display());
    }
    let mut entries =
        std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    if entries.next().is_some() {
        bail!(
            "{} already exists and is not empty; choose another name or another --dir",
            dir.display()
        );
    }
    Ok(())
}

/// Writes `files` into `dir`, creating sub-folders.
fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<()> {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `lifeline plugin new --lang LANG NAME --dir PARENT`.
pub fn new(lang: Lang, name: &str, parent: &Path) -> Result<ExitCode> {
    let dir: PathBuf = parent.join(name);
    check_name(lang, name, &dir)?;
    check_free(&dir)?;
    let files = files(lang, name);
    write_files(&dir, &files)?;
    println!("Created {} with:", dir.display());
    for (rel, _) in &files {
        println!("  {rel}");
    }
    let shown = dir.display();
    println!("Next:");
    if lang == Lang::Rust {
        println!("  rustup target add wasm32-wasip2     # once, to build WASM plugins");
    }
    println!("  lifeline plugin test {shown}                       # run its test cases");
    println!("  lifeline plugin test {shown} hello Ada --allow system.info");
    println!("  lifeline plugin watch {shown}                      # again on every save");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_runtime::Manifest;

    #[test]
    fn templates_make_valid_manifests_and_tests() {
        for lang in [Lang::Rust, Lang::Lua] {
            let files = files(lang, "my-plugin");
            let get = |name: &str| &files.iter().find(|(p, _)| *p == name).unwrap().1;
            let m =
                Manifest::parse(Path::new("/p/my-plugin/plugin.toml"), get(MANIFEST_FILE)).unwrap();
            assert_eq!((m.id.as_str(), m.version.as_str()), ("my-plugin", "0.1.0"));
            let hello = m.command("hello").unwrap();
            assert!(!hello.args[0].required);
            let cases = super::super::cases::parse(Path::new(TEST_FILE), get(TEST_FILE)).unwrap();
            assert_eq!(cases.len(), 3);
            assert!(files.iter().all(|(_, t)| !t.contains("{{")), "{lang:?}");
        }
    }

    #[test]
    fn rust_plugins_share_the_examples_pins_and_the_current_wit() {
        assert!(wit_bindgen_dependency().contains("version = \"0."));
        let files = files(Lang::Rust, "my-plugin");
        let get = |name: &str| &files.iter().find(|(p, _)| *p == name).unwrap().1;
        let cargo = get("Cargo.toml");
        let profile = &cargo[cargo.find("[profile.release]").unwrap()..];
        let profile = &profile[..profile.find("\n\n").unwrap()];
        assert!(HELLO_WASM_CARGO.contains(profile), "{profile}");
        assert_eq!(HELLO_WASM_LOCK.matches(HELLO_WASM_PACKAGE).count(), 1);
        assert!(get("Cargo.lock").contains("name = \"my-plugin\""));
        assert!(get(WIT_COPY).contains("package lifeline:plugin@0.2.0;"));
        assert!(get("README.md").contains("release/my_plugin.wasm plugin.wasm"));
    }

    #[test]
    fn the_sdk_readme_documents_every_capability_and_the_api_version() {
        let readme = include_str!("../../../../sdk/README.md");
        for c in lifeline_core::capability::ALL {
            assert!(
                readme.contains(&format!("| `{}` |", c.name())),
                "{c} in the capability table of sdk/README.md"
            );
        }
        let version = WIT
            .lines()
            .find_map(|l| l.strip_prefix("package "))
            .unwrap()
            .trim_end_matches(';');
        assert!(readme.contains(&format!("`{version}`")), "{version}");
    }

    #[test]
    fn bad_names_and_used_folders_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let err = new(Lang::Lua, "My Plugin", d.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a valid plugin id") && err.contains("plugin.toml"),
            "{err}"
        );
        let err = new(Lang::Rust, "test", d.path()).unwrap_err().to_string();
        assert!(err.contains("cannot name a Rust plugin"), "{err}");
        std::fs::create_dir_all(d.path().join("taken")).unwrap();
        std::fs::write(d.path().join("taken/x"), "x").unwrap();
        let err = new(Lang::Lua, "taken", d.path()).unwrap_err().to_string();
        assert!(
            err.contains("taken already exists and is not empty"),
            "{err}"
        );
        std::fs::create_dir_all(d.path().join("empty")).unwrap();
        new(Lang::Lua, "empty", d.path()).unwrap();
        assert!(d.path().join("empty/main.lua").is_file());
    }
}
