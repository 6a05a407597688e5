//! Documented limits and refusals through the engine, each case answered:
//! `invalid_input` for a too-long or empty `client_msg_id` and for too many
//! presence subscriptions; `not_member` for read and typing; history's
//! default page and its cap; read receipts to every member in groups of up
//! to `read_receipts_to_all + 1` members and only to the senders above.

mod support;

use chat_core::UserId;
use chat_core::engine::{Engine, Limits};
use serde_json::{Value, json};
use support::{Client, engine_with, group, signup};

async fn engine(limits: Limits) -> Engine {
    engine_with(move |b| {
        b.limits(Limits {
            user_budget: None,
            addr_budget: None,
            ..limits
        })
    })
    .await
}

async fn error_code(client: &mut Client, frame: Value) -> Value {
    client.send(frame).await;
    let e = client.expect("error").await;
    e["code"].clone()
}

#[tokio::test]
async fn a_long_or_empty_client_msg_id_and_too_many_watches_are_invalid_input() {
    let engine = engine(Limits {
        max_presence_watch: 2,
        ..Limits::default()
    })
    .await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    for key in ["k".repeat(129), String::new()] {
        let code = error_code(
            &mut a,
            json!({"type":"send","id":"s","to":bob.as_str(),"body":"hi","client_msg_id":key}),
        )
        .await;
        assert_eq!(
            code,
            "invalid_input",
            "client_msg_id of {} bytes",
            key.len()
        );
    }
    // 128 bytes is still fine.
    a.send(json!({"type":"send","id":"s","to":bob.as_str(),"body":"hi","client_msg_id":"k".repeat(128)}))
        .await;
    a.expect("sent").await;
    let three: Vec<String> = (0..3).map(|i| format!("u{i}")).collect();
    let code = error_code(
        &mut a,
        json!({"type":"presence_subscribe","id":"p","user_ids":three}),
    )
    .await;
    assert_eq!(code, "invalid_input", "three watches past a limit of two");
}

#[tokio::test]
async fn read_and_typing_by_a_non_member_are_not_member() {
    let engine = engine(Limits::default()).await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let eve = signup(&engine, "eve").await;
    let g = group(&engine, &alice, "g", std::slice::from_ref(&bob)).await;
    let mut a = Client::connect(&engine, &alice).await;
    a.send(json!({"type":"send","id":"s","conversation_id":g.as_str(),"body":"members only"}))
        .await;
    let id = a.expect("sent").await["message_id"].clone();
    let mut e = Client::connect(&engine, &eve).await;
    let read = error_code(
        &mut e,
        json!({"type":"read","conversation_id":g.as_str(),"message_id":id}),
    )
    .await;
    assert_eq!(read, "not_member");
    let typing = error_code(
        &mut e,
        json!({"type":"typing","conversation_id":g.as_str()}),
    )
    .await;
    assert_eq!(typing, "not_member");
}

