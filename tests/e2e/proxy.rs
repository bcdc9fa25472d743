//! One proxy implementation for every outgoing connection, end to end with
//! a real tinyproxy (Basic authentication) on 127.0.0.1: the agent's join
//! and its rejoin after a reboot as separate processes, right and wrong
//! credentials, and `no_proxy` honoured alike by the session connection,
//! the license back office and plugins' HTTP.

use std::path::Path;

use lifeline_core::client::connect_via;
use lifeline_core::proxy::{ManualProxy, ProxyAuth, ProxySetting, Secret};
use lifeline_protocol::ClientRole;

use lifeline_agent::config::remote_service::LicenseMode;

use crate::license_support::{Office, PROXY_PASSWORD, PROXY_USER, Tinyproxy};
use crate::processes::*;

/// The manual proxy setting for `proxy` with `password` and `no_proxy`.
fn manual(proxy: &Tinyproxy, password: Option<&str>, no_proxy: &[&str]) -> ManualProxy {
    ManualProxy {
        host: "127.0.0.1".into(),
        port: proxy.port,
        auth: password.map(|p| ProxyAuth {
            user: PROXY_USER.into(),
            password: Secret::new(p),
            domain: None,
        }),
        no_proxy: no_proxy.iter().map(|s| s.to_string()).collect(),
    }
}

/// How many requests the proxy logged naming `needle`
/// (`CONNECT 127.0.0.1:PORT`, `GET http://…`).
fn requests(proxy: &Tinyproxy, needle: &str) -> usize {
    proxy
        .log()
        .lines()
        .filter(|l| l.contains("Request") && l.contains(needle))
        .count()
}

#[test]
fn join_and_rejoin_after_a_reboot_go_through_the_authenticating_proxy() {
    let proxy = Tinyproxy::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_broker, addr, fp) = start_broker(d);
    let (op, agent_cfg) = client_configs(d, &addr, &fp);
    crate::plugins::install_plugins(&d.join("agent-plugins"), &["plugins/reboot"]);
    lifeline_core::secrets::write_private(&d.join("proxy.secret"), PROXY_PASSWORD.as_bytes())
        .unwrap();
    lifeline_core::secrets::write_private(&d.join("code.secret"), b"unused-code").unwrap();
    let cfg_text = std::fs::read_to_string(&agent_cfg).unwrap()
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\n"
        + "[power]\nreboot_command = [\"sh\", \"-c\", \"kill -9 $LIFELINE_AGENT_PID\"]\n"
        + "[remote_service]\nenabled = false\nback_office = \"https://127.0.0.1:1\"\n"
        + "organisation_id = \"ORG\"\nverification_code_file = \"code.secret\"\n"
        + "vendor_keys = [\"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\n"
        + "license_file = \"lic/license.toml\"\n"
        + &format!(
            "[remote_service.proxy]\nmode = \"manual\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{PROXY_USER}\"\npassword_file = \"proxy.secret\"\n",
            proxy.port
        );
    write(Path::new(&agent_cfg), &cfg_text);
    let to_broker = format!("CONNECT {addr} ");
    login(&op);
    let (sid, inv) = invite(&op, "T-PROXY");
    let mut agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );
    let joined = requests(&proxy, &to_broker);
    assert!(
        joined >= 1,
        "the join went through the proxy:\n{}",
        proxy.log()
    );

    let args: Vec<String> = [
        "operator", "reboot", "--config", &op, &sid, "--reason", "updates",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let t = std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, None)
    });
    agent.wait_line("Type /allow");
    agent.type_line("/allow");
    assert!(t.join().unwrap().status.success());
    assert!(!agent.wait_exit().success(), "the power backend killed it");

    let mut back = Proc::spawn(&["agent", "service", "--config", &agent_cfg]);
    back.wait_line("You are back in the session with Alice Smith");
    assert!(
        requests(&proxy, &to_broker) > joined,
        "the rejoin went through the proxy too:\n{}",
        proxy.log()
    );
    ok(
        &["operator", "chat", "--config", &op, &sid, "still here"],
        None,
    );
    back.wait_line("still here");
    ok(&["operator", "end", "--config", &op, &sid], None);
    assert!(back.wait_exit().success());
    let said = agent.rest() + &back.rest();
    assert!(!said.contains(PROXY_PASSWORD), "{said}");
}

