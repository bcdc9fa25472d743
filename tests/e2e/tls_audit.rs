//! TLS audit: Debian's testssl.sh against a real broker's session port
//! (TLS 1.3 carrying Lifeline frames, no HTTP: testssl's service detection
//! finds no HTTP there and skips its HTTP checks) and its HTTPS port, both
//! at once. Any finding rated HIGH or CRITICAL fails the test, and so does
//! a scan that could not run (FATAL) or did not see TLS 1.3.
//!
//! The broker presents a certificate from a test CA (made here with the
//! `openssl` command), as a production broker with a CA-issued certificate
//! does, and testssl trusts that CA (`--add-ca`). The certificate names a
//! CRL location (never fetched: no `--phone-out`); the broker's own
//! self-signed certificate, which clients pin by fingerprint, is discussed
//! in docs/security.md ("TLS audit").

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use lifeline_broker::Broker;
use tokio::process::Command;

use crate::support::*;

/// Debian's testssl.sh (package `testssl.sh`, installed by scripts/setup).
const TESTSSL: &str = "testssl";
/// Bound on one scan; the checks below take about 1.5 minutes on 2 cores.
const SCAN_TIMEOUT: Duration = Duration::from_secs(420);
/// Bound on each connection and each `openssl` call of testssl.
const TESTSSL_STEP_TIMEOUT_SECS: &str = "10";
/// The checks run: protocols, cipher categories, forward secrecy, server
/// preferences, server defaults (certificate), HTTP headers (HTTPS port
/// only, by service detection), vulnerabilities. Left out: the per-cipher
/// list (-e) and client simulations (-c), which add minutes and no rating
/// beyond what -s, -f and -P rate.
const CHECKS: [&str; 7] = ["-p", "-s", "-f", "-P", "-S", "-h", "-U"];
/// Severities that fail the audit; FATAL is a scan that could not run.
const FAILING: [&str; 3] = ["HIGH", "CRITICAL", "FATAL"];
/// Days the test certificates are valid (testssl rates a certificate that
/// expires within 30 days HIGH, and very long validity as well).
const CERT_DAYS: &str = "90";

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a broker certificate (chain file, key file) it issued
/// for localhost and 127.0.0.1.
fn ca_issued_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        CERT_DAYS,
        "-subj",
        "/CN=Lifeline TLS audit test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         crlDistributionPoints=URI:http://127.0.0.1:9/lifeline-test-ca.crl\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "broker.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "broker.pem",
            "-days",
            CERT_DAYS,
            "-extfile",
            "ext.cnf",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("broker.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    (
        dir.join("ca.pem"),
        dir.join("broker.pem"),
        dir.join("broker.key"),
    )
}

/// One finding of testssl's flat JSON output.
#[derive(Debug, serde::Deserialize)]
struct Finding {
    id: String,
    severity: String,
    finding: String,
}

/// Runs testssl against `localhost:port` (127.0.0.1), trusting `ca`;
/// returns its findings.
async fn scan(port: u16, ca: &Path, out: &Path) -> Vec<Finding> {
    let json = out.join(format!("testssl-{port}.json"));
    let mut cmd = Command::new(TESTSSL);
    cmd.args([
        "--quiet",
        "--warnings",
        "off",
        "--color",
        "0",
        "--nodns",
        "none",
        "--ip",
        "127.0.0.1",
        "--connect-timeout",
        TESTSSL_STEP_TIMEOUT_SECS,
        "--openssl-timeout",
        TESTSSL_STEP_TIMEOUT_SECS,
    ])
    .arg("--add-ca")
    .arg(ca)
    .args(CHECKS)
    .arg("--jsonfile")
    .arg(&json)
    .arg(format!("localhost:{port}"))
    .current_dir(out)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{TESTSSL} runs (scripts/setup installs testssl.sh): {e}"));
    let output = tokio::time::timeout(SCAN_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("testssl on port {port} took longer than {SCAN_TIMEOUT:?}"))
        .unwrap();
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "testssl on port {port} wrote no JSON ({e}); exit {:?}, output:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn summary(name: &str, findings: &[Finding]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for f in findings {
        *counts.entry(f.severity.as_str()).or_insert(0) += 1;
    }
    let mut lines = vec![format!("{name}: {counts:?}")];
    for f in findings {
        if !matches!(f.severity.as_str(), "OK" | "INFO" | "DEBUG") {
            lines.push(format!("  {} {}: {}", f.severity, f.id, f.finding));
        }
    }
    lines.join("\n")
}

#[tokio::test]
async fn testssl_rates_no_finding_high_or_critical_on_either_port() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = ca_issued_certificate(dir.path());
    let mut cfg = broker_config(dir.path(), Duration::from_secs(15));
    cfg.tls_files = Some((chain, key));
    let broker = Broker::start(cfg).await.unwrap();
    let started = Instant::now();
    let (session, https) = tokio::join!(
        scan(broker.addr.port(), &ca, dir.path()),
        scan(broker.https_addr.port(), &ca, dir.path()),
    );
    let took = started.elapsed();
    let report = format!(
        "{}\n{}",
        summary("session port", &session),
        summary("HTTPS port", &https)
    );
    println!(
        "testssl (both ports at once) took {:.0} s\n{report}",
        took.as_secs_f64()
    );
    for (name, findings) in [("session port", &session), ("HTTPS port", &https)] {
        let tls13 = findings
            .iter()
            .find(|f| f.id == "TLS1_3")
            .unwrap_or_else(|| panic!("{name}: no TLS 1.3 finding\n{report}"));
        assert!(
            tls13.finding.starts_with("offered"),
            "{name}: TLS 1.3 {:?}\n{report}",
            tls13.finding
        );
        let failing: Vec<_> = findings
            .iter()
            .filter(|f| FAILING.contains(&f.severity.as_str()))
            .collect();
        assert!(
            failing.is_empty(),
            "{name}: testssl findings rated {FAILING:?}: {failing:#?}\n{report}"
        );
    }
}
