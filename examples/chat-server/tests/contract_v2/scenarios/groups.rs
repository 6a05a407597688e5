//! "Groups: roles, join policy, history visibility": who may add, remove,
//! change roles and settings (and the codes of each refusal), the owner's
//! hand-over, open and invite-only groups, bans, what a member reads, and
//! the `group_event` frames that every member and the affected user get.

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Env, User, Ws, str_of};

/// A group id that names nothing.
const NO_GROUP: &str = "g_000000000000000000000000";
/// A user id that names nobody.
const NO_USER: &str = "u000000000000000000000000";

fn role_path(g: &str, u: &str) -> String {
    format!("/api/groups/{g}/members/{u}/role")
}

fn member_path(g: &str, u: &str) -> String {
    format!("/api/groups/{g}/members/{u}")
}

async fn set_role(env: &Env, by: &User, g: &str, u: &str, role: &str) -> crate::client::Answer {
    env.call(
        by,
        Method::PUT,
        &role_path(g, u),
        Some(json!({"role": role})),
    )
    .await
}

async fn patch(env: &Env, by: &User, g: &str, body: Value) -> crate::client::Answer {
    env.call(by, Method::PATCH, &format!("/api/groups/{g}"), Some(body))
        .await
}

async fn add(env: &Env, by: &User, g: &str, u: &str) -> crate::client::Answer {
    env.post(
        by,
        &format!("/api/groups/{g}/members"),
        json!({"user_id": u}),
    )
    .await
}

/// The role the members answer gives `u` ("member" when missing from `roles`).
fn role_of(group: &Value, u: &User) -> String {
    assert!(
        group["members"]
            .as_array()
            .expect("members")
            .iter()
            .any(|m| m == u.id.as_str()),
        "{} is not a member: {group}",
        u.name
    );
    group["roles"][u.id.as_str()]
        .as_str()
        .unwrap_or("member")
        .to_owned()
}

fn is_member(group: &Value, u: &User) -> bool {
    group["members"]
        .as_array()
        .expect("members")
        .iter()
        .any(|m| m == u.id.as_str())
}

/// Every socket in `sockets` gets the group event `event` about `user`,
/// made by `by` (and with `role`, when given).
async fn all_get(
    sockets: &mut [&mut Ws],
    g: &str,
    event: &str,
    user: Option<&User>,
    by: &User,
    role: Option<&str>,
) {
    for ws in sockets.iter_mut() {
        let e = match (role, user) {
            (Some(role), Some(user)) => ws.role_event(g, user, role).await,
            _ => ws.group_event(g, event, user).await,
        };
        assert_eq!(e["by"], by.id.as_str(), "{e}");
        assert!(str_of(&e["message_id"]).parse::<u64>().is_ok(), "{e}");
        assert!(e["ts"].as_i64().is_some_and(|t| t > 0), "{e}");
    }
}

