//! Retention with devices: under `until_delivered` a message goes once every
//! device of every recipient acked it, or was logged out; a login that never
//! connects holds nothing back, but while none of a user's devices ever
//! connected its messages wait; an edit or delete of a message still stored
//! changes its text on the server at once. Under `forever` all of it stays.
//! Seen from outside: through history.

use std::time::Duration;

use chat_core::Retention;
use serde_json::{Value, json};

use crate::client::{Env, HANG, User, Ws, str_of};

async fn ack(ws: &mut Ws, c: &str, id: &str) {
    ws.send(json!({"type": "ack", "conversation_id": c, "message_id": id}))
        .await;
    ws.roundtrip("after-ack").await;
}

async fn stored(env: &Env, reader: &User, c: &str, id: &str) -> bool {
    env.history(reader, c)
        .await
        .iter()
        .any(|m| m["message_id"] == id || m["ref_id"] == id)
}

/// `id` is still in `c`'s history (both modes: someone has not acked it).
async fn kept(env: &Env, reader: &User, c: &str, id: &str, why: &str) {
    assert!(stored(env, reader, c, id).await, "{}: {why}", env.label);
}

/// Under `until_delivered`, `id` (and the events about it) leave history
/// soon; under `forever` they stay.
async fn released(env: &Env, reader: &User, c: &str, id: &str, why: &str) {
    if env.retention == Retention::Forever {
        kept(env, reader, c, id, why).await;
        return;
    }
    let deadline = tokio::time::Instant::now() + HANG;
    while stored(env, reader, c, id).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {why}, yet {id} is still stored",
            env.label
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn every_device_of_every_recipient_must_ack(env: &Env) {
    let s = env.user("sender").await;
    let u = env.user("two-devices").await;
    let laptop = env.login_on(&u, "laptop", env.other_node(u.node)).await;
    let v = env.user("one-device").await;
    let g = env.group(&s, &[&u, &v], json!({})).await;
    let (mut wp, _) = env.ws(&u).await;
    let (mut wl, _) = env.ws(&laptop).await;
    let (mut wv, _) = env.ws(&v).await;
    let (mut wsd, _) = env.ws(&s).await;
    let m = wsd.say(&g, "keep me until every device has me").await;
    for ws in [&mut wp, &mut wl, &mut wv] {
        ws.message(&m).await;
    }
    ack(&mut wp, &g, &m).await;
    ack(&mut wv, &g, &m).await;
    kept(env, &s, &g, &m, "the laptop has not acked").await;
    ack(&mut wl, &g, &m).await;
    released(env, &s, &g, &m, "every device of every recipient acked").await;
}

pub async fn removed_and_unconnected_devices_hold_nothing_back(env: &Env) {
    let s = env.user("sender").await;
    let u = env.user("phone").await;
    let laptop = env.login_on(&u, "laptop", env.other_node(u.node)).await;
    let _tablet = env.login_on(&u, "never connects", u.node).await;
    env.ws(&laptop).await.0.close().await;
    let (mut wp, _) = env.ws(&u).await;
    let (mut wsd, _) = env.ws(&s).await;
    let (sent, _) = wsd
        .ask(json!({"type": "send", "id": "m", "to": u.id, "body": "for the phone"}))
        .await;
    let (c, m) = (
        str_of(&sent["conversation_id"]),
        str_of(&sent["message_id"]),
    );
    wp.message(&m).await;
    ack(&mut wp, &c, &m).await;
    kept(
        env,
        &s,
        &c,
        &m,
        "the laptop connected once and has not acked",
    )
    .await;
    env.delete(&u, &format!("/api/devices/{}", laptop.device_id))
        .await
        .expect(204, "log the laptop out");
    released(
        env,
        &s,
        &c,
        &m,
        "the laptop was logged out; the tablet never connected",
    )
    .await;

    // A user none of whose devices ever connected: its messages wait for one.
    let w = env.user("newcomer").await;
    let (sent, _) = wsd
        .ask(json!({"type": "send", "id": "w", "to": w.id, "body": "wait for me"}))
        .await;
    let (c, m) = (
        str_of(&sent["conversation_id"]),
        str_of(&sent["message_id"]),
    );
    wsd.roundtrip("w").await;
    kept(env, &s, &c, &m, "no device of the recipient ever connected").await;
    let (mut ww, synced) = env.ws(&w).await;
    assert!(
        synced
            .iter()
            .any(|f| f["message"]["message_id"] == m.as_str()),
        "{synced:?}"
    );
    ack(&mut ww, &c, &m).await;
    released(env, &s, &c, &m, "its first device acked").await;
}

/// Whether any text of `frames` (message bodies) contains `needle`.
fn mentions(frames: &[Value], needle: &str) -> bool {
    frames.iter().any(|f| {
        f["body"].as_str().is_some_and(|b| b.contains(needle))
            || f["message"]["body"]
                .as_str()
                .is_some_and(|b| b.contains(needle))
    })
}

pub async fn an_edit_or_delete_changes_the_stored_text(env: &Env) {
    let s = env.user("sender").await;
    let u = env.user("away").await;
    // The recipient connected once: messages wait for it.
    env.ws(&u).await.0.close().await;
    let (mut wsd, _) = env.ws(&s).await;
    let (sent, _) = wsd
        .ask(json!({"type": "send", "id": "m", "to": u.id, "body": "first draft"}))
        .await;
    let (c, m) = (
        str_of(&sent["conversation_id"]),
        str_of(&sent["message_id"]),
    );
    let (edited, _) = wsd
        .ask(
            json!({"type": "edit", "id": "e", "conversation_id": c, "message_id": m,
                    "body": "second draft"}),
        )
        .await;
    assert_eq!(edited["type"], "sent", "{edited}");

    // The server holds the new text only: in history and in the sync of
    // the device that has not acked yet.
    let history = env.history(&s, &c).await;
    let hm = history
        .iter()
        .find(|e| e["message_id"] == m.as_str())
        .unwrap();
    assert_eq!(
        (&hm["body"], &hm["edited"]),
        (&json!("second draft"), &json!(true))
    );
    assert!(!mentions(&history, "first draft"), "{history:?}");
    let (wu, synced) = env.ws(&u).await;
    assert!(!mentions(&synced, "first draft"), "{synced:?}");
    wu.close().await;

    // A delete removes the text, the edited one too.
    let (deleted, _) = wsd
        .ask(json!({"type": "delete", "id": "d", "conversation_id": c, "message_id": m}))
        .await;
    assert_eq!(deleted["type"], "sent", "{deleted}");
    let history = env.history(&s, &c).await;
    let hm = history
        .iter()
        .find(|e| e["message_id"] == m.as_str())
        .unwrap();
    assert_eq!((&hm["body"], &hm["deleted"]), (&json!(""), &json!(true)));
    assert!(!mentions(&history, "draft"), "{history:?}");
    let (mut wu, synced) = env.ws(&u).await;
    assert!(!mentions(&synced, "draft"), "{synced:?}");

    // Once the device acked all of it, nothing of it stays (until_delivered).
    let last = synced
        .iter()
        .filter_map(|f| f["message"]["message_id"].as_str())
        .max_by_key(|id| id.parse::<u64>().unwrap())
        .expect("the sync sent the message and its events")
        .to_owned();
    ack(&mut wu, &c, &last).await;
    released(
        env,
        &s,
        &c,
        &m,
        "the only device acked the message and its events",
    )
    .await;
}
