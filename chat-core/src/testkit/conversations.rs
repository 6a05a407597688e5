//! [`ConversationStore`] conformance: groups, direct conversations and
//! membership, both ways.

use std::sync::Arc;

use super::fixtures::{group, group_id, sorted, user};
use crate::error::Error;
use crate::model::{Conversation, ConversationId, ConversationKind, UserId, now_millis};
use crate::store::ConversationStore;

async fn members(store: &dyn ConversationStore, id: &ConversationId) -> Vec<UserId> {
    sorted(
        store
            .members(id)
            .await
            .unwrap_or_else(|e| panic!("members of {id} failed: {e}")),
    )
}

async fn conversations_of(store: &dyn ConversationStore, user: &UserId) -> Vec<ConversationId> {
    sorted(
        store
            .conversations_of(user)
            .await
            .unwrap_or_else(|e| panic!("conversations_of {user} failed: {e}")),
    )
}

async fn is_member(store: &dyn ConversationStore, id: &ConversationId, user: &UserId) -> bool {
    store
        .is_member(id, user)
        .await
        .unwrap_or_else(|e| panic!("is_member failed: {e}"))
}

/// `create_group` stores the conversation and its members, readable by id,
/// by `members`, `is_member` and each member's `conversations_of`.
pub async fn create_group_and_read_back(store: &dyn ConversationStore) {
    let (a, b, outsider) = (user("a"), user("b"), user("outsider"));
    let id = group_id();
    let conv = group(&id, &a);
    store
        .create_group(conv.clone(), &[a.clone(), b.clone()])
        .await
        .expect("create_group failed");
    assert_eq!(
        store.conversation(&id).await.expect("conversation failed"),
        Some(conv),
        "the group must read back as created"
    );
    assert_eq!(
        members(store, &id).await,
        sorted(vec![a.clone(), b.clone()]),
        "members must be those given"
    );
    assert!(
        is_member(store, &id, &a).await && is_member(store, &id, &b).await,
        "both are members"
    );
    assert!(
        !is_member(store, &id, &outsider).await,
        "an outsider is not a member"
    );
    assert_eq!(
        conversations_of(store, &a).await,
        vec![id.clone()],
        "conversations_of must list the group"
    );
    assert!(
        conversations_of(store, &outsider).await.is_empty(),
        "an outsider has no conversations"
    );

    let missing = group_id();
    assert_eq!(
        store
            .conversation(&missing)
            .await
            .expect("conversation failed"),
        None,
        "an unknown id has no conversation"
    );
    assert!(
        members(store, &missing).await.is_empty(),
        "an unknown conversation has no members"
    );
    assert!(
        !is_member(store, &missing, &a).await,
        "nobody is a member of an unknown conversation"
    );
}

/// A second `create_group` with a taken id fails with `AlreadyExists` and
/// changes nothing.
pub async fn create_group_rejects_taken_id(store: &dyn ConversationStore) {
    let (a, b) = (user("a"), user("b"));
    let id = group_id();
    let first = group(&id, &a);
    store
        .create_group(first.clone(), std::slice::from_ref(&a))
        .await
        .expect("create_group failed");
    let err = store
        .create_group(group(&id, &b), std::slice::from_ref(&b))
        .await
        .expect_err("create_group with a taken id must fail");
    assert!(
        matches!(err, Error::AlreadyExists { .. }),
        "a taken group id must be AlreadyExists, got {err:?}"
    );
    assert_eq!(
        store.conversation(&id).await.expect("conversation failed"),
        Some(first),
        "the first group must stay"
    );
    assert_eq!(
        members(store, &id).await,
        vec![a],
        "the first group's members must stay"
    );
    assert!(
        conversations_of(store, &b).await.is_empty(),
        "the failed creator must not have joined"
    );
}

/// `ensure_direct` creates the conversation of a pair once, with both users
/// as members; later calls return the first record unchanged.
pub async fn ensure_direct_is_idempotent(store: &dyn ConversationStore) {
    let (a, b) = (user("a"), user("b"));
    let id = ConversationId::direct(&a, &b);
    let first = Conversation {
        id: id.clone(),
        kind: ConversationKind::Direct,
        name: None,
        created_by: a.clone(),
        created_at: now_millis(),
    };
    let got = store
        .ensure_direct(first.clone())
        .await
        .expect("ensure_direct failed");
    assert_eq!(
        got, first,
        "the first ensure_direct must create and return the conversation"
    );
    let again = Conversation {
        created_by: b.clone(),
        created_at: first.created_at + 1,
        ..first.clone()
    };
    let got = store
        .ensure_direct(again)
        .await
        .expect("ensure_direct failed");
    assert_eq!(
        got, first,
        "a second ensure_direct must return the first record unchanged"
    );
    assert_eq!(
        store.conversation(&id).await.expect("conversation failed"),
        Some(first),
        "the stored record is the first"
    );
    assert_eq!(
        members(store, &id).await,
        sorted(vec![a.clone(), b.clone()]),
        "both users are the members"
    );
    assert_eq!(
        conversations_of(store, &a).await,
        vec![id.clone()],
        "a must list the direct conversation"
    );
    assert_eq!(
        conversations_of(store, &b).await,
        vec![id],
        "b must list the direct conversation"
    );
}

