//! The engine against every line of the contract's WebSocket section, in
//! process: sessions driven by JSON text frames, answers read off Outbound.

mod support;

use std::sync::Arc;

use chat_core::engine::{CloseReason, Engine, Limits};
use chat_core::memory::{MemoryBusHub, MemoryPresence, MemoryStore, RecordingNotifier};
use chat_core::{MessageId, Retention};
use serde_json::{Value, json};
use support::{Client, engine, engine_with, group, identity, signup};

/// An engine whose sessions queue at most 4 frames, without a rate limit.
async fn tiny_queue_engine() -> Engine {
    engine_with(|b| {
        b.limits(Limits {
            outbound_queue_bytes: 600,
            user_budget: None,
            addr_budget: None,
            ..Limits::default()
        })
    })
    .await
}

/// Two engines of one deployment: a shared store and presence, one bus hub.
async fn two_nodes() -> (Engine, Engine, MemoryBusHub) {
    let store = Arc::new(MemoryStore::new());
    let presence = Arc::new(MemoryPresence::new());
    let hub = MemoryBusHub::new();
    let node = |n: u16| {
        Engine::builder()
            .worker_id(n)
            .insecure_fast_password_hashing()
            .store(store.clone())
            .presence(presence.clone())
            .bus(Arc::new(hub.node(format!("node-{n}"))))
            .build()
    };
    (node(1).await.unwrap(), node(2).await.unwrap(), hub)
}

#[tokio::test]
async fn direct_message_reaches_the_other_side_with_one_conversation_id() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut b = Client::connect(&engine, &bob).await;

    a.send(json!({"type":"send","id":"s1","to":bob.as_str(),"body":"hello bob"}))
        .await;
    let sent = a.expect("sent").await;
    assert_eq!(sent["reply_to"], "s1");
    let conv = sent["conversation_id"].as_str().unwrap().to_owned();
    assert!(sent["message_id"].is_string(), "ids travel as strings");
    assert!(sent["ts"].is_i64());

    let msg = b.expect("message").await;
    assert_eq!(msg["message"]["body"], "hello bob");
    assert_eq!(msg["message"]["sender_id"], alice.as_str());
    assert_eq!(msg["message"]["conversation_id"], conv.as_str());
    assert_eq!(msg["message"]["message_id"], sent["message_id"]);

    // Bob answers on the same conversation id, by id this time.
    b.send(json!({"type":"send","id":"s2","conversation_id":conv,"body":"hi alice"}))
        .await;
    assert_eq!(b.expect("sent").await["conversation_id"], conv.as_str());
    assert_eq!(a.expect("message").await["message"]["body"], "hi alice");
}

#[tokio::test]
async fn offline_messages_arrive_on_connect_oldest_first_until_acked() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        a.send(json!({"type":"send","id":i.to_string(),"to":bob.as_str(),"body":format!("m{i}")}))
            .await;
        ids.push(
            a.expect("sent").await["message_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let conv = chat_core::ConversationId::direct(&alice, &bob);

    let mut b = Client::connect_raw(&engine, &bob).await;
    for (i, id) in ids.iter().enumerate() {
        let m = b.expect("message").await;
        assert_eq!(m["message"]["message_id"], id.as_str());
        assert_eq!(m["message"]["body"], format!("m{i}"));
    }
    assert!(b.expect("synced").await.get("reply_to").is_none());

    // Ack the first two: alice gets a delivered receipt for the newest of them.
    b.send(json!({"type":"ack","conversation_id":conv.as_str(),"message_id":ids[1]}))
        .await;
    let r = a.expect("receipt").await;
    assert_eq!(r["status"], "delivered");
    assert_eq!(r["message_id"], ids[1].as_str());
    assert_eq!(r["user_id"], bob.as_str());
    drop(b);

    // Reconnect: only the unacked third comes again.
    let mut b = Client::connect_raw(&engine, &bob).await;
    assert_eq!(
        b.expect("message").await["message"]["message_id"],
        ids[2].as_str()
    );
    b.expect("synced").await;
    // An explicit sync answers with reply_to and sends it again (at least once).
    b.send(json!({"type":"sync","id":"y"})).await;
    assert_eq!(
        b.expect("message").await["message"]["message_id"],
        ids[2].as_str()
    );
    assert_eq!(b.expect("synced").await["reply_to"], "y");
}

#[tokio::test]
async fn repeated_client_msg_id_stores_once_and_answers_the_first_id() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let frame =
        json!({"type":"send","id":"x","to":bob.as_str(),"body":"once","client_msg_id":"c-1"});
    a.send(frame.clone()).await;
    let first = a.expect("sent").await["message_id"].clone();
    a.send(frame).await;
    assert_eq!(a.expect("sent").await["message_id"], first);
    let conv = chat_core::ConversationId::direct(&alice, &bob);
    let history = engine.history(&alice, &conv, None, None).await.unwrap();
    assert_eq!(history.len(), 1);
}

