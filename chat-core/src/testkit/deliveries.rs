//! [`MessageStore`] conformance, part two: pending deliveries, acks,
//! cursors, unread counts, `clear_pending` and retention.

use super::fixtures::{all_history, all_pending, append, group_id, ids, message, sorted, user};
use crate::model::{ConversationId, Message, MessageId, UserId};
use crate::store::{Acked, Cursors, MessageStore};

fn acked(messages: &[&Message]) -> Vec<Acked> {
    sorted_acked(
        messages
            .iter()
            .map(|m| Acked {
                message_id: m.message_id,
                sender_id: m.sender_id.clone(),
            })
            .collect(),
    )
}

fn sorted_acked(mut items: Vec<Acked>) -> Vec<Acked> {
    items.sort_by_key(|a| a.message_id);
    items
}

async fn ack(
    store: &dyn MessageStore,
    user: &UserId,
    conversation: &ConversationId,
    up_to: MessageId,
) -> Vec<Acked> {
    sorted_acked(
        store
            .ack(user, conversation, up_to)
            .await
            .unwrap_or_else(|e| panic!("ack of {user} up to {up_to} failed: {e}")),
    )
}

async fn cursors(
    store: &dyn MessageStore,
    user: &UserId,
    conversation: &ConversationId,
) -> Cursors {
    store
        .cursors(user, conversation)
        .await
        .unwrap_or_else(|e| panic!("cursors of {user} failed: {e}"))
}

async fn unread(store: &dyn MessageStore, user: &UserId, conversation: &ConversationId) -> u64 {
    store
        .unread(user, conversation)
        .await
        .unwrap_or_else(|e| panic!("unread of {user} failed: {e}"))
}

async fn purge(
    store: &dyn MessageStore,
    conversation: &ConversationId,
    ids: &[MessageId],
) -> Vec<MessageId> {
    sorted(
        store
            .purge_delivered(conversation, ids)
            .await
            .unwrap_or_else(|e| panic!("purge_delivered failed: {e}")),
    )
}

/// `pending` lists a user's deliveries across all its conversations, oldest
/// first, only its own, and pages with `after` and `limit`.
pub async fn pending_oldest_first_across_conversations(store: &dyn MessageStore) {
    let (c1, c2) = (group_id(), group_id());
    let (sender, r, only_c1) = (user("sender"), user("r"), user("only-c1"));
    let mut for_r = Vec::new();
    let mut for_only_c1 = Vec::new();
    for n in 0..10 {
        let m = if n % 2 == 0 {
            let m = append(
                store,
                message(&c1, &sender, "c1"),
                &[r.clone(), only_c1.clone()],
            )
            .await;
            for_only_c1.push(m.clone());
            m
        } else {
            append(store, message(&c2, &sender, "c2"), std::slice::from_ref(&r)).await
        };
        for_r.push(m);
    }
    assert_eq!(
        all_pending(store, &r).await,
        for_r,
        "pending must span conversations, oldest first"
    );
    assert_eq!(
        all_pending(store, &only_c1).await,
        for_only_c1,
        "pending must hold only the user's own deliveries"
    );

    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store.pending(&r, after, 3).await.expect("pending failed");
        assert!(page.len() <= 3, "a page must hold at most limit messages");
        let Some(last) = page.last() else { break };
        after = Some(last.message_id);
        walked.extend(page);
        assert!(
            walked.len() <= for_r.len(),
            "paging must end and not repeat messages"
        );
    }
    assert_eq!(
        walked, for_r,
        "paging with after must visit every pending message once, oldest first"
    );
    let page = store
        .pending(&r, Some(for_r[4].message_id), 2)
        .await
        .expect("pending failed");
    assert_eq!(page, for_r[5..7], "after m4 with limit 2 must be m5, m6");
    assert!(
        all_pending(store, &user("nobody")).await.is_empty(),
        "an unknown user has nothing pending"
    );
}

