//! `fs.folder` and the `collect-logs` example plugin: admin-named folders,
//! read-only unless the admin says otherwise, no name leaving a folder, and
//! a feature made of general capabilities uploading to a real HTTP server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use crate::capability::Capability;
use crate::folder::{Folder, Folders};
use crate::host::SessionPort;
use crate::manifest::Manifest;
use crate::plugins::PluginHost;
use crate::tests::{copy_dir, repo, unsigned_host_with};

struct Allow;
impl SessionPort for Allow {
    fn consent(&self, _: &Manifest, _: Capability) -> Result<(), String> {
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {}
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
}

fn host(dir: &Path, folders: Folders) -> PluginHost {
    let root = dir.join("plugins");
    copy_dir(
        &repo().join("examples/collect-logs"),
        &root.join("collect-logs"),
    );
    let host = unsigned_host_with(root, dir, folders);
    assert!(host.load_all().is_empty());
    host
}

/// One HTTP POST received on loopback: its body.
fn serve_once(listener: TcpListener) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let mut s = s;
        s.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        body
    })
}

#[test]
fn collect_logs_example_bundles_keeps_and_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, outbox) = (dir.path().join("logs"), dir.path().join("outbox"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(logs.join("app.log"), "started\nfailed: disk full\n").unwrap();
    std::fs::write(logs.join("other.log"), "ok\n").unwrap();
    let folders = Folders::from([
        (
            "logs".into(),
            Folder {
                path: logs.clone(),
                write: false,
            },
        ),
        (
            "outbox".into(),
            Folder {
                path: outbox.clone(),
                write: true,
            },
        ),
    ]);
    let host = host(dir.path(), folders);
    let port: Arc<dyn SessionPort> = Arc::new(Allow);
    let listed = host
        .call("collect-logs", "list", &[], Arc::clone(&port))
        .unwrap();
    assert!(
        listed.contains("app.log") && listed.contains("other.log"),
        "{listed}"
    );

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/upload",
        listener.local_addr().unwrap().port()
    );
    let server = serve_once(listener);
    let out = host
        .call("collect-logs", "collect", &[url.into()], Arc::clone(&port))
        .unwrap();
    let body = String::from_utf8(server.join().unwrap()).unwrap();
    assert!(
        body.contains("failed: disk full") && body.contains("== other.log"),
        "{body}"
    );
    let kept = std::fs::read_to_string(outbox.join("logs-bundle.txt")).unwrap();
    assert_eq!(kept, body, "the kept copy is what was uploaded");
    assert!(
        out.contains("\"status\":201") && out.contains("\"files\":2"),
        "{out}"
    );
}

#[test]
fn folders_are_read_only_unless_allowed_and_names_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(dir.path().join("secret"), "outside").unwrap();
    let folders = Folders::from([(
        "logs".into(),
        Folder {
            path: logs.clone(),
            write: false,
        },
    )]);
    let allowed = vec!["logs".to_string(), "outbox".to_string()];
    let err = crate::folder::write(&folders, &allowed, "logs", "x.txt", b"no").unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = crate::folder::read(&folders, &allowed, "logs", "../secret").unwrap_err();
    assert!(err.to_string().contains("outside folder \"logs\""), "{err}");
    std::os::unix::fs::symlink(dir.path().join("secret"), logs.join("link")).unwrap();
    assert!(
        crate::folder::read(&folders, &allowed, "logs", "link").is_err(),
        "a link out"
    );
    let err = crate::folder::read(&folders, &["other".into()], "logs", "a").unwrap_err();
    assert!(
        err.to_string()
            .contains("not in the plugin's [folders] allow"),
        "{err}"
    );
    let err = crate::folder::list(&folders, &allowed, "outbox", "").unwrap_err();
    assert!(err.to_string().contains("no folder \"outbox\""), "{err}");
    // Atomic replace where the admin allows writing.
    let rw = Folders::from([(
        "logs".into(),
        Folder {
            path: logs.clone(),
            write: true,
        },
    )]);
    crate::folder::write(&rw, &allowed, "logs", "x.txt", b"one").unwrap();
    crate::folder::write(&rw, &allowed, "logs", "x.txt", b"two").unwrap();
    assert_eq!(std::fs::read(logs.join("x.txt")).unwrap(), b"two");
    let names: Vec<String> = crate::folder::list(&rw, &allowed, "logs", "")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["link", "x.txt"], "no temporary file left");
}
