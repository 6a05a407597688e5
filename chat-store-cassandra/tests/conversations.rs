//! Conversations beyond the conformance suite: what the members partition
//! holds once every member left (its static count alone, which Cassandra
//! answers as a row without a user), and adds and removes racing on one
//! group keeping the count exact.

mod support;

use std::sync::Arc;

use chat_core::store::ConversationStore;
use chat_core::{
    Conversation, ConversationId, ConversationKind, HistoryVisibility, JoinPolicy, Member, Role,
    UserId, now_millis,
};

fn unique(label: &str) -> String {
    format!("conv-{label}-{:016x}", rand::random::<u64>())
}

fn group(id: &ConversationId, creator: &UserId) -> Conversation {
    Conversation {
        id: id.clone(),
        kind: ConversationKind::Group,
        name: Some(unique("name")),
        created_by: creator.clone(),
        created_at: now_millis(),
        join: JoinPolicy::Open,
        history: HistoryVisibility::All,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_members_all_left_has_none() {
    let store = support::store().await;
    let (a, b) = (UserId::from(unique("a")), UserId::from(unique("b")));
    let id = ConversationId::from(unique("g"));
    let members = [
        Member::founding(a.clone(), Role::Owner, now_millis()),
        Member::founding(b.clone(), Role::Member, now_millis()),
    ];
    store
        .create_group(group(&id, &a), &members)
        .await
        .expect("create");
    for user in [&a, &b] {
        assert!(
            store
                .remove_member(&id, user, false)
                .await
                .expect("leave")
                .is_some()
        );
    }
    assert_eq!(store.members(&id).await.expect("members"), vec![]);
    assert_eq!(store.member_count(&id).await.expect("count"), 0);
    assert!(
        store
            .add_member(&id, Member::founding(b.clone(), Role::Member, now_millis()))
            .await
            .expect("join again")
    );
    assert_eq!(store.member_count(&id).await.expect("count"), 1);
    assert_eq!(
        store
            .members(&id)
            .await
            .expect("members")
            .into_iter()
            .map(|m| m.user_id)
            .collect::<Vec<_>>(),
        vec![b]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_adds_and_removes_keep_the_count_exact() {
    let store = support::store().await;
    let owner = UserId::from(unique("owner"));
    let id = ConversationId::from(unique("g"));
    store
        .create_group(
            group(&id, &owner),
            &[Member::founding(owner.clone(), Role::Owner, now_millis())],
        )
        .await
        .expect("create");
    let joiners: Vec<UserId> = (0..16)
        .map(|i| UserId::from(unique(&format!("j{i}"))))
        .collect();
    let tasks: Vec<_> = joiners
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, user)| {
            let (store, id): (Arc<_>, _) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let member = Member::founding(user.clone(), Role::Member, now_millis());
                assert!(store.add_member(&id, member).await.expect("add"));
                // Every other joiner leaves again at once.
                if i % 2 == 1 {
                    assert!(
                        store
                            .remove_member(&id, &user, false)
                            .await
                            .expect("remove")
                            .is_some()
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let members = store.members(&id).await.expect("members");
    assert_eq!(members.len(), 1 + joiners.len() / 2);
    assert_eq!(
        store.member_count(&id).await.expect("count"),
        members.len() as u64,
        "the count moved with every add and remove"
    );
}
