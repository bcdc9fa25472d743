//! The clipboard's text both ways against the simulated host and operator:
//! asked for, sent when it changes (polled, within the credit), the
//! operator's text written and not echoed, refusals and problems said once.

use lifeline_screen_format::{Input, Level, MAX_CLIPBOARD_BYTES};

use crate::api::{HostError, Rect};
use crate::service::Service;
use crate::share::clipboard::{CLIPBOARD_ALLOWED, CLIPBOARD_POLL_MS, CLIPBOARD_REFUSED};
use crate::testutil::{FakeHost, Operator};

fn started() -> (Service, FakeHost, Operator) {
    let r = Rect {
        x: 0,
        y: 0,
        width: 200,
        height: 100,
    };
    let mut host = FakeHost::new(200, 100, &[("screen", r)]);
    let mut s = Service::new();
    s.run(&mut host, "share", &[]).expect("shares");
    let mut op = Operator::default();
    op.read(&mut host);
    (s, host, op)
}

fn tick(s: &mut Service, host: &mut FakeHost, op: &mut Operator) {
    let id = host.last_timer();
    s.on_timer(host, id);
    op.read(host);
}

/// Lets the poll interval pass, then a tick.
fn later_tick(s: &mut Service, host: &mut FakeHost, op: &mut Operator) {
    host.clock_us += CLIPBOARD_POLL_MS * 1000;
    tick(s, host, op);
}

fn operator_input(s: &mut Service, host: &mut FakeHost, op: &mut Operator, inputs: &[Input]) {
    host.operator_sends(inputs);
    s.on_stream_input(host, 7);
    op.read(host);
}

fn paste(text: &str) -> Input {
    Input::Clipboard { text: text.into() }
}

#[test]
fn nothing_is_read_until_the_operator_asks() {
    let (mut s, mut host, mut op) = started();
    host.clipboard = Some("a password".into());
    for _ in 0..3 {
        later_tick(&mut s, &mut host, &mut op);
    }
    assert_eq!(host.clipboard_reads, 0);
    assert!(op.clipboards.is_empty());
    let status = s.run(&mut host, "status", &[]).expect("status");
    assert!(status.contains("clipboard not asked yet"), "{status}");
}

#[test]
fn once_allowed_the_text_goes_to_the_operator_whenever_it_changes() {
    let (mut s, mut host, mut op) = started();
    host.clipboard = Some("copied before".into());
    operator_input(&mut s, &mut host, &mut op, &[Input::RequestClipboard]);
    assert_eq!(
        op.statuses,
        vec![(Level::Info, CLIPBOARD_ALLOWED.to_string())]
    );
    assert_eq!(op.clipboards, ["copied before"], "the current text at once");
    assert_eq!(op.order[op.order.len() - 2..], ["status", "clipboard"]);

    // Unchanged: not sent again; changed: sent, but not before the poll.
    later_tick(&mut s, &mut host, &mut op);
    host.clipboard = Some("copied after".into());
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.clipboards.len(), 1, "within the poll interval");
    let reads = host.clipboard_reads;
    later_tick(&mut s, &mut host, &mut op);
    assert_eq!(host.clipboard_reads, reads + 1);
    assert_eq!(op.clipboards, ["copied before", "copied after"]);
    // Emptied: nothing to send; the same text copied again is sent.
    host.clipboard = None;
    later_tick(&mut s, &mut host, &mut op);
    host.clipboard = Some("copied after".into());
    later_tick(&mut s, &mut host, &mut op);
    assert_eq!(op.clipboards.len(), 3);
    // Asked again: the current text again.
    operator_input(&mut s, &mut host, &mut op, &[Input::RequestClipboard]);
    assert_eq!(op.clipboards.len(), 4);
    let status = s.run(&mut host, "status", &[]).expect("status");
    assert!(status.contains("clipboard shared"), "{status}");
    assert!(
        host.reports
            .iter()
            .chain(host.logs.iter())
            .all(|l| !l.contains("copied")),
        "the text is never reported or logged"
    );
}

