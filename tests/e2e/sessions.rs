//! Whole sessions in-process: invitation, join, chat, consent, end, report.

use std::time::Duration;

use lifeline_core::consent::{Policy, Rule};
use lifeline_operator::OperatorError;
use lifeline_protocol::{ConsentDecision, ErrorCode, Party, SessionMessage, SessionState};

use crate::support::*;

#[tokio::test]
async fn invite_join_chat_consent_end_and_report() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let agent_cfg = tb.agent_config("agent", None, Duration::from_secs(20));
    let audit = agent_cfg.data_dir.join(lifeline_agent::AUDIT_FILE);
    let inv = op.invite("T-42", "Mario Rossi", None).await.unwrap();
    assert_eq!(inv.connection_id.len(), 6);
    let mut agent = spawn_agent(agent_cfg, &inv.connection_id);
    // The customer sees who helps, with title and ticket.
    let banner = agent.sees("will help you").await;
    assert!(
        banner.contains("Alice Smith (Support Engineer)") && banner.contains("T-42"),
        "{banner}"
    );
    let ready = op.wait_ready(&inv.session_id, WAIT).await.unwrap();
    assert_eq!(ready.state, SessionState::Waiting);
    op.attach(&inv.session_id).await.unwrap();
    agent
        .sees("Alice Smith (Support Engineer) is connected")
        .await;

    op.chat(&inv.session_id, "Hello Mario").await.unwrap();
    agent.sees("[Alice Smith] Hello Mario").await;
    agent
        .input
        .send("Hi, my printer is broken".into())
        .await
        .unwrap();
    let msg = operator_sees(&op, |m| matches!(m, SessionMessage::Chat { .. })).await;
    assert_eq!(
        msg,
        SessionMessage::Chat {
            from: Party::Customer,
            text: "Hi, my printer is broken".into()
        }
    );

    // The operator's own question on the customer's terminal: answered
    // once; it can never become a standing grant.
    let sid = inv.session_id.clone();
    let ask = {
        let op = &op;
        let sid = sid.clone();
        async move {
            op.ask_consent(
                &sid,
                "sysinfo",
                "system.info",
                "Read system information",
                WAIT,
            )
            .await
        }
    };
    let answer = async {
        let prompt = agent.sees("Consent needed").await;
        assert!(
            prompt.contains("Alice Smith")
                && prompt.contains("system.info")
                && prompt.contains("sysinfo"),
            "{prompt}"
        );
        agent.input.send("/allow-session".into()).await.unwrap();
        agent.sees("can only be answered /allow or /deny").await;
        agent.input.send("/allow".into()).await.unwrap();
    };
    let (res, ()) = tokio::join!(ask, answer);
    assert_eq!(
        res.unwrap(),
        (ConsentDecision::AllowOnce, "customer".into())
    );
    // The same question again is asked again.
    let ask = op.ask_consent(&sid, "sysinfo", "system.info", "Refresh", WAIT);
    let answer = async {
        agent.sees("Refresh").await;
        agent.input.send("/allow".into()).await.unwrap();
    };
    let (res, ()) = tokio::join!(ask, answer);
    assert_eq!(
        res.unwrap(),
        (ConsentDecision::AllowOnce, "customer".into())
    );
    // Another capability: the customer denies.
    let ask = op.ask_consent(&sid, "power", "power.restart", "Reboot now", WAIT);
    let answer = async {
        agent.sees("power.restart").await;
        agent.input.send("/deny".into()).await.unwrap();
    };
    let (res, ()) = tokio::join!(ask, answer);
    assert_eq!(res.unwrap().0, ConsentDecision::Deny);

    op.end(&sid, "fixed").await.unwrap();
    let outcome = tokio::time::timeout(WAIT, agent.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (outcome.ended_by, outcome.reason.as_str()),
        (Party::Operator, "fixed")
    );

    let (summary, events) = op.report(&sid).await.unwrap();
    assert_eq!(summary.state, SessionState::Ended);
    assert!(summary.ended_at.is_some());
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "invitation",
            "join",
            "connect",
            "chat",
            "chat",
            "consent_request",
            "consent",
            "consent_request",
            "consent",
            "consent_request",
            "consent",
            "end"
        ]
    );
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(events[6].text.contains("allow once") && events[6].text.contains("customer"));
    assert!(events[10].text.contains("deny"));
    // Agent audit log: join, 3 decisions, end — chain intact.
    assert_eq!(lifeline_core::audit::verify(&audit).unwrap().0, 5);
    // The text export holds every event.
    let text = lifeline_operator::report::to_text(&summary, &events);
    assert!(
        text.contains("Mario Rossi")
            && text.contains("Hi, my printer is broken")
            && text.contains("fixed")
    );
    let json: serde_json::Value =
        serde_json::from_str(&lifeline_operator::report::to_json(&summary, &events)).unwrap();
    assert_eq!(json["events"].as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn join_by_link_and_by_short_link() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    for (i, pick) in [0, 1].into_iter().enumerate() {
        let inv = op.invite(&format!("T-{i}"), "Mario", None).await.unwrap();
        let cred = if pick == 0 {
            inv.link.clone()
        } else {
            inv.short_link.clone()
        };
        let mut agent = spawn_agent(tb.agent_config(&format!("a{i}"), None, WAIT), &cred);
        agent.sees("will help you").await;
        op.wait_ready(&inv.session_id, WAIT).await.unwrap();
        op.end(&inv.session_id, "").await.unwrap();
        tokio::time::timeout(WAIT, agent.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let kinds = report_kinds(&op, &inv.session_id).await;
        assert_eq!(kinds, ["invitation", "join", "end"]);
    }
}

#[tokio::test]
async fn customer_can_end_the_session() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let (sid, agent) = connected_session(&tb, &op, tb.agent_config("a", None, WAIT)).await;
    agent.input.send("/end".into()).await.unwrap();
    let msg = operator_sees(&op, |m| matches!(m, SessionMessage::End { .. })).await;
    assert!(matches!(
        msg,
        SessionMessage::End {
            by: Party::Customer,
            ..
        }
    ));
    let outcome = tokio::time::timeout(WAIT, agent.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(outcome.ended_by, Party::Customer);
    let (s, events) = op.report(&sid).await.unwrap();
    assert_eq!(s.state, SessionState::Ended);
    assert!(
        events
            .last()
            .unwrap()
            .text
            .contains("ended by the customer")
    );
}

#[tokio::test]
async fn dropped_agent_connection_is_detected_and_reported() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let (sid, agent) = connected_session(&tb, &op, tb.agent_config("a", None, WAIT)).await;
    agent.task.abort(); // the agent process dies: its connection drops
    let msg = operator_sees(&op, |m| matches!(m, SessionMessage::End { .. })).await;
    let SessionMessage::End { by, reason } = msg else {
        unreachable!()
    };
    assert_eq!(by, Party::Broker);
    assert!(reason.contains("connection was lost"), "{reason}");
    let (s, events) = op.report(&sid).await.unwrap();
    assert_eq!(s.state, SessionState::Ended);
    assert!(
        events
            .iter()
            .any(|e| e.kind == "error" && e.text.contains("customer connection lost"))
    );
}

