//! The clipboard's text both ways through a share on a real Xvfb: the
//! operator asks (`clipboard.text`, by the agent's policy here), the
//! operator's text is pasted by an application of the customer's, and what
//! the customer copies reaches the operator; refused by policy, nothing
//! passes and the report says so. The text itself is never in the report.

use std::time::{Duration, Instant};

use lifeline_operator::Client;
use lifeline_operator::screen::{Level, Message, MonitorChoice, Quality, ScreenSession};

use super::{WAIT, next_status, operator, runtime, setup};
use crate::machine::Xvfb;
use crate::processes::ok;
use crate::screen_desk::{ClipboardOwner, Desk};

/// The operator's share of `display`, with its first picture.
fn shared(rt: &tokio::runtime::Runtime, s: &super::Setup) -> ScreenSession<Client> {
    let client = rt.block_on(operator(s));
    let mut share = rt
        .block_on(ScreenSession::share(
            client,
            &s.sid,
            MonitorChoice::All,
            Quality::Auto,
        ))
        .unwrap();
    rt.block_on(share.first_picture()).unwrap();
    share
}

#[test]
fn the_clipboard_goes_both_ways_once_allowed() {
    let x = Xvfb::start_with("800x600x24");
    let desk = Desk::open(&x.display);
    let s = setup(
        &x.display,
        "\"screen.capture\" = \"allow\"\n\"clipboard.text\" = \"allow\"\n",
    );
    let rt = runtime();
    let mut share = shared(&rt, &s);
    rt.block_on(share.request_clipboard()).unwrap();
    let (level, text) = next_status(&rt, &mut share);
    assert_eq!(
        (level, text.as_str()),
        (Level::Info, "clipboard access allowed")
    );

    // The operator's text, pasted by an application of the customer's.
    let from_operator = "ssh admin@host -p 2222 # grüße";
    rt.block_on(share.send_clipboard(from_operator)).unwrap();
    let deadline = Instant::now() + WAIT;
    while desk.clipboard_text().as_deref() != Some(from_operator) {
        assert!(
            Instant::now() < deadline,
            "the operator's text was never pasted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The customer copies: the operator receives it.
    let from_customer = "Error 0x80070005: access denied\nline two";
    let _owner = ClipboardOwner::start(&x.display, from_customer);
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = rt
            .block_on(async { tokio::time::timeout(left, share.next()).await })
            .expect("the customer's text in time")
            .unwrap()
            .expect("the stream stays open");
        if let Message::Clipboard { text } = msg {
            if text == from_customer {
                break;
            }
            assert_eq!(text, from_operator, "only texts that were copied");
        }
    }
    assert_eq!(share.clipboard(), Some(from_customer));
    rt.block_on(share.stop()).unwrap();
    let report = ok(&["operator", "report", "--config", &s.op, &s.sid], None);
    assert!(report.contains("clipboard replaced"), "{report}");
    assert!(report.contains("clipboard shared"), "{report}");
    assert!(
        !report.contains("grüße") && !report.contains("0x80070005"),
        "the report shows clipboard text:\n{report}"
    );
}

#[test]
fn refused_by_policy_nothing_passes_and_the_report_says_so() {
    let x = Xvfb::start_with("800x600x24");
    let desk = Desk::open(&x.display);
    let s = setup(
        &x.display,
        "\"screen.capture\" = \"allow\"\n\"clipboard.text\" = \"deny\"\n",
    );
    let _owner = ClipboardOwner::start(&x.display, "a secret the customer copied");
    let rt = runtime();
    let mut share = shared(&rt, &s);
    rt.block_on(share.request_clipboard()).unwrap();
    let (level, text) = next_status(&rt, &mut share);
    assert_eq!(level, Level::Warning, "{text}");
    assert!(text.contains("clipboard access was not allowed"), "{text}");
    rt.block_on(share.send_clipboard("from the operator"))
        .unwrap();
    // Everything the plugin did with the input is in the stream by now.
    let mut seen = Vec::new();
    rt.block_on(share.sync_with(|m| seen.push(m.clone())))
        .unwrap();
    assert!(
        !seen.iter().any(|m| matches!(m, Message::Clipboard { .. })),
        "{seen:?}"
    );
    assert_eq!(share.clipboard(), None);
    assert_eq!(
        desk.clipboard_text().as_deref(),
        Some("a secret the customer copied"),
        "the customer's clipboard is untouched"
    );
    rt.block_on(share.stop()).unwrap();
    let report = ok(&["operator", "report", "--config", &s.op, &s.sid], None);
    assert!(
        report.contains("clipboard.text for plugin screen: deny (decided by policy"),
        "{report}"
    );
    assert!(
        report.contains("screen: clipboard access was not allowed"),
        "{report}"
    );
}
