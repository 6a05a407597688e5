//! [`ConversationStore`] conformance: groups and direct conversations,
//! members with roles and join points, bans, settings, and invites used
//! exactly as often as they allow.

use std::sync::Arc;

use super::fixtures::{group, group_id, next_id, sorted, unique, user};
use crate::error::Error;
use crate::model::{
    Conversation, ConversationId, Departure, GroupSettings, HistoryVisibility, Invite, JoinPolicy,
    Member, Role, UserId, now_millis,
};
use crate::store::ConversationStore;

async fn member_ids(store: &dyn ConversationStore, id: &ConversationId) -> Vec<UserId> {
    sorted(
        store
            .members(id)
            .await
            .unwrap_or_else(|e| panic!("members of {id} failed: {e}"))
            .into_iter()
            .map(|m| m.user_id)
            .collect(),
    )
}

async fn conversations_of(store: &dyn ConversationStore, u: &UserId) -> Vec<ConversationId> {
    sorted(
        store
            .memberships(u)
            .await
            .unwrap_or_else(|e| panic!("memberships of {u} failed: {e}"))
            .into_iter()
            .map(|(c, _)| c)
            .collect(),
    )
}

fn member(u: &UserId, role: Role) -> Member {
    Member::founding(u.clone(), role, now_millis())
}

/// `create_group` stores the group and its members with their roles and
/// join points, readable by id, by `members`, `member` and `memberships`.
pub async fn create_group_and_read_back(store: &dyn ConversationStore) {
    let (a, b, outsider) = (user("a"), user("b"), user("outsider"));
    let id = group_id();
    let mut conv = group(&id, &a);
    conv.join = JoinPolicy::Open;
    conv.history = HistoryVisibility::All;
    let owner = member(&a, Role::Owner);
    let plain = member(&b, Role::Member);
    store
        .create_group(conv.clone(), &[owner.clone(), plain.clone()])
        .await
        .expect("create_group failed");
    assert_eq!(
        store.conversation(&id).await.expect("conversation failed"),
        Some(conv),
        "the group reads back as created, settings included"
    );
    assert_eq!(
        member_ids(store, &id).await,
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        store.member(&id, &a).await.expect("member failed"),
        Some(owner.clone()),
        "a member reads back with its role and join point"
    );
    assert_eq!(store.member(&id, &outsider).await.expect("member"), None);
    assert_eq!(store.member_count(&id).await.expect("member_count"), 2);
    let mine = store.memberships(&b).await.expect("memberships failed");
    assert_eq!(
        mine,
        vec![(id.clone(), plain)],
        "memberships carry the member record"
    );
    assert!(conversations_of(store, &outsider).await.is_empty());
    assert_eq!(
        store.conversation(&group_id()).await.expect("conversation"),
        None
    );
    assert!(
        store
            .members(&group_id())
            .await
            .expect("members")
            .is_empty()
    );
}

/// A second group with a taken id is `AlreadyExists` and changes nothing.
pub async fn create_group_rejects_taken_id(store: &dyn ConversationStore) {
    let (a, b) = (user("a"), user("b"));
    let id = group_id();
    store
        .create_group(group(&id, &a), &[member(&a, Role::Owner)])
        .await
        .expect("create_group failed");
    let err = store
        .create_group(group(&id, &b), &[member(&b, Role::Owner)])
        .await
        .expect_err("a taken id must be refused");
    assert!(matches!(err, Error::AlreadyExists { .. }), "got {err:?}");
    assert_eq!(member_ids(store, &id).await, vec![a]);
}