#[tokio::test]
async fn groups_deliver_to_members_only_and_refuse_outsiders() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let carol = signup(&engine, "carol").await;
    let group = group(&engine, &alice, "friends", std::slice::from_ref(&bob)).await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut b = Client::connect(&engine, &bob).await;
    let mut c = Client::connect(&engine, &carol).await;

    // Carol is not a member: she can neither send, read history, nor list members.
    c.send(json!({"type":"send","id":"n","conversation_id":group.as_str(),"body":"let me in"}))
        .await;
    let e = c.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["reply_to"].as_str()),
        (Some("not_member"), Some("n"))
    );
    c.send(json!({"type":"history","id":"h","conversation_id":group.as_str()}))
        .await;
    assert_eq!(c.expect("error").await["code"], "not_member");
    assert!(matches!(
        engine.members(&carol, &group).await,
        Err(chat_core::Error::NotMember { .. })
    ));

    a.send(json!({"type":"send","id":"1","conversation_id":group.as_str(),"body":"before carol"}))
        .await;
    a.expect("sent").await;
    assert_eq!(b.expect("message").await["message"]["body"], "before carol");

    // Carol cannot add herself to an invite-only group; the owner adds her:
    // earlier messages are not pushed, later ones are, and every member
    // (carol too) learns of the change.
    assert!(matches!(
        engine.add_member(&carol, &group, &carol).await,
        Err(chat_core::Error::Forbidden { .. })
    ));
    engine.add_member(&alice, &group, &carol).await.unwrap();
    for client in [&mut a, &mut b, &mut c] {
        let e = client.expect("group_event").await;
        assert_eq!(
            (e["event"].as_str(), e["user_id"].as_str()),
            (Some("added"), Some(carol.as_str()))
        );
        assert_eq!(e["by"], alice.as_str());
    }
    a.send(json!({"type":"send","id":"2","conversation_id":group.as_str(),"body":"after carol"}))
        .await;
    a.expect("sent").await;
    assert_eq!(c.expect("message").await["message"]["body"], "after carol");

    // Bob leaves: he gets the event, then nothing of the group, also at sync.
    engine.remove_member(&bob, &group, &bob).await.unwrap();
    assert_eq!(b.expect("message").await["message"]["body"], "after carol");
    assert_eq!(b.expect("group_event").await["event"], "left");
    a.expect("group_event").await;
    c.expect("group_event").await;
    a.send(json!({"type":"send","id":"3","conversation_id":group.as_str(),"body":"bob gone"}))
        .await;
    a.expect("sent").await;
    assert_eq!(c.expect("message").await["message"]["body"], "bob gone");
    b.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(
        b.next().await["type"],
        "pong",
        "bob got nothing after leaving"
    );
    // A sync sends again what he had not acked of his membership, up to
    // his `left` event, and nothing after it.
    b.send(json!({"type":"sync","id":"s"})).await;
    let mut resent = Vec::new();
    loop {
        let f = b.next().await;
        if f["type"] == "synced" {
            break;
        }
        resent.push(f);
    }
    let last = resent.last().expect("his unacked entries");
    assert_eq!(last["event"], "left", "{resent:?}");
    assert!(
        !resent.iter().any(|f| f["message"]["body"] == "bob gone"),
        "{resent:?}"
    );
    b.send(json!({"type":"ack","conversation_id":group.as_str(),"message_id":last["message_id"]}))
        .await;
    b.send(json!({"type":"sync","id":"s2"})).await;
    assert_eq!(b.next().await["type"], "synced", "acked: nothing left");
    let members = engine.members(&alice, &group).await.unwrap();
    assert_eq!(members.len(), 2);
}