pub async fn roles_decide_who_changes_what(env: &Env) {
    let o = env.user("owner").await;
    let a = env.user("admin").await;
    let m = env.user("member").await;
    let x = env.user("joiner").await;
    let y = env.user("outsider").await;
    let g = env.group(&o, &[&a, &m], json!({})).await;

    let info = env.members(&m, &g).await;
    assert_eq!(info["conversation_id"], g.as_str());
    assert_eq!(info["name"], "team");
    assert_eq!(info["join"], "invite", "the default join policy");
    assert_eq!(info["history"], "since_join", "the default history");
    assert_eq!(info["roles"], json!({o.id.clone(): "owner"}));
    assert_eq!(info["members"].as_array().unwrap().len(), 3);
    env.get(&y, &format!("/api/groups/{g}/members"))
        .await
        .refused(403, "not_member", "a non-member lists members");

    let (mut wo, _) = env.ws(&o).await;
    let (mut wa, _) = env.ws(&a).await;
    let (mut wm, _) = env.ws(&m).await;
    let (mut wx, _) = env.ws(&x).await;

    // Roles: the owner only.
    set_role(env, &m, &g, &a.id, "admin").await.refused(
        403,
        "forbidden",
        "a member changes a role",
    );
    set_role(env, &y, &g, &a.id, "admin").await.refused(
        403,
        "not_member",
        "a non-member changes a role",
    );
    set_role(env, &o, &g, &a.id, "admin")
        .await
        .expect(204, "the owner makes an admin");
    all_get(
        &mut [&mut wo, &mut wa, &mut wm],
        &g,
        "role",
        Some(&a),
        &o,
        Some("admin"),
    )
    .await;
    assert_eq!(role_of(&env.members(&m, &g).await, &a), "admin");
    set_role(env, &a, &g, &m.id, "admin").await.refused(
        403,
        "forbidden",
        "an admin changes a role",
    );
    set_role(env, &o, &g, &x.id, "admin").await.refused(
        404,
        "not_found",
        "the role of a non-member",
    );
    for bad in ["owner", "king"] {
        set_role(env, &o, &g, &m.id, bad).await.refused(
            400,
            "invalid_input",
            &format!("role {bad}"),
        );
    }
    set_role(env, &o, &g, &o.id, "member").await.refused(
        400,
        "invalid_input",
        "the owner's own role",
    );
    set_role(env, &o, NO_GROUP, &m.id, "admin").await.refused(
        404,
        "not_found",
        "a role in no group",
    );

    // Adding: owners and admins; a plain member is forbidden, an outsider
    // not a member; an invite-only group takes no self-adds.
    add(env, &m, &g, &x.id)
        .await
        .refused(403, "forbidden", "a member adds");
    add(env, &x, &g, &x.id)
        .await
        .refused(403, "forbidden", "a self-add to an invite-only group");
    add(env, &y, &g, &x.id)
        .await
        .refused(403, "not_member", "an outsider adds");
    add(env, &o, NO_GROUP, &x.id)
        .await
        .refused(404, "not_found", "an add to no group");
    add(env, &o, &g, NO_USER)
        .await
        .refused(404, "not_found", "an add of nobody");
    add(env, &a, &g, &x.id).await.expect(204, "an admin adds");
    all_get(
        &mut [&mut wo, &mut wa, &mut wm, &mut wx],
        &g,
        "added",
        Some(&x),
        &a,
        None,
    )
    .await;
    add(env, &a, &g, &x.id)
        .await
        .expect(204, "adding a member again changes nothing");

    // Removing: an admin removes plain members only, the owner anyone.
    set_role(env, &o, &g, &x.id, "admin")
        .await
        .expect(204, "a second admin");
    all_get(
        &mut [&mut wo, &mut wx],
        &g,
        "role",
        Some(&x),
        &o,
        Some("admin"),
    )
    .await;
    for (who, target) in [(&a, &x), (&a, &o), (&m, &x), (&x, &a)] {
        env.delete(who, &member_path(&g, &target.id)).await.refused(
            403,
            "forbidden",
            &format!("{} removes {}", who.name, target.name),
        );
    }
    env.delete(&y, &member_path(&g, &m.id))
        .await
        .refused(403, "not_member", "an outsider removes");
    set_role(env, &o, &g, &x.id, "member")
        .await
        .expect(204, "back to member");
    all_get(
        &mut [&mut wa, &mut wx],
        &g,
        "role",
        Some(&x),
        &o,
        Some("member"),
    )
    .await;
    env.delete(&a, &member_path(&g, &x.id))
        .await
        .expect(204, "an admin removes a plain member");
    all_get(
        &mut [&mut wo, &mut wa, &mut wm, &mut wx],
        &g,
        "removed",
        Some(&x),
        &a,
        None,
    )
    .await;
    env.delete(&a, &member_path(&g, &x.id)).await.refused(
        404,
        "not_found",
        "removing a non-member",
    );
    assert!(!is_member(&env.members(&o, &g).await, &x));
    env.get(&x, &format!("/api/groups/{g}/members"))
        .await
        .refused(403, "not_member", "a removed member lists members");
    add(env, &x, &g, &y.id)
        .await
        .refused(403, "not_member", "a removed member adds");

    // Settings: owners and admins.
    patch(env, &m, &g, json!({"name": "mine"}))
        .await
        .refused(403, "forbidden", "a member renames");
    patch(env, &y, &g, json!({"name": "mine"})).await.refused(
        403,
        "not_member",
        "an outsider renames",
    );
    patch(env, &o, NO_GROUP, json!({"name": "mine"}))
        .await
        .refused(404, "not_found", "renaming no group");
    patch(env, &o, &g, json!({"join": "sometimes"}))
        .await
        .refused(400, "invalid_input", "a join policy that does not exist");
    let a_patch = patch(
        env,
        &a,
        &g,
        json!({"name": "renamed", "join": "open", "history": "all"}),
    )
    .await;
    let after = a_patch.expect(200, "an admin changes the settings").clone();
    assert_eq!(after["name"], "renamed");
    assert_eq!(after["join"], "open");
    assert_eq!(after["history"], "all");
    assert_eq!(role_of(&after, &a), "admin");
    assert_eq!(role_of(&after, &o), "owner");
    all_get(
        &mut [&mut wo, &mut wa, &mut wm],
        &g,
        "settings",
        None,
        &a,
        None,
    )
    .await;
    let info = env.members(&m, &g).await;
    assert_eq!(
        (&info["name"], &info["join"]),
        (&json!("renamed"), &json!("open"))
    );

    // The owner removes an admin, who is told.
    env.delete(&o, &member_path(&g, &a.id))
        .await
        .expect(204, "the owner removes an admin");
    all_get(
        &mut [&mut wo, &mut wa, &mut wm],
        &g,
        "removed",
        Some(&a),
        &o,
        None,
    )
    .await;
}

