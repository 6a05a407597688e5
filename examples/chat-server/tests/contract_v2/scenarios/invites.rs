//! "Invites": who makes and revokes them, use limits, expiry, 410 and 404,
//! a removed user coming back, and many accepting a one-use code at once.

use std::time::Duration;

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::client::{Env, User, str_of};

async fn invite(env: &Env, by: &User, g: &str, body: serde_json::Value) -> crate::client::Answer {
    env.post(by, &format!("/api/groups/{g}/invites"), body)
        .await
}

async fn make(env: &Env, by: &User, g: &str, body: serde_json::Value) -> String {
    let a = invite(env, by, g, body).await;
    let code = str_of(&a.expect(201, "make an invite")["code"]);
    assert!(
        code.len() == 32 && code.bytes().all(|b| b.is_ascii_hexdigit()),
        "a code is 32 hex digits: {code}"
    );
    code
}

async fn accept(env: &Env, u: &User, code: &str) -> crate::client::Answer {
    env.post(u, &format!("/api/invites/{code}"), json!({}))
        .await
}

async fn members(env: &Env, u: &User, g: &str) -> Vec<String> {
    let info = env.members(u, g).await;
    info["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(str_of)
        .collect()
}

pub async fn invites_create_accept_expire_revoke(env: &Env) {
    let o = env.user("owner").await;
    let a = env.user("admin").await;
    let m = env.user("member").await;
    let n = env.user("outsider").await;
    let j: Vec<User> =
        join_all((0..4).map(|i| async move { env.user(&format!("joiner{i}")).await })).await;
    let g = env.group(&o, &[&a, &m], json!({})).await;
    env.call(
        &o,
        Method::PUT,
        &format!("/api/groups/{g}/members/{}/role", a.id),
        Some(json!({"role": "admin"})),
    )
    .await
    .expect(204, "an admin");
    let (mut wo, _) = env.ws(&o).await;

    // Who makes invites, and bad limits.
    make(env, &a, &g, json!({})).await;
    invite(env, &m, &g, json!({}))
        .await
        .refused(403, "forbidden", "a member makes an invite");
    invite(env, &n, &g, json!({}))
        .await
        .refused(403, "not_member", "an outsider makes an invite");
    invite(env, &o, "g_000000000000000000000000", json!({}))
        .await
        .refused(404, "not_found", "an invite to no group");
    for bad in [
        json!({"max_uses": 0}),
        json!({"expires_in_secs": 0}),
        json!({"max_uses": -1}),
    ] {
        invite(env, &o, &g, bad.clone()).await.refused(
            400,
            "invalid_input",
            &format!("limits {bad}"),
        );
    }

    // Uses: two joins, then gone. Each join is a group event for everyone.
    let two = make(env, &o, &g, json!({"max_uses": 2})).await;
    for u in &j[..2] {
        let joined = accept(env, u, &two).await;
        assert_eq!(joined.expect(200, "accept")["conversation_id"], g.as_str());
        let e = wo.group_event(&g, "added", Some(u)).await;
        assert_eq!(e["by"], u.id.as_str(), "{e}");
    }
    accept(env, &j[2], &two)
        .await
        .refused(410, "gone", "a used-up invite");
    let now = members(env, &o, &g).await;
    assert!(j[..2].iter().all(|u| now.contains(&u.id)) && !now.contains(&j[2].id));

    // Expiry.
    let short = make(env, &o, &g, json!({"expires_in_secs": 1})).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    accept(env, &j[2], &short)
        .await
        .refused(410, "gone", "an expired invite");

    // Revoking: owners and admins; the code stops at once.
    let revoked = make(
        env,
        &o,
        &g,
        json!({"max_uses": 10, "expires_in_secs": 3600}),
    )
    .await;
    let path = format!("/api/groups/{g}/invites/{revoked}");
    env.delete(&m, &path)
        .await
        .refused(403, "forbidden", "a member revokes");
    env.delete(&n, &path)
        .await
        .refused(403, "not_member", "an outsider revokes");
    env.delete(&a, &path).await.expect(204, "an admin revokes");
    accept(env, &j[2], &revoked)
        .await
        .refused(410, "gone", "a revoked invite");

    // Unknown codes.
    let unknown = format!("{:032x}", rand::random::<u128>());
    accept(env, &j[2], &unknown)
        .await
        .refused(404, "not_found", "an unknown code");
    accept(env, &j[2], "not-a-code")
        .await
        .refused(404, "not_found", "a malformed code");
    env.delete(&o, &format!("/api/groups/{g}/invites/{unknown}"))
        .await
        .refused(404, "not_found", "revoking an unknown code");

    // A removed user comes back by invite (and only so, in an invite-only group).
    env.delete(&o, &format!("/api/groups/{g}/members/{}", j[0].id))
        .await
        .expect(204, "removed");
    let back = make(env, &a, &g, json!({"max_uses": 1})).await;
    accept(env, &j[0], &back)
        .await
        .expect(200, "a removed user comes back by invite");
    assert!(members(env, &o, &g).await.contains(&j[0].id));
}

pub async fn a_one_use_invite_accepted_at_once_admits_one(env: &Env) {
    let o = env.user("owner").await;
    let racers: Vec<User> =
        join_all((0..8).map(|i| async move { env.user(&format!("racer{i}")).await })).await;
    let g = env.group(&o, &[], json!({})).await;
    let code = make(env, &o, &g, json!({"max_uses": 1})).await;
    // Racers alternate between the nodes (in a cluster).
    let answers = join_all(racers.iter().map(|u| accept(env, u, &code))).await;
    let winners: Vec<&User> = racers
        .iter()
        .zip(&answers)
        .filter(|(_, a)| a.status == 200)
        .map(|(u, _)| u)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one joins: {answers:?}");
    for a in answers.iter().filter(|a| a.status != 200) {
        a.refused(410, "gone", "a racer that lost");
    }
    let now = members(env, &o, &g).await;
    assert_eq!(now.len(), 2, "the owner and the winner: {now:?}");
    assert!(now.contains(&winners[0].id));
}