#[tokio::test]
async fn until_delivered_deletes_once_every_recipient_acked() {
    let engine = engine_with(|b| b.retention(Retention::UntilDelivered)).await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let carol = signup(&engine, "carol").await;
    let group = group(&engine, &alice, "g", &[bob.clone(), carol.clone()]).await;
    let mut a = Client::connect(&engine, &alice).await;
    a.send(json!({"type":"send","id":"1","conversation_id":group.as_str(),"body":"x"}))
        .await;
    let id = a.expect("sent").await["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ack = json!({"type":"ack","conversation_id":group.as_str(),"message_id":id});

    let mut b = Client::connect_raw(&engine, &bob).await;
    b.expect("message").await;
    b.expect("synced").await;
    b.send(ack.clone()).await;
    a.expect("receipt").await;
    assert_eq!(
        engine
            .history(&alice, &group, None, None)
            .await
            .unwrap()
            .len(),
        1,
        "carol has not acked"
    );

    let mut c = Client::connect_raw(&engine, &carol).await;
    c.expect("message").await;
    c.expect("synced").await;
    c.send(ack).await;
    a.expect("receipt").await;
    assert!(
        engine
            .history(&alice, &group, None, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn forever_keeps_history_after_acks() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut b = Client::connect(&engine, &bob).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"keep me"}))
        .await;
    let sent = a.expect("sent").await;
    b.expect("message").await;
    b.send(json!({"type":"ack","conversation_id":sent["conversation_id"],"message_id":sent["message_id"]}))
        .await;
    a.expect("receipt").await;
    b.send(json!({"type":"history","id":"h","conversation_id":sent["conversation_id"],"limit":10}))
        .await;
    let h = b.expect("history").await;
    assert_eq!(h["reply_to"], "h");
    assert_eq!(h["messages"][0]["body"], "keep me");
}

#[tokio::test]
async fn history_pages_newest_first() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        a.send(json!({"type":"send","id":"s","to":bob.as_str(),"body":i.to_string()}))
            .await;
        ids.push(
            a.expect("sent").await["message_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let conv = chat_core::ConversationId::direct(&alice, &bob);
    a.send(json!({"type":"history","id":"h","conversation_id":conv.as_str(),"limit":2}))
        .await;
    let page: Vec<Value> = a.expect("history").await["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["message_id"], ids[4].as_str());
    assert_eq!(page[1]["message_id"], ids[3].as_str());
    a.send(json!({"type":"history","id":"h","conversation_id":conv.as_str(),"before":ids[3],"limit":10}))
        .await;
    let page = a.expect("history").await["messages"]
        .as_array()
        .unwrap()
        .clone();
    let got: Vec<&str> = page
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);
}

#[tokio::test]
async fn read_receipts_typing_and_ping() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut b = Client::connect(&engine, &bob).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"read me"}))
        .await;
    let sent = a.expect("sent").await;
    b.expect("message").await;

    b.send(json!({"type":"typing","conversation_id":sent["conversation_id"]}))
        .await;
    let t = a.expect("typing").await;
    assert_eq!(t["user_id"], bob.as_str());
    assert_eq!(t["conversation_id"], sent["conversation_id"]);

    b.send(json!({"type":"read","conversation_id":sent["conversation_id"],"message_id":sent["message_id"]}))
        .await;
    let r = a.expect("receipt").await;
    assert_eq!(r["status"], "read");
    assert_eq!(r["message_id"], sent["message_id"]);

    a.send(json!({"type":"ping","id":"p1"})).await;
    assert_eq!(a.expect("pong").await["reply_to"], "p1");
    // Unread is counted from the read cursor.
    let list = engine.conversations(&bob).await.unwrap();
    assert_eq!(list[0].unread, 0);
    let list = engine.conversations(&alice).await.unwrap();
    assert_eq!(
        list[0].last_message_id,
        Some(sent["message_id"].as_str().unwrap().parse().unwrap())
    );
}

