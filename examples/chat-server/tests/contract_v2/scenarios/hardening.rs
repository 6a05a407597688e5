//! "Limits a public server needs": the parts that a store or a second node
//! could get wrong, on every target. Usernames are one name after NFKC and
//! case folding (the store's uniqueness must hold it, also when the
//! look-alike signs up on the other node); short passwords, invisible and
//! bidi characters, and over-long device names are refused; history pages
//! walk a conversation once, over HTTP and WebSocket; every node answers
//! `/healthz`, and `/readyz` with 200 (or, for a moment under load, 503
//! `unavailable`).
//!
//! Budgets, throttling and connection caps are process-local and off in
//! this suite (the scenarios run at once from one address): they are
//! checked from outside by auth_limits, ws_limits and network_limits.

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Answer, Env, HANG, str_of};

async fn signup(env: &Env, node: usize, body: Value) -> Answer {
    env.call_on(node, Method::POST, "/api/signup", None, Some(body))
        .await
}

async fn login(env: &Env, node: usize, body: Value) -> Answer {
    env.call_on(node, Method::POST, "/api/login", None, Some(body))
        .await
}

/// `name` in fullwidth forms (NFKC folds them back to ASCII).
fn fullwidth(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

pub async fn names_passwords_and_device_names_are_checked(env: &Env) {
    let (here, there) = (0, env.other_node(0));
    let name = format!("Look{:08x}", rand::random::<u32>());
    let password = "long enough";
    let made = signup(env, here, json!({"username": name, "password": password})).await;
    let made = made.expect(201, "the first signup").clone();
    // Look-alikes are the same name, on either node.
    for taken in [name.to_lowercase(), name.to_uppercase(), fullwidth(&name)] {
        signup(env, there, json!({"username": taken, "password": password}))
            .await
            .refused(
                409,
                "already_exists",
                &format!("signing up {taken:?} again"),
            );
    }
    // Logging in by a look-alike finds the account.
    let upper = name.to_uppercase();
    let again = login(env, there, json!({"username": upper, "password": password})).await;
    let again = again.expect(200, "a login by the upper-case name").clone();
    assert_eq!(again["user_id"], made["user_id"], "{again}");
    let me = env
        .call_on(
            there,
            Method::GET,
            "/api/me",
            Some(&str_of(&again["token"])),
            None,
        )
        .await;
    let me = me.expect(200, "me");
    assert_eq!(me["username"], name.to_lowercase(), "{me}");
    assert_eq!(me["display_name"], name.as_str(), "{me}");

    // Refused names and passwords, with the code that says why.
    let fresh = || format!("new{:08x}", rand::random::<u32>());
    for (username, password, what) in [
        (
            fresh(),
            "7 chars".to_owned(),
            "a password under 8 characters",
        ),
        (
            format!("{}\u{200B}x", fresh()),
            "long enough".into(),
            "a zero-width space",
        ),
        (
            format!("{}\u{202E}x", fresh()),
            "long enough".into(),
            "a bidi override",
        ),
        (
            format!("\u{0430}{}", fresh()),
            "long enough".into(),
            "mixed scripts",
        ),
        (String::new(), "long enough".into(), "an empty name"),
    ] {
        signup(
            env,
            here,
            json!({"username": username, "password": password}),
        )
        .await
        .refused(400, "invalid_input", what);
    }

    // Device names: up to 64 characters, no controls.
    let at_limit = "d".repeat(64);
    let ok = login(
        env,
        there,
        json!({"username": name, "password": password, "device": at_limit}),
    )
    .await;
    let ok = ok.expect(200, "a 64-character device name").clone();
    for (device, what) in [
        ("d".repeat(65), "a 65-character device name"),
        ("two\nlines".to_owned(), "a device name with a newline"),
    ] {
        login(
            env,
            here,
            json!({"username": name, "password": password, "device": device}),
        )
        .await
        .refused(400, "invalid_input", what);
        signup(
            env,
            here,
            json!({"username": fresh(), "password": password, "device": device}),
        )
        .await
        .refused(400, "invalid_input", what);
    }
    // Nothing was made by the refused logins: the devices are the first
    // one, the upper-case login's and the 64-character one.
    let list = env
        .call_on(
            here,
            Method::GET,
            "/api/devices",
            Some(&str_of(&ok["token"])),
            None,
        )
        .await;
    let devices = list.expect(200, "devices")["devices"]
        .as_array()
        .expect("a devices array")
        .clone();
    assert_eq!(devices.len(), 3, "{devices:?}");
    assert!(
        devices.iter().any(|d| d["name"] == at_limit.as_str()),
        "{devices:?}"
    );
}

/// The ids of a history page.
fn ids(page: &[Value]) -> Vec<String> {
    page.iter().map(|m| str_of(&m["message_id"])).collect()
}

pub async fn history_pages_walk_a_conversation_once(env: &Env) {
    let owner = env.user("pager").await;
    let reader = env.user("reader").await;
    let g = env.group(&owner, &[&reader], json!({})).await;
    let (mut wo, _) = env.ws(&owner).await;
    let mut sent = Vec::new();
    for i in 0..25 {
        sent.push(wo.say(&g, &format!("page text {i}")).await);
    }
    sent.reverse(); // newest first, as history answers

    // Over HTTP, from the reader's node, 10 at a time.
    let mut walked = Vec::new();
    let mut before: Option<String> = None;
    for round in 0..5 {
        let path = match &before {
            Some(b) => format!("/api/conversations/{g}/messages?limit=10&before={b}"),
            None => format!("/api/conversations/{g}/messages?limit=10"),
        };
        let page = env.get(&reader, &path).await;
        let page = page.expect(200, "a history page")["messages"]
            .as_array()
            .expect("messages")
            .clone();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10, "round {round}: {}", page.len());
        walked.extend(ids(&page));
        before = walked.last().cloned();
    }
    assert_eq!(walked, sent, "HTTP pages: every message once, newest first");

    // Over the WebSocket, the same walk.
    let (mut wr, _) = env.ws(&reader).await;
    let mut walked = Vec::new();
    let mut before: Option<String> = None;
    for round in 0..5 {
        let mut frame = json!({"type": "history", "id": format!("h{round}"), "conversation_id": g, "limit": 10});
        if let Some(b) = &before {
            frame["before"] = json!(b);
        }
        let (answer, _) = wr.ask(frame).await;
        assert_eq!(answer["type"], "history", "{answer}");
        let page = answer["messages"].as_array().expect("messages").clone();
        if page.is_empty() {
            break;
        }
        walked.extend(ids(&page));
        before = walked.last().cloned();
    }
    assert_eq!(walked, sent, "WebSocket pages: every message once");

    // Bad page bounds are refused.
    for (query, what) in [
        ("limit=0", "a zero limit"),
        ("limit=ten", "a limit that is no number"),
        ("before=yesterday", "a before that is no id"),
    ] {
        env.get(&reader, &format!("/api/conversations/{g}/messages?{query}"))
            .await
            .refused(400, "invalid_input", what);
    }
}

pub async fn every_node_answers_health_and_readiness(env: &Env) {
    for node in 0..env.nodes.len() {
        let a = env.call_on(node, Method::GET, "/healthz", None, None).await;
        assert_eq!(a.status, 200, "node {node} /healthz: {:?}", a.body);
        // Ready while its store and cluster answer within its own deadline,
        // which the other scenarios' load on a small machine may pass for
        // a moment (a 503 then is right): it must be ready again soon.
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            let a = env.call_on(node, Method::GET, "/readyz", None, None).await;
            if a.status == 200 {
                break;
            }
            assert_eq!(a.status, 503, "node {node} /readyz: {:?}", a.body);
            assert_eq!(a.code(), Some("unavailable"), "{:?}", a.body);
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {node} /readyz stayed 503 for {HANG:?}: {:?}",
                a.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
