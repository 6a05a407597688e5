//! Big groups where everyone does the usual thing at once: every receiver
//! acks and reads each message, or every member types. No session is closed
//! for it, every message arrives, and the sender gets every `sent`.

mod support;

use std::time::Duration;

use chat_core::UserId;
use chat_core::engine::{Engine, Limits};
use serde_json::json;
use support::{Client, engine_with, group, signup};

/// A small byte budget per session, so that a storm that queued per-reader
/// frames would close sessions at these sizes already.
async fn small_queues() -> Engine {
    engine_with(|b| {
        b.limits(Limits {
            outbound_queue_bytes: 16 * 1024,
            user_budget: None,
            addr_budget: None,
            receipt_every: Duration::from_millis(50),
            ..Limits::default()
        })
    })
    .await
}

async fn members(e: &Engine, n: usize) -> Vec<UserId> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(signup(e, &format!("m{i}")).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_in_a_big_group_of_acking_readers_stays_connected() {
    let e = small_queues().await;
    let sender = signup(&e, "sender").await;
    let readers = members(&e, 300).await;
    let g = group(&e, &sender, "big", &readers).await;
    let mut clients = Vec::new();
    for r in &readers {
        clients.push(Client::connect_drained(&e, r).await);
    }
    let mut s = Client::connect_drained(&e, &sender).await;
    let rounds = 10;
    let mut tasks = Vec::new();
    for mut c in clients {
        let g = g.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                let m = c.expect_after("message").await;
                let id = m["message"]["message_id"].clone();
                c.send(json!({"type":"ack","conversation_id":g.as_str(),"message_id":id}))
                    .await;
                c.send(json!({"type":"read","conversation_id":g.as_str(),"message_id":id}))
                    .await;
            }
            assert!(c.out.close_reason().is_none(), "a reader was closed");
        }));
    }
    let mut receipts = 0usize;
    for i in 0..rounds {
        s.send(json!({"type":"send","id":i.to_string(),"conversation_id":g.as_str(),"body":"hello all"})).await;
        loop {
            let f = s.next().await;
            match f["type"].as_str() {
                Some("sent") => break,
                Some("receipts") => receipts += 1,
                Some("receipt") => panic!("a per-reader receipt in a big group: {f}"),
                _ => {}
            }
        }
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
    }
    // The acks keep arriving as coalesced frames for a moment after the last send.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), s.out.recv()).await {
            Ok(Some(f)) => {
                let v: serde_json::Value = serde_json::from_slice(&f).unwrap();
                if v["type"] == "receipts" {
                    receipts += 1;
                }
            }
            Ok(None) => panic!("the sender was closed: {:?}", s.out.close_reason()),
            Err(_) => break,
        }
    }
    assert!(s.out.close_reason().is_none(), "the sender stays connected");
    assert!(receipts > 0, "coalesced receipts reach the sender");
    assert!(
        receipts < rounds * 2 * 50,
        "far fewer frames than one per reader per message: {receipts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everyone_typing_in_a_big_group_closes_nobody() {
    let e = small_queues().await;
    let owner = signup(&e, "owner").await;
    let all = members(&e, 300).await;
    let g = group(&e, &owner, "typists", &all).await;
    let mut clients = Vec::new();
    for u in &all {
        clients.push(Client::connect_drained(&e, u).await);
    }
    for c in clients.iter_mut() {
        c.send(json!({"type":"typing","conversation_id":g.as_str()}))
            .await;
    }
    let mut o = Client::connect_drained(&e, &owner).await;
    o.send(json!({"type":"send","id":"x","conversation_id":g.as_str(),"body":"after the storm"}))
        .await;
    o.expect_after("sent").await;
    for c in clients.iter_mut() {
        let m = c.expect_after("message").await;
        assert_eq!(m["message"]["body"], "after the storm");
        assert!(c.out.close_reason().is_none());
    }
}
