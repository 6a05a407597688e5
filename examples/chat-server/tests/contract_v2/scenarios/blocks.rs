//! "Blocking and presence privacy": the block list, a blocked user's direct
//! sends and group adds refused with `blocked`, presence only for users who
//! share a conversation and have not blocked the caller.

use serde_json::{Value, json};

use crate::client::{Env, User, Ws, str_of};

async fn blocked_list(env: &Env, u: &User) -> Value {
    env.get(u, "/api/blocks")
        .await
        .expect(200, "the block list")["blocked"]
        .clone()
}

/// Subscribes to `users`' presence: the `presence` frames and the error
/// (if any) that answer it.
async fn subscribe(ws: &mut Ws, users: &[&User]) -> (Vec<Value>, Option<Value>) {
    let id = format!("p-{:x}", rand::random::<u32>());
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    ws.send(json!({"type": "presence_subscribe", "id": id, "user_ids": ids}))
        .await;
    // The presence frames come first; an error (with reply_to) ends the
    // answer, else a ping's pong does.
    let (end, before) = ws
        .ask(json!({"type": "ping", "id": format!("{id}-end")}))
        .await;
    let mut presence = Vec::new();
    let mut error = None;
    for f in before {
        if f["type"] == "presence" && ids.contains(&f["user_id"].as_str().unwrap_or("")) {
            presence.push(f);
        } else if f["type"] == "error" && f["reply_to"] == id.as_str() {
            error = Some(f);
        }
    }
    assert_eq!(end["type"], "pong");
    (presence, error)
}

fn presence_of<'a>(frames: &'a [Value], u: &User) -> Option<&'a Value> {
    frames.iter().find(|f| f["user_id"] == u.id.as_str())
}

pub async fn blocks_stop_direct_messages_adds_and_presence(env: &Env) {
    let x = env.user("blocker").await;
    let y = env.user("blocked").await;
    let z = env.user("friend").await;
    let s = env.user("stranger").await;
    let shared = env.group(&z, &[&x, &y], json!({})).await;
    let (mut wx, _) = env.ws(&x).await;
    let (mut wy, _) = env.ws(&y).await;
    let (mut wz, _) = env.ws(&z).await;
    let (mut ws, _) = env.ws(&s).await;

    // Before the block: a direct conversation, and presence both ways.
    let (sent, _) = wy
        .ask(json!({"type": "send", "id": "d1", "to": x.id, "body": "hi"}))
        .await;
    assert_eq!(sent["type"], "sent", "{sent}");
    let direct = str_of(&sent["conversation_id"]);
    let (p, err) = subscribe(&mut wy, &[&x]).await;
    assert!(
        err.is_none() && presence_of(&p, &x).is_some(),
        "{p:?} {err:?}"
    );

    // Blocking: the list, idempotence, bad input.
    assert_eq!(blocked_list(env, &x).await, json!([]));
    for _ in 0..2 {
        env.post(&x, "/api/blocks", json!({"user_id": y.id}))
            .await
            .expect(204, "block");
    }
    assert_eq!(blocked_list(env, &x).await, json!([y.id]));
    env.post(&x, "/api/blocks", json!({"user_id": x.id}))
        .await
        .refused(400, "invalid_input", "blocking oneself");
    env.post(
        &x,
        "/api/blocks",
        json!({"user_id": "u000000000000000000000000"}),
    )
    .await
    .refused(404, "not_found", "blocking nobody");
    env.post(&x, "/api/blocks", json!({})).await.refused(
        400,
        "invalid_input",
        "a block without a user",
    );

    // Direct sends from the blocked user, by id or by `to`: refused.
    wy.refused(
        json!({"type": "send", "id": "d2", "conversation_id": direct, "body": "hello?"}),
        "blocked",
    )
    .await;
    wy.refused(
        json!({"type": "send", "id": "d3", "to": x.id, "body": "hello?"}),
        "blocked",
    )
    .await;
    // Group adds: at creation and later.
    env.post(
        &y,
        "/api/groups",
        json!({"name": "trap", "members": [x.id]}),
    )
    .await
    .refused(403, "blocked", "a group with the blocker");
    let own = env.group(&y, &[&z], json!({})).await;
    env.post(
        &y,
        &format!("/api/groups/{own}/members"),
        json!({"user_id": x.id}),
    )
    .await
    .refused(403, "blocked", "adding the blocker");
    // Presence: the blocked user and a stranger are refused; a friend who
    // shares a group is answered; one call answers both kinds.
    let (p, err) = subscribe(&mut wy, &[&x, &z]).await;
    let err = err.expect("a forbidden error for the blocker");
    assert_eq!(err["code"], "forbidden", "{err}");
    assert!(presence_of(&p, &x).is_none(), "{p:?}");
    assert!(
        presence_of(&p, &z).is_some(),
        "the allowed one still answered: {p:?}"
    );
    let (p, err) = subscribe(&mut ws, &[&x]).await;
    assert_eq!(err.expect("a stranger is refused")["code"], "forbidden");
    assert!(p.is_empty());
    let (p, err) = subscribe(&mut wz, &[&x]).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        presence_of(&p, &x).expect("a friend sees")["status"],
        "online"
    );
    // The blocked user still belongs to the shared group and writes there.
    wy.say(&shared, "still here").await;

    // Unblocking undoes all of it.
    env.delete(&x, &format!("/api/blocks/{}", y.id))
        .await
        .expect(204, "unblock");
    env.delete(&x, &format!("/api/blocks/{}", y.id))
        .await
        .expect(204, "unblock again");
    assert_eq!(blocked_list(env, &x).await, json!([]));
    let m = wy.say(&direct, "friends again").await;
    wx.message(&m).await;
    env.post(
        &y,
        &format!("/api/groups/{own}/members"),
        json!({"user_id": x.id}),
    )
    .await
    .expect(204, "adding the old blocker");
    let (p, err) = subscribe(&mut wy, &[&x]).await;
    assert!(
        err.is_none() && presence_of(&p, &x).is_some(),
        "{p:?} {err:?}"
    );
}