#[tokio::test]
async fn history_has_a_default_page_and_a_cap() {
    let engine = engine(Limits {
        history_default: 3,
        history_max: 5,
        ..Limits::default()
    })
    .await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let mut a = Client::connect(&engine, &alice).await;
    for i in 0..7 {
        a.send(json!({"type":"send","id":"s","to":bob.as_str(),"body":i.to_string()}))
            .await;
        a.expect("sent").await;
    }
    let c = chat_core::ConversationId::direct(&alice, &bob);
    let page = |limit: Option<usize>| {
        let mut frame = json!({"type":"history","id":"h","conversation_id":c.as_str()});
        if let Some(limit) = limit {
            frame["limit"] = json!(limit);
        }
        frame
    };
    for (limit, want) in [(None, 3), (Some(100), 5), (Some(4), 4), (Some(0), 1)] {
        a.send(page(limit)).await;
        let h = a.expect("history").await;
        let bodies: Vec<&str> = h["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .collect();
        let newest: Vec<String> = (7 - want..7).rev().map(|i| i.to_string()).collect();
        assert_eq!(
            bodies, newest,
            "limit {limit:?}: the newest {want}, newest first"
        );
    }
}

/// Sends one message from `sender` to `g` (whose members among `watchers`
/// are `in_group`) and has `reader` read it; the sender hears of it by a
/// frame of `kind`. Answers who of `watchers` got a read receipt.
async fn read_receipt_reaches(
    g: &chat_core::ConversationId,
    (sender, reader): (&mut Client, &mut Client),
    watchers: &mut [(UserId, Client)],
    in_group: &[UserId],
    kind: &str,
) -> Vec<UserId> {
    sender
        .send(json!({"type":"send","id":"s","conversation_id":g.as_str(),"body":"read me"}))
        .await;
    let id = sender.expect("sent").await["message_id"].clone();
    reader.expect("message").await;
    for (user, w) in watchers.iter_mut() {
        if in_group.contains(user) {
            w.expect("message").await;
        }
    }
    reader
        .send(json!({"type":"read","conversation_id":g.as_str(),"message_id":id}))
        .await;
    let r = sender.expect(kind).await;
    assert_eq!(r["status"], "read", "{r}");
    // In a small group the receipt goes to every member's session in one
    // local pass before the sender's; in a big one nobody but the sender
    // gets one at all. Either way what a watcher has is queued by now.
    let mut got = Vec::new();
    for (user, w) in watchers.iter_mut() {
        if let Some(Some(frame)) =
            futures::FutureExt::now_or_never(tokio::task::unconstrained(w.out.recv()))
        {
            let f: Value = serde_json::from_slice(&frame).unwrap();
            assert_eq!(f["type"], "receipt", "{f}");
            assert_eq!(f["status"], "read", "{f}");
            got.push(user.clone());
        }
    }
    got
}

#[tokio::test]
async fn read_receipts_go_to_every_member_up_to_the_limit_and_to_senders_above() {
    let engine = engine(Limits {
        read_receipts_to_all: 3,
        ..Limits::default()
    })
    .await;
    let mut users = Vec::new();
    for name in ["s", "r", "w1", "w2", "w3"] {
        users.push(signup(&engine, name).await);
    }
    // Four members (the limit plus one): every member hears of the read.
    let small = group(&engine, &users[0], "small", &users[1..4]).await;
    // Five members: only the sender, coalesced.
    let big = group(&engine, &users[0], "big", &users[1..5]).await;
    let mut s = Client::connect(&engine, &users[0]).await;
    let mut r = Client::connect(&engine, &users[1]).await;
    let mut watchers = Vec::new();
    for u in &users[2..5] {
        watchers.push((u.clone(), Client::connect(&engine, u).await));
    }
    let got = read_receipt_reaches(
        &small,
        (&mut s, &mut r),
        &mut watchers,
        &users[2..4],
        "receipt",
    )
    .await;
    assert_eq!(
        got,
        users[2..4].to_vec(),
        "a group at the limit: every member, no one else"
    );
    let got = read_receipt_reaches(
        &big,
        (&mut s, &mut r),
        &mut watchers,
        &users[2..5],
        "receipts",
    )
    .await;
    assert!(
        got.is_empty(),
        "past the limit: only the sender, got {got:?}"
    );
}

/// Under until_delivered each ack that moves a device on purges at once
/// what every recipient has (in conversations up to `purge_at_ack_members`),
/// the second ack as well as the first: history keeps nothing acked.
#[tokio::test]
async fn each_ack_purges_what_everyone_has_under_until_delivered() {
    let engine = engine_with(|b| {
        b.retention(chat_core::Retention::UntilDelivered)
            .limits(Limits {
                user_budget: None,
                addr_budget: None,
                ..Limits::default()
            })
    })
    .await;
    let alice = signup(&engine, "alice").await;
    let bob = signup(&engine, "bob").await;
    let c = chat_core::ConversationId::direct(&alice, &bob);
    let mut a = Client::connect(&engine, &alice).await;
    let mut b = Client::connect(&engine, &bob).await;
    for body in ["first", "second"] {
        a.send(json!({"type":"send","id":"s","to":bob.as_str(),"body":body}))
            .await;
        let id = a.expect("sent").await["message_id"].clone();
        assert_eq!(b.expect("message").await["message"]["body"], body);
        b.send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":id}))
            .await;
        a.expect("receipt").await;
        let left = engine.history(&alice, &c, None, None).await.unwrap();
        assert!(
            left.is_empty(),
            "after the ack of {body:?} history still holds {:?}",
            left.iter().map(|m| &m.body).collect::<Vec<_>>()
        );
    }
}
