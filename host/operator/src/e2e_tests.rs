//! The client's end-to-end channels against the agent's real ones
//! (`AgentEnds`, in [`crate::test_agent`]): attach, sealed traffic both
//! ways, refusals, another endpoint's traffic, a new channel after the
//! agent came back, and giving up after failed channels.

use lifeline_protocol::e2e::OperatorEnd;
use lifeline_protocol::{Frame, Message, Party, Secret, SessionMessage, SessionState, StreamData};

use crate::test_agent::{FAKE_WAIT, attached, pair};
use crate::{Client, Event, OperatorError};

const SESSION: &str = "s-e2e";

fn chat(from: Party, text: &str) -> SessionMessage {
    SessionMessage::Chat {
        from,
        text: text.into(),
    }
}

fn state(state: SessionState) -> SessionMessage {
    SessionMessage::State {
        state,
        detail: state.as_str().into(),
    }
}

async fn event(c: &Client) -> Event {
    tokio::time::timeout(FAKE_WAIT, c.next_event())
        .await
        .expect("an event within the wait")
        .expect("the connection is open")
}

/// The next event that is not the code of a new channel.
async fn content_event(c: &Client) -> Event {
    loop {
        match event(c).await {
            Event::Secured { .. } => {}
            ev => return ev,
        }
    }
}

/// Whether `needle` appears anywhere in what went over the wire.
fn on_the_wire(frames: &[Frame], needle: &str) -> bool {
    frames.iter().any(|f| {
        f.encode()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    })
}

#[tokio::test]
async fn content_goes_sealed_both_ways() {
    let (client, mut agent) = attached(SESSION).await;
    let sas = client.sas(SESSION).expect("ready after attach");
    assert_eq!(sas.len(), 7, "{sas}");

    let (sent, read) = tokio::join!(client.chat(SESSION, "my password is hunter2"), agent.msg());
    sent.unwrap();
    assert_eq!(read, chat(Party::Operator, "my password is hunter2"));
    assert!(!on_the_wire(&agent.wire, "hunter2"), "sealed on the wire");

    agent.say(chat(Party::Customer, "it is hunter3")).await;
    assert_eq!(
        event(&client).await,
        Event::Session {
            session_id: SESSION.into(),
            msg: chat(Party::Customer, "it is hunter3")
        }
    );

    // Stream frames both ways, sealed.
    let frame = StreamData::Frame {
        stream: 3,
        body: b"pixels".to_vec(),
    };
    agent.data(&frame.encode()).await;
    assert_eq!(
        content_event(&client).await,
        Event::Stream {
            session_id: SESSION.into(),
            stream: 3,
            body: b"pixels".to_vec()
        }
    );
    let (sent, read) = tokio::join!(client.stream_credit(SESSION, 3, 4096), agent.recv());
    sent.unwrap();
    let Frame::SessionData { payload, .. } = read else {
        panic!("{read:?}")
    };
    assert_eq!(
        StreamData::decode(payload).unwrap(),
        StreamData::Credit {
            stream: 3,
            bytes: 4096
        }
    );
    let Some(Frame::SessionData { payload, .. }) = agent.wire.last() else {
        panic!("a data frame")
    };
    assert_eq!(payload[0], lifeline_protocol::stream::TAG_SEALED);
    let credit = StreamData::Credit {
        stream: 3,
        bytes: 4096,
    };
    assert_eq!(
        payload.len(),
        credit.encode().len() + super::SEAL_OVERHEAD_BYTES
    );

    // The largest data frame fits the broker's relay once sealed.
    let most = vec![0u8; super::MAX_DATA_BYTES];
    let (sent, read) = tokio::join!(client.send_data(SESSION, most), agent.recv());
    sent.unwrap();
    assert!(
        matches!(read, Frame::SessionData { payload, .. } if payload.len() == super::MAX_DATA_BYTES)
    );
    let e = client
        .send_data(SESSION, vec![0u8; super::MAX_DATA_BYTES + 1])
        .await
        .unwrap_err();
    assert!(matches!(e, OperatorError::TooLarge { .. }), "{e}");
}

