use super::*;

fn manual(no_proxy: &[&str]) -> ManualProxy {
    ManualProxy {
        host: "proxy.example".into(),
        port: 3128,
        auth: Some(ProxyAuth {
            user: "svc".into(),
            password: Secret::new("pw-7f3a"),
            domain: Some("CORP".into()),
        }),
        no_proxy: no_proxy.iter().map(|s| s.to_string()).collect(),
    }
}

fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

fn via(p: &Proxies, dst: &str) -> Option<String> {
    p.route(&dst.parse().unwrap()).map(|r| r.name())
}

/// The one table every connection follows: sessions and the back office
/// ask `Proxies::route` through `open`, plugins' HTTP through reqwest's
/// custom proxies that call the same `route`.
#[test]
fn no_proxy_rules_are_one_table() {
    let list = [
        "corp.example",
        ".lan",
        "10.0.0.0/8",
        "192.168.1.7",
        "::1",
        "localhost",
    ];
    let p = Proxies::manual(&manual(&list)).unwrap();
    for (dst, proxied) in [
        ("https://corp.example:7443/", false),
        ("https://licenses.corp.example/", false),
        ("https://notcorp.example/", true),
        ("https://printer.lan/", false),
        ("https://lan/", false),
        ("https://10.1.2.3:7443/", false),
        ("https://11.1.2.3:7443/", true),
        ("http://192.168.1.7/", false),
        ("http://192.168.1.8/", true),
        ("https://[::1]:7443/", false),
        ("https://[::2]:7443/", true),
        ("https://LOCALHOST/", false),
        ("https://broker.example:7443/", true),
        ("http://broker.example/", true),
    ] {
        assert_eq!(
            via(&p, dst).is_some(),
            proxied,
            "{dst} through the proxy: {proxied}"
        );
    }
    assert_eq!(
        via(&p, "https://broker.example/").as_deref(),
        Some("proxy.example:3128")
    );
    // "*" excludes everything, addresses too; an empty list nothing.
    let all = Proxies::manual(&manual(&["a.example", "*"])).unwrap();
    for dst in [
        "https://a.example/",
        "https://127.0.0.1:7443/",
        "http://[::2]/",
    ] {
        assert!(via(&all, dst).is_none(), "{dst}");
    }
    let all = Proxies::system(env(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", " *")])).unwrap();
    assert!(via(&all, "https://10.1.1.1/").is_none());
    assert!(
        via(
            &Proxies::manual(&manual(&[])).unwrap(),
            "https://a.example/"
        )
        .is_some()
    );
    assert!(via(&Proxies::direct(), "https://a.example/").is_none());
}

#[test]
fn system_proxy_follows_curl_and_reqwest() {
    let p = Proxies::system(env(&[
        ("https_proxy", "http://u:p%40ss@sec.example:3128/"),
        ("HTTP_PROXY", "plain.example:8080"),
        ("no_proxy", ".b.example, 127.0.0.1"),
    ]))
    .unwrap();
    assert_eq!(
        via(&p, "https://a.example/").as_deref(),
        Some("sec.example:3128")
    );
    assert_eq!(
        via(&p, "http://a.example/").as_deref(),
        Some("plain.example:8080")
    );
    assert!(via(&p, "https://lic.b.example/").is_none());
    assert!(via(&p, "https://127.0.0.1:7444/").is_none());
    // Credentials from the URL become the https destinations' Basic header.
    let r = p.route(&"https://a.example/".parse().unwrap()).unwrap();
    assert!(r.authenticates());
    assert!(
        !p.route(&"http://a.example/".parse().unwrap())
            .unwrap()
            .authenticates()
    );
    let expected = base64::engine::general_purpose::STANDARD.encode("u:p@ss");
    assert_eq!(
        p.https_auth.as_ref().unwrap().to_str().unwrap(),
        format!("Basic {expected}")
    );
    // ALL_PROXY covers both schemes; http_proxy alone is not used for https.
    let p = Proxies::system(env(&[("ALL_PROXY", "http://all.example:1")])).unwrap();
    assert!(via(&p, "https://a.example/").is_some() && via(&p, "http://a.example/").is_some());
    let p = Proxies::system(env(&[("http_proxy", "http://h.example:1")])).unwrap();
    assert!(via(&p, "https://a.example/").is_none());
    assert!(via(&Proxies::system(env(&[])).unwrap(), "https://a.example/").is_none());
    // Only http:// proxies; the error names the variable, not its value.
    let e = Proxies::system(env(&[("https_proxy", "socks5://u:secret-1@s:1080")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("in https_proxy") && !e.contains("secret-1"),
        "{e}"
    );
    let shown = from_env(
        "a.example",
        env(&[("https_proxy", "http://u:secret-2@sec.example:3128")]),
    )
    .unwrap();
    assert_eq!((shown.host.as_str(), shown.port), ("sec.example", 3128));
}

#[test]
fn credentials_are_basic_with_domain_and_never_shown() {
    let p = Proxies::manual(&manual(&[])).unwrap();
    let r = p
        .route(&"https://b.example:7443/".parse().unwrap())
        .unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode("CORP\\svc:pw-7f3a");
    let h = r.auth.clone().unwrap();
    assert_eq!(h.to_str().unwrap(), format!("Basic {token}"));
    assert!(h.is_sensitive());
    for shown in [
        format!("{r:?}"),
        format!("{p:?}"),
        format!("{:?}", p.reqwest_proxies()),
        format!("{:?}", manual(&[])),
    ] {
        assert!(
            !shown.contains("pw-7f3a") && !shown.contains(&token),
            "{shown}"
        );
    }
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .proxy(p.reqwest_proxies().remove(0));
    assert!(!format!("{http:?}").contains(&token));
}

#[test]
fn proxy_urls_and_status_lines_parse() {
    let p = parse_proxy_url("http://u:p%40ss@proxy:3128/").unwrap();
    assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
    assert_eq!(p.auth.unwrap().password.expose(), "p@ss");
    assert_eq!(parse_proxy_url("proxy2:8080").unwrap().port, 8080);
    assert_eq!(parse_proxy_url("http://[::1]:3128").unwrap().host, "::1");
    assert!(parse_proxy_url("https://proxy:3128").is_none());
    assert_eq!(
        status_of(b"HTTP/1.0 401 Unauthorized\r\nServer: x"),
        Some(401)
    );
    assert_eq!(status_of(b"HTTP/1.1 403 Forbidden\r\n\r\n"), Some(403));
    assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
    assert_eq!(
        split_https_url("https://[::1]:7444/x"),
        Some(("::1".into(), 7444))
    );
    assert_eq!(host_port("::1", 1), "[::1]:1");
}
