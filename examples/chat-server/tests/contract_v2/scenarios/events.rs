//! "Message events": replies, edits (the sender only), deletes (the sender,
//! or a group's owner or admin), reactions (any member; empty removes),
//! each an event with its own id delivered like a message; retries by
//! `client_msg_id`; history showing each message as it is now; and a device
//! that was away converging through sync.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::client::{Env, User, Ws, str_of};

/// Sends an event or message frame (`id` added) and returns its `sent`.
async fn sent(ws: &mut Ws, mut frame: Value) -> Value {
    let id = format!("e-{:x}", rand::random::<u64>());
    frame["id"] = json!(id);
    let what = frame.to_string();
    let (answer, _) = ws.ask(frame).await;
    assert_eq!(answer["type"], "sent", "{what} answered {answer}");
    answer
}

fn edit(c: &str, m: &str, body: &str) -> Value {
    json!({"type": "edit", "conversation_id": c, "message_id": m, "body": body})
}

fn delete(c: &str, m: &str) -> Value {
    json!({"type": "delete", "conversation_id": c, "message_id": m})
}

fn react(c: &str, m: &str, emoji: &str) -> Value {
    json!({"type": "react", "conversation_id": c, "message_id": m, "emoji": emoji})
}

/// A group of `o` (owner), `a` (admin) and `members`.
async fn group(env: &Env, o: &User, a: &User, members: &[&User]) -> String {
    let mut all = vec![a];
    all.extend_from_slice(members);
    let g = env.group(o, &all, json!({})).await;
    env.call(
        o,
        reqwest::Method::PUT,
        &format!("/api/groups/{g}/members/{}/role", a.id),
        Some(json!({"role": "admin"})),
    )
    .await
    .expect(204, "an admin");
    g
}

/// The history entry with `id`.
fn entry<'a>(history: &'a [Value], id: &str) -> &'a Value {
    history
        .iter()
        .find(|m| m["message_id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in history: {history:?}"))
}