/// `ensure_direct` creates the pair's conversation once (both plain members)
/// and says whether this call created it.
pub async fn ensure_direct_is_idempotent(store: &dyn ConversationStore) {
    let (a, b) = (user("a"), user("b"));
    let conv = Conversation::direct(&a, &b, now_millis());
    let (made, created) = store
        .ensure_direct(conv.clone())
        .await
        .expect("ensure_direct failed");
    assert!(created, "the first call creates it");
    assert_eq!(made, conv);
    let (again, created) = store
        .ensure_direct(Conversation::direct(&b, &a, now_millis() + 5))
        .await
        .expect("ensure_direct failed");
    assert!(!created, "the second call finds it");
    assert_eq!(again, conv, "the first record stands");
    assert_eq!(
        member_ids(store, &conv.id).await,
        sorted(vec![a.clone(), b.clone()])
    );
    let m = store
        .member(&conv.id, &b)
        .await
        .expect("member")
        .expect("b is a member");
    assert_eq!(m.role, Role::Member);
    assert_eq!(conversations_of(store, &a).await, vec![conv.id.clone()]);
}

/// Adding and removing members, both ways, with bans: `add_member` answers
/// false for a member, `remove_member` answers the member it was (or `None`),
/// a ban stays until an add clears it.
pub async fn membership_add_remove_and_ban(store: &dyn ConversationStore) {
    let (a, b, c) = (user("a"), user("b"), user("c"));
    let id = group_id();
    store
        .create_group(group(&id, &a), &[member(&a, Role::Owner)])
        .await
        .expect("create_group failed");
    let joined = Member {
        user_id: b.clone(),
        role: Role::Member,
        joined: next_id(),
        joined_at: now_millis(),
    };
    assert!(
        store
            .add_member(&id, joined.clone())
            .await
            .expect("add_member")
    );
    assert!(
        !store
            .add_member(&id, member(&b, Role::Admin))
            .await
            .expect("add_member"),
        "adding a member again answers false"
    );
    assert_eq!(
        store.member(&id, &b).await.expect("member"),
        Some(joined.clone()),
        "a second add changes nothing"
    );
    assert_eq!(conversations_of(store, &b).await, vec![id.clone()]);
    assert_eq!(
        store
            .remove_member(&id, &b, true)
            .await
            .expect("remove_member"),
        Some(joined),
        "remove answers the member it was"
    );
    assert_eq!(
        store.remove_member(&id, &b, true).await.expect("remove"),
        None
    );
    assert!(conversations_of(store, &b).await.is_empty());
    assert!(
        store.is_banned(&id, &b).await.expect("is_banned"),
        "a ban stays"
    );
    assert!(
        store
            .add_member(&id, member(&b, Role::Member))
            .await
            .expect("add")
    );
    assert!(
        !store.is_banned(&id, &b).await.expect("is_banned"),
        "an add clears the ban"
    );
    assert!(
        store
            .add_member(&id, member(&c, Role::Member))
            .await
            .expect("add")
    );
    store.remove_member(&id, &c, false).await.expect("remove");
    assert!(
        !store.is_banned(&id, &c).await.expect("is_banned"),
        "leaving is not a ban"
    );
    assert_eq!(store.member_count(&id).await.expect("member_count"), 2);
    let err = store
        .add_member(&group_id(), member(&c, Role::Member))
        .await
        .expect_err("adding to a missing conversation");
    assert!(matches!(err, Error::NotFound { .. }), "got {err:?}");
}

