//! The launch token's way into the browser without a URL: an owner-only
//! HTML file that POSTs it to the window server, and the program that
//! opens that file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rand::RngCore;

use super::WindowError;

/// Bytes of randomness in the launch token and in the cookie.
pub const SECRET_BYTES: usize = 32;
/// The default program that opens the launcher file.
pub const DEFAULT_OPENER: &str = "xdg-open";

/// A fresh random secret, hex encoded.
pub fn secret() -> String {
    let mut b = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// An owner-only folder made for the launcher file; removed when dropped.
pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the launcher goes: `given`, else `$XDG_RUNTIME_DIR` (the
/// customer's own, mode 0700), else a new 0700 folder in the temporary
/// folder.
pub fn runtime_dir(given: Option<&Path>) -> Result<(PathBuf, Option<TempDir>), WindowError> {
    if let Some(d) = given {
        return Ok((d.to_path_buf(), None));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && d.is_dir()
    {
        return Ok((d, None));
    }
    let dir = std::env::temp_dir().join(format!("lifeline-window-{}", &secret()[..16]));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|source| WindowError::Launcher {
            dir: dir.clone(),
            source,
        })?;
    Ok((dir.clone(), Some(TempDir(dir))))
}

/// The launcher page: a form that sends the token to `/open` at once.
pub fn page(port: u16, token: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Lifeline</title>\
<meta name=\"referrer\" content=\"no-referrer\"></head><body>\
<form method=\"post\" action=\"http://127.0.0.1:{port}/open\">\
<input type=\"hidden\" name=\"token\" value=\"{token}\">\
<noscript><button type=\"submit\">Open the Lifeline window</button></noscript></form>\
<script>document.forms[0].submit();</script></body></html>\n"
    )
}

/// Writes the launcher file (mode 0600, a new name) in `dir`.
pub fn write(dir: &Path, port: u16, token: &str) -> Result<PathBuf, WindowError> {
    let path = dir.join(format!("lifeline-window-{}.html", &secret()[..12]));
    let err = |source| WindowError::Launcher {
        dir: dir.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(err)?;
    f.write_all(page(port, token).as_bytes()).map_err(err)?;
    Ok(path)
}

/// The program that opens files in the browser: `given`, else `$BROWSER`,
/// else [`DEFAULT_OPENER`].
pub fn opener(given: Option<&str>) -> String {
    given
        .map(str::to_string)
        .or_else(|| std::env::var("BROWSER").ok().filter(|b| !b.is_empty()))
        .unwrap_or_else(|| DEFAULT_OPENER.to_string())
}

/// `program` as found on `$PATH` (or as given, with a slash).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let first = program.split_whitespace().next()?;
    if first.contains('/') {
        return Path::new(first).is_file().then(|| PathBuf::from(first));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(first))
        .find(|p| p.is_file())
}

/// Opens `launcher` with the browser program (its path is the only
/// argument; the token is inside the owner-only file).
pub fn open_browser(given: Option<&str>, launcher: &Path) -> Result<(), WindowError> {
    let program = opener(given);
    let mut words = program.split_whitespace();
    let first = words.next().unwrap_or(DEFAULT_OPENER);
    Command::new(first)
        .args(words)
        .arg(launcher)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|source| WindowError::Browser { program, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_launcher_is_owner_only_and_holds_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let token = secret();
        assert_eq!(token.len(), SECRET_BYTES * 2);
        let p = write(dir.path(), 4242, &token).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(&token) && text.contains("http://127.0.0.1:4242/open"));
        assert!(!p.to_string_lossy().contains(&token));
    }
}