#[tokio::test]
async fn presence_now_and_at_every_change() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let stranger = signup(&engine, "stranger").await;
    // Presence is for users who share a conversation (and have not blocked).
    engine.direct_conversation(&alice, &bob).await.unwrap();
    let mut a = Client::connect(&engine, &alice).await;
    a.send(json!({"type":"presence_subscribe","id":"x","user_ids":[stranger.as_str()]}))
        .await;
    let refused = a.expect("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["reply_to"].as_str()),
        (Some("forbidden"), Some("x"))
    );
    a.send(json!({"type":"presence_subscribe","id":"ps","user_ids":[bob.as_str()]}))
        .await;
    let p = a.expect("presence").await;
    assert_eq!(
        (p["user_id"].as_str(), p["status"].as_str()),
        (Some(bob.as_str()), Some("offline"))
    );

    let b1 = Client::connect(&engine, &bob).await;
    assert_eq!(a.expect("presence").await["status"], "online");
    let b2 = Client::connect(&engine, &bob).await;
    b1.close().await;
    // Still online: a second connection is open. Then offline with last_seen.
    b2.close().await;
    let p = a.expect("presence").await;
    assert_eq!(p["status"], "offline");
    assert!(p["last_seen"].is_i64());
}

#[tokio::test]
async fn bad_frames_are_answered_and_the_session_stays() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let mut a = Client::connect(&engine, &alice).await;
    for bad in [
        "not json",
        "[1,2]",
        r#"{"no_type":1}"#,
        r#"{"type":"fly","id":"u"}"#,
        r#"{"type":"send","id":"m","body":"no target"}"#,
        r#"{"type":"ack","conversation_id":"c","message_id":"abc"}"#,
    ] {
        a.session.handle_text(bad).await;
        let e = a.expect("error").await;
        assert_eq!(e["code"], "bad_frame", "for {bad}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    a.send(json!({"type":"ping","id":"still here"})).await;
    assert_eq!(a.expect("pong").await["reply_to"], "still here");
}

#[tokio::test]
async fn oversized_and_empty_bodies_are_refused_and_nothing_is_stored() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let big = "x".repeat(engine.limits().max_body_bytes + 1);
    a.send(json!({"type":"send","id":"big","to":bob.as_str(),"body":big}))
        .await;
    let e = a.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["reply_to"].as_str()),
        (Some("too_large"), Some("big"))
    );
    a.send(json!({"type":"send","id":"e","to":bob.as_str(),"body":""}))
        .await;
    assert_eq!(a.expect("error").await["code"], "invalid_input");
    a.send(json!({"type":"send","id":"u","to":"nobody","body":"hi"}))
        .await;
    assert_eq!(a.expect("error").await["code"], "not_found");
    let conv = chat_core::ConversationId::direct(&alice, &bob);
    assert!(
        engine
            .history(&alice, &conv, None, None)
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn sends_past_the_rate_are_limited() {
    let engine = engine_with(|b| {
        b.limits(Limits {
            user_budget: chat_core::engine::BudgetRate::new(1.0, 2.0),
            ..Limits::default()
        })
    })
    .await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut codes = Vec::new();
    for i in 0..3 {
        a.send(json!({"type":"send","id":i.to_string(),"to":bob.as_str(),"body":"spam"}))
            .await;
        let f = a.next().await;
        codes.push(
            f["code"]
                .as_str()
                .unwrap_or(f["type"].as_str().unwrap())
                .to_owned(),
        );
    }
    assert_eq!(codes, ["sent", "sent", "rate_limited"]);
}

#[tokio::test]
async fn a_slow_reader_is_closed_without_slowing_the_sender_and_loses_nothing() {
    let engine = tiny_queue_engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let b = Client::connect(&engine, &bob).await; // never reads
    for i in 0..20 {
        a.send(json!({"type":"send","id":i.to_string(),"to":bob.as_str(),"body":i.to_string()}))
            .await;
        a.expect("sent").await;
    }
    let mut out = b.out;
    while out.recv().await.is_some() {}
    assert_eq!(out.close_reason(), Some(CloseReason::SlowConsumer));
    b.session.close().await;
    // Reconnecting gives all 20 by sync, in order. The sync waits for room in
    // the 4-frame queue, so read while it runs, as a transport's writer does.
    let (mut session, mut out) = engine.connect(&identity(&bob)).await.unwrap();
    let read = async {
        let mut frames = Vec::new();
        for _ in 0..21 {
            let f = out.recv().await.expect("open");
            frames.push(serde_json::from_slice::<Value>(&f).unwrap());
        }
        frames
    };
    let (synced, frames) = tokio::join!(session.start(), read);
    synced.unwrap();
    for (i, f) in frames[..20].iter().enumerate() {
        assert_eq!(f["message"]["body"], i.to_string());
    }
    assert_eq!(frames[20]["type"], "synced");
}

#[tokio::test]
async fn offline_recipients_are_handed_to_the_notifier() {
    let notifier = Arc::new(RecordingNotifier::new());
    let n = notifier.clone();
    let engine = engine_with(move |b| b.notifier(n)).await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"wake up"}))
        .await;
    let sent = a.expect("sent").await;
    let got = pushed(&notifier, 1).await;
    assert_eq!(got[0].user_id, bob);
    assert_eq!(got[0].sender_id, alice);
    assert_eq!(got[0].preview, "wake up");
    assert_eq!(
        got[0].message_id.to_string(),
        sent["message_id"].as_str().unwrap()
    );
    // Online recipients are not pushed.
    let mut b = Client::connect_raw(&engine, &bob).await;
    b.expect("message").await;
    b.expect("synced").await;
    a.send(json!({"type":"send","id":"2","to":bob.as_str(),"body":"online now"}))
        .await;
    a.expect("sent").await;
    assert_eq!(notifier.len(), 1);
}