/// `ack` removes the user's pending deliveries up to and including `up_to`
/// in that conversation only, returns them with their senders, leaves other
/// conversations and users alone and moves the delivered cursor to `up_to`.
pub async fn ack_removes_pending_up_to_in_one_conversation(store: &dyn MessageStore) {
    let (c1, c2) = (group_id(), group_id());
    let (s1, s2, r, other) = (user("s1"), user("s2"), user("r"), user("other"));
    let both = [r.clone(), other.clone()];
    let m1 = append(store, message(&c1, &s1, "m1"), &both).await;
    let n1 = append(store, message(&c2, &s1, "n1"), std::slice::from_ref(&r)).await;
    let m2 = append(store, message(&c1, &s2, "m2"), &both).await;
    let m3 = append(store, message(&c1, &s1, "m3"), &both).await;
    let n2 = append(store, message(&c2, &s2, "n2"), std::slice::from_ref(&r)).await;
    let m4 = append(store, message(&c1, &s2, "m4"), &both).await;

    assert_eq!(
        ack(store, &r, &c1, m2.message_id).await,
        acked(&[&m1, &m2]),
        "ack up to m2 must remove and return m1 and m2 with their senders"
    );
    assert_eq!(
        all_pending(store, &r).await,
        vec![n1.clone(), m3.clone(), n2.clone(), m4.clone()],
        "ack must leave later messages and other conversations pending"
    );
    assert_eq!(
        all_pending(store, &other).await,
        vec![m1.clone(), m2.clone(), m3.clone(), m4.clone()],
        "one user's ack must not touch another user's deliveries"
    );
    assert_eq!(
        cursors(store, &r, &c1).await,
        Cursors {
            delivered: Some(m2.message_id),
            read: None
        },
        "ack must move the delivered cursor to up_to and leave read alone"
    );
    assert_eq!(
        cursors(store, &r, &c2).await,
        Cursors::default(),
        "ack must not move another conversation's cursor"
    );

    // An ack whose up_to names another conversation's message still only
    // covers its own conversation.
    assert_eq!(
        ack(store, &r, &c2, m4.message_id).await,
        acked(&[&n1, &n2]),
        "ack in c2 must remove only c2's messages"
    );
    assert_eq!(
        all_pending(store, &r).await,
        vec![m3.clone(), m4.clone()],
        "c1's deliveries must still be pending"
    );
    assert_eq!(
        all_history(store, &c1).await.len(),
        4,
        "ack must not delete messages (only purge_delivered does)"
    );
}

/// Acks are cumulative and idempotent: acking again or lower removes
/// nothing and never moves the delivered cursor backwards; acking higher
/// removes the rest; acking with nothing pending still moves the cursor.
pub async fn ack_cumulative_idempotent_never_backwards(store: &dyn MessageStore) {
    let conv = group_id();
    let (sender, r) = (user("sender"), user("r"));
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(
            append(
                store,
                message(&conv, &sender, &format!("m{n}")),
                std::slice::from_ref(&r),
            )
            .await,
        );
    }
    let delivered = |id: &Message| Cursors {
        delivered: Some(id.message_id),
        read: None,
    };

    assert_eq!(
        ack(store, &r, &conv, sent[2].message_id).await,
        acked(&[&sent[0], &sent[1], &sent[2]])
    );
    assert!(
        ack(store, &r, &conv, sent[2].message_id).await.is_empty(),
        "a repeated ack must remove nothing"
    );
    assert!(
        ack(store, &r, &conv, sent[0].message_id).await.is_empty(),
        "a lower ack must remove nothing"
    );
    assert_eq!(
        cursors(store, &r, &conv).await,
        delivered(&sent[2]),
        "a lower ack must not move the delivered cursor backwards"
    );
    assert_eq!(
        ack(store, &r, &conv, MessageId(u64::MAX)).await,
        acked(&[&sent[3], &sent[4]]),
        "an ack past the newest must remove the rest"
    );
    assert!(
        all_pending(store, &r).await.is_empty(),
        "everything was acked"
    );
    assert_eq!(
        cursors(store, &r, &conv).await,
        Cursors {
            delivered: Some(MessageId(u64::MAX)),
            read: None
        },
        "the delivered cursor is up_to, also past the newest message"
    );

    let quiet = group_id();
    assert!(
        ack(store, &r, &quiet, sent[1].message_id).await.is_empty(),
        "nothing was pending there"
    );
    assert_eq!(
        cursors(store, &r, &quiet).await,
        delivered(&sent[1]),
        "an ack with nothing pending must still move the delivered cursor"
    );
}