#[tokio::test]
async fn operator_leaving_returns_the_session_to_ready() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let (sid, mut agent) = connected_session(&tb, &op, tb.agent_config("a", None, WAIT)).await;
    drop(op); // operator client goes away without ending
    agent.sees("left; the session stays open").await;
    let op2 = tb.operator("alice").await;
    let s = op2
        .sessions(false)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.session_id == sid)
        .unwrap();
    assert_eq!(s.state, SessionState::Waiting);
    op2.attach(&sid).await.unwrap();
    agent.sees("is connected").await;
    assert!(
        report_kinds(&op2, &sid)
            .await
            .contains(&"disconnect".to_string())
    );
}

#[tokio::test]
async fn consent_timeout_counts_as_deny_and_policy_decides_unattended() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let (sid, mut agent) =
        connected_session(&tb, &op, tb.agent_config("a", None, Duration::from_secs(1))).await;
    let res = op
        .ask_consent(&sid, "sysinfo", "system.info", "Read", WAIT)
        .await
        .unwrap();
    assert_eq!(res, (ConsentDecision::Deny, "timeout".into()));
    agent.sees("No answer in time").await;
    op.end(&sid, "").await.unwrap();

    let policy = Policy {
        default: Rule::Ask,
        rules: [
            ("system.info".to_string(), Rule::Allow),
            ("power.restart".to_string(), Rule::Deny),
        ]
        .into(),
    };
    let (sid, _agent) = connected_session(&tb, &op, tb.agent_config("b", Some(policy), WAIT)).await;
    let res = op
        .ask_consent(&sid, "sysinfo", "system.info", "Read", WAIT)
        .await
        .unwrap();
    assert_eq!(res, (ConsentDecision::AllowOnce, "policy".into()));
    let res = op
        .ask_consent(&sid, "power", "power.restart", "Reboot", WAIT)
        .await
        .unwrap();
    assert_eq!(res, (ConsentDecision::Deny, "policy".into()));
}

