use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::*;

fn key_and_cert() -> (std::sync::Arc<dyn SigningKey>, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
    let key = crate::tls::provider()
        .key_provider
        .load_private_key(der)
        .unwrap();
    (key, ck.cert.der().clone())
}

fn fields(cert: &CertificateDer<'_>) -> JoinFields {
    JoinFields {
        broker: "support.example.com:7443".into(),
        server_name: "support.example.com".into(),
        fingerprint: Fingerprint::of(cert),
        invitation: "a".repeat(43),
        operator: "Alice \"Al\" Smith".into(),
        title: "Support Engineer".into(),
        organisation: "Example Support".into(),
        expires_at: 1_900_000_000_000,
    }
}

const F: &str = "/tmp/session.lifeline";

#[test]
fn issued_file_parses_and_verifies_against_its_certificate() {
    let (key, cert) = key_and_cert();
    let text = issue(&fields(&cert), key.as_ref()).unwrap();
    assert!(text.starts_with("# Lifeline join file"), "{text}");
    let f = parse(Path::new(F), text.as_bytes()).unwrap();
    assert_eq!(f.fields, fields(&cert));
    f.verify(&cert).unwrap();
    f.check_expiry(1_800_000_000_000).unwrap();
    let err = f.check_expiry(2_000_000_000_000).unwrap_err().to_string();
    assert!(err.contains(F) && err.contains("expired at 2030-"), "{err}");
}

#[test]
fn one_changed_byte_or_another_certificate_fails() {
    let (key, cert) = key_and_cert();
    let text = issue(&fields(&cert), key.as_ref()).unwrap();
    // The invitation, the expiry and a comment: each is covered.
    for (from, to) in [
        ("invitation = \"a", "invitation = \"b"),
        ("expires_at = \"2030", "expires_at = \"2031"),
        ("# a changed", "# A changed"),
    ] {
        assert!(text.contains(from), "{from}");
        let bad = text.replacen(from, to, 1);
        let err = parse(Path::new(F), bad.as_bytes())
            .unwrap()
            .verify(&cert)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "join file {F} was altered after the broker issued it"
            )),
            "{err}"
        );
    }
    // The file of another broker's certificate (pin mismatch) …
    let (_, other) = key_and_cert();
    let err = parse(Path::new(F), text.as_bytes())
        .unwrap()
        .verify(&other)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is for another broker"), "{err}");
    assert!(err.contains(&Fingerprint::of(&cert).to_string()), "{err}");
    // … and re-pinned to it, still signed by the first key.
    let repinned = text.replace(
        &Fingerprint::of(&cert).to_string(),
        &Fingerprint::of(&other).to_string(),
    );
    let err = parse(Path::new(F), repinned.as_bytes())
        .unwrap()
        .verify(&other)
        .unwrap_err()
        .to_string();
    assert!(err.contains("was altered"), "{err}");
}

/// Every malformed input names the file and the line or field.
#[test]
fn malformed_files_name_file_and_line_or_field() {
    let (key, cert) = key_and_cert();
    let good = issue(&fields(&cert), key.as_ref()).unwrap();
    let line_of = |key: &str| {
        good.lines()
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
            + 1
    };
    let set = |key: &str, value: &str| {
        good.lines()
            .map(|l| {
                if l.starts_with(&format!("{key} =")) {
                    format!("{key} = {value}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let drop_line = |key: &str| {
        good.lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let sig_line = good.lines().count();
    let cases: Vec<(String, String)> = vec![
        (
            set("format", "2"),
            format!("{F}:{}: `format`", line_of("format")),
        ),
        (
            set("format", "\"one\""),
            format!("{F}:{}:", line_of("format")),
        ),
        (
            set("broker", "\"nohost\""),
            format!("{F}:{}: `broker`", line_of("broker")),
        ),
        (
            set("broker", "\"h:0\""),
            format!("{F}:{}: `broker`", line_of("broker")),
        ),
        (
            set("fingerprint", "\"SHA256:AB\""),
            format!("{F}:{}: `fingerprint`", line_of("fingerprint")),
        ),
        (
            set("invitation", "\"a b\""),
            format!("{F}:{}: `invitation`", line_of("invitation")),
        ),
        (
            set("invitation", "\"\""),
            format!("{F}:{}: `invitation`", line_of("invitation")),
        ),
        (
            set("expires_at", "\"tomorrow\""),
            format!("{F}:{}: `expires_at`", line_of("expires_at")),
        ),
        (
            set("operator", "\"a\\nb\""),
            format!("{F}:{}: `operator`", line_of("operator")),
        ),
        (
            set("signature_scheme", "\"MD5\""),
            format!("{F}:{}: `signature_scheme`", line_of("signature_scheme")),
        ),
        (
            drop_line("server_name"),
            "missing field `server_name`".to_string(),
        ),
        (
            good.replace("format = 1\n", "format = 1\ncolour = \"red\"\n"),
            "unknown field `colour`".to_string(),
        ),
        (
            good.replace("format = 1\n", "format = [\n"),
            format!("{F}:"),
        ),
        (
            drop_line("signature"),
            format!("{F}:{}: the last line must be the signature", sig_line - 1),
        ),
        (
            set("signature", "\"%%%\""),
            format!("{F}:{sig_line}: the last line must be the signature"),
        ),
        (
            String::new(),
            format!("{F}:1: the last line must be the signature"),
        ),
    ];
    for (text, want) in cases {
        let err = match parse(Path::new(F), text.as_bytes()) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        };
        let full = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        assert!(full.contains(F), "{full}");
        assert!(full.contains(&want), "want {want:?} in {full:?}");
    }
    let err = parse(Path::new(F), &[0xff, 0xfe, b'\n']).unwrap_err();
    assert!(err.to_string().contains(F), "{err}");
    let big = vec![b'#'; MAX_JOIN_FILE_BYTES + 1];
    assert!(
        parse(Path::new(F), &big)
            .unwrap_err()
            .to_string()
            .contains("larger")
    );
}