/// `mark_read` moves the read cursor forward only and says whether it
/// moved; `unread` counts stored messages from others newer than it.
pub async fn read_cursor_and_unread(store: &dyn MessageStore) {
    let conv = group_id();
    let (s, r) = (user("s"), user("r"));
    let s1 = append(store, message(&conv, &s, "s1"), std::slice::from_ref(&r)).await;
    let s2 = append(store, message(&conv, &s, "s2"), std::slice::from_ref(&r)).await;
    let r1 = append(store, message(&conv, &r, "r1"), std::slice::from_ref(&s)).await;
    let s3 = append(store, message(&conv, &s, "s3"), std::slice::from_ref(&r)).await;

    assert_eq!(
        cursors(store, &r, &conv).await,
        Cursors::default(),
        "cursors start empty"
    );
    assert_eq!(
        unread(store, &r, &conv).await,
        3,
        "r has 3 unread messages from s, its own do not count"
    );
    assert_eq!(
        unread(store, &s, &conv).await,
        1,
        "s has r's one message unread"
    );

    assert!(
        store
            .mark_read(&r, &conv, s2.message_id)
            .await
            .expect("mark_read failed"),
        "read up to s2 must move the cursor"
    );
    assert_eq!(
        unread(store, &r, &conv).await,
        1,
        "only s3 is newer than the read cursor"
    );
    assert_eq!(
        cursors(store, &r, &conv).await,
        Cursors {
            delivered: None,
            read: Some(s2.message_id)
        },
        "mark_read must set read and leave delivered alone"
    );
    assert!(
        !store
            .mark_read(&r, &conv, s2.message_id)
            .await
            .expect("mark_read failed"),
        "the same read must not move"
    );
    assert!(
        !store
            .mark_read(&r, &conv, s1.message_id)
            .await
            .expect("mark_read failed"),
        "a lower read must not move"
    );
    assert_eq!(
        cursors(store, &r, &conv).await.read,
        Some(s2.message_id),
        "the read cursor never goes backwards"
    );
    assert!(
        store
            .mark_read(&r, &conv, s3.message_id)
            .await
            .expect("mark_read failed"),
        "read up to s3 must move"
    );
    assert_eq!(unread(store, &r, &conv).await, 0, "everything is read");

    store
        .remove(&conv, r1.message_id)
        .await
        .expect("remove failed");
    assert_eq!(
        unread(store, &s, &conv).await,
        0,
        "unread counts stored messages only"
    );
    assert_eq!(
        unread(store, &r, &group_id()).await,
        0,
        "an unknown conversation has nothing unread"
    );
}

/// `clear_pending` drops every pending delivery of one user in one
/// conversation, returns their ids, and leaves messages, other users and
/// other conversations alone.
pub async fn clear_pending_drops_one_conversation(store: &dyn MessageStore) {
    let (c1, c2) = (group_id(), group_id());
    let (s, r, other) = (user("s"), user("r"), user("other"));
    let mut in_c1 = Vec::new();
    let mut in_c2 = Vec::new();
    for n in 0..3 {
        in_c1.push(
            append(
                store,
                message(&c1, &s, &format!("c1 {n}")),
                &[r.clone(), other.clone()],
            )
            .await,
        );
        in_c2.push(
            append(
                store,
                message(&c2, &s, &format!("c2 {n}")),
                std::slice::from_ref(&r),
            )
            .await,
        );
    }
    let dropped = store
        .clear_pending(&r, &c1)
        .await
        .expect("clear_pending failed");
    assert_eq!(
        sorted(dropped),
        ids(&in_c1),
        "clear_pending must return the ids it dropped"
    );
    assert_eq!(
        all_pending(store, &r).await,
        in_c2,
        "clear_pending must leave other conversations pending"
    );
    assert_eq!(
        all_pending(store, &other).await,
        in_c1,
        "clear_pending must leave other users alone"
    );
    assert_eq!(
        all_history(store, &c1).await.len(),
        3,
        "clear_pending must not delete messages"
    );
    assert!(
        store
            .clear_pending(&r, &c1)
            .await
            .expect("clear_pending failed")
            .is_empty(),
        "a second clear_pending has nothing to drop"
    );
}