#[tokio::test]
async fn session_lists_and_ownership() {
    let tb = TestBroker::start().await;
    let alice = tb.operator("alice").await;
    let bob = tb.operator("bob").await;
    let a = alice.invite("A-1", "Anna", None).await.unwrap();
    let b = bob.invite("B-1", "Bruno", None).await.unwrap();
    let mine: Vec<_> = alice
        .sessions(false)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(mine, std::slice::from_ref(&a.session_id));
    let all: Vec<_> = alice
        .sessions(true)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert!(all.contains(&a.session_id) && all.contains(&b.session_id));
    for res in [
        bob.attach(&a.session_id).await.map(|_| ()),
        bob.report(&a.session_id).await.map(|_| ()),
        bob.end(&a.session_id, "").await,
    ] {
        assert!(
            matches!(
                res,
                Err(OperatorError::Broker {
                    code: ErrorCode::NoSuchSession,
                    ..
                })
            ),
            "{res:?}"
        );
    }
    // Not joined yet: not ready, cannot connect.
    let err = alice.attach(&a.session_id).await.unwrap_err();
    assert!(err.to_string().contains("not joined yet"), "{err}");
}

#[tokio::test]
async fn profile_and_password_change() {
    use lifeline_protocol::{ReplyBody, Request};
    let tb = TestBroker::start().await;
    let c = tb.operator("alice").await;
    let r = c
        .request(Request::UpdateProfile {
            name: Some("Alice S.".into()),
            email: Some("a@example.org".into()),
            title: Some("Lead".into()),
        })
        .await
        .unwrap();
    assert!(matches!(r, ReplyBody::Profile(ref p) if p.name == "Alice S." && p.title == "Lead"));
    let bad = c
        .request(Request::UpdateProfile {
            name: None,
            email: Some("nope".into()),
            title: None,
        })
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("not an e-mail address"), "{bad}");
    let short = c
        .request(Request::ChangePassword {
            old: PASSWORD.into(),
            new: "short".into(),
        })
        .await
        .unwrap_err();
    assert!(short.to_string().contains("at least 10"), "{short}");
    let wrong = c
        .request(Request::ChangePassword {
            old: "wrong password!".into(),
            new: "another good one".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(
        wrong,
        OperatorError::Broker {
            code: ErrorCode::BadCredentials,
            ..
        }
    ));
    c.request(Request::ChangePassword {
        old: PASSWORD.into(),
        new: "another good one".into(),
    })
    .await
    .unwrap();
    let mut fresh = lifeline_operator::Client::connect(&tb.endpoint())
        .await
        .unwrap();
    assert!(fresh.login("alice", PASSWORD).await.is_err());
    fresh.login("alice", "another good one").await.unwrap();
    assert_eq!(fresh.profile.as_ref().unwrap().name, "Alice S.");
}

#[tokio::test]
async fn ending_while_a_consent_prompt_is_open_ends_the_agent() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    // A prompt that would wait far longer than the test's bound.
    let cfg = tb.agent_config("a", None, Duration::from_secs(3600));
    let (sid, mut agent) = connected_session(&tb, &op, cfg).await;
    op.send(
        &sid,
        SessionMessage::ConsentRequest {
            request_id: 9,
            operator: String::new(),
            plugin: "sysinfo".into(),
            action: "system.info".into(),
            detail: "Read".into(),
        },
    )
    .await
    .unwrap();
    agent.sees("Consent needed").await;
    op.end(&sid, "no longer needed").await.unwrap();
    let outcome = tokio::time::timeout(WAIT, agent.task)
        .await
        .expect("agent ends")
        .unwrap()
        .unwrap();
    assert_eq!(outcome.reason, "no longer needed");
}