/// The first `n` notifications, or a failure after a bound (never a hang).
async fn pushed(notifier: &RecordingNotifier, n: usize) -> Vec<chat_core::push::PushNotification> {
    tokio::time::timeout(std::time::Duration::from_secs(15), notifier.wait_for(n))
        .await
        .unwrap_or_else(|_| panic!("{n} push notifications within 15 s"))
}

/// A user online on another node is not pushed: the sender's node asks the
/// shared presence, not its own sessions. A user online nowhere is.
#[tokio::test]
async fn no_push_to_a_user_online_on_another_node() {
    let store = Arc::new(MemoryStore::new());
    let presence = Arc::new(MemoryPresence::new());
    let hub = MemoryBusHub::new();
    let notifier = Arc::new(RecordingNotifier::new());
    let node = |n: u16, with_notifier: bool| {
        let b = Engine::builder()
            .worker_id(n)
            .insecure_fast_password_hashing()
            .store(store.clone())
            .presence(presence.clone())
            .bus(Arc::new(hub.node(format!("node-{n}"))));
        if with_notifier {
            b.notifier(notifier.clone()).build()
        } else {
            b.build()
        }
    };
    let (one, two) = (node(1, true).await.unwrap(), node(2, false).await.unwrap());
    let alice = signup(&one, "alice").await;
    let bob = signup(&one, "bob").await;
    let carol = signup(&one, "carol").await;
    let g = group(&one, &alice, "push", &[bob.clone(), carol.clone()]).await;
    let mut a = Client::connect(&one, &alice).await;
    let mut b = Client::connect(&two, &bob).await;
    a.send(json!({"type":"send","id":"1","conversation_id":g.as_str(),"body":"who is here"}))
        .await;
    a.expect("sent").await;
    // Bob got it live on node two: he was online there when it was sent.
    assert_eq!(b.expect("message").await["message"]["body"], "who is here");
    let first = pushed(&notifier, 1).await;
    let users: Vec<_> = first.iter().map(|p| p.user_id.clone()).collect();
    assert_eq!(users, [carol], "only the user online nowhere is pushed");
    // A later send: still only carol (the count proves no late push of bob).
    a.send(json!({"type":"send","id":"2","conversation_id":g.as_str(),"body":"again"}))
        .await;
    a.expect("sent").await;
    b.expect("message").await;
    let both = pushed(&notifier, 2).await;
    assert!(both.iter().all(|p| p.user_id != bob), "{both:?}");
}