pub async fn replies_edits_deletes_and_reactions(env: &Env) {
    let o = env.user("owner").await;
    let a = env.user("admin").await;
    let m = env.user("member").await;
    let q = env.user("other").await;
    let g = group(env, &o, &a, &[&m, &q]).await;
    let (mut wo, _) = env.ws(&o).await;
    let (mut wm, _) = env.ws(&m).await;
    let (mut wq, _) = env.ws(&q).await;

    // A message and a reply to it; both reach every member.
    let h = wm.say(&g, "hello").await;
    let reply = sent(
        &mut wq,
        json!({"type": "send", "conversation_id": g, "body": "hi back", "in_reply_to": h}),
    )
    .await;
    let r = str_of(&reply["message_id"]);
    for ws in [&mut wo, &mut wm] {
        let got = ws.message(&r).await;
        assert_eq!(got["in_reply_to"], h.as_str(), "{got}");
        assert_eq!(got["kind"], "text", "{got}");
    }

    // An edit by the sender: an event with its own id, delivered to all.
    let e1 = str_of(&sent(&mut wm, edit(&g, &h, "hello, edited")).await["message_id"]);
    assert!(
        e1.parse::<u64>().unwrap() > r.parse::<u64>().unwrap(),
        "in the log's order"
    );
    for ws in [&mut wo, &mut wq] {
        let got = ws.message(&e1).await;
        assert_eq!(
            (
                &got["kind"],
                &got["ref_id"],
                &got["body"],
                &got["sender_id"]
            ),
            (
                &json!("edit"),
                &json!(h),
                &json!("hello, edited"),
                &json!(m.id)
            ),
            "{got}"
        );
    }
    // Reactions: one per user, a new one replaces, an empty one removes.
    let mut reactions = Vec::new();
    for (by_q, emoji) in [(true, "👍"), (false, "❤"), (true, "🎉"), (false, "")] {
        let ws = if by_q { &mut wq } else { &mut wo };
        reactions.push(str_of(&sent(ws, react(&g, &h, emoji)).await["message_id"]));
    }
    let got = wm.message(reactions.last().unwrap()).await;
    assert_eq!(
        (&got["kind"], &got["ref_id"], &got["body"]),
        (&json!("reaction"), &json!(h), &json!("")),
        "{got}"
    );
    // Deletes: the admin deletes another's reply, the sender its own.
    let d1 = str_of(&sent(&mut wo, delete(&g, &r)).await["message_id"]);
    let got = wq.message(&d1).await;
    assert_eq!(
        (&got["kind"], &got["ref_id"]),
        (&json!("delete"), &json!(r)),
        "{got}"
    );
    let late = wm.say(&g, "to be deleted").await;
    let d2 = str_of(&sent(&mut wm, delete(&g, &late)).await["message_id"]);
    wq.message(&d2).await;
    // The owner deletes someone's message too.
    let third = wq.say(&g, "owner deletes this").await;
    sent(&mut wo, delete(&g, &third)).await;

    // History: each message as it is now, and the events in id order.
    let history = env.history(&q, &g).await;
    let hm = entry(&history, &h);
    assert_eq!(
        (&hm["body"], &hm["edited"]),
        (&json!("hello, edited"), &json!(true)),
        "{hm}"
    );
    assert_eq!(hm["reactions"], json!({"🎉": [q.id]}), "{hm}");
    let rm = entry(&history, &r);
    assert_eq!(
        (&rm["body"], &rm["deleted"], &rm["in_reply_to"]),
        (&json!(""), &json!(true), &json!(h)),
        "{rm}"
    );
    assert_eq!(entry(&history, &late)["deleted"], true);
    assert_eq!(entry(&history, &third)["deleted"], true);
    let mut events: Vec<&str> = history
        .iter()
        .filter(|m| m["kind"] != "text" && m["kind"] != "group_event")
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    events.reverse();
    let mut want = vec![e1.as_str()];
    want.extend(reactions.iter().map(String::as_str));
    want.extend([d1.as_str(), d2.as_str()]);
    assert_eq!(&events[..want.len()], &want[..], "the events, in id order");
    let ids: Vec<u64> = history
        .iter()
        .map(|m| str_of(&m["message_id"]).parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");

    // Retries: a repeated client_msg_id answers the first id, stores nothing new.
    for frame in [
        json!({"type": "send", "conversation_id": g, "body": "once", "client_msg_id": "k-send"}),
        json!({"type": "edit", "conversation_id": g, "message_id": h, "body": "once more",
               "client_msg_id": "k-edit"}),
        json!({"type": "react", "conversation_id": g, "message_id": h, "emoji": "👀",
               "client_msg_id": "k-react"}),
    ] {
        let first = sent(&mut wm, frame.clone()).await;
        let again = sent(&mut wm, frame.clone()).await;
        assert_eq!(first["message_id"], again["message_id"], "{frame}");
    }
    let history = env.history(&m, &g).await;
    assert_eq!(history.iter().filter(|e| e["body"] == "once").count(), 1);
    assert_eq!(
        history.iter().filter(|e| e["body"] == "once more").count(),
        2,
        "the edit and the message it edited"
    );
}

pub async fn events_are_refused_unless_allowed(env: &Env) {
    let o = env.user("owner").await;
    let a = env.user("admin").await;
    let m = env.user("member").await;
    let q = env.user("other").await;
    let n = env.user("outsider").await;
    let g = group(env, &o, &a, &[&m, &q]).await;
    let other_group = env.group(&o, &[&q], json!({})).await;
    let (mut wo, _) = env.ws(&o).await;
    let (mut wa, _) = env.ws(&a).await;
    let (mut wm, _) = env.ws(&m).await;
    let (mut wq, _) = env.ws(&q).await;
    let (mut wn, _) = env.ws(&n).await;
    let h = wm.say(&g, "mine").await;
    let elsewhere = wo.say(&other_group, "elsewhere").await;

    // Edits: the sender only (not the owner, not an admin).
    for ws in [&mut wo, &mut wa, &mut wq] {
        ws.refused(with_id(edit(&g, &h, "not yours")), "forbidden")
            .await;
    }
    // Deletes: not a plain member who is not the sender.
    wq.refused(with_id(delete(&g, &h)), "forbidden").await;
    // Outsiders do nothing at all.
    for frame in [edit(&g, &h, "x"), delete(&g, &h), react(&g, &h, "👍")] {
        wn.refused(with_id(frame), "not_member").await;
    }
    // Targets: not of this conversation, not a message, unknown.
    wm.refused(
        with_id(
            json!({"type": "send", "conversation_id": g, "body": "re", "in_reply_to": elsewhere}),
        ),
        "not_found",
    )
    .await;
    wo.refused(with_id(react(&g, &elsewhere, "👍")), "not_found")
        .await;
    let e = str_of(&sent(&mut wm, edit(&g, &h, "edited")).await["message_id"]);
    wm.refused(with_id(edit(&g, &e, "an edit of an edit")), "not_found")
        .await;
    wm.refused(with_id(edit(&g, "1", "nothing")), "not_found")
        .await;
    // A deleted message cannot be edited back; bad bodies.
    wm.refused(with_id(edit(&g, &h, "")), "invalid_input").await;
    wq.refused(with_id(react(&g, &h, &"x".repeat(40))), "invalid_input")
        .await;
    sent(&mut wm, delete(&g, &h)).await;
    wm.refused(with_id(edit(&g, &h, "back")), "invalid_input")
        .await;

    // In a direct conversation only the sender deletes.
    let (d, _) = wm
        .ask(json!({"type": "send", "id": "d", "to": q.id, "body": "between us"}))
        .await;
    let dc = str_of(&d["conversation_id"]);
    let dm = str_of(&d["message_id"]);
    wq.refused(with_id(delete(&dc, &dm)), "forbidden").await;
    wq.refused(with_id(edit(&dc, &dm, "mine now")), "forbidden")
        .await;
    sent(&mut wq, react(&dc, &dm, "👍")).await;
    sent(&mut wm, delete(&dc, &dm)).await;
    // Nothing refused changed anything.
    let history = env.history(&m, &g).await;
    let hm = entry(&history, &h);
    assert_eq!(
        (&hm["deleted"], &hm["body"]),
        (&json!(true), &json!("")),
        "{hm}"
    );
    assert!(
        !history
            .iter()
            .any(|e| e["body"] == "not yours" || e["body"] == "x"),
        "{history:?}"
    );
}

fn with_id(mut frame: Value) -> Value {
    frame["id"] = json!(format!("r-{:x}", rand::random::<u64>()));
    frame
}

/// A text message as a client shows it after applying `events` in order.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shown {
    body: String,
    edited: bool,
    deleted: bool,
    reactions: BTreeMap<String, Vec<String>>,
}