#[tokio::test]
async fn content_in_the_clear_is_refused_and_the_brokers_own_passes() {
    let (client, agent) = attached(SESSION).await;
    agent
        .say_clear(chat(Party::Customer, "injected by the relay"))
        .await;
    match content_event(&client).await {
        Event::Error(why) => {
            assert!(why.contains("chat") && why.contains("unencrypted"), "{why}");
            assert!(!why.contains("injected"), "the content is not shown: {why}");
        }
        other => panic!("{other:?}"),
    }
    let clear = StreamData::Frame {
        stream: 1,
        body: vec![1],
    };
    let f = Frame::SessionData {
        session: SESSION.into(),
        payload: clear.encode(),
    };
    agent.tx.send(f).await.unwrap();
    assert!(
        matches!(content_event(&client).await, Event::Error(why) if why.contains("unencrypted"))
    );
    agent.say_clear(state(SessionState::Suspended)).await;
    assert_eq!(
        content_event(&client).await,
        Event::Session {
            session_id: SESSION.into(),
            msg: state(SessionState::Suspended)
        }
    );
    assert!(
        client.sas(SESSION).is_some(),
        "the same agent: the channel stays"
    );
}

#[tokio::test]
async fn another_endpoints_traffic_is_ignored() {
    let (client, mut agent) = attached(SESSION).await;
    // Another operator connection of the session sets up its channel:
    // the broker relays the agent's answer and sealed messages to all.
    let (mut other, hello) = OperatorEnd::start(SESSION, 4242, [9; 32]).unwrap();
    let SessionMessage::E2eHello {
        endpoint, noise, ..
    } = hello
    else {
        panic!()
    };
    let hello = SessionMessage::E2eHello {
        endpoint,
        operator: "Bob".into(),
        noise,
    };
    let lifeline_protocol::e2e::AgentIncoming::Reply(reply) = agent.ends.incoming(hello, [3; 32])
    else {
        panic!("no answer")
    };
    agent.say_clear(reply.clone()).await;
    let lifeline_protocol::e2e::OperatorIncoming::Ready { confirm, .. } = other.incoming(reply)
    else {
        panic!("not ready")
    };
    agent.ends.incoming(confirm, [0; 32]);
    assert_eq!(agent.ends.ready().len(), 2);

    agent.say(chat(Party::Customer, "to both")).await;
    agent
        .data(
            &StreamData::Frame {
                stream: 2,
                body: vec![7],
            }
            .encode(),
        )
        .await;
    agent.say_clear(state(SessionState::Connected)).await;
    let mut seen = Vec::new();
    loop {
        match content_event(&client).await {
            Event::Session {
                msg: SessionMessage::State { .. },
                ..
            } => break,
            ev => seen.push(ev),
        }
    }
    assert_eq!(
        seen.len(),
        2,
        "one copy each, the other endpoint's dropped: {seen:?}"
    );
    assert!(
        matches!(&seen[0], Event::Session { msg, .. } if *msg == chat(Party::Customer, "to both"))
    );
    assert!(matches!(&seen[1], Event::Stream { stream: 2, .. }));
}

