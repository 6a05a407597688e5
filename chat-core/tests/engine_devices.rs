//! Version 2 at the engine: devices. Delivery state is per device; a
//! removed device's tokens and sockets stop at once; until_delivered waits
//! for every device that counts.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chat_core::engine::{CloseReason, Limits};
use chat_core::memory::MemoryStore;
use chat_core::store::MessageStore;
use chat_core::{ConversationId, Error, Retention};
use serde_json::json;
use support::{Client, engine, engine_with, identity, login, signup};

#[tokio::test]
async fn each_device_gets_every_message_and_acks_only_for_itself() {
    let e = engine().await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let laptop = login(&e, "bob").await;
    let mut a = Client::connect(&e, &alice).await;
    let mut phone = Client::connect(&e, &bob).await;
    let mut lap = Client::connect_device(&e, &laptop).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"to both"}))
        .await;
    let id = a.expect("sent").await["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for device in [&mut phone, &mut lap] {
        assert_eq!(device.expect("message").await["message"]["body"], "to both");
    }
    let c = ConversationId::direct(&alice, &bob);
    phone
        .send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":id}))
        .await;
    let receipt = a.expect("receipt").await;
    assert_eq!(
        (receipt["status"].as_str(), receipt["user_id"].as_str()),
        (Some("delivered"), Some(bob.as_str()))
    );
    // The laptop has not acked: its next connection gets the message again.
    lap.close().await;
    let mut lap = Client::connect_raw_device(&e, &laptop).await;
    assert_eq!(
        lap.expect("message").await["message"]["message_id"],
        id.as_str()
    );
    lap.expect("synced").await;
    lap.send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":id}))
        .await;
    // The user was delivered already: no second receipt.
    a.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(a.next().await["type"], "pong");
    phone.close().await;
    let phone_again = Client::connect(&e, &bob).await;
    phone_again.close().await;
}

#[tokio::test]
async fn a_new_device_starts_at_what_the_user_had_not_acked() {
    let e = engine().await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let mut a = Client::connect(&e, &alice).await;
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
    let c = ConversationId::direct(&alice, &bob);
    let mut phone = Client::connect_raw(&e, &bob).await;
    for _ in 0..3 {
        phone.expect("message").await;
    }
    phone.expect("synced").await;
    phone
        .send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":ids[0]}))
        .await;
    phone.send(json!({"type":"ping","id":"p"})).await;
    phone.expect("pong").await;
    let tablet = login(&e, "bob").await;
    let mut t = Client::connect_raw_device(&e, &tablet).await;
    let first = t.expect("message").await;
    assert_eq!(
        first["message"]["message_id"],
        ids[1].as_str(),
        "m0 was acked before the tablet existed"
    );
    assert_eq!(
        t.expect("message").await["message"]["message_id"],
        ids[2].as_str()
    );
    t.expect("synced").await;
}

#[tokio::test]
async fn logging_a_device_out_closes_its_sockets_and_stops_its_tokens() {
    let e = engine().await;
    let bob = signup(&e, "bob").await;
    let second = e.login("bob", "password", Some("tablet")).await.unwrap();
    let mut tablet = Client::connect_device(&e, &second.identity()).await;
    let devices = e.devices(&identity(&bob)).await.unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices.iter().filter(|d| d.current).count(), 1);
    assert!(devices.iter().any(|d| d.name == "tablet"));
    assert_eq!(
        e.authenticate(&second.token).await.unwrap(),
        second.identity()
    );

    // Another user cannot remove bob's device.
    let eve = signup(&e, "eve").await;
    assert!(matches!(
        e.remove_device(&eve, &second.device_id).await,
        Err(Error::NotFound { .. })
    ));

    e.remove_device(&bob, &second.device_id).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), tablet.out.recv())
            .await
            .unwrap()
            .is_none(),
        "its session is closed"
    );
    assert_eq!(tablet.out.close_reason(), Some(CloseReason::Revoked));
    assert!(matches!(
        e.authenticate(&second.token).await,
        Err(Error::Unauthorized { .. })
    ));
    assert_eq!(e.devices(&identity(&bob)).await.unwrap().len(), 1);
    // Logout is the same for one's own device.
    let third = e.login("bob", "password", None).await.unwrap();
    e.logout(&third.identity()).await.unwrap();
    assert!(matches!(
        e.authenticate(&third.token).await,
        Err(Error::Unauthorized { .. })
    ));
}

async fn until_delivered(store: Arc<MemoryStore>) -> chat_core::engine::Engine {
    engine_with(|b| {
        b.retention(Retention::UntilDelivered)
            .store(store)
            .limits(Limits {
                purge_every: Duration::from_millis(30),
                device_ttl: Duration::from_millis(300),
                ..Limits::default()
            })
    })
    .await
}

async fn stored(store: &MemoryStore, c: &ConversationId) -> usize {
    store.range(c, None, None, 100).await.unwrap().len()
}