pub async fn the_owner_leaving_hands_the_group_over(env: &Env) {
    let o = env.user("owner").await;
    let first = env.user("first").await;
    let second = env.user("second").await;
    let third = env.user("third").await;
    let g = env.group(&o, &[&first], json!({})).await;
    // second joins before third, but third is made admin first: the
    // longest-standing admin is second.
    for u in [&second, &third] {
        add(env, &o, &g, &u.id).await.expect(204, "the owner adds");
    }
    for u in [&third, &second] {
        set_role(env, &o, &g, &u.id, "admin")
            .await
            .expect(204, "the owner promotes");
    }
    let (mut w1, _) = env.ws(&first).await;

    env.delete(&o, &member_path(&g, &o.id))
        .await
        .expect(204, "the owner leaves");
    w1.group_event(&g, "left", Some(&o)).await;
    w1.role_event(&g, &second, "owner").await;
    let info = env.members(&first, &g).await;
    assert_eq!(role_of(&info, &second), "owner", "{info}");
    assert_eq!(role_of(&info, &third), "admin", "{info}");
    assert!(!is_member(&info, &o));
    env.get(&o, &format!("/api/conversations/{g}/messages"))
        .await
        .refused(403, "not_member", "the old owner reads");

    // The new owner has the owner's rights; when it leaves, the next admin
    // takes over, and with no admin left, the longest-standing member.
    set_role(env, &second, &g, &first.id, "admin")
        .await
        .expect(204, "the new owner changes a role");
    set_role(env, &second, &g, &first.id, "member")
        .await
        .expect(204, "and back");
    env.delete(&second, &member_path(&g, &second.id))
        .await
        .expect(204, "the second owner leaves");
    assert_eq!(role_of(&env.members(&first, &g).await, &third), "owner");
    env.delete(&third, &member_path(&g, &third.id))
        .await
        .expect(204, "the third owner leaves");
    w1.role_event(&g, &first, "owner").await;
    let info = env.members(&first, &g).await;
    assert_eq!(info["roles"], json!({first.id.clone(): "owner"}), "{info}");
    assert_eq!(info["members"], json!([first.id]));
}

pub async fn join_policy_bans_and_coming_back(env: &Env) {
    let o = env.user("owner").await;
    let m = env.user("member").await;
    let n = env.user("newcomer").await;
    let p = env.user("passerby").await;
    let g = env.group(&o, &[&m], json!({"join": "open"})).await;
    let (mut wm, _) = env.ws(&m).await;

    // An open group: anyone adds itself (and again, changing nothing), but
    // not others.
    add(env, &n, &g, &n.id)
        .await
        .expect(204, "a self-add to an open group");
    let e = wm.group_event(&g, "added", Some(&n)).await;
    assert_eq!(e["by"], n.id.as_str());
    add(env, &n, &g, &n.id)
        .await
        .expect(204, "a second self-add");
    add(env, &m, &g, &p.id).await.refused(
        403,
        "forbidden",
        "a member adds another to an open group",
    );
    // Leaving is no ban.
    env.delete(&n, &member_path(&g, &n.id))
        .await
        .expect(204, "leave");
    wm.group_event(&g, "left", Some(&n)).await;
    add(env, &n, &g, &n.id)
        .await
        .expect(204, "back after leaving");
    // Removal is: until an owner or admin adds it, or it uses an invite.
    env.delete(&o, &member_path(&g, &n.id))
        .await
        .expect(204, "the owner removes");
    add(env, &n, &g, &n.id)
        .await
        .refused(403, "forbidden", "a removed user adds itself back");
    add(env, &o, &g, &n.id)
        .await
        .expect(204, "the owner adds it back");
    env.delete(&n, &member_path(&g, &n.id))
        .await
        .expect(204, "leave");
    add(env, &n, &g, &n.id)
        .await
        .expect(204, "an owner's add lifted the ban");
    env.delete(&o, &member_path(&g, &n.id))
        .await
        .expect(204, "removed again");
    let code = env
        .post(&o, &format!("/api/groups/{g}/invites"), json!({}))
        .await;
    let code = str_of(&code.expect(201, "an invite")["code"]);
    let joined = env
        .post(&n, &format!("/api/invites/{code}"), json!({}))
        .await;
    assert_eq!(
        joined.expect(200, "a removed user comes back by invite")["conversation_id"],
        g.as_str()
    );
    assert!(is_member(&env.members(&o, &g).await, &n));

    // Invite-only again: no more self-adds.
    patch(env, &o, &g, json!({"join": "invite"}))
        .await
        .expect(200, "invite-only");
    add(env, &p, &g, &p.id)
        .await
        .refused(403, "forbidden", "a self-add to an invite-only group");
}