#[tokio::test]
async fn a_new_channel_starts_when_the_agent_is_back() {
    let (client, mut agent) = attached(SESSION).await;
    let first = client.sas(SESSION).unwrap();
    agent.say_clear(state(SessionState::Rebooting)).await;
    assert!(matches!(
        content_event(&client).await,
        Event::Session {
            msg: SessionMessage::State {
                state: SessionState::Rebooting,
                ..
            },
            ..
        }
    ));
    assert_eq!(
        client.sas(SESSION),
        None,
        "no channel while the agent is away"
    );

    // Sent while the agent is away: waits for the new channel.
    let agent_side = async {
        // The agent restarted: it knows no channel.
        agent.ends = lifeline_protocol::e2e::AgentEnds::new(SESSION);
        agent.say_clear(state(SessionState::Connected)).await;
        agent.handshake().await;
        agent.msg().await
    };
    let (sent, read) = tokio::join!(client.chat(SESSION, "still there?"), agent_side);
    sent.unwrap();
    assert_eq!(read, chat(Party::Operator, "still there?"));
    let second = client.sas(SESSION).unwrap();
    assert_eq!(Some(&second), agent.sas.as_ref());
    let mut secured = Vec::new();
    loop {
        match event(&client).await {
            Event::Secured { sas, .. } => {
                secured.push(sas);
                break;
            }
            Event::Session {
                msg: SessionMessage::State { .. },
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(secured, [second]);
    drop(first);
}

#[tokio::test]
async fn attaching_while_the_agent_is_away_returns_at_once() {
    let (client, mut agent) = pair(SESSION);
    agent.state = SessionState::Reconnecting;
    let answer = async {
        let Frame::Control(Message::Request { id, body }) = agent.raw().await else {
            panic!("the attach request")
        };
        let lifeline_protocol::Request::Attach {
            session_id,
            e2e_hello,
        } = body
        else {
            panic!("{body:?}")
        };
        assert!(e2e_hello.is_some(), "the attach carries the hello");
        agent.answer_attach(id, session_id, e2e_hello).await;
    };
    let (summary, ()) = tokio::join!(client.attach(SESSION), answer);
    assert_eq!(summary.unwrap().state, SessionState::Reconnecting);
    assert_eq!(client.sas(SESSION), None);
    // The agent resumes the session: the channel starts by itself.
    let agent_side = async {
        agent.say_clear(state(SessionState::Connected)).await;
        agent.handshake().await;
        agent.msg().await
    };
    let (sent, read) = tokio::join!(client.chat(SESSION, "hello"), agent_side);
    sent.unwrap();
    assert_eq!(read, chat(Party::Operator, "hello"));
    assert_eq!(client.sas(SESSION), agent.sas);
    // Attach did not wait for this channel: its code comes as an event.
    loop {
        match event(&client).await {
            Event::Secured { sas, .. } => break assert_eq!(Some(sas), agent.sas),
            Event::Session {
                msg: SessionMessage::State { .. },
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_closed_channel_starts_anew_until_too_many_failed() {
    let (client, mut agent) = attached(SESSION).await;
    let closed = |endpoint| SessionMessage::E2eClosed {
        endpoint,
        reason: "a message failed to open".into(),
    };
    let (endpoint, _, _) = agent.ends.ready()[0].clone();
    agent.ends.clear();
    agent.say_clear(closed(endpoint)).await;
    agent.handshake().await;
    assert!(
        matches!(content_event(&client).await, Event::Error(why) if why.contains("closed the end-to-end channel"))
    );
    loop {
        if let Event::Secured { sas, .. } = event(&client).await {
            assert_eq!(Some(sas), agent.sas);
            break;
        }
    }
    // Now every new channel is closed at once.
    let (endpoint, _, _) = agent.ends.ready()[0].clone();
    agent.ends.clear();
    agent.say_clear(closed(endpoint)).await;
    for _ in 1..super::MAX_FAILED_HANDSHAKES {
        let Frame::Control(Message::Session {
            msg: SessionMessage::E2eHello { endpoint, .. },
            ..
        }) = agent.raw().await
        else {
            panic!("a new hello")
        };
        agent.say_clear(closed(endpoint)).await;
    }
    for _ in 0..super::MAX_FAILED_HANDSHAKES {
        assert!(matches!(content_event(&client).await, Event::Error(_)));
    }
    match client.chat(SESSION, "x").await {
        Err(OperatorError::ChannelFailed { why, .. }) => {
            assert!(why.contains("failed in a row"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.sas(SESSION), None);
}

#[tokio::test]
async fn the_password_goes_sealed_and_content_needs_an_attached_session() {
    let (client, mut agent) = attached(SESSION).await;
    let agent_side = async {
        let SessionMessage::RunPlugin { call_id, .. } = agent.msg().await else {
            panic!("the call")
        };
        agent
            .say(SessionMessage::CredentialRequest {
                call_id,
                request_id: 5,
                user: "admin".into(),
                prompt: "Password".into(),
            })
            .await;
        let SessionMessage::CredentialReply { request_id, secret } = agent.msg().await else {
            panic!("the reply")
        };
        assert_eq!(request_id, 5);
        assert_eq!(secret.as_ref().map(Secret::expose), Some("s3cret-pw"));
        agent
            .say(SessionMessage::PluginDone {
                call_id,
                plugin: "run-as".into(),
                ok: true,
                text: "logged in".into(),
            })
            .await;
    };
    let args = ["admin".to_string()];
    let run = client.run_plugin_with(
        SESSION,
        "run-as",
        "login",
        &args,
        FAKE_WAIT,
        |_, _| {},
        |user, _| {
            assert_eq!(user, "admin");
            Some(Secret::new("s3cret-pw"))
        },
    );
    let (result, ()) = tokio::join!(run, agent_side);
    assert_eq!(result.unwrap(), Ok("logged in".to_string()));
    assert!(!on_the_wire(&agent.wire, "s3cret-pw"));

    let e = client.chat("s-other", "hi").await.unwrap_err();
    assert!(matches!(e, OperatorError::NotAttached(_)), "{e}");
}

#[tokio::test]
async fn dropping_the_client_closes_its_connection() {
    let (client, mut agent) = attached(SESSION).await;
    drop(client);
    agent.closed().await;
}
