//! Version 2 at the engine: replies, edits, deletes and reactions, each an
//! entry with its own id, delivered and synced like a message; history
//! shows each message as it is now.

mod support;

use std::sync::Arc;

use chat_core::engine::Limits;
use chat_core::memory::MemoryStore;
use chat_core::model::{MessageId, Role};
use chat_core::store::MessageStore;
use chat_core::{ConversationId, Retention};
use serde_json::{Value, json};
use support::{Client, engine, engine_with, group, login, signup};

async fn sent(c: &mut Client) -> String {
    c.expect_after("sent").await["message_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn error_code(f: &Value) -> (&str, &str) {
    (
        f["code"].as_str().unwrap_or(""),
        f["reply_to"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn replies_edits_deletes_and_reactions_are_events_in_order() {
    let e = engine().await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let mut a = Client::connect(&e, &alice).await;
    let mut b = Client::connect(&e, &bob).await;
    let c = ConversationId::direct(&alice, &bob);
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"hello"}))
        .await;
    let first = sent(&mut a).await;
    assert_eq!(b.expect("message").await["message"]["kind"], "text");

    b.send(json!({"type":"send","id":"2","conversation_id":c.as_str(),"body":"hi back","in_reply_to":first})).await;
    let reply = sent(&mut b).await;
    let m = a.expect("message").await["message"].clone();
    assert_eq!(m["in_reply_to"], first.as_str());

    a.send(json!({"type":"edit","id":"3","conversation_id":c.as_str(),"message_id":first,"body":"hello there"})).await;
    let edit = sent(&mut a).await;
    let ev = b.expect("message").await["message"].clone();
    assert_eq!(
        (
            ev["kind"].as_str(),
            ev["ref_id"].as_str(),
            ev["body"].as_str()
        ),
        (Some("edit"), Some(first.as_str()), Some("hello there"))
    );
    assert_eq!(ev["message_id"], edit.as_str());

    b.send(json!({"type":"react","id":"4","conversation_id":c.as_str(),"message_id":first,"emoji":"👍"})).await;
    sent(&mut b).await;
    assert_eq!(a.expect("message").await["message"]["kind"], "reaction");
    a.send(json!({"type":"react","id":"5","conversation_id":c.as_str(),"message_id":first,"emoji":"👍"})).await;
    sent(&mut a).await;
    b.expect("message").await;

    b.send(json!({"type":"delete","id":"6","conversation_id":c.as_str(),"message_id":reply}))
        .await;
    sent(&mut b).await;
    assert_eq!(a.expect("message").await["message"]["kind"], "delete");

    let history = e.history(&alice, &c, None, None).await.unwrap();
    let shown = |id: &str| {
        history
            .iter()
            .find(|m| m.message_id.to_string() == id)
            .unwrap()
            .clone()
    };
    let original = shown(&first);
    assert_eq!(
        (original.body.as_str(), original.edited),
        ("hello there", true)
    );
    let reactions = serde_json::to_value(&original.reactions).unwrap();
    let mut who: Vec<&str> = reactions["👍"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    who.sort();
    let mut expected = vec![alice.as_str(), bob.as_str()];
    expected.sort();
    assert_eq!(who, expected, "reactions with who chose them");
    let deleted = shown(&reply);
    assert!(deleted.deleted && deleted.body.is_empty());
    assert_eq!(history.len(), 6, "history lists the events too");
    assert!(
        history
            .windows(2)
            .all(|w| w[0].message_id > w[1].message_id)
    );
}

#[tokio::test]
async fn events_are_refused_unless_allowed_and_change_nothing() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let admin = signup(&e, "admin").await;
    let plain = signup(&e, "plain").await;
    let g = group(&e, &owner, "g", &[admin.clone(), plain.clone()]).await;
    e.set_role(&owner, &g, &admin, Role::Admin).await.unwrap();
    let mut o = Client::connect_drained(&e, &owner).await;
    let mut ad = Client::connect_drained(&e, &admin).await;
    let mut p = Client::connect_drained(&e, &plain).await;
    o.send(json!({"type":"send","id":"1","conversation_id":g.as_str(),"body":"owner's"}))
        .await;
    let owners = sent(&mut o).await;
    let other = group(&e, &owner, "other", std::slice::from_ref(&plain)).await;
    o.send(json!({"type":"send","id":"x","conversation_id":other.as_str(),"body":"elsewhere"}))
        .await;
    let elsewhere = sent(&mut o).await;

    p.send(json!({"type":"edit","id":"e1","conversation_id":g.as_str(),"message_id":owners,"body":"mine now"})).await;
    assert_eq!(
        error_code(&p.expect_after("error").await),
        ("forbidden", "e1")
    );
    p.send(json!({"type":"delete","id":"d1","conversation_id":g.as_str(),"message_id":owners}))
        .await;
    assert_eq!(
        error_code(&p.expect_after("error").await),
        ("forbidden", "d1")
    );
    p.send(json!({"type":"edit","id":"e2","conversation_id":g.as_str(),"message_id":"12345","body":"x"})).await;
    assert_eq!(
        error_code(&p.expect_after("error").await),
        ("not_found", "e2")
    );
    p.send(json!({"type":"react","id":"r1","conversation_id":g.as_str(),"message_id":elsewhere,"emoji":"👍"})).await;
    assert_eq!(
        error_code(&p.expect_after("error").await),
        ("not_found", "r1"),
        "a target in another conversation"
    );
    p.send(json!({"type":"react","id":"r2","conversation_id":g.as_str(),"message_id":owners,"emoji":"🙂".repeat(9)})).await;
    assert_eq!(
        error_code(&p.expect_after("error").await),
        ("invalid_input", "r2"),
        "an emoji over 32 bytes"
    );
    p.send(json!({"type":"send","id":"s1","conversation_id":g.as_str(),"body":"re","in_reply_to":elsewhere})).await;
    assert_eq!(
        error_code(&p.expect_after("error").await),
        ("not_found", "s1"),
        "a reply to another conversation"
    );
    let history = e.history(&owner, &g, None, None).await.unwrap();
    assert_eq!(history.len(), 1, "refused events stored nothing");
    assert_eq!(history[0].body, "owner's");

    // An admin deletes anyone's message in a group; the owner's sender edits.
    ad.send(json!({"type":"delete","id":"d2","conversation_id":g.as_str(),"message_id":owners}))
        .await;
    sent(&mut ad).await;
    let shown = e.history(&owner, &g, None, None).await.unwrap();
    assert!(shown.iter().any(|m| m.deleted));
    o.send(json!({"type":"edit","id":"e3","conversation_id":g.as_str(),"message_id":owners,"body":"back?"})).await;
    assert_eq!(
        error_code(&o.expect_after("error").await),
        ("invalid_input", "e3"),
        "a deleted message stays deleted"
    );
}

#[tokio::test]
async fn events_are_idempotent_and_synced_to_devices_that_were_away() {
    let e = engine().await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let c = ConversationId::direct(&alice, &bob);
    let mut a = Client::connect(&e, &alice).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"typo"}))
        .await;
    let m = sent(&mut a).await;
    for _ in 0..2 {
        a.send(json!({"type":"edit","id":"e","conversation_id":c.as_str(),"message_id":m,"body":"fixed","client_msg_id":"k1"})).await;
    }
    let first = sent(&mut a).await;
    let second = sent(&mut a).await;
    assert_eq!(first, second, "a retried edit answers the first id");
    let tablet = login(&e, "bob").await;
    let mut t = Client::connect_raw_device(&e, &tablet).await;
    assert_eq!(t.expect("message").await["message"]["kind"], "text");
    let ev = t.expect("message").await;
    assert_eq!(
        (
            ev["message"]["kind"].as_str(),
            ev["message"]["body"].as_str()
        ),
        (Some("edit"), Some("fixed"))
    );
    t.expect("synced").await;
}

