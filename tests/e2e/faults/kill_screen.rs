//! `kill -9` of the agent while it shares the screen and the operator
//! holds a key and a mouse button down on the customer's display: the
//! operator's stream ends, the indicator goes, the customer's keyboard and
//! pointer are not left pressed, and the report says the session ended
//! with the agent lost.

use lifeline_core::config::OperatorConfig;
use lifeline_operator::Client;
use lifeline_operator::screen::{Input, Level, Message, MonitorChoice, Quality, ScreenSession};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, KeyButMask};

use super::*;
use crate::machine::Xvfb;
use crate::screen_desk::Desk;

const INDICATOR_TITLE: &str = "Lifeline: your screen is shared";
/// X keysym of the left Shift key.
const SHIFT_L: u32 = 0xffe1;

/// What the customer's display has pressed now: keycodes down, and whether
/// any pointer button is.
fn pressed(display: &str) -> (Vec<u8>, bool) {
    let (conn, screen) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let keys = conn.query_keymap().unwrap().reply().unwrap().keys;
    let down = (0..=255u16)
        .filter(|k| keys[(*k / 8) as usize] & (1 << (k % 8)) != 0)
        .map(|k| k as u8)
        .collect();
    let mask = conn.query_pointer(root).unwrap().reply().unwrap().mask;
    let buttons = KeyButMask::BUTTON1
        | KeyButMask::BUTTON2
        | KeyButMask::BUTTON3
        | KeyButMask::BUTTON4
        | KeyButMask::BUTTON5;
    (down, u16::from(mask) & u16::from(buttons) != 0)
}

/// Waits (bounded) until the display's pressed state satisfies `want`.
fn wait_pressed(display: &str, want: impl Fn(&(Vec<u8>, bool)) -> bool, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = pressed(display);
        if want(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {now:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The next status line of the stream (bounded).
async fn next_status(share: &mut ScreenSession<Client>) -> (Level, String) {
    loop {
        match tokio::time::timeout(WAIT, share.next()).await {
            Ok(Ok(Some(Message::Status { level, text }))) => return (level, text),
            Ok(Ok(Some(_))) => {}
            other => panic!("no status: {other:?}"),
        }
    }
}

#[test]
fn agent_killed_while_sharing_the_screen_with_keys_held() {
    let x = Xvfb::start_with("1024x600x24");
    let desk = Desk::open(&x.display);
    let rig = Rig::new(
        &["plugins/screen"],
        &format!("[screen]\ndisplay = \"{}\"\n", x.display),
    );
    rig.policy("\"screen.capture\" = \"allow\"\n\"input.control\" = \"allow\"\n");
    let (sid, mut agent) = rig.join("T-FAULT-SCREEN");
    let rt = runtime();
    let cfg = OperatorConfig::load(Path::new(&rig.op)).unwrap();
    let mut share = rt.block_on(async {
        let client = Client::connect_logged_in(&cfg).await.unwrap();
        client.attach(&sid).await.unwrap();
        let mut share = ScreenSession::share(client, &sid, MonitorChoice::All, Quality::Auto)
            .await
            .unwrap();
        share.first_picture().await.unwrap();
        share.send_input(&[Input::RequestControl]).await.unwrap();
        let (level, text) = next_status(&mut share).await;
        assert_eq!(level, Level::Info, "{text}");
        share
    });
    assert!(desk.find(INDICATOR_TITLE).is_some());
    let (before, _) = pressed(&x.display);
    // The operator presses Shift and the left button, and the agent dies
    // before their releases.
    rt.block_on(share.send_input(&[
        Input::PointerMove { x: 500, y: 300 },
        Input::Key {
            keysym: SHIFT_L,
            pressed: true,
        },
        Input::Button {
            button: 1,
            pressed: true,
        },
    ]))
    .unwrap();
    wait_pressed(
        &x.display,
        |(keys, button)| *button && keys.len() > before.len(),
        "the operator's Shift and button never reached the display",
    );
    kill_9(&mut agent);

    // The operator's stream ends (bounded), the indicator goes.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rt.block_on(async { tokio::time::timeout(left, share.next()).await }) {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!("the operator's stream did not end with the agent"),
        }
    }
    while desk.find(INDICATOR_TITLE).is_some() {
        assert!(Instant::now() < deadline, "the indicator stays");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Nothing the operator held stays pressed for the customer.
    wait_pressed(
        &x.display,
        |(keys, button)| !*button && *keys == before,
        "keys or buttons stay pressed after the agent died",
    );
    rig.wait_ended(&sid);
    let report = rig.report(&sid);
    for needle in [
        "remote control started",
        "customer connection lost",
        "\"screen\" ended with the session",
    ] {
        assert!(report.contains(needle), "{needle:?} in\n{report}");
    }
    assert_eq!(rig.temp_folders(), Vec::<String>::new());
    rig.audit_verifies();
}
