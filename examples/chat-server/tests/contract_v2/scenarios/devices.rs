//! "Devices": each login is a device; every device gets every message and
//! syncs what it has not acked itself; a new device starts at what the user
//! had not acked; receipts stay per user; a logged-out device's token stops
//! at once on every node and its sockets close with 4001.

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Closed, Env, Ws, str_of};

/// The message ids among the frames of a sync.
fn ids_in(synced: &[Value]) -> Vec<String> {
    synced
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| str_of(&f["message"]["message_id"]))
        .collect()
}

async fn ack(ws: &mut Ws, c: &str, id: &str) {
    ws.send(json!({"type": "ack", "conversation_id": c, "message_id": id}))
        .await;
    ws.roundtrip("after-ack").await;
}

pub async fn each_device_gets_messages_and_syncs_for_itself(env: &Env) {
    let s = env.user("sender").await;
    let phone = env.user("owner").await;
    // The laptop logs in on the other node (in a cluster).
    let laptop = env
        .login_on(&phone, "laptop", env.other_node(phone.node))
        .await;
    assert_ne!(phone.device_id, laptop.device_id, "each login is a device");

    let list = env.get(&phone, "/api/devices").await;
    let devices = list.expect(200, "the devices")["devices"]
        .as_array()
        .expect("devices")
        .clone();
    assert_eq!(devices.len(), 2, "{devices:?}");
    for d in &devices {
        let mine = d["device_id"] == phone.device_id.as_str();
        assert_eq!(d["current"], mine, "{d}");
        assert_eq!(d["name"], if mine { "first" } else { "laptop" }, "{d}");
        assert!(d["last_seen"].is_null() || d["last_seen"].is_i64(), "{d}");
    }

    let (mut wp, _) = env.ws(&phone).await;
    let (mut wl, _) = env.ws(&laptop).await;
    let (mut wsd, _) = env.ws(&s).await;
    let (sent, _) = wsd
        .ask(json!({"type": "send", "id": "m1", "to": phone.id, "body": "to every device"}))
        .await;
    let m1 = str_of(&sent["message_id"]);
    let c = str_of(&sent["conversation_id"]);
    // Both devices get it live.
    for ws in [&mut wp, &mut wl] {
        assert_eq!(ws.message(&m1).await["body"], "to every device");
    }
    // The phone's ack is the user's first: the sender hears `delivered`.
    ack(&mut wp, &c, &m1).await;
    let (r, _) = wsd
        .until(|f| f["type"] == "receipt" && f["status"] == "delivered")
        .await;
    assert_eq!(
        (&r["message_id"], &r["user_id"]),
        (&json!(m1), &json!(phone.id))
    );

    // The phone's ack is not the laptop's: its next connect still syncs m1,
    // the phone's does not.
    wl.close().await;
    let (mut wl, synced) = env.ws(&laptop).await;
    assert_eq!(
        ids_in(&synced),
        std::slice::from_ref(&m1),
        "the laptop did not ack"
    );
    wp.close().await;
    let (mut wp, synced) = env.ws(&phone).await;
    assert!(ids_in(&synced).is_empty(), "the phone acked: {synced:?}");
    // An explicit sync sends it again, then `synced` answers.
    let (done, again) = wl.ask(json!({"type": "sync", "id": "s1"})).await;
    assert_eq!(done["type"], "synced");
    assert_eq!(ids_in(&again), std::slice::from_ref(&m1));

    // A new device starts at what the user had not acked then: m2 (acked by
    // neither device) reaches the tablet, m1 (acked by the phone) does not.
    let (sent, _) = wsd
        .ask(json!({"type": "send", "id": "m2", "to": phone.id, "body": "second"}))
        .await;
    let m2 = str_of(&sent["message_id"]);
    wp.message(&m2).await;
    let tablet = env.login_on(&phone, "tablet", phone.node).await;
    let (_wt, synced) = env.ws(&tablet).await;
    assert_eq!(
        ids_in(&synced),
        std::slice::from_ref(&m2),
        "the tablet starts at m2"
    );
    // Older messages come through history.
    let history = env.history(&tablet, &c).await;
    assert!(history.iter().any(|m| m["message_id"] == m1.as_str()));

    // Receipts stay per user: a read from any device.
    wl.send(json!({"type": "read", "conversation_id": c, "message_id": m2}))
        .await;
    let (r, _) = wsd
        .until(|f| f["type"] == "receipt" && f["status"] == "read")
        .await;
    assert_eq!(
        (&r["message_id"], &r["user_id"]),
        (&json!(m2), &json!(phone.id))
    );
}

pub async fn a_logged_out_device_stops_everywhere_at_once(env: &Env) {
    let phone = env.user("owner").await;
    let other = env.other_node(phone.node);
    let laptop = env.login_on(&phone, "laptop", other).await;
    let tablet = env.login_on(&phone, "tablet", phone.node).await;
    let stranger = env.user("stranger").await;
    let (mut wl, _) = env.ws(&laptop).await;
    let (mut wt, _) = env.ws(&tablet).await;

    // Not one's own device, or no device: 404, and nothing changes.
    for (who, device) in [
        (&stranger, &laptop.device_id),
        (&phone, &"dv000000".to_owned()),
    ] {
        env.delete(who, &format!("/api/devices/{device}"))
            .await
            .refused(404, "not_found", "someone else's device");
    }
    wl.roundtrip("still-open").await;

    // The phone logs the laptop out: its token fails at once on every
    // node, its socket (on the other node) closes with 4001.
    env.delete(&phone, &format!("/api/devices/{}", laptop.device_id))
        .await
        .expect(204, "log the laptop out");
    for node in 0..env.nodes.len() {
        env.call_on(node, Method::GET, "/api/me", Some(&laptop.token), None)
            .await
            .refused(
                401,
                "unauthorized",
                &format!("the laptop's token on node {node}"),
            );
        assert_eq!(
            env.ws_raw(node, &laptop.token).await.err(),
            Some(401),
            "the laptop's WebSocket on node {node}"
        );
    }
    assert_eq!(wl.closed().await, Closed::Code(4001));
    env.delete(&phone, &format!("/api/devices/{}", laptop.device_id))
        .await
        .refused(404, "not_found", "a device logged out already");
    let list = env.get(&phone, "/api/devices").await;
    let left: Vec<String> = list.expect(200, "devices")["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| str_of(&d["device_id"]))
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&laptop.device_id));

    // Logout: the same for the caller's own device.
    env.call(&tablet, Method::POST, "/api/logout", None)
        .await
        .expect(204, "logout");
    for node in 0..env.nodes.len() {
        env.call_on(node, Method::GET, "/api/me", Some(&tablet.token), None)
            .await
            .refused(
                401,
                "unauthorized",
                &format!("the tablet's token on node {node}"),
            );
    }
    assert_eq!(wt.closed().await, Closed::Code(4001));
    env.get(&phone, "/api/me")
        .await
        .expect(200, "the phone still works");
    let (mut wp, _) = env.ws(&phone).await;
    wp.roundtrip("phone").await;
}
