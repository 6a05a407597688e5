//! Version 2 of the contract at the engine: groups with roles, join policy,
//! history since join, invites, blocks and presence privacy. Each refused
//! case is checked for its error and for changing nothing.

mod support;

use chat_core::engine::NewGroup;
use chat_core::model::{GroupSettings, HistoryVisibility, JoinPolicy, Role};
use chat_core::{ConversationId, Error, UserId};
use serde_json::json;
use support::{Client, engine, group, signup};

async fn roles(
    engine: &chat_core::engine::Engine,
    actor: &UserId,
    g: &ConversationId,
) -> Vec<(UserId, Role)> {
    let mut out: Vec<(UserId, Role)> = engine
        .group(actor, g)
        .await
        .expect("group")
        .members
        .into_iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn roles_decide_who_adds_removes_and_changes_what() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let admin = signup(&e, "admin").await;
    let plain = signup(&e, "plain").await;
    let other = signup(&e, "other").await;
    let outsider = signup(&e, "outsider").await;
    let g = group(&e, &owner, "club", &[admin.clone(), plain.clone()]).await;

    // Only the owner changes roles; there is no "owner" role to give.
    assert!(matches!(
        e.set_role(&admin, &g, &plain, Role::Admin).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        e.set_role(&owner, &g, &plain, Role::Owner).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        e.set_role(&owner, &g, &outsider, Role::Admin).await,
        Err(Error::NotFound { .. })
    ));
    e.set_role(&owner, &g, &admin, Role::Admin).await.unwrap();

    // A plain member cannot add; an admin can; nobody adds to a group it is not in.
    assert!(matches!(
        e.add_member(&plain, &g, &other).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        e.add_member(&outsider, &g, &other).await,
        Err(Error::NotMember { .. })
    ));
    e.add_member(&admin, &g, &other).await.unwrap();
    assert!(matches!(
        e.add_member(&admin, &g, &UserId::from("u-nobody")).await,
        Err(Error::NotFound { .. })
    ));

    // An admin removes plain members, never the owner or another admin.
    assert!(matches!(
        e.remove_member(&admin, &g, &owner).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        e.remove_member(&plain, &g, &other).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        e.remove_member(&admin, &g, &outsider).await,
        Err(Error::NotFound { .. })
    ));
    e.remove_member(&admin, &g, &other).await.unwrap();

    // Settings: owner or admin; a plain member is refused and nothing changes.
    let refused = e
        .update_group(
            &plain,
            &g,
            GroupSettings {
                name: Some("mine".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(refused, Err(Error::Forbidden { .. })));
    let info = e
        .update_group(
            &admin,
            &g,
            GroupSettings {
                name: Some("renamed".into()),
                join: Some(JoinPolicy::Open),
                history: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(info.conversation.name.as_deref(), Some("renamed"));
    assert_eq!(info.conversation.join, JoinPolicy::Open);
    assert!(matches!(
        e.update_group(
            &admin,
            &g,
            GroupSettings {
                name: Some(" ".into()),
                ..Default::default()
            }
        )
        .await,
        Err(Error::InvalidInput { .. })
    ));

    let mut expected = vec![
        (owner.clone(), Role::Owner),
        (admin.clone(), Role::Admin),
        (plain.clone(), Role::Member),
    ];
    expected.sort();
    assert_eq!(roles(&e, &owner, &g).await, expected);
    assert!(matches!(
        e.group(&outsider, &g).await,
        Err(Error::NotMember { .. })
    ));
    // A direct conversation is not a group: the same NotFound as no group at all.
    let dm = e.direct_conversation(&owner, &plain).await.unwrap();
    assert!(matches!(
        e.add_member(&owner, &dm, &other).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        e.add_member(&owner, &ConversationId::from("g_none"), &other)
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn the_owner_leaving_hands_the_group_to_the_longest_standing_admin() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let early = signup(&e, "early").await;
    let admin_late = signup(&e, "late-admin").await;
    let admin_early = signup(&e, "early-admin").await;
    let g = group(&e, &owner, "g", std::slice::from_ref(&early)).await;
    e.add_member(&owner, &g, &admin_early).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    e.add_member(&owner, &g, &admin_late).await.unwrap();
    e.set_role(&owner, &g, &admin_late, Role::Admin)
        .await
        .unwrap();
    e.set_role(&owner, &g, &admin_early, Role::Admin)
        .await
        .unwrap();
    let mut watcher = Client::connect_drained(&e, &early).await;
    e.remove_member(&owner, &g, &owner).await.unwrap();
    let left = watcher.expect("group_event").await;
    assert_eq!(
        (left["event"].as_str(), left["user_id"].as_str()),
        (Some("left"), Some(owner.as_str()))
    );
    let role = watcher.expect("group_event").await;
    assert_eq!(
        (
            role["event"].as_str(),
            role["user_id"].as_str(),
            role["role"].as_str()
        ),
        (Some("role"), Some(admin_early.as_str()), Some("owner")),
        "the admin who joined first (not the member who joined earlier) becomes owner"
    );
    let r = roles(&e, &early, &g).await;
    assert!(r.contains(&(admin_early.clone(), Role::Owner)));
    assert!(r.contains(&(admin_late, Role::Admin)));
}

#[tokio::test]
async fn join_policy_and_bans() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let joe = signup(&e, "joe").await;
    let g = e
        .create_group(
            &owner,
            NewGroup {
                name: "open".into(),
                join: JoinPolicy::Open,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    e.add_member(&joe, &g, &joe)
        .await
        .expect("anyone joins an open group");
    e.remove_member(&joe, &g, &joe)
        .await
        .expect("anyone leaves");
    e.add_member(&joe, &g, &joe)
        .await
        .expect("one who left may come back");
    e.remove_member(&owner, &g, &joe).await.unwrap();
    assert!(
        matches!(
            e.add_member(&joe, &g, &joe).await,
            Err(Error::Forbidden { .. })
        ),
        "one removed by the owner cannot add itself back"
    );
    assert!(matches!(
        e.group(&joe, &g).await,
        Err(Error::NotMember { .. })
    ));
    e.add_member(&owner, &g, &joe)
        .await
        .expect("the owner adds him back");
    e.remove_member(&joe, &g, &joe).await.unwrap();
    e.add_member(&joe, &g, &joe)
        .await
        .expect("the ban ended when the owner added him");

    let closed = group(&e, &owner, "invite-only", &[]).await;
    assert!(matches!(
        e.add_member(&joe, &closed, &joe).await,
        Err(Error::Forbidden { .. })
    ));
}

#[tokio::test]
async fn since_join_history_sync_and_unread_start_at_the_latest_join() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let late = signup(&e, "late").await;
    let g = group(&e, &owner, "g", &[]).await;
    let mut o = Client::connect(&e, &owner).await;
    for body in ["one", "two"] {
        o.send(json!({"type":"send","id":body,"conversation_id":g.as_str(),"body":body}))
            .await;
        o.expect("sent").await;
    }
    e.add_member(&owner, &g, &late).await.unwrap();
    o.expect("group_event").await;
    o.send(json!({"type":"send","id":"3","conversation_id":g.as_str(),"body":"three"}))
        .await;
    o.expect("sent").await;

    let history = e.history(&late, &g, None, None).await.unwrap();
    let bodies: Vec<&str> = history.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        vec!["three"],
        "since_join: history starts at the join"
    );
    let list = e.conversations(&late).await.unwrap();
    assert_eq!(
        list[0].unread, 1,
        "unread counts only what came after the join"
    );
    let mut l = Client::connect_raw(&e, &late).await;
    assert_eq!(l.expect("group_event").await["event"], "added");
    assert_eq!(l.expect("message").await["message"]["body"], "three");
    l.expect("synced").await;

    // With history "all", the whole stored history shows, sync still starts at the join.
    e.update_group(
        &owner,
        &g,
        GroupSettings {
            history: Some(HistoryVisibility::All),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    o.expect("group_event").await;
    let all = e.history(&late, &g, None, None).await.unwrap();
    assert_eq!(all.len(), 3);

    // Removed and re-added: it starts again at the new join, and reads nothing while out.
    e.update_group(
        &owner,
        &g,
        GroupSettings {
            history: Some(HistoryVisibility::SinceJoin),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    e.remove_member(&owner, &g, &late).await.unwrap();
    assert!(matches!(
        e.history(&late, &g, None, None).await,
        Err(Error::NotMember { .. })
    ));
    o.expect("group_event").await;
    o.expect("group_event").await;
    o.send(json!({"type":"send","id":"4","conversation_id":g.as_str(),"body":"while out"}))
        .await;
    o.expect("sent").await;
    e.add_member(&owner, &g, &late).await.unwrap();
    assert!(e.history(&late, &g, None, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn group_events_reach_every_member_and_the_affected_user() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let a = signup(&e, "a").await;
    let b = signup(&e, "b").await;
    let g = group(&e, &owner, "g", std::slice::from_ref(&a)).await;
    let mut co = Client::connect(&e, &owner).await;
    let mut ca = Client::connect(&e, &a).await;
    let mut cb = Client::connect(&e, &b).await;
    e.add_member(&owner, &g, &b).await.unwrap();
    for c in [&mut co, &mut ca, &mut cb] {
        assert_eq!(c.expect("group_event").await["event"], "added");
    }
    e.set_role(&owner, &g, &b, Role::Admin).await.unwrap();
    for c in [&mut co, &mut ca, &mut cb] {
        let f = c.expect("group_event").await;
        assert_eq!(
            (f["event"].as_str(), f["role"].as_str()),
            (Some("role"), Some("admin"))
        );
    }
    e.update_group(
        &b,
        &g,
        GroupSettings {
            name: Some("new".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for c in [&mut co, &mut ca, &mut cb] {
        let f = c.expect("group_event").await;
        assert_eq!(
            (f["event"].as_str(), f["by"].as_str()),
            (Some("settings"), Some(b.as_str()))
        );
    }
    e.remove_member(&b, &g, &a).await.unwrap();
    for c in [&mut co, &mut ca, &mut cb] {
        let f = c.expect("group_event").await;
        assert_eq!(
            (f["event"].as_str(), f["user_id"].as_str()),
            (Some("removed"), Some(a.as_str()))
        );
    }
    // The removed member hears nothing more of the group.
    co.send(json!({"type":"send","id":"x","conversation_id":g.as_str(),"body":"after"}))
        .await;
    co.expect("sent").await;
    cb.expect("message").await;
    ca.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(ca.next().await["type"], "pong");
}

#[tokio::test]
async fn invites_join_once_per_use_and_stop_when_expired_used_or_revoked() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let plain = signup(&e, "plain").await;
    let (x, y, z) = (
        signup(&e, "x").await,
        signup(&e, "y").await,
        signup(&e, "z").await,
    );
    let g = group(&e, &owner, "g", std::slice::from_ref(&plain)).await;
    assert!(matches!(
        e.create_invite(&plain, &g, None, None).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        e.create_invite(&owner, &g, Some(0), None).await,
        Err(Error::InvalidInput { .. })
    ));
    let once = e.create_invite(&owner, &g, Some(1), None).await.unwrap();
    assert_eq!(once.len(), 32, "128 bits as hex");
    assert_eq!(e.accept_invite(&x, &once).await.unwrap(), g);
    assert!(matches!(
        e.accept_invite(&y, &once).await,
        Err(Error::Gone { .. })
    ));
    assert!(matches!(
        e.accept_invite(&y, "0123456789abcdef0123456789abcdef")
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        e.accept_invite(&y, "not a code").await,
        Err(Error::NotFound { .. })
    ));
    let open = e.create_invite(&owner, &g, None, None).await.unwrap();
    e.revoke_invite(&owner, &g, &open).await.unwrap();
    assert!(matches!(
        e.accept_invite(&y, &open).await,
        Err(Error::Gone { .. })
    ));
    assert!(matches!(
        e.revoke_invite(&owner, &g, "0000000000000000000000000000000f")
            .await,
        Err(Error::NotFound { .. })
    ));

    // A removed member may come back by invite.
    e.remove_member(&owner, &g, &x).await.unwrap();
    let back = e.create_invite(&owner, &g, None, Some(3600)).await.unwrap();
    e.accept_invite(&x, &back)
        .await
        .expect("an invite lifts the ban");
    e.accept_invite(&z, &back).await.unwrap();
    let members = e.members(&owner, &g).await.unwrap();
    assert!(members.contains(&x) && members.contains(&z) && !members.contains(&y));
}

#[tokio::test]
async fn a_one_use_invite_accepted_at_once_by_many_admits_exactly_one() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let g = group(&e, &owner, "g", &[]).await;
    let code = e.create_invite(&owner, &g, Some(1), None).await.unwrap();
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(signup(&e, &format!("u{i}")).await);
    }
    let tasks: Vec<_> = users
        .iter()
        .map(|u| {
            let (e, u, code) = (e.clone(), u.clone(), code.clone());
            tokio::spawn(async move { e.accept_invite(&u, &code).await })
        })
        .collect();
    let mut joined = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => joined += 1,
            Err(Error::Gone { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(joined, 1);
    assert_eq!(e.members(&owner, &g).await.unwrap().len(), 2);
}

#[tokio::test]
async fn blocks_stop_direct_messages_group_adds_and_presence() {
    let e = engine().await;
    let alice = signup(&e, "alice").await;
    let mallory = signup(&e, "mallory").await;
    let mut m = Client::connect(&e, &mallory).await;
    m.send(json!({"type":"send","id":"1","to":alice.as_str(),"body":"hi"}))
        .await;
    m.expect("sent").await;
    e.block(&alice, &mallory).await.unwrap();
    assert_eq!(e.blocked(&alice).await.unwrap(), vec![mallory.clone()]);
    m.send(json!({"type":"send","id":"2","to":alice.as_str(),"body":"hello?"}))
        .await;
    let refused = m.expect("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["reply_to"].as_str()),
        (Some("blocked"), Some("2"))
    );
    let dm = ConversationId::direct(&alice, &mallory);
    assert_eq!(
        e.history(&alice, &dm, None, None).await.unwrap().len(),
        1,
        "nothing stored"
    );
    let g = group(&e, &mallory, "trap", &[]).await;
    assert!(matches!(
        e.add_member(&mallory, &g, &alice).await,
        Err(Error::Blocked { .. })
    ));
    assert!(matches!(
        e.create_group(
            &mallory,
            NewGroup {
                name: "t2".into(),
                members: vec![alice.clone()],
                ..Default::default()
            }
        )
        .await,
        Err(Error::Blocked { .. })
    ));
    m.send(json!({"type":"presence_subscribe","id":"p","user_ids":[alice.as_str()]}))
        .await;
    assert_eq!(m.expect("error").await["code"], "forbidden");
    // Alice can still write to him, and unblocking restores his sends.
    e.unblock(&alice, &mallory).await.unwrap();
    m.send(json!({"type":"send","id":"3","to":alice.as_str(),"body":"sorry"}))
        .await;
    m.expect("sent").await;
    assert!(matches!(
        e.block(&alice, &alice).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn a_send_racing_a_removal_is_delivered_before_it_or_not_at_all() {
    // Many rounds of one send racing one removal: the removed member either
    // got the message before its `removed` event, or never.
    for round in 0..20 {
        let e = engine().await;
        let owner = signup(&e, "owner").await;
        let victim = signup(&e, "victim").await;
        let g = group(&e, &owner, "g", std::slice::from_ref(&victim)).await;
        let mut o = Client::connect(&e, &owner).await;
        let mut v = Client::connect(&e, &victim).await;
        let remover = {
            let (e, owner, g, victim) = (e.clone(), owner.clone(), g.clone(), victim.clone());
            tokio::spawn(async move { e.remove_member(&owner, &g, &victim).await })
        };
        o.send(json!({"type":"send","id":"s","conversation_id":g.as_str(),"body":"racing"}))
            .await;
        remover.await.unwrap().unwrap();
        // Everything the victim was sent, up to now (the removal's event was
        // delivered here before the removal answered).
        v.send(json!({"type":"ping","id":"p"})).await;
        let mut frames = Vec::new();
        loop {
            let f = v.next().await;
            if f["type"] == "pong" {
                break;
            }
            frames.push(f);
        }
        let removed = frames
            .iter()
            .position(|f| f["type"] == "group_event" && f["event"] == "removed")
            .unwrap_or_else(|| panic!("round {round}: no removal event in {frames:?}"));
        assert_eq!(
            removed,
            frames.len() - 1,
            "round {round}: frames after the removal: {frames:?}"
        );
        // Nothing more later either, live or by sync: a sync sends again
        // what was not acked up to the removal, and nothing after it.
        let id_of = |f: &serde_json::Value| -> u64 {
            let id = if f["type"] == "message" {
                &f["message"]["message_id"]
            } else {
                &f["message_id"]
            };
            id.as_str().and_then(|s| s.parse().ok()).expect("an id")
        };
        let removed_id = id_of(&frames[removed]);
        v.send(json!({"type":"sync","id":"s"})).await;
        let synced = synced_frames(&mut v).await;
        assert_eq!(
            synced.last().map(id_of),
            Some(removed_id),
            "round {round}: {synced:?}"
        );
        assert!(
            synced.iter().all(|f| id_of(f) <= removed_id),
            "round {round}: {synced:?}"
        );
    }
}

#[tokio::test]
async fn a_group_event_is_acked_by_its_message_id_and_then_not_sent_again() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let a = signup(&e, "a").await;
    let g = group(&e, &owner, "g", &[]).await;
    let mut ca = Client::connect(&e, &a).await;
    e.add_member(&owner, &g, &a).await.unwrap();
    let added = ca.expect("group_event").await;
    let id = added["message_id"].as_str().expect("an id").to_owned();
    assert!(added["ts"].as_i64().is_some(), "{added}");
    ca.close().await;
    // Not acked: the next connect sends it again.
    let mut ca = Client::connect_raw(&e, &a).await;
    let again = ca.expect("group_event").await;
    assert_eq!(again["message_id"].as_str(), Some(id.as_str()));
    ca.expect("synced").await;
    ca.send(json!({"type":"ack","conversation_id":g.as_str(),"message_id":id}))
        .await;
    ca.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(ca.expect("pong").await["reply_to"], "p");
    ca.close().await;
    // Acked: nothing left to send.
    let ca = Client::connect(&e, &a).await;
    ca.close().await;
}

#[tokio::test]
async fn a_removed_member_acks_its_removed_event_and_is_not_sent_it_again() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let a = signup(&e, "a").await;
    let g = group(&e, &owner, "g", std::slice::from_ref(&a)).await;
    let mut ca = Client::connect(&e, &a).await;
    e.remove_member(&owner, &g, &a).await.unwrap();
    let removed = ca.expect("group_event").await;
    assert_eq!(removed["event"], "removed");
    let id = removed["message_id"].as_str().expect("an id").to_owned();
    ca.close().await;
    // Not acked: it comes again (at least once), and nothing else of the group.
    let mut ca = Client::connect_raw(&e, &a).await;
    let again = ca.expect("group_event").await;
    assert_eq!(again["message_id"].as_str(), Some(id.as_str()));
    ca.expect("synced").await;
    // Its ack is taken although it is no member any more; past the event
    // it covers nothing (it is clamped there).
    ca.send(json!({"type":"ack","conversation_id":g.as_str(),"message_id":id}))
        .await;
    ca.send(json!({"type":"ping","id":"p"})).await;
    assert_eq!(ca.expect("pong").await["reply_to"], "p");
    ca.close().await;
    let ca = Client::connect(&e, &a).await;
    ca.close().await;
    // A user that never was a member still cannot ack there.
    let stranger = signup(&e, "stranger").await;
    let mut cs = Client::connect(&e, &stranger).await;
    cs.send(json!({"type":"ack","conversation_id":g.as_str(),"message_id":id}))
        .await;
    assert_eq!(cs.expect("error").await["code"], "not_member");
}

/// The texts of the `message` frames of `frames`, in order.
fn texts(frames: &[serde_json::Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| f["message"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every frame of a connect's sync, up to `synced` (excluded).
async fn synced_frames(client: &mut Client) -> Vec<serde_json::Value> {
    let mut frames = Vec::new();
    loop {
        let f = client.next().await;
        if f["type"] == "synced" {
            return frames;
        }
        frames.push(f);
    }
}

/// Issue 9: a member removed while all its devices were offline gets, at
/// its next sync, the messages it had not received from before its
/// removal, then its `removed` event, and nothing after.
#[tokio::test]
async fn a_member_removed_while_offline_gets_the_rest_then_its_removal_at_the_next_sync() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let a = signup(&e, "a").await;
    let g = group(&e, &owner, "g", std::slice::from_ref(&a)).await;
    let mut co = Client::connect(&e, &owner).await;
    // A got the first message and acked it, then went away.
    let mut ca = Client::connect(&e, &a).await;
    co.send(json!({"type":"send","id":"1","conversation_id":g.as_str(),"body":"seen"}))
        .await;
    co.expect_after("sent").await;
    let seen = ca.expect("message").await;
    ca.send(json!({"type":"ack","conversation_id":g.as_str(),"message_id":seen["message"]["message_id"]}))
        .await;
    ca.send(json!({"type":"ping","id":"p"})).await;
    ca.expect("pong").await;
    ca.close().await;

    for (i, body) in ["missed 1", "missed 2"].into_iter().enumerate() {
        co.send(
            json!({"type":"send","id":format!("m{i}"),"conversation_id":g.as_str(),"body":body}),
        )
        .await;
        co.expect_after("sent").await;
    }
    e.remove_member(&owner, &g, &a).await.unwrap();
    co.send(json!({"type":"send","id":"after","conversation_id":g.as_str(),"body":"after"}))
        .await;
    co.expect_after("sent").await;

    let mut ca = Client::connect_raw(&e, &a).await;
    let frames = synced_frames(&mut ca).await;
    assert_eq!(texts(&frames), ["missed 1", "missed 2"], "{frames:?}");
    let last = frames.last().expect("frames");
    assert_eq!(
        (last["type"].as_str(), last["event"].as_str()),
        (Some("group_event"), Some("removed")),
        "the removal comes last: {frames:?}"
    );
    assert_eq!(last["user_id"].as_str(), Some(a.as_str()));
    assert_eq!(last["by"].as_str(), Some(owner.as_str()));
    // Acked up to the removal: the next connect sends nothing of the group.
    ca.send(json!({"type":"ack","conversation_id":g.as_str(),"message_id":last["message_id"]}))
        .await;
    ca.send(json!({"type":"ping","id":"p"})).await;
    ca.expect("pong").await;
    ca.close().await;
    let ca = Client::connect(&e, &a).await;
    ca.close().await;
    // History stays closed to it.
    assert!(matches!(
        e.history(&a, &g, None, Some(10)).await,
        Err(Error::NotMember { .. })
    ));
}

/// Leaving from one device: the user's other device, away meanwhile, gets
/// what it missed and the `left` event; a member removed and added back
/// before it synced gets both stretches of membership, not what was sent
/// while it was out.
#[tokio::test]
async fn other_devices_get_the_end_of_a_membership_and_a_return_skips_the_gap() {
    let e = engine().await;
    let owner = signup(&e, "owner").await;
    let a = signup(&e, "a").await;
    let phone = support::login(&e, "a").await;
    let g = group(&e, &owner, "g", std::slice::from_ref(&a)).await;
    let h = group(&e, &owner, "h", std::slice::from_ref(&a)).await;
    let mut co = Client::connect(&e, &owner).await;
    // The phone connected once (so it holds a cursor), then went away.
    let phone_client = Client::connect_device(&e, &phone).await;
    phone_client.close().await;
    let say = |c: &ConversationId, body: &str| json!({"type":"send","id":body,"conversation_id":c.as_str(),"body":body});
    co.send(say(&g, "g before")).await;
    co.expect_after("sent").await;
    e.remove_member(&a, &g, &a).await.unwrap(); // a leaves g from its laptop
    co.send(say(&g, "g after")).await;
    co.expect_after("sent").await;

    co.send(say(&h, "h first")).await;
    co.expect_after("sent").await;
    e.remove_member(&owner, &h, &a).await.unwrap();
    co.send(say(&h, "h while out")).await;
    co.expect_after("sent").await;
    e.add_member(&owner, &h, &a).await.unwrap();
    co.send(say(&h, "h back")).await;
    co.expect_after("sent").await;

    let mut cp = Client::connect_raw_device(&e, &phone).await;
    let frames = synced_frames(&mut cp).await;
    assert_eq!(
        texts(&frames),
        ["g before", "h first", "h back"],
        "{frames:?}"
    );
    let events: Vec<(String, String)> = frames
        .iter()
        .filter(|f| f["type"] == "group_event")
        .map(|f| {
            (
                f["conversation_id"].as_str().unwrap_or_default().to_owned(),
                f["event"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (g.to_string(), "left".to_owned()),
            (h.to_string(), "removed".to_owned()),
            (h.to_string(), "added".to_owned()),
        ],
        "{frames:?}"
    );
}