#[test]
fn the_operators_text_is_written_and_not_sent_back() {
    let (mut s, mut host, mut op) = started();
    // The first text asks (the host's first clipboard call does).
    operator_input(&mut s, &mut host, &mut op, &[paste("from the operator")]);
    assert_eq!(host.clipboard_writes, ["from the operator"]);
    assert_eq!(
        op.statuses,
        vec![(Level::Info, CLIPBOARD_ALLOWED.to_string())]
    );
    later_tick(&mut s, &mut host, &mut op);
    assert!(host.clipboard_reads > 0, "polled once allowed");
    assert!(op.clipboards.is_empty(), "no echo");
    operator_input(&mut s, &mut host, &mut op, &[paste("second")]);
    assert_eq!(host.clipboard_writes, ["from the operator", "second"]);
    assert_eq!(op.statuses.len(), 1, "allowed is said once");
    host.clipboard = Some("the customer's".into());
    later_tick(&mut s, &mut host, &mut op);
    assert_eq!(op.clipboards, ["the customer's"]);
}

#[test]
fn a_refusal_is_said_once_and_texts_wait_for_a_new_request() {
    let (mut s, mut host, mut op) = started();
    host.clipboard_error = Some(HostError::Denied(
        "\"clipboard.text\" was not allowed".into(),
    ));
    operator_input(&mut s, &mut host, &mut op, &[Input::RequestClipboard]);
    host.clipboard_error = None;
    operator_input(&mut s, &mut host, &mut op, &[paste("dropped")]);
    later_tick(&mut s, &mut host, &mut op);
    assert!(host.clipboard_writes.is_empty(), "dropped while refused");
    assert_eq!(host.clipboard_reads, 0, "not polled while refused");
    let refusal = format!("{CLIPBOARD_REFUSED} (\"clipboard.text\" was not allowed)");
    assert_eq!(op.statuses, vec![(Level::Warning, refusal)]);
    let refused = host
        .reports
        .iter()
        .filter(|r| r.contains(CLIPBOARD_REFUSED))
        .count();
    assert_eq!(refused, 1);
    host.clipboard = Some("now allowed".into());
    operator_input(&mut s, &mut host, &mut op, &[Input::RequestClipboard]);
    assert_eq!(op.clipboards, ["now allowed"]);
    operator_input(&mut s, &mut host, &mut op, &[paste("kept")]);
    assert_eq!(host.clipboard_writes, ["kept"]);
}

#[test]
fn large_texts_wait_for_credit_and_too_large_ones_are_not_sent() {
    let (mut s, mut host, mut op) = started();
    operator_input(&mut s, &mut host, &mut op, &[Input::RequestClipboard]);
    let big = "x".repeat(100 << 10);
    host.clipboard = Some(big.clone());
    host.credit = 50 << 10;
    later_tick(&mut s, &mut host, &mut op);
    assert!(op.clipboards.is_empty(), "waits for credit");
    host.credit = 1 << 20;
    tick(&mut s, &mut host, &mut op);
    assert_eq!(op.clipboards, [big]);

    host.clipboard = Some("y".repeat(MAX_CLIPBOARD_BYTES + 1));
    later_tick(&mut s, &mut host, &mut op);
    later_tick(&mut s, &mut host, &mut op);
    assert_eq!(op.clipboards.len(), 1, "too large for the stream");
    let warnings: Vec<_> = op
        .statuses
        .iter()
        .filter(|(l, t)| *l == Level::Warning && t.contains("256 KiB"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", op.statuses);
}

#[test]
fn the_hosts_problems_are_said_once_per_reason() {
    let (mut s, mut host, mut op) = started();
    operator_input(&mut s, &mut host, &mut op, &[Input::RequestClipboard]);
    let why = "the application holding the clipboard did not hand its text over within 2 s";
    host.clipboard_error = Some(HostError::Failed(why.into()));
    later_tick(&mut s, &mut host, &mut op);
    later_tick(&mut s, &mut host, &mut op);
    operator_input(&mut s, &mut host, &mut op, &[paste("text")]);
    let problems: Vec<_> = op
        .statuses
        .iter()
        .filter(|(_, t)| t.contains(why))
        .collect();
    assert_eq!(problems.len(), 1, "{:?}", op.statuses);
    host.clipboard_error = None;
    host.clipboard = Some("readable again".into());
    later_tick(&mut s, &mut host, &mut op);
    assert_eq!(op.clipboards, ["readable again"]);
    assert!(s.is_sharing(), "a clipboard problem does not end sharing");
}
