//! A server restart on a persistent store: accounts, profiles, groups,
//! conversations, history, pending deliveries, read cursors and dedup keys
//! all come back, because nothing but the store carries over.

use chat_core::Retention;
use serde_json::json;

use super::TestServer;

/// Writes through one server on `store`, stops it, and reads everything back
/// through a new server on the same store.
pub async fn data_survives_a_restart(store: &str) {
    let s = TestServer::start(store, Retention::Forever).await;
    let alice = s.signup("alice").await;
    let bob = s.signup("bob").await;
    let carol = s.signup("carol").await;
    let (st, _) = s
        .call(
            reqwest::Method::PATCH,
            "/api/me",
            Some(&alice.token),
            Some(json!({"display_name": "Alice A."})),
        )
        .await;
    assert_eq!(st, 200);
    let group = s.group(&alice, &[&bob, &carol]).await;
    let (mut a, _) = s.ws(&alice).await;
    a.send(json!({"type": "send", "id": "g", "conversation_id": group, "body": "to the group"}))
        .await;
    let (in_group, _) = a.until("sent").await;
    let direct = json!({"type": "send", "id": "d", "to": bob.id, "body": "to bob",
                        "client_msg_id": "key-1"});
    a.send(direct.clone()).await;
    let (to_bob, _) = a.until("sent").await;
    // Carol reads the group message: her read cursor must survive too.
    let (mut c, synced) = s.ws(&carol).await;
    assert_eq!(synced.len(), 1);
    c.send(json!({"type": "ack", "conversation_id": group,
                  "message_id": in_group["message_id"]}))
        .await;
    c.roundtrip("acked").await;
    drop(c);
    drop(a);
    s.stop().await;

    // A new server on the same store: nothing but the store carries over.
    let s = TestServer::start(store, Retention::Forever).await;
    // Accounts: the password, the profile and the taken username.
    let (st, body) = s
        .post(
            "/api/login",
            None,
            json!({"username": "alice", "password": "password-alice"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["user_id"], alice.id.as_str());
    let (st, me) = s.get("/api/me", &alice.token).await;
    assert_eq!(st, 200);
    assert_eq!(me["display_name"], "Alice A.");
    let (st, _) = s
        .post(
            "/api/signup",
            None,
            json!({"username": "ALICE", "password": "another password"}),
        )
        .await;
    assert_eq!(st, 409, "the username stays taken, whatever its case");

    // Groups and conversations.
    let (st, body) = s
        .get(&format!("/api/groups/{group}/members"), &bob.token)
        .await;
    assert_eq!(st, 200, "{body}");
    let mut members: Vec<String> = serde_json::from_value(body["members"].clone()).unwrap();
    members.sort();
    let mut want = vec![alice.id.clone(), bob.id.clone(), carol.id.clone()];
    want.sort();
    assert_eq!(members, want);
    let (_, body) = s.get("/api/conversations", &bob.token).await;
    let mut listed: Vec<&str> = body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut want = vec![group.as_str(), to_bob["conversation_id"].as_str().unwrap()];
    want.sort();
    assert_eq!(listed, want);

    // History.
    let (st, body) = s
        .get(
            &format!("/api/conversations/{group}/messages"),
            &carol.token,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let history = body["messages"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{body}");
    assert_eq!(history[0]["message_id"], in_group["message_id"]);
    assert_eq!(history[0]["body"], "to the group");

    // Pending deliveries: bob was never online, both messages come by sync;
    // carol acked hers before the restart, so she gets nothing again.
    let (_, synced) = s.ws(&bob).await;
    let got: Vec<&str> = synced
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        [
            in_group["message_id"].as_str().unwrap(),
            to_bob["message_id"].as_str().unwrap()
        ]
    );
    let (_, synced) = s.ws(&carol).await;
    assert!(synced.is_empty(), "carol's ack survived: {synced:?}");

    // Dedup keys: a retry after the restart answers the first message.
    let (mut a, _) = s.ws(&alice).await;
    a.send(direct).await;
    let (again, _) = a.until("sent").await;
    assert_eq!(again["message_id"], to_bob["message_id"]);
    s.stop().await;
}
