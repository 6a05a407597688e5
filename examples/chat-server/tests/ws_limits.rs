//! The WebSocket side of the limits, tried from outside: one write budget per
//! user over all its sessions and one per client address over all its users,
//! for every frame type; history cut to fit the connection; cursors bounded
//! by the newest stored message; one id per direct conversation; one 404 for
//! "no such group" and "not a group"; typing in big groups gated; and a normal
//! user whose chat goes on while another address attacks.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use chat_server::Config;
use chat_server::config::Protection;
use common::{HANG, TestServer, User, Ws};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn config(protection: Protection) -> Config {
    Config {
        protection,
        ..TestServer::config()
    }
}

/// A WebSocket for `user` from the loopback address `from`, after its first sync.
async fn ws_from(addr: SocketAddr, user: &User, from: [u8; 4]) -> Ws {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", user.token).parse().unwrap(),
    );
    let (socket, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .expect("WebSocket connects");
    let mut ws = Ws { socket };
    ws.until("synced").await;
    ws
}

/// Sends `frame` (with `id`) and returns the type of its answer, or the
/// error code.
async fn answer(ws: &mut Ws, frame: Value) -> String {
    let id = frame["id"].as_str().unwrap().to_owned();
    ws.send(frame).await;
    loop {
        let f = ws.next().await;
        if f["reply_to"] == id.as_str() {
            return f["code"]
                .as_str()
                .unwrap_or(f["type"].as_str().unwrap())
                .to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_type_of_every_session_draws_on_one_user_budget() {
    let s = TestServer::start_with(config(Protection {
        user_rate: 0.5,
        user_burst: 7.0,
        ..Protection::default()
    }))
    .await;
    let (alice, bob) = (s.signup("alice").await, s.signup("bob").await);
    let (mut a1, _) = s.ws(&alice).await;
    let (mut a2, _) = s.ws(&alice).await;
    // The burst of 7: an HTTP write (the group), then over two sessions a
    // send, a history, a sync, a presence subscription, four pings (a
    // quarter each) and a send.
    let conv = s.group(&alice, &[&bob]).await;
    let mut got = Vec::new();
    got.push(
        answer(
            &mut a1,
            json!({"type":"send","id":"1","to":bob.id,"body":"hi"}),
        )
        .await,
    );
    got.push(
        answer(
            &mut a2,
            json!({"type":"history","id":"2","conversation_id":conv}),
        )
        .await,
    );
    got.push(answer(&mut a1, json!({"type":"sync","id":"3"})).await);
    a2.send(json!({"type":"presence_subscribe","id":"4","user_ids":[bob.id]}))
        .await;
    got.push(
        a2.until("presence").await.0["type"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    for i in 0..4 {
        got.push(answer(&mut a1, json!({"type":"ping","id":format!("p{i}")})).await);
    }
    got.push(
        answer(
            &mut a2,
            json!({"type":"send","id":"5","to":bob.id,"body":"two"}),
        )
        .await,
    );
    assert_eq!(
        got,
        [
            "sent", "history", "synced", "presence", "pong", "pong", "pong", "pong", "sent"
        ]
    );
    // Spent: the other session is refused too, for every kind of frame.
    assert_eq!(
        answer(
            &mut a2,
            json!({"type":"send","id":"6","to":bob.id,"body":"x"})
        )
        .await,
        "rate_limited"
    );
    assert_eq!(
        answer(
            &mut a1,
            json!({"type":"history","id":"7","conversation_id":conv})
        )
        .await,
        "rate_limited"
    );
    // Frames without an id are answered too (acks, reads, typing).
    a1.send(json!({"type":"typing","conversation_id":conv}))
        .await;
    let refused = a1.next().await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("retry in"),
        "{refused}"
    );
    // Bob's budget is his own.
    let (mut b, _) = s.ws(&bob).await;
    assert_eq!(
        answer(
            &mut b,
            json!({"type":"send","id":"1","to":alice.id,"body":"hey"})
        )
        .await,
        "sent"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_of_one_address_share_its_budget() {
    let s = TestServer::start_with(config(Protection {
        addr_rate: 0.5,
        addr_burst: 4.0,
        ..Protection::default()
    }))
    .await;
    let (alice, bob, carol) = (
        s.signup("alice").await,
        s.signup("bob").await,
        s.signup("carol").await,
    );
    let mut a = ws_from(s.addr, &alice, [127, 0, 0, 10]).await;
    let mut b = ws_from(s.addr, &bob, [127, 0, 0, 10]).await;
    let mut c = ws_from(s.addr, &carol, [127, 0, 0, 11]).await;
    let send = |n: u32, to: &str| json!({"type":"send","id":n.to_string(),"to":to,"body":"m"});
    for n in 0..2 {
        assert_eq!(answer(&mut a, send(n, &carol.id)).await, "sent");
        assert_eq!(answer(&mut b, send(n, &carol.id)).await, "sent");
    }
    assert_eq!(answer(&mut a, send(9, &carol.id)).await, "rate_limited");
    assert_eq!(answer(&mut b, send(9, &carol.id)).await, "rate_limited");
    // Carol is at another address.
    assert_eq!(answer(&mut c, send(1, &alice.id)).await, "sent");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_bigger_than_the_connection_can_carry_is_cut_to_fit() {
    let s = TestServer::start_with(config(Protection::unlimited())).await;
    let (alice, bob) = (s.signup("alice").await, s.signup("bob").await);
    let (mut a, _) = s.ws(&alice).await;
    let body = "x".repeat(10_000);
    let mut conv = String::new();
    for i in 0..50 {
        let sent = a.send_text(&bob.id, &body, &i.to_string()).await;
        conv = sent["conversation_id"].as_str().unwrap().to_owned();
    }
    a.send(json!({"type":"history","id":"h","conversation_id":conv,"limit":50}))
        .await;
    let (page, _) = a.until("history").await;
    let messages = page["messages"].as_array().unwrap();
    // 50 × 10 KB is over the 256 KiB the connection can hold: a shorter
    // page, newest first, and the connection lives on.
    assert!((10..50).contains(&messages.len()), "{}", messages.len());
    assert!(page.to_string().len() <= 256 * 1024);
    a.roundtrip("alive").await;
    // The rest comes with `before`.
    let oldest = messages.last().unwrap()["message_id"].clone();
    a.send(json!({"type":"history","id":"h2","conversation_id":conv,"before":oldest,"limit":50}))
        .await;
    let (rest, _) = a.until("history").await;
    assert!(!rest["messages"].as_array().unwrap().is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_and_ack_are_bounded_by_the_newest_stored_message() {
    let s = TestServer::start_with(TestServer::config()).await;
    let (alice, bob) = (s.signup("alice").await, s.signup("bob").await);
    let (mut a, _) = s.ws(&alice).await;
    let (mut b, _) = s.ws(&bob).await;
    let first = a.send_text(&bob.id, "one", "1").await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    b.until("message").await;
    let max = u64::MAX.to_string();
    b.send(json!({"type":"read","conversation_id":conv,"message_id":max}))
        .await;
    b.send(json!({"type":"ack","conversation_id":conv,"message_id":max}))
        .await;
    b.roundtrip("after").await;
    // Alice's read receipt names the newest stored message, not u64::MAX.
    let (receipt, _) = a.until("receipt").await;
    assert_eq!(receipt["message_id"], first["message_id"], "{receipt}");
    // A later message still counts as unread, and is still delivered.
    a.send_text(&bob.id, "two", "2").await;
    let (m, _) = b.until("message").await;
    assert_eq!(m["message"]["body"], "two");
    let (_, list) = s.get("/api/conversations", &bob.token).await;
    assert_eq!(list["conversations"][0]["unread"], 1, "{list}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversed_direct_id_is_refused_and_groups_answer_one_404() {
    let s = TestServer::start_with(TestServer::config()).await;
    let (alice, bob, eve) = (
        s.signup("alice").await,
        s.signup("bob").await,
        s.signup("eve").await,
    );
    let (mut a, _) = s.ws(&alice).await;
    let sent = a.send_text(&bob.id, "hi", "1").await;
    let canonical = sent["conversation_id"].as_str().unwrap().to_owned();
    let (lo, hi) = if alice.id < bob.id {
        (&alice.id, &bob.id)
    } else {
        (&bob.id, &alice.id)
    };
    assert_eq!(canonical, format!("d:{lo}:{hi}"));
    let reversed = format!("d:{hi}:{lo}");
    let code = answer(
        &mut a,
        json!({"type":"send","id":"2","conversation_id":reversed,"body":"x"}),
    )
    .await;
    assert_eq!(code, "invalid_input");
    let (_, list) = s.get("/api/conversations", &alice.token).await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 1, "{list}");
    // An outsider cannot tell an existing direct conversation from nothing.
    let mut answers = Vec::new();
    for conv in [
        canonical.clone(),
        format!("d:{lo}:{}", eve.id),
        "g_000000000000000000000000".to_owned(),
    ] {
        let path = format!("/api/groups/{conv}/members");
        answers.push(
            s.post(&path, Some(&eve.token), json!({"user_id": eve.id}))
                .await,
        );
    }
    for (status, body) in &answers {
        assert_eq!(*status, 404, "{body}");
    }
    let (body_dm, body_none) = (&answers[0].1, &answers[1].1);
    assert_eq!(body_dm["error"]["code"], body_none["error"]["code"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_in_a_big_group_is_gated_per_conversation() {
    let s = TestServer::start_with(config(Protection::unlimited())).await;
    let mut members = Vec::new();
    for i in 0..34 {
        members.push(s.signup(&format!("member{i}")).await);
    }
    let refs: Vec<&User> = members[1..].iter().collect();
    let conv = s.group(&members[0], &refs).await;
    let (mut typist, _) = s.ws(&members[0]).await;
    let (mut listener, _) = s.ws(&members[1]).await;
    for _ in 0..20 {
        typist
            .send(json!({"type":"typing","conversation_id":conv}))
            .await;
    }
    typist
        .send(json!({"type":"send","id":"m","conversation_id":conv,"body":"done typing"}))
        .await;
    let (_, before) = tokio::time::timeout(HANG, listener.until("message"))
        .await
        .unwrap();
    let typing = before.iter().filter(|f| f["type"] == "typing").count();
    // A burst of 3, and at most one more if a second went by.
    assert!((1..=4).contains(&typing), "{typing} typing frames of 20");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_users_messages_arrive_while_another_address_attacks() {
    let s = TestServer::start_with(TestServer::config()).await;
    let (bob, carol, mallory) = (
        s.signup("bob").await,
        s.signup("carol").await,
        s.signup("mallory").await,
    );
    let attacker = [127, 0, 0, 20];
    let mut m = ws_from(s.addr, &mallory, attacker).await;
    let http = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(attacker))
        .build()
        .unwrap();
    let url = s.url("/api/login");
    let target = carol.id.clone();
    // The attack: a flood of sends, and wrong passwords for bob's name.
    let flood = tokio::spawn(async move {
        let mut limited = 0;
        for i in 0..400 {
            m.send(json!({"type":"send","id":i.to_string(),"to":target,"body":"spam"}))
                .await;
        }
        for _ in 0..400 {
            let f = m.next().await;
            if f["code"] == "rate_limited" {
                limited += 1;
            }
        }
        limited
    });
    let guesses = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let res = http
                .post(&url)
                .json(&json!({"username": "bob", "password": "guessing away"}))
                .send()
                .await
                .unwrap();
            statuses.push(res.status().as_u16());
        }
        statuses
    });
    // Meanwhile bob, from his own address, chats with carol.
    let (mut b, _) = s.ws(&bob).await;
    let (mut c, _) = s.ws(&carol).await;
    for i in 0..20 {
        let sent = b
            .send_text(&carol.id, &format!("normal {i}"), &format!("b{i}"))
            .await;
        assert!(sent["message_id"].is_string(), "{sent}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut from_bob = Vec::new();
    while from_bob.len() < 20 {
        let (f, _) = c.until("message").await;
        if f["message"]["sender_id"] == bob.id.as_str() {
            from_bob.push(f["message"]["body"].as_str().unwrap().to_owned());
        }
    }
    let want: Vec<String> = (0..20).map(|i| format!("normal {i}")).collect();
    assert_eq!(from_bob, want);
    let limited = tokio::time::timeout(HANG, flood).await.unwrap().unwrap();
    assert!(
        limited >= 300,
        "only {limited} of 400 flood sends were refused"
    );
    let statuses = tokio::time::timeout(HANG, guesses).await.unwrap().unwrap();
    assert!(statuses.contains(&429), "{statuses:?}");
    s.stop().await;
}