#[tokio::test]
async fn session_proxy_credentials_right_wrong_and_missing() {
    let tb = crate::support::TestBroker::start().await;
    let proxy = Tinyproxy::start();
    let ep = tb.endpoint();
    let (link, _) = connect_via(
        &ep,
        ClientRole::Agent,
        Some(&manual(&proxy, Some(PROXY_PASSWORD), &[])),
    )
    .await
    .unwrap();
    drop(link);
    let name = format!("the proxy 127.0.0.1:{}", proxy.port);
    let wrong = "wrong-pw-d41c";
    let err = connect_via(
        &ep,
        ClientRole::Agent,
        Some(&manual(&proxy, Some(wrong), &[])),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(&format!("{name} refused the credentials")) && !err.contains(wrong),
        "{err}"
    );
    let err = connect_via(&ep, ClientRole::Agent, Some(&manual(&proxy, None, &[])))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!("{name} requires authentication (407)")),
        "{err}"
    );
    assert!(requests(&proxy, &format!("CONNECT {} ", tb.broker.addr)) >= 1);
    // Plugins' HTTPS is tunnelled by reqwest with the same tunnel: the same
    // explanation.
    let setting = ProxySetting::Manual(manual(&proxy, None, &[]));
    let url = format!("https://{}/", tb.broker.https_addr);
    let err = tokio::task::spawn_blocking(move || {
        lifeline_runtime::http::request(
            &["127.0.0.1".into()],
            Some(&setting),
            "GET",
            &url,
            &[],
            &[],
            1024,
        )
    })
    .await
    .unwrap()
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("{name} requires authentication (407)")),
        "{err}"
    );
}

/// A plain HTTP server on 127.0.0.1 answering `hello` (hyper's).
async fn hello_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(hyper::body::Bytes::from_static(b"hello")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn no_proxy_is_honoured_alike_by_sessions_license_and_plugins() {
    let office = Office::start().await;
    let proxy = Tinyproxy::start();
    let web = hello_server().await;
    let ep = office.tb.endpoint();
    let session = format!("CONNECT {} ", office.tb.broker.addr);
    let license = format!("CONNECT {} ", office.tb.broker.https_addr);
    let plugin = format!("GET http://{web}/");
    for (no_proxy, proxied) in [
        (&["127.0.0.0/8"][..], false),
        (&["localhost", ".example"][..], true),
        (&["*"][..], false),
        (&[][..], true),
    ] {
        let before = [&session, &license, &plugin].map(|n| requests(&proxy, n));
        let m = manual(&proxy, Some(PROXY_PASSWORD), no_proxy);
        let setting = ProxySetting::Manual(m.clone());
        // The session connection (what the agent's join and rejoin use).
        connect_via(&ep, ClientRole::Agent, Some(&m)).await.unwrap();
        // The license back office.
        let rs = office.remote_service("np", LicenseMode::Remote, setting.clone());
        let bo = office.back_office(&rs);
        let hello = tokio::task::spawn_blocking(move || bo.hello())
            .await
            .unwrap()
            .unwrap();
        assert!(!hello.is_empty());
        // A plugin's http.request.
        let url = format!("http://{web}/");
        let reply = tokio::task::spawn_blocking(move || {
            lifeline_runtime::http::request(
                &["127.0.0.1".into()],
                Some(&setting),
                "GET",
                &url,
                &[],
                &[],
                1024,
            )
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"hello"[..]));
        let after = [&session, &license, &plugin].map(|n| requests(&proxy, n));
        let through: Vec<bool> = (0..3).map(|i| after[i] > before[i]).collect();
        assert_eq!(
            through,
            [proxied; 3],
            "no_proxy {no_proxy:?}: session, license, plugin through the proxy\n{}",
            proxy.log()
        );
    }
}