#[tokio::test]
async fn accounts_signup_login_profile() {
    let engine = engine().await;
    let alice = engine.signup("Alice", "pw-alice", None).await.unwrap();
    // One name whatever its case or compatibility form.
    for taken in ["alice", "ALICE", "ａｌｉｃｅ"] {
        assert!(
            matches!(
                engine.signup(taken, "another password", None).await,
                Err(chat_core::Error::AlreadyExists { .. })
            ),
            "{taken}"
        );
    }
    for (name, password) in [
        ("", "long enough"),
        ("bob", "short"),
        ("b\u{200B}ob", "long enough"),
    ] {
        assert!(
            matches!(
                engine.signup(name, password, None).await,
                Err(chat_core::Error::InvalidInput { .. })
            ),
            "{name:?} {password:?}"
        );
    }
    let login = engine.login("ALICE", "pw-alice", None).await.unwrap();
    assert_eq!(login.user_id, alice.user_id);
    let login = engine.login("alice", "pw-alice", None).await.unwrap();
    assert_eq!(login.user_id, alice.user_id);
    assert!(login.chat_url.starts_with("ws://"));
    assert_eq!(
        engine.authenticate(&login.token).await.unwrap(),
        login.identity()
    );
    assert_ne!(login.device_id, alice.device_id, "each login is a device");
    assert!(matches!(
        engine.login("alice", "wrong", None).await,
        Err(chat_core::Error::Unauthorized { .. })
    ));
    assert!(matches!(
        engine.login("nobody", "x", None).await,
        Err(chat_core::Error::Unauthorized { .. })
    ));
    assert!(engine.authenticate("forged").await.is_err());
    // The key is the username; the name as typed is the first display name.
    let p = engine.profile(&alice.user_id).await.unwrap();
    assert_eq!(
        (p.username.as_str(), p.display_name.as_str()),
        ("alice", "Alice")
    );
    let p = engine
        .set_display_name(&alice.user_id, "Alice A.")
        .await
        .unwrap();
    assert_eq!(p.display_name, "Alice A.");
    for bad in ["a\0b", "two\nlines", "x\u{202E}y"] {
        assert!(
            engine.set_display_name(&alice.user_id, bad).await.is_err(),
            "{bad:?}"
        );
    }
    assert_eq!(
        engine.profile_by_username("ALICE").await.unwrap().user_id,
        alice.user_id
    );
}

