//! `lifeline agent install-desktop`: registers join files with the
//! customer's desktop, so that opening a downloaded `*.lifeline` file runs
//! `lifeline agent join FILE` — a desktop entry
//! (`assets/lifeline-join.desktop`) and a shared-mime-info type
//! (`assets/lifeline-join.xml`), installed for the user under
//! `$XDG_DATA_HOME` (`~/.local/share`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

/// The desktop entry, with `@LIFELINE@` for the program's path.
pub const DESKTOP_TEMPLATE: &str = include_str!("../assets/lifeline-join.desktop");
/// The MIME type of join files.
pub const MIME_XML: &str = include_str!("../assets/lifeline-join.xml");
/// File name of the desktop entry under `applications/`.
pub const DESKTOP_FILE: &str = "lifeline-join.desktop";
/// File name of the MIME package under `mime/packages/`.
pub const MIME_FILE: &str = "lifeline-join.xml";

/// The desktop entry for the program at `exe`.
pub fn desktop_entry(exe: &Path) -> String {
    // Exec quoting (Desktop Entry spec): the path in double quotes, with
    // `"`, `` ` ``, `$` and `\` escaped.
    let mut quoted = String::from("\"");
    for c in exe.to_string_lossy().chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    DESKTOP_TEMPLATE.replace("@LIFELINE@", &quoted)
}

/// The user's data folder: `$XDG_DATA_HOME`, else `~/.local/share`.
fn data_home() -> Result<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .map(|h| h.join(".local/share"))
        })
        .context("neither XDG_DATA_HOME nor HOME is set: give --data-home")
}

/// Writes both files; updates the desktop's databases unless `no_update`.
pub fn install(data_home_arg: Option<PathBuf>, no_update: bool) -> Result<ExitCode> {
    let home = match data_home_arg {
        Some(h) => h,
        None => data_home()?,
    };
    let exe = std::env::current_exe().context("locating the lifeline program")?;
    let apps = home.join("applications");
    let mime = home.join("mime");
    let packages = mime.join("packages");
    for d in [&apps, &packages] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let entry = apps.join(DESKTOP_FILE);
    std::fs::write(&entry, desktop_entry(&exe))
        .with_context(|| format!("writing {}", entry.display()))?;
    let xml = packages.join(MIME_FILE);
    std::fs::write(&xml, MIME_XML).with_context(|| format!("writing {}", xml.display()))?;
    println!("Wrote {} and {}.", entry.display(), xml.display());
    if !no_update {
        refresh(&mime, &apps)?;
    }
    println!(
        "Opening a .lifeline join file now runs `{} agent join FILE`.",
        exe.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the desktop's database tools when they are installed.
fn refresh(mime: &Path, apps: &Path) -> Result<()> {
    let steps: [(&str, Vec<&std::ffi::OsStr>); 3] = [
        ("update-mime-database", vec![mime.as_os_str()]),
        ("update-desktop-database", vec![apps.as_os_str()]),
        (
            "xdg-mime",
            vec![
                "default".as_ref(),
                DESKTOP_FILE.as_ref(),
                lifeline_core::join_file::MEDIA_TYPE.as_ref(),
            ],
        ),
    ];
    for (tool, args) in steps {
        match Command::new(tool).args(&args).status() {
            Ok(s) if s.success() => {}
            Ok(s) => bail!("{tool} failed ({s})"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("({tool} is not installed; skipped)");
            }
            Err(e) => return Err(e).with_context(|| format!("running {tool}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_entry_runs_join_with_the_file_and_quotes_the_path() {
        let e = desktop_entry(Path::new("/opt/my $dir/lifeline"));
        assert!(e.starts_with("[Desktop Entry]\n"), "{e}");
        assert!(
            e.contains("\nExec=\"/opt/my \\$dir/lifeline\" agent join %f\n"),
            "{e}"
        );
        assert!(
            e.contains("\nMimeType=application/x-lifeline-join;\n"),
            "{e}"
        );
        assert!(e.contains("\nType=Application\n") && e.contains("\nTerminal=true\n"));
        assert!(!e.contains("@LIFELINE@"));
    }

    #[test]
    fn mime_type_matches_the_join_file() {
        assert!(MIME_XML.contains(&format!(
            "<mime-type type=\"{}\">",
            lifeline_core::join_file::MEDIA_TYPE
        )));
        assert!(MIME_XML.contains(&format!(
            "<glob pattern=\"*.{}\"/>",
            lifeline_core::join_file::EXTENSION
        )));
        // The magic is the first line every join file starts with.
        assert!(MIME_XML.contains("value=\"# Lifeline join file\""));
    }

    #[test]
    fn install_writes_both_files() {
        let dir = tempfile::tempdir().unwrap();
        install(Some(dir.path().to_path_buf()), true).unwrap();
        let entry =
            std::fs::read_to_string(dir.path().join("applications").join(DESKTOP_FILE)).unwrap();
        assert!(entry.contains("agent join %f"));
        let xml =
            std::fs::read_to_string(dir.path().join("mime/packages").join(MIME_FILE)).unwrap();
        assert_eq!(xml, MIME_XML);
    }
}