#[tokio::test]
async fn under_until_delivered_a_delete_removes_the_pending_text_from_the_server() {
    let store = Arc::new(MemoryStore::new());
    let e = engine_with(|b| {
        b.retention(Retention::UntilDelivered)
            .store(store.clone())
            .limits(Limits::default())
    })
    .await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let c = ConversationId::direct(&alice, &bob);
    let _bob_connected_once = Client::connect(&e, &bob).await.close().await;
    let mut a = Client::connect(&e, &alice).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"secret plans"}))
        .await;
    let m = sent(&mut a).await;
    a.send(json!({"type":"delete","id":"2","conversation_id":c.as_str(),"message_id":m}))
        .await;
    sent(&mut a).await;
    let kept = store
        .entry(&c, MessageId(m.parse().unwrap()))
        .await
        .unwrap()
        .expect("still pending for bob");
    assert!(
        kept.deleted && kept.body.is_empty(),
        "the text is gone from the server"
    );
    let all = store.range(&c, None, None, 10).await.unwrap();
    assert!(all.iter().all(|m| !m.body.contains("secret")));
}

/// Found by the outside suite (examples/chat-server/tests/contract_v2): a
/// deleted message's edits kept their text in history and in the sync of a
/// device that was away.
#[tokio::test]
async fn a_delete_empties_the_edits_of_the_message_in_history_and_sync() {
    let e = engine().await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let c = ConversationId::direct(&alice, &bob);
    let _bob_connected_once = Client::connect(&e, &bob).await.close().await;
    let mut a = Client::connect(&e, &alice).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"first draft"}))
        .await;
    let m = sent(&mut a).await;
    a.send(json!({"type":"edit","id":"2","conversation_id":c.as_str(),"message_id":m,"body":"second draft"})).await;
    let edit = sent(&mut a).await;
    a.send(json!({"type":"delete","id":"3","conversation_id":c.as_str(),"message_id":m}))
        .await;
    sent(&mut a).await;

    let history = e.history(&alice, &c, None, None).await.unwrap();
    let kept = history
        .iter()
        .find(|h| h.message_id.to_string() == edit)
        .expect("the edit keeps its place in the log");
    assert_eq!(kept.body, "", "the deleted text is not served");
    assert!(history.iter().all(|h| !h.body.contains("draft")));

    let mut b = Client::connect_raw(&e, &bob).await;
    for _ in 0..3 {
        let f = b.expect("message").await;
        assert!(
            !f["message"]["body"].as_str().unwrap().contains("draft"),
            "{f}"
        );
    }
    b.expect("synced").await;
}