#[tokio::test]
async fn until_delivered_waits_for_every_device_that_counts() {
    let store = Arc::new(MemoryStore::new());
    let e = until_delivered(store.clone()).await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let laptop = login(&e, "bob").await;
    let c = ConversationId::direct(&alice, &bob);
    let mut phone = Client::connect(&e, &bob).await;
    let mut lap = Client::connect_device(&e, &laptop).await;
    let mut a = Client::connect(&e, &alice).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"x"}))
        .await;
    let id = a.expect("sent").await["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    phone.expect("message").await;
    lap.expect("message").await;
    phone
        .send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":id}))
        .await;
    phone.send(json!({"type":"ping","id":"p"})).await;
    phone.expect("pong").await;
    assert_eq!(
        stored(&store, &c).await,
        1,
        "the laptop has not acked: the message stays"
    );
    lap.send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":id}))
        .await;
    lap.send(json!({"type":"ping","id":"p"})).await;
    lap.expect("pong").await;
    assert_eq!(stored(&store, &c).await, 0, "every device acked: deleted");
}

#[tokio::test]
async fn devices_that_never_connected_or_went_away_hold_nothing_back() {
    let store = Arc::new(MemoryStore::new());
    let e = until_delivered(store.clone()).await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let c = ConversationId::direct(&alice, &bob);
    let mut a = Client::connect(&e, &alice).await;

    // No device of bob ever connected: his messages wait for the first one.
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"wait for me"}))
        .await;
    a.expect("sent").await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(stored(&store, &c).await, 1);

    // His phone connects and acks; a login that never connects holds nothing.
    let _unused = login(&e, "bob").await;
    let mut phone = Client::connect_raw(&e, &bob).await;
    let m = phone.expect("message").await;
    phone.expect("synced").await;
    let id = m["message"]["message_id"].as_str().unwrap().to_owned();
    phone
        .send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":id}))
        .await;
    phone.send(json!({"type":"ping","id":"p"})).await;
    phone.expect("pong").await;
    assert_eq!(
        stored(&store, &c).await,
        0,
        "the never-connected login held nothing back"
    );

    // The phone goes away for longer than the device TTL: it stops holding.
    phone.close().await;
    a.send(json!({"type":"send","id":"2","to":bob.as_str(),"body":"while away"}))
        .await;
    a.expect_after("sent").await;
    assert_eq!(stored(&store, &c).await, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while stored(&store, &c).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweep never freed what an expired device held"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_removed_device_stops_holding_messages_back() {
    let store = Arc::new(MemoryStore::new());
    let e = until_delivered(store.clone()).await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let lost = login(&e, "bob").await;
    let c = ConversationId::direct(&alice, &bob);
    let lost_session = Client::connect_device(&e, &lost).await;
    lost_session.close().await;
    let mut phone = Client::connect(&e, &bob).await;
    let mut a = Client::connect(&e, &alice).await;
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"x"}))
        .await;
    let id = a.expect("sent").await["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    phone.expect("message").await;
    phone
        .send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":id}))
        .await;
    phone.send(json!({"type":"ping","id":"p"})).await;
    phone.expect("pong").await;
    assert_eq!(
        stored(&store, &c).await,
        1,
        "the lost device (seen recently) holds it"
    );
    e.remove_device(&bob, &lost.device_id).await.unwrap();
    assert_eq!(
        stored(&store, &c).await,
        0,
        "removing it lets the message go"
    );
}

#[tokio::test]
async fn an_ack_never_covers_what_the_connection_was_not_sent() {
    let store = Arc::new(MemoryStore::new());
    let e = until_delivered(store.clone()).await;
    let alice = signup(&e, "alice").await;
    let bob = signup(&e, "bob").await;
    let c = ConversationId::direct(&alice, &bob);
    let mut a = Client::connect(&e, &alice).await;
    a.send(json!({"type":"send","id":"0","to":bob.as_str(),"body":"opens the conversation"}))
        .await;
    a.expect("sent").await;
    // Bob's connection is open but its first sync has not run: a message
    // sent now waits in its gate, unsent.
    let (mut session, mut out) = e.connect(&identity(&bob)).await.unwrap();
    a.send(json!({"type":"send","id":"1","to":bob.as_str(),"body":"in flight"}))
        .await;
    let id = a.expect("sent").await["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A cumulative ack past it (a client acking the newest id it heard of)
    // covers nothing this connection was not sent.
    session
        .handle_text(
            &json!({"type":"ack","conversation_id":c.as_str(),"message_id":id}).to_string(),
        )
        .await;
    assert_eq!(
        stored(&store, &c).await,
        2,
        "nothing sent, nothing acked, nothing deleted"
    );
    session.start().await.unwrap();
    let mut bodies = Vec::new();
    loop {
        let f: serde_json::Value = serde_json::from_slice(
            &tokio::time::timeout(Duration::from_secs(5), out.recv())
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        if f["type"] == "synced" {
            break;
        }
        bodies.push(f["message"]["body"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        bodies,
        ["opens the conversation", "in flight"],
        "both come, once, in order"
    );
    session
        .handle_text(
            &json!({"type":"ack","conversation_id":c.as_str(),"message_id":u64::MAX.to_string()})
                .to_string(),
        )
        .await;
    session.handle_text(r#"{"type":"ping","id":"p"}"#).await;
    let _pong = tokio::time::timeout(Duration::from_secs(5), out.recv())
        .await
        .unwrap();
    assert_eq!(
        stored(&store, &c).await,
        0,
        "now sent: an ack past both covers both"
    );
}