#[tokio::test]
async fn two_nodes_share_messages_presence_and_typing_through_the_bus() {
    let (one, two, _hub) = two_nodes().await;
    let alice = signup(&one, "alice").await;
    let bob = signup(&two, "bob").await;
    one.direct_conversation(&alice, &bob).await.unwrap();
    let mut a = Client::connect(&one, &alice).await;
    a.send(json!({"type":"presence_subscribe","id":"p","user_ids":[bob.as_str()]}))
        .await;
    assert_eq!(a.expect("presence").await["status"], "offline");
    let mut b = Client::connect(&two, &bob).await;
    assert_eq!(a.expect("presence").await["status"], "online");

    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"across"}))
        .await;
    let sent = a.expect("sent").await;
    assert_eq!(b.expect("message").await["message"]["body"], "across");
    b.send(json!({"type":"typing","conversation_id":sent["conversation_id"]}))
        .await;
    assert_eq!(a.expect("typing").await["user_id"], bob.as_str());
    b.send(json!({"type":"ack","conversation_id":sent["conversation_id"],"message_id":sent["message_id"]}))
        .await;
    assert_eq!(a.expect("receipt").await["status"], "delivered");
    let id: MessageId = sent["message_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.worker(), 1);
}

#[tokio::test]
async fn a_live_message_during_a_sync_comes_after_the_older_ones() {
    let engine = tiny_queue_engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    for i in 0..10 {
        a.send(json!({"type":"send","id":"s","to":bob.as_str(),"body":format!("old {i}")}))
            .await;
        a.expect("sent").await;
    }
    let (mut session, mut out) = engine.connect(&identity(&bob)).await.unwrap();
    let read = async {
        let mut frames = Vec::new();
        let mut next =
            async || serde_json::from_slice::<Value>(&out.recv().await.unwrap()).unwrap();
        // The sync is now stuck on the full 4-frame queue: a live message comes in.
        frames.push(next().await);
        a.send(json!({"type":"send","id":"s","to":bob.as_str(),"body":"live"}))
            .await;
        a.expect("sent").await;
        loop {
            let f = next().await;
            let done = f["type"] == "synced";
            frames.push(f);
            if done {
                return frames;
            }
        }
    };
    let (synced, frames) = tokio::join!(session.start(), read);
    synced.unwrap();
    let bodies: Vec<&str> = frames
        .iter()
        .filter_map(|f| f["message"]["body"].as_str())
        .collect();
    let mut want: Vec<String> = (0..10).map(|i| format!("old {i}")).collect();
    want.push("live".into());
    assert_eq!(
        bodies, want,
        "the live message is held until the older ones are out"
    );
}

#[tokio::test]
async fn after_a_bus_outage_local_sessions_resync_what_they_missed() {
    let (one, two, hub) = two_nodes().await;
    let alice = signup(&one, "alice").await;
    let bob = signup(&two, "bob").await;
    let mut a = Client::connect(&one, &alice).await;
    let mut b = Client::connect(&two, &bob).await;

    // Node two loses the bus: alice's message is stored but does not reach bob live.
    hub.cut(two.node_id());
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"during the outage"}))
        .await;
    a.expect("sent").await;
    b.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(
        b.next().await["type"],
        "pong",
        "nothing arrived while cut off"
    );

    // The bus comes back: node two re-syncs bob's session from the store.
    hub.restore(two.node_id());
    assert_eq!(
        b.expect("message").await["message"]["body"],
        "during the outage"
    );
    assert!(b.expect("synced").await.get("reply_to").is_none());
}