/// What a client makes of a stream of message frames: every text message
/// with the events about it applied in id order.
fn apply(frames: &[Value]) -> BTreeMap<String, Shown> {
    let mut shown: BTreeMap<String, Shown> = BTreeMap::new();
    for m in frames {
        let target = str_of(
            m.get("ref_id")
                .filter(|r| !r.is_null())
                .unwrap_or(&m["message_id"]),
        );
        let body = str_of(&m["body"]);
        let sender = str_of(&m["sender_id"]);
        match m["kind"].as_str().unwrap_or("text") {
            "text" => {
                shown.insert(
                    target,
                    Shown {
                        body,
                        ..Shown::default()
                    },
                );
            }
            "edit" => {
                let s = shown.entry(target).or_default();
                s.body = body;
                s.edited = true;
            }
            "delete" => {
                let s = shown.entry(target).or_default();
                s.body.clear();
                s.deleted = true;
            }
            "reaction" => {
                let s = shown.entry(target).or_default();
                for users in s.reactions.values_mut() {
                    users.retain(|u| *u != sender);
                }
                s.reactions.retain(|_, users| !users.is_empty());
                if !body.is_empty() {
                    s.reactions.entry(body).or_default().push(sender);
                }
            }
            other => panic!("unknown kind {other}: {m}"),
        }
    }
    shown
}

/// History's view of the text messages.
fn as_history(history: &[Value]) -> BTreeMap<String, Shown> {
    history
        .iter()
        .filter(|m| m["kind"].as_str().unwrap_or("text") == "text")
        .map(|m| {
            let reactions = m["reactions"]
                .as_object()
                .map(|r| {
                    r.iter()
                        .map(|(e, users)| {
                            (
                                e.clone(),
                                users.as_array().unwrap().iter().map(str_of).collect(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                str_of(&m["message_id"]),
                Shown {
                    body: str_of(&m["body"]),
                    edited: m["edited"] == true,
                    deleted: m["deleted"] == true,
                    reactions,
                },
            )
        })
        .collect()
}

pub async fn an_offline_device_converges_through_sync(env: &Env) {
    let m = env.user("sender").await;
    let q = env.user("reader").await;
    let laptop = env.login_on(&q, "laptop", env.other_node(q.node)).await;
    let g = env.group(&m, &[&q], json!({})).await;
    // The laptop connects once (it has a place to resume from), then goes away.
    env.ws(&laptop).await.0.close().await;
    let (mut wm, _) = env.ws(&m).await;
    let (mut wq, _) = env.ws(&q).await;
    let h1 = wm.say(&g, "first").await;
    let h2 = wm.say(&g, "second").await;
    let h3 = wm.say(&g, "third").await;
    sent(&mut wm, edit(&g, &h1, "first, edited")).await;
    sent(&mut wq, react(&g, &h2, "👍")).await;
    sent(&mut wm, react(&g, &h2, "🎉")).await;
    sent(&mut wq, react(&g, &h2, "")).await;
    let last = str_of(&sent(&mut wm, delete(&g, &h3)).await["message_id"]);
    wq.message(&last).await;

    // The laptop's sync: in id order, and applied, the same as history.
    let (_wl, synced) = env.ws(&laptop).await;
    let frames: Vec<Value> = synced
        .iter()
        .filter(|f| f["type"] == "message" && f["message"]["conversation_id"] == g.as_str())
        .map(|f| f["message"].clone())
        .collect();
    let ids: Vec<u64> = frames
        .iter()
        .map(|f| str_of(&f["message_id"]).parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert_eq!(frames.len(), 8, "3 messages and 5 events: {frames:?}");
    let on_laptop = apply(&frames);
    let history = as_history(&env.history(&laptop, &g).await);
    assert_eq!(on_laptop, history);
    assert_eq!(history[&h1].body, "first, edited");
    assert_eq!(
        history[&h2].reactions,
        BTreeMap::from([("🎉".to_owned(), vec![m.id.clone()])])
    );
    assert!(history[&h3].deleted);
}