/// Departures: one kept per user and group, the latest (by `left`); an
/// older or repeated one changes nothing; each user reads only its own,
/// with every field as written.
pub async fn departures_keep_the_latest_per_group(store: &dyn ConversationStore) {
    let (a, b) = (user("a"), user("b"));
    let (g1, g2) = (group_id(), group_id());
    assert!(
        store.departures(&a).await.expect("departures").is_empty(),
        "nobody left anything yet"
    );
    let departure = |g: &ConversationId, by: &UserId, body: &str| Departure {
        conversation_id: g.clone(),
        joined: next_id(),
        left: next_id(),
        by: by.clone(),
        ts: now_millis(),
        body: body.to_owned(),
    };
    let first = departure(&g1, &b, r#"{"event":"removed"}"#);
    // A re-add and another removal lie between two departures of one user
    // from one group: never within one millisecond.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let later = departure(&g1, &a, r#"{"event":"left"}"#);
    let other = departure(&g2, &a, "✓ unicode body");
    for d in [&first, &later, &other] {
        store
            .record_departure(&a, d.clone())
            .await
            .expect("record_departure");
    }
    // An older one and a repeat change nothing.
    store
        .record_departure(&a, first.clone())
        .await
        .expect("record_departure");
    store
        .record_departure(&a, later.clone())
        .await
        .expect("record_departure");
    let mut kept = store.departures(&a).await.expect("departures");
    kept.sort_by_key(|d| d.left);
    assert_eq!(kept, vec![later, other], "the latest per group, as written");
    assert!(
        store.departures(&b).await.expect("departures").is_empty(),
        "another user's departures are its own"
    );
}

/// Roles change with `set_role`; settings with `update_group`, field by field.
pub async fn roles_and_settings(store: &dyn ConversationStore) {
    let (a, b) = (user("a"), user("b"));
    let id = group_id();
    let conv = group(&id, &a);
    store
        .create_group(
            conv.clone(),
            &[member(&a, Role::Owner), member(&b, Role::Member)],
        )
        .await
        .expect("create_group failed");
    assert!(
        store
            .set_role(&id, &b, Role::Admin)
            .await
            .expect("set_role")
    );
    assert_eq!(
        store.member(&id, &b).await.expect("member").map(|m| m.role),
        Some(Role::Admin)
    );
    assert!(
        !store
            .set_role(&id, &user("x"), Role::Admin)
            .await
            .expect("set_role"),
        "a non-member has no role to set"
    );
    let renamed = store
        .update_group(
            &id,
            &GroupSettings {
                name: Some("renamed".into()),
                ..GroupSettings::default()
            },
        )
        .await
        .expect("update_group failed");
    assert_eq!(renamed.name.as_deref(), Some("renamed"));
    assert_eq!(renamed.join, conv.join, "fields left out stay");
    let opened = store
        .update_group(
            &id,
            &GroupSettings {
                join: Some(JoinPolicy::Open),
                history: Some(HistoryVisibility::All),
                ..GroupSettings::default()
            },
        )
        .await
        .expect("update_group failed");
    assert_eq!(
        (opened.name.as_deref(), opened.join, opened.history),
        (Some("renamed"), JoinPolicy::Open, HistoryVisibility::All)
    );
    assert_eq!(
        store.conversation(&id).await.expect("conversation"),
        Some(opened)
    );
    let err = store
        .update_group(&group_id(), &GroupSettings::default())
        .await
        .expect_err("a missing group");
    assert!(matches!(err, Error::NotFound { .. }), "got {err:?}");
}

/// Adds racing for one user add it once: exactly one answers true.
pub async fn concurrent_add_member(store: Arc<dyn ConversationStore>) {
    let a = user("a");
    let joiner = user("joiner");
    let id = group_id();
    store
        .create_group(group(&id, &a), &[member(&a, Role::Owner)])
        .await
        .expect("create_group failed");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, id, joiner) = (store.clone(), id.clone(), joiner.clone());
            tokio::spawn(async move {
                store
                    .add_member(&id, member(&joiner, Role::Member))
                    .await
                    .expect("add_member failed")
            })
        })
        .collect();
    let mut added = 0;
    for t in tasks {
        added += usize::from(t.await.expect("task panicked"));
    }
    assert_eq!(added, 1, "exactly one racing add adds");
    assert_eq!(store.member_count(&id).await.expect("member_count"), 2);
}

fn invite(
    id: &ConversationId,
    by: &UserId,
    max_uses: Option<u32>,
    expires_at: Option<i64>,
) -> Invite {
    Invite {
        code_hash: unique("hash"),
        conversation_id: id.clone(),
        created_by: by.clone(),
        created_at: now_millis(),
        max_uses,
        uses: 0,
        expires_at,
        revoked: false,
    }
}