#[tokio::test]
async fn a_store_that_is_down_answers_unavailable_and_the_retry_stores_once() {
    use chat_core::store::{FaultSwitch, FaultyStore, MessageStore};
    let store = Arc::new(MemoryStore::new());
    let switch = FaultSwitch::new();
    let messages: Arc<dyn MessageStore> = Arc::new(FaultyStore::new(store.clone(), switch.clone()));
    let engine = engine_with(|b| b.store(store.clone()).message_store(messages)).await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut b = Client::connect(&engine, &bob).await;

    switch.fail_appends(true);
    let frame =
        json!({"type":"send","id":"1","to":bob.as_str(),"body":"important","client_msg_id":"k-1"});
    a.send(frame.clone()).await;
    let e = a.expect("error").await;
    assert_eq!(
        (e["code"].as_str(), e["reply_to"].as_str()),
        (Some("unavailable"), Some("1"))
    );
    b.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(b.next().await["type"], "pong", "nothing was delivered");
    let conv = chat_core::ConversationId::direct(&alice, &bob);
    assert!(
        store
            .history(&conv, None, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing was stored"
    );

    // The store is back: the client's retry with the same key stores it once.
    switch.clear();
    a.send(frame.clone()).await;
    let sent = a.expect("sent").await;
    assert_eq!(
        b.expect("message").await["message"]["message_id"],
        sent["message_id"]
    );
    a.send(frame).await;
    assert_eq!(a.expect("sent").await["message_id"], sent["message_id"]);
    assert_eq!(store.history(&conv, None, None, 10).await.unwrap().len(), 1);
    assert!(switch.injected() > 0);
}

#[tokio::test]
async fn a_node_that_shuts_down_turns_its_users_offline_at_once() {
    let (one, two, _hub) = two_nodes().await;
    let alice = signup(&one, "alice").await;
    let bob = signup(&two, "bob").await;
    one.direct_conversation(&alice, &bob).await.unwrap();
    let mut a = Client::connect(&one, &alice).await;
    a.send(json!({"type":"presence_subscribe","id":"p","user_ids":[bob.as_str()]}))
        .await;
    assert_eq!(a.expect("presence").await["status"], "offline");
    let mut b = Client::connect(&two, &bob).await;
    assert_eq!(a.expect("presence").await["status"], "online");

    two.shutdown().await;
    assert!(b.out.recv().await.is_none(), "bob's session is closed");
    assert_eq!(b.out.close_reason(), Some(CloseReason::Shutdown));
    let p = a.expect("presence").await;
    assert_eq!(
        (p["status"].as_str(), p["user_id"].as_str()),
        (Some("offline"), Some(bob.as_str()))
    );
    // The transport then drops bob's session: presence is not counted out twice.
    drop(b);
    let mut b2 = Client::connect(&one, &bob).await;
    assert_eq!(a.expect("presence").await["status"], "online");
    b2.send(json!({"type":"ping","id":"x"})).await;
    b2.expect("pong").await;
}

#[tokio::test]
async fn in_a_big_group_read_receipts_go_to_the_senders_only() {
    let engine = engine().await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let carol = signup(&engine, "carol").await;
    let mut others = vec![bob.clone(), carol.clone()];
    for i in 0..40 {
        others.push(signup(&engine, &format!("member{i}")).await);
    }
    let group = group(&engine, &alice, "big", &others).await;
    let mut a = Client::connect(&engine, &alice).await;
    let mut b = Client::connect(&engine, &bob).await;
    let mut c = Client::connect(&engine, &carol).await;
    a.send(json!({"type":"send","id":"1","conversation_id":group.as_str(),"body":"hello all"}))
        .await;
    let sent = a.expect("sent").await;
    b.expect("message").await;
    c.expect("message").await;

    b.send(json!({"type":"read","conversation_id":group.as_str(),"message_id":sent["message_id"]}))
        .await;
    // In a group this big, receipts are coalesced for the sender.
    let r = a.expect("receipts").await;
    assert_eq!(
        (
            r["status"].as_str(),
            r["users"][0].as_str(),
            r["count"].as_u64()
        ),
        (Some("read"), Some(bob.as_str()), Some(1))
    );
    // Carol, a member who sent nothing, is not told.
    c.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(c.next().await["type"], "pong");
}
