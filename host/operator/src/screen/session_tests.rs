//! [`ScreenSession`] against a fake agent on the other end of an in-memory
//! link: the screen plugin's side of share, credit, sync, input and stop,
//! over a real end-to-end channel ([`crate::test_agent`]).

use std::time::Duration;

use lifeline_protocol::{Frame, Message as Control, Party, SessionMessage, StreamData};
use lifeline_screen_format::{
    Level, Message, MonitorChoice, Quality, Tile, TileData, decode_inputs, encode_message,
};

use super::*;
use crate::test_agent::{FakeAgent, attached};

const SESSION: &str = "s-1";
const STREAM: u32 = 7;

/// The fake agent's end: what the client sent, and a way to answer.
struct Agent {
    fake: FakeAgent,
    /// Credit granted so far, in bytes.
    credit: u64,
    /// Bytes of frames sent so far.
    sent: u64,
}

impl Agent {
    /// The next frame from the client, opened as the agent reads it.
    async fn recv(&mut self) -> Frame {
        self.fake.recv().await
    }

    /// The next session message, counting the credit granted meanwhile.
    async fn session_msg(&mut self) -> SessionMessage {
        loop {
            match self.recv().await {
                Frame::Control(Control::Session { session_id, msg }) => {
                    assert_eq!(session_id, SESSION);
                    return msg;
                }
                Frame::SessionData { payload, .. } => match StreamData::decode(payload).unwrap() {
                    StreamData::Credit { stream, bytes } => {
                        assert_eq!(stream, STREAM);
                        self.credit += bytes;
                    }
                    other => panic!("unexpected {other:?}"),
                },
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// The next input frame, decoded, counting credit meanwhile.
    async fn inputs(&mut self) -> Vec<Input> {
        loop {
            match self.recv().await {
                Frame::SessionData { session, payload } => {
                    assert_eq!(session, SESSION);
                    match StreamData::decode(payload).unwrap() {
                        StreamData::Credit { bytes, .. } => self.credit += bytes,
                        StreamData::Input { stream, body } => {
                            assert_eq!(stream, STREAM);
                            return decode_inputs(&body).unwrap();
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Waits until `bytes` of credit have been granted in all.
    async fn credit_reaches(&mut self, bytes: u64) {
        while self.credit < bytes {
            match self.recv().await {
                Frame::SessionData { payload, .. } => match StreamData::decode(payload).unwrap() {
                    StreamData::Credit { bytes, .. } => self.credit += bytes,
                    other => panic!("unexpected {other:?}"),
                },
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn say(&mut self, msg: SessionMessage) {
        self.fake.say(msg).await;
    }

    /// Sends a screen message on the stream, within the credit.
    async fn frame(&mut self, msg: &Message) {
        let mut body = Vec::new();
        encode_message(msg, &mut body);
        self.raw(body).await;
    }

    async fn raw(&mut self, body: Vec<u8>) {
        self.sent += body.len() as u64;
        assert!(
            self.sent <= self.credit,
            "the agent never exceeds the credit"
        );
        let payload = StreamData::Frame {
            stream: STREAM,
            body,
        }
        .encode();
        self.fake.data(&payload).await;
    }

    async fn opened(&mut self, content_type: &str) {
        self.say(SessionMessage::StreamOpened {
            stream: STREAM,
            plugin: PLUGIN.into(),
            name: STREAM_NAME.into(),
            content_type: content_type.into(),
            latest_wins: false,
        })
        .await;
    }

    async fn done(&mut self, call_id: u64, ok: bool, text: &str) {
        self.say(SessionMessage::PluginDone {
            call_id,
            plugin: PLUGIN.into(),
            ok,
            text: text.into(),
        })
        .await;
    }

    async fn closed(&mut self, reason: &str) {
        self.say(SessionMessage::StreamClosed {
            stream: STREAM,
            plugin: PLUGIN.into(),
            name: STREAM_NAME.into(),
            frames: 3,
            bytes: 100,
            dropped: 0,
            reason: reason.into(),
        })
        .await;
    }

    /// Reads the `screen COMMAND` call: its id and arguments.
    async fn call(&mut self, command: &str) -> (u64, Vec<String>) {
        match self.session_msg().await {
            SessionMessage::RunPlugin {
                call_id,
                plugin,
                command: c,
                args,
            } => {
                assert_eq!((plugin.as_str(), c.as_str()), (PLUGIN, command));
                (call_id, args)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A client attached to the session and the fake agent it talks to.
async fn pair() -> (Client, Agent) {
    let (client, fake) = attached(SESSION).await;
    let agent = Agent {
        fake,
        credit: 0,
        sent: 0,
    };
    (client, agent)
}

fn layout(width: u32, height: u32) -> Message {
    Message::Layout {
        width,
        height,
        monitors: vec![],
    }
}

fn solid(seq: u32, x: u16, rgb: [u8; 3]) -> Message {
    Message::Update {
        seq,
        captured_us: 0,
        tiles: vec![Tile {
            x,
            y: 0,
            width: 2,
            height: 2,
            data: TileData::Solid(rgb),
        }],
    }
}

#[tokio::test]
async fn share_sync_input_and_stop() {
    let (client, mut agent) = pair().await;
    let fake = async move {
        let (call, args) = agent.call(SHARE_COMMAND).await;
        assert_eq!(args, ["1", "lossless"]);
        agent
            .say(SessionMessage::PluginOutput {
                call_id: call,
                plugin: PLUGIN.into(),
                stream: "customer".into(),
                text: "asked".into(),
            })
            .await;
        agent.opened(CONTENT_TYPE).await;
        agent.credit_reaches(WINDOW_BYTES).await;
        // Frames may come before the answer: they wait for the reader.
        agent.frame(&layout(4, 2)).await;
        agent.done(call, true, "sharing monitor 1").await;

        // The first picture: the client syncs once it has the layout.
        assert_eq!(agent.inputs().await, [Input::Sync { token: 1 }]);
        agent.frame(&solid(1, 0, [255, 0, 0])).await;
        let status = Message::Status {
            level: Level::Info,
            text: "hello".into(),
        };
        agent.frame(&status).await;
        let copied = Message::Clipboard {
            text: "copied by the customer".into(),
        };
        agent.frame(&copied).await;
        agent.frame(&Message::Sync { token: 99 }).await;
        agent.frame(&solid(2, 2, [0, 0, 255])).await;
        agent.frame(&Message::Sync { token: 1 }).await;

        assert_eq!(agent.inputs().await, [Input::RequestClipboard]);
        let pasted = Input::Clipboard {
            text: "pasted by the operator".into(),
        };
        assert_eq!(agent.inputs().await, [pasted]);
        let inputs = agent.inputs().await;
        assert_eq!(
            inputs,
            [
                Input::PointerMove { x: 3, y: 1 },
                Input::Button {
                    button: 1,
                    pressed: true
                }
            ],
            "a batch of inputs is one frame"
        );

        let (stop, _) = agent.call(STOP_COMMAND).await;
        // Everything the client read was granted back before it stopped.
        assert_eq!(agent.credit, WINDOW_BYTES + agent.sent);
        agent.frame(&solid(3, 0, [1, 1, 1])).await;
        agent.done(stop, true, "stopped").await;
        agent.closed("stopped by the operator").await;
        agent.credit_reaches(WINDOW_BYTES + agent.sent).await;
        agent
    };
    let operator = async {
        let mut lines = Vec::new();
        let opts = ShareOptions {
            monitor: MonitorChoice::Index(1),
            quality: Quality::Lossless,
            ..ShareOptions::default()
        };
        let mut s = ScreenSession::share_with(&client, SESSION, &opts, |stream, text| {
            lines.push(format!("{stream}: {text}"))
        })
        .await
        .unwrap();
        assert_eq!(lines, ["customer: asked"]);
        assert_eq!(s.answer(), "sharing monitor 1");
        assert_eq!(s.stream_id(), STREAM);
        let mut seen = Vec::new();
        s.first_picture_with(|m| seen.push(m.clone()))
            .await
            .unwrap();
        assert!(matches!(seen[0], Message::Layout { .. }));
        assert!(
            seen.contains(&Message::Sync { token: 99 }),
            "stale syncs pass"
        );
        assert_eq!(seen.last(), Some(&Message::Sync { token: 1 }));
        let fb = s.framebuffer();
        assert_eq!(fb.pixel(0, 0), Some([255, 0, 0]));
        assert_eq!(fb.pixel(3, 1), Some([0, 0, 255]));
        assert_eq!(fb.last_seq(), Some(2));
        assert_eq!(s.frames(), 7);
        // The clipboard's text passes through; the picture ignores it.
        assert!(seen.contains(&Message::Clipboard {
            text: "copied by the customer".into()
        }));
        assert_eq!(s.clipboard(), Some("copied by the customer"));
        s.request_clipboard().await.unwrap();
        let too_long = "x".repeat(format::MAX_CLIPBOARD_BYTES + 1);
        let e = s.send_clipboard(&too_long).await.unwrap_err();
        assert!(matches!(e, ScreenError::ClipboardTooLarge { .. }), "{e}");
        s.send_clipboard("pasted by the operator").await.unwrap();
        s.send_input(&[
            Input::PointerMove { x: 3, y: 1 },
            Input::Button {
                button: 1,
                pressed: true,
            },
        ])
        .await
        .unwrap();
        let end = s.stop().await.unwrap();
        assert_eq!(end.reason, "stopped by the operator");
        assert_eq!(end.frames, 3);
    };
    let (agent, ()) = tokio::join!(fake, operator);
    drop(agent);
}

#[tokio::test]
async fn a_refused_share_says_why() {
    let (client, mut agent) = pair().await;
    let fake = async move {
        let (call, args) = agent.call(SHARE_COMMAND).await;
        assert_eq!(args, ["all", "auto"]);
        agent
            .say(SessionMessage::ConsentDecided {
                plugin: PLUGIN.into(),
                action: "screen.capture".into(),
                decision: lifeline_protocol::ConsentDecision::Deny,
                decided_by: "customer".into(),
                audit_hash: String::new(),
            })
            .await;
        agent
            .done(call, false, "the customer did not allow screen.capture")
            .await;
        agent
    };
    let operator = async {
        let mut lines = Vec::new();
        let r = ScreenSession::share_with(&client, SESSION, &ShareOptions::default(), |s, t| {
            lines.push(format!("{s}: {t}"))
        })
        .await;
        let e = r.err().expect("refused");
        assert!(matches!(e, ScreenError::ShareFailed(_)), "{e}");
        assert!(
            e.to_string().contains("did not allow screen.capture"),
            "{e}"
        );
        assert_eq!(lines, ["consent: screen.capture: deny (customer)"]);
    };
    let (_agent, ()) = tokio::join!(fake, operator);
}

#[tokio::test]
async fn a_foreign_content_type_is_refused() {
    let (client, mut agent) = pair().await;
    let fake = async move {
        agent.call(SHARE_COMMAND).await;
        agent.opened("image/png").await;
        agent
    };
    let operator = async {
        let r = ScreenSession::share(&client, SESSION, MonitorChoice::All, Quality::Auto).await;
        let e = r.err().expect("refused");
        assert!(e.to_string().contains("\"image/png\""), "{e}");
    };
    let (_agent, ()) = tokio::join!(fake, operator);
}

#[tokio::test]
async fn the_customer_stopping_and_the_session_ending_are_told() {
    let (client, mut agent) = pair().await;
    let fake = async move {
        let (call, _) = agent.call(SHARE_COMMAND).await;
        agent.opened(CONTENT_TYPE).await;
        agent.done(call, true, "sharing").await;
        agent.credit_reaches(WINDOW_BYTES).await;
        agent.frame(&layout(2, 2)).await;
        agent.raw(vec![42]).await;
        agent.closed("stopped by the customer").await;
        agent
    };
    let operator = async {
        let mut s = ScreenSession::share(&client, SESSION, MonitorChoice::All, Quality::Auto)
            .await
            .unwrap();
        assert!(matches!(s.next().await, Ok(Some(Message::Layout { .. }))));
        let e = s.next().await.unwrap_err();
        assert!(matches!(e, ScreenError::Decode { frame: 2, .. }), "{e}");
        assert!(
            e.to_string().starts_with("frame 2 of the screen stream"),
            "{e}"
        );
        assert_eq!(s.next().await.unwrap(), None);
        assert_eq!(s.closed().unwrap().reason, "stopped by the customer");
        let e = s.sync().await.unwrap_err();
        assert!(e.to_string().contains("stopped by the customer"), "{e}");
        assert_eq!(s.stop().await.unwrap().reason, "stopped by the customer");
    };
    let (_agent, ()) = tokio::join!(fake, operator);

    let (client, mut agent) = pair().await;
    let fake = async move {
        let (call, _) = agent.call(SHARE_COMMAND).await;
        agent.opened(CONTENT_TYPE).await;
        agent.done(call, true, "sharing").await;
        // Once the session ended nothing more is sealed for it: the end
        // comes after the share's credit.
        agent.credit_reaches(WINDOW_BYTES).await;
        agent
            .say(SessionMessage::End {
                by: Party::Customer,
                reason: "bye".into(),
            })
            .await;
        agent
    };
    let operator = async {
        let mut s = ScreenSession::share(&client, SESSION, MonitorChoice::All, Quality::Auto)
            .await
            .unwrap();
        let e = s.next().await.unwrap_err();
        assert!(
            matches!(e, ScreenError::SessionEnded(ref r) if r == "bye"),
            "{e}"
        );
    };
    let (_agent, ()) = tokio::join!(fake, operator);
}

#[tokio::test]
async fn waits_are_bounded() {
    let (client, mut agent) = pair().await;
    let fake = async move {
        let (call, _) = agent.call(SHARE_COMMAND).await;
        // Answers, but opens no stream (a share already running).
        agent.done(call, true, "already sharing").await;
        agent
    };
    let operator = async {
        let opts = ShareOptions {
            open_wait: Duration::from_millis(300),
            ..ShareOptions::default()
        };
        let r = ScreenSession::share_with(&client, SESSION, &opts, |_, _| {}).await;
        let e = r.err().expect("no stream");
        assert!(
            e.to_string().starts_with(
                "screen share answered \"already sharing\", but no screen stream opened within 300ms"
            ),
            "{e}"
        );
    };
    let (_agent, ()) = tokio::join!(fake, operator);
}

/// A web console drives a session from spawned tasks: its futures must be
/// `Send`.
#[tokio::test]
async fn futures_can_move_between_threads() {
    use std::sync::Arc;
    fn send<T: Send>(t: T) -> T {
        t
    }
    fn methods(s: &mut ScreenSession<Arc<Client>>) {
        drop(send(s.next()));
        drop(send(s.next_frame()));
        drop(send(s.sync()));
        drop(send(s.first_picture()));
        drop(send(s.send_input(&[])));
    }
    let _ = methods as fn(&mut ScreenSession<Arc<Client>>);
    let (client, _agent) = pair().await;
    let share = ScreenSession::share(Arc::new(client), SESSION, MonitorChoice::All, Quality::Auto);
    drop(send(share));
}