/// The text bodies of `messages` (events and group events left out).
fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["kind"].as_str().unwrap_or("text") == "text")
        .map(|m| str_of(&m["body"]))
        .collect()
}

/// The texts of `c` that `u` reads over the WebSocket history, oldest first.
async fn ws_history(ws: &mut Ws, c: &str) -> Vec<String> {
    let id = format!("h-{:x}", rand::random::<u32>());
    let (h, _) = ws
        .ask(json!({"type": "history", "id": id, "conversation_id": c, "limit": 200}))
        .await;
    assert_eq!(h["type"], "history", "{h}");
    let mut t = texts(h["messages"].as_array().unwrap());
    t.reverse();
    t
}

async fn http_history(env: &Env, u: &User, c: &str) -> Vec<String> {
    let mut t = texts(&env.history(u, c).await);
    t.reverse();
    t
}

pub async fn history_visibility_since_join_and_all(env: &Env) {
    let o = env.user("owner").await;
    let m = env.user("member").await;
    let late = env.user("late").await;
    let since = env.group(&o, &[&m], json!({})).await;
    let all = env.group(&o, &[&m], json!({"history": "all"})).await;
    let (mut wo, _) = env.ws(&o).await;
    for g in [&since, &all] {
        wo.say(g, "before").await;
        add(env, &o, g, &late.id).await.expect(204, "add late");
        wo.say(g, "after").await;
    }

    // since_join: history, sync and unread start at the join.
    assert_eq!(http_history(env, &late, &since).await, ["after"]);
    let (mut wl, synced) = env.ws(&late).await;
    assert_eq!(ws_history(&mut wl, &since).await, ["after"]);
    for g in [&since, &all] {
        let synced_texts: Vec<String> = texts(
            &synced
                .iter()
                .filter(|f| f["type"] == "message" && f["message"]["conversation_id"] == g.as_str())
                .map(|f| f["message"].clone())
                .collect::<Vec<_>>(),
        );
        assert_eq!(synced_texts, ["after"], "a sync starts at the join");
        let summary = env.summary(&late, g).await.expect("listed");
        assert_eq!(summary["unread"], 1, "unread starts at the join: {summary}");
    }
    assert_eq!(
        env.summary(&m, &since).await.expect("listed")["unread"],
        2,
        "a founding member"
    );
    // all: history shows everything the group stores.
    assert_eq!(http_history(env, &late, &all).await, ["before", "after"]);
    assert_eq!(ws_history(&mut wl, &all).await, ["before", "after"]);
    patch(env, &o, &since, json!({"history": "all"}))
        .await
        .expect(200, "history for all");
    assert_eq!(http_history(env, &late, &since).await, ["before", "after"]);
    patch(env, &o, &since, json!({"history": "since_join"}))
        .await
        .expect(200, "back to since_join");

    // The latest join counts: what was said while away stays hidden.
    env.delete(&late, &member_path(&since, &late.id))
        .await
        .expect(204, "leave");
    wo.say(&since, "while away").await;
    add(env, &o, &since, &late.id).await.expect(204, "back");
    wo.say(&since, "back again").await;
    assert_eq!(http_history(env, &late, &since).await, ["back again"]);
    assert_eq!(
        env.summary(&late, &since).await.expect("listed")["unread"],
        1
    );

    // Not a member now: nothing, whatever it saw before.
    env.delete(&o, &member_path(&all, &late.id))
        .await
        .expect(204, "removed");
    env.get(&late, &format!("/api/conversations/{all}/messages"))
        .await
        .refused(403, "not_member", "a removed member's history");
    wl.refused(
        json!({"type": "history", "id": "gone", "conversation_id": all}),
        "not_member",
    )
    .await;
    assert!(env.summary(&late, &all).await.is_none(), "no longer listed");
}