/// Invites redeem to their group while usable, and are `Gone` once used
/// up, expired or revoked; an unknown one is `NotFound`.
pub async fn invites_redeem_expire_revoke(store: &dyn ConversationStore) {
    let a = user("a");
    let id = group_id();
    store
        .create_group(group(&id, &a), &[member(&a, Role::Owner)])
        .await
        .expect("create_group failed");
    let now = now_millis();
    let twice = invite(&id, &a, Some(2), None);
    store
        .create_invite(twice.clone())
        .await
        .expect("create_invite failed");
    let err = store
        .create_invite(twice.clone())
        .await
        .expect_err("a taken hash");
    assert!(matches!(err, Error::AlreadyExists { .. }), "got {err:?}");
    for _ in 0..2 {
        assert_eq!(
            store
                .redeem_invite(&twice.code_hash, now)
                .await
                .expect("redeem"),
            id
        );
    }
    let err = store
        .redeem_invite(&twice.code_hash, now)
        .await
        .expect_err("used up");
    assert!(
        matches!(err, Error::Gone { .. }),
        "a used-up invite is Gone, got {err:?}"
    );

    let expiring = invite(&id, &a, None, Some(now + 1000));
    store
        .create_invite(expiring.clone())
        .await
        .expect("create_invite");
    assert_eq!(
        store
            .redeem_invite(&expiring.code_hash, now)
            .await
            .expect("redeem"),
        id,
        "unlimited and not yet expired"
    );
    let err = store
        .redeem_invite(&expiring.code_hash, now + 1000)
        .await
        .expect_err("expired");
    assert!(
        matches!(err, Error::Gone { .. }),
        "an expired invite is Gone, got {err:?}"
    );

    let revoked = invite(&id, &a, None, None);
    store
        .create_invite(revoked.clone())
        .await
        .expect("create_invite");
    assert!(
        !store
            .revoke_invite(&group_id(), &revoked.code_hash)
            .await
            .expect("revoke"),
        "another group cannot revoke it"
    );
    assert!(
        store
            .revoke_invite(&id, &revoked.code_hash)
            .await
            .expect("revoke")
    );
    let err = store
        .redeem_invite(&revoked.code_hash, now)
        .await
        .expect_err("revoked");
    assert!(
        matches!(err, Error::Gone { .. }),
        "a revoked invite is Gone, got {err:?}"
    );
    let err = store
        .redeem_invite(&unique("nope"), now)
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, Error::NotFound { .. }),
        "an unknown invite is NotFound, got {err:?}"
    );
}

/// Redeems racing for a one-use invite let exactly one through.
pub async fn concurrent_redeem_of_a_one_use_invite(store: Arc<dyn ConversationStore>) {
    let a = user("a");
    let id = group_id();
    store
        .create_group(group(&id, &a), &[member(&a, Role::Owner)])
        .await
        .expect("create_group failed");
    let once = invite(&id, &a, Some(1), None);
    store
        .create_invite(once.clone())
        .await
        .expect("create_invite");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, hash) = (store.clone(), once.code_hash.clone());
            tokio::spawn(async move { store.redeem_invite(&hash, now_millis()).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task panicked") {
            Ok(c) => {
                assert_eq!(c, id);
                ok += 1;
            }
            Err(Error::Gone { .. }) => {}
            Err(e) => panic!("a racing redeem failed: {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one racing redeem of a one-use invite wins");
}

/// A store that serves answers `ping` (the readiness probe), also twice in a
/// row and from several callers at once.
pub async fn conversation_store_ping_answers(store: &dyn ConversationStore) {
    store.ping().await.expect("ping of a store that serves");
    let (a, b) = tokio::join!(store.ping(), store.ping());
    a.and(b).expect("concurrent pings");
}