/// Retention `forever`: the engine never purges, and acks by every
/// recipient delete nothing: history keeps every message.
pub async fn retention_forever_acks_keep_history(store: &dyn MessageStore) {
    let conv = group_id();
    let (s, r1, r2) = (user("s"), user("r1"), user("r2"));
    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(
            append(
                store,
                message(&conv, &s, &format!("m{n}")),
                &[r1.clone(), r2.clone()],
            )
            .await,
        );
    }
    let newest = sent[2].message_id;
    ack(store, &r1, &conv, newest).await;
    ack(store, &r2, &conv, newest).await;
    let newest_first: Vec<Message> = sent.iter().rev().cloned().collect();
    assert_eq!(
        all_history(store, &conv).await,
        newest_first,
        "acked messages must stay in history"
    );
    assert_eq!(
        store
            .last_message_id(&conv)
            .await
            .expect("last_message_id failed"),
        Some(newest),
        "acks must not change the last message"
    );
}

/// Retention `until_delivered`: `purge_delivered` deletes exactly those of
/// the given ids that no user has pending any more (acked or cleared), and
/// nothing else.
pub async fn purge_deletes_only_fully_delivered(store: &dyn MessageStore) {
    let conv = group_id();
    let (s, r1, r2, leaver) = (user("s"), user("r1"), user("r2"), user("leaver"));
    let all = [r1.clone(), r2.clone(), leaver.clone()];
    let m1 = append(store, message(&conv, &s, "m1"), &all).await;
    let m2 = append(store, message(&conv, &s, "m2"), &all).await;
    let m3 = append(store, message(&conv, &s, "m3"), &all).await;
    let solo = append(store, message(&conv, &s, "to nobody"), &[]).await;
    let every = [m1.message_id, m2.message_id, m3.message_id];

    store
        .clear_pending(&leaver, &conv)
        .await
        .expect("clear_pending failed");
    ack(store, &r1, &conv, m3.message_id).await;
    ack(store, &r2, &conv, m1.message_id).await;
    assert_eq!(
        purge(store, &conv, &every).await,
        vec![m1.message_id],
        "only m1 is acked by everybody (the leaver's deliveries were cleared)"
    );
    assert_eq!(
        all_history(store, &conv).await,
        vec![solo.clone(), m3.clone(), m2.clone()],
        "purge must delete exactly what it returns"
    );
    assert_eq!(
        all_pending(store, &r2).await,
        vec![m2.clone(), m3.clone()],
        "purge must keep what is pending"
    );
    assert!(
        purge(store, &conv, &[m1.message_id]).await.is_empty(),
        "a purged message cannot be purged twice"
    );
    assert!(
        purge(store, &conv, &[MessageId(1), MessageId(2)])
            .await
            .is_empty(),
        "ids never stored must not be reported as deleted"
    );

    ack(store, &r2, &conv, m3.message_id).await;
    assert_eq!(
        purge(
            store,
            &conv,
            &[m2.message_id, m3.message_id, solo.message_id]
        )
        .await,
        sorted(vec![m2.message_id, m3.message_id, solo.message_id]),
        "once everybody acked, everything given must be purged, and a message without recipients at once"
    );
    assert!(
        all_history(store, &conv).await.is_empty(),
        "history must be empty once everything is purged"
    );
    assert_eq!(
        store
            .last_message_id(&conv)
            .await
            .expect("last_message_id failed"),
        None,
        "no message is left"
    );
}