/// `add_member` and `remove_member` change membership both ways and report
/// whether anything changed.
pub async fn membership_add_and_remove(store: &dyn ConversationStore) {
    let (a, b, never) = (user("a"), user("b"), user("never"));
    let (g1, g2) = (group_id(), group_id());
    store
        .create_group(group(&g1, &a), std::slice::from_ref(&a))
        .await
        .expect("create_group failed");
    store
        .create_group(group(&g2, &a), std::slice::from_ref(&a))
        .await
        .expect("create_group failed");

    assert!(
        store.add_member(&g1, &b).await.expect("add_member failed"),
        "adding a newcomer must report true"
    );
    assert!(
        !store.add_member(&g1, &b).await.expect("add_member failed"),
        "adding a member again must report false"
    );
    assert!(
        store.add_member(&g2, &b).await.expect("add_member failed"),
        "adding to a second group must report true"
    );
    assert!(is_member(store, &g1, &b).await, "b joined g1");
    assert_eq!(
        members(store, &g1).await,
        sorted(vec![a.clone(), b.clone()]),
        "g1 has a and b"
    );
    assert_eq!(
        conversations_of(store, &b).await,
        sorted(vec![g1.clone(), g2.clone()]),
        "b is in both groups"
    );

    assert!(
        store
            .remove_member(&g1, &b)
            .await
            .expect("remove_member failed"),
        "removing a member must report true"
    );
    assert!(
        !store
            .remove_member(&g1, &b)
            .await
            .expect("remove_member failed"),
        "removing again must report false"
    );
    assert!(
        !store
            .remove_member(&g1, &never)
            .await
            .expect("remove_member failed"),
        "removing a stranger must report false"
    );
    assert!(!is_member(store, &g1, &b).await, "b left g1");
    assert_eq!(
        members(store, &g1).await,
        vec![a.clone()],
        "g1 has only a again"
    );
    assert_eq!(
        conversations_of(store, &b).await,
        vec![g2.clone()],
        "b is only in g2"
    );
    assert_eq!(
        conversations_of(store, &a).await,
        sorted(vec![g1, g2]),
        "a stays in both"
    );
}

/// Many tasks add members at once: each user joins once (exactly one
/// `add_member` of the same user reports true) and none is lost.
pub async fn concurrent_add_member(store: Arc<dyn ConversationStore>) {
    const USERS: usize = 16;
    const TRIES: usize = 4;
    let creator = user("creator");
    let id = group_id();
    store
        .create_group(group(&id, &creator), std::slice::from_ref(&creator))
        .await
        .expect("create_group failed");
    let users: Vec<UserId> = (0..USERS).map(|n| user(&format!("u{n}"))).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for u in &users {
        for _ in 0..TRIES {
            let (store, id, u) = (store.clone(), id.clone(), u.clone());
            tasks.spawn(async move {
                let added = store.add_member(&id, &u).await.expect("add_member failed");
                (u, added)
            });
        }
    }
    let mut wins = std::collections::HashMap::<UserId, usize>::new();
    while let Some(joined) = tasks.join_next().await {
        let (u, added) = joined.expect("an add_member task panicked");
        *wins.entry(u).or_default() += usize::from(added);
    }
    for u in &users {
        assert_eq!(
            wins.get(u),
            Some(&1),
            "exactly one of {TRIES} racing add_member of {u} must report true"
        );
    }
    let mut expected = users.clone();
    expected.push(creator);
    assert_eq!(
        members(&*store, &id).await,
        sorted(expected),
        "every added user must be a member"
    );
}

/// A store that serves answers `ping` (the readiness probe), also twice in a
/// row and from several callers at once.
pub async fn conversation_store_ping_answers(store: &dyn ConversationStore) {
    store.ping().await.expect("ping of a store that serves");
    let (a, b) = tokio::join!(store.ping(), store.ping());
    a.and(b).expect("concurrent pings");
}