/// The entries of group `g` among `frames`: `message` frames as their body,
/// `group_event` frames as `event:user_name`.
fn entries_of(frames: &[Value], g: &str, users: &[&User]) -> Vec<String> {
    let name = |id: &Value| {
        users
            .iter()
            .find(|u| *id == u.id.as_str())
            .map_or_else(|| id.to_string(), |u| u.name.clone())
    };
    frames
        .iter()
        .filter_map(|f| match f["type"].as_str() {
            Some("message") if f["message"]["conversation_id"] == g => {
                Some(str_of(&f["message"]["body"]))
            }
            Some("group_event") if f["conversation_id"] == g => {
                Some(format!("{}:{}", str_of(&f["event"]), name(&f["user_id"])))
            }
            _ => None,
        })
        .collect()
}

/// Issue 9: a member removed while all its devices were offline gets, at
/// its next sync, what it had not received from before its removal, then
/// its `removed` event, and nothing sent after; it acks that event and is
/// not sent it again. A user that left from one device: its other device,
/// away meanwhile, gets the same up to its `left` event.
pub async fn a_member_removed_while_away_gets_the_rest_then_its_removal(env: &Env) {
    let owner = env.user("owner").await;
    let gone = env.user("gone").await;
    let leaver = env.user("leaver").await;
    let g = env.group(&owner, &[&gone, &leaver], json!({})).await;
    // The leaver's tablet, on the other node, connects once and goes away.
    let tablet = env
        .login_on(&leaver, "tablet", env.other_node(leaver.node))
        .await;
    let (wt, _) = env.ws(&tablet).await;
    wt.close().await;
    // Gone got the first message and acked it, then went away.
    let (mut wo, _) = env.ws(&owner).await;
    let (mut wg, _) = env.ws(&gone).await;
    let seen = wo.say(&g, "seen").await;
    wg.message(&seen).await;
    wg.send(json!({"type": "ack", "conversation_id": g, "message_id": seen}))
        .await;
    wg.roundtrip("acked").await;
    wg.close().await;

    wo.say(&g, "missed 1").await;
    wo.say(&g, "missed 2").await;
    env.delete(&owner, &member_path(&g, &gone.id))
        .await
        .expect(204, "removing the away member");
    wo.say(&g, "after the removal").await;
    let (mut wl, _) = env.ws(&leaver).await;
    env.delete(&leaver, &member_path(&g, &leaver.id))
        .await
        .expect(204, "leaving from the phone");
    wl.group_event(&g, "left", Some(&leaver)).await;
    wo.say(&g, "after the leave").await;

    let users = [&owner, &gone, &leaver];
    let (mut wg, synced) = env.ws(&gone).await;
    assert_eq!(
        entries_of(&synced, &g, &users),
        ["missed 1", "missed 2", &format!("removed:{}", gone.name)],
        "the away member's sync: {synced:?}"
    );
    let removed = synced
        .iter()
        .rev()
        .find(|f| f["type"] == "group_event")
        .expect("the removal");
    assert_eq!(removed["by"], owner.id.as_str(), "{removed}");
    // Its ack is taken: the next connect sends nothing of the group.
    wg.send(json!({"type": "ack", "conversation_id": g, "message_id": removed["message_id"]}))
        .await;
    assert!(
        !wg.roundtrip("acked-removal")
            .await
            .iter()
            .any(|f| f["type"] == "error"),
        "the removed member's ack of its removal is taken"
    );
    wg.close().await;
    let (_, synced) = env.ws(&gone).await;
    assert!(
        entries_of(&synced, &g, &users).is_empty(),
        "acked: {synced:?}"
    );
    // Still a former member: history and members stay closed.
    env.get(&gone, &format!("/api/conversations/{g}/messages"))
        .await
        .refused(403, "not_member", "a removed member's history");

    // The leaver's tablet: everything of the group up to its `left` event.
    let (_, synced) = env.ws(&tablet).await;
    assert_eq!(
        entries_of(&synced, &g, &users),
        [
            "seen",
            "missed 1",
            "missed 2",
            &format!("removed:{}", gone.name),
            "after the removal",
            &format!("left:{}", leaver.name),
        ],
        "the other device's sync: {synced:?}"
    );
}
