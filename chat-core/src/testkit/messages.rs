//! [`MessageStore`] conformance, part one: append, dedup, history, remove,
//! concurrent senders.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::fixtures::{
    all_history, all_pending, append, group_id, ids, keyed, message, unique, user,
};
use crate::model::{Message, MessageId};
use crate::store::MessageStore;

/// `append` stores the message as given, returns it with `duplicate: false`,
/// makes it the conversation's last message and leaves one pending delivery
/// per recipient and none for the sender.
pub async fn append_stores_message_and_pending(store: &dyn MessageStore) {
    let conv = group_id();
    let (sender, r1, r2) = (user("sender"), user("r1"), user("r2"));
    let new = message(&conv, &sender, "hello");
    let appended = store
        .append(new.clone(), &[r1.clone(), r2.clone()])
        .await
        .expect("append failed");
    assert!(
        !appended.duplicate,
        "a first append must not be a duplicate"
    );
    assert_eq!(
        appended.message, new.message,
        "append must return the message as stored"
    );
    assert_eq!(
        all_history(store, &conv).await,
        vec![new.message.clone()],
        "history must hold exactly the appended message, unchanged"
    );
    assert_eq!(
        store
            .last_message_id(&conv)
            .await
            .expect("last_message_id failed"),
        Some(new.message.message_id),
        "last_message_id must name the appended message"
    );
    for r in [&r1, &r2] {
        assert_eq!(
            all_pending(store, r).await,
            vec![new.message.clone()],
            "recipient {r} must have the message pending"
        );
    }
    assert!(
        all_pending(store, &sender).await.is_empty(),
        "the sender must have nothing pending for its own message"
    );

    // A message with no recipient (a group of one) is stored all the same.
    let solo = append(store, message(&conv, &sender, "to nobody"), &[]).await;
    assert_eq!(
        ids(&all_history(store, &conv).await),
        vec![solo.message_id, new.message.message_id],
        "a message without recipients must be stored too"
    );
}

/// A second append with the same sender and `client_msg_id` stores nothing
/// and returns the first message with `duplicate: true`; another sender's
/// equal key, and messages without a key, are not duplicates.
pub async fn append_dedups_by_sender_and_key(store: &dyn MessageStore) {
    let conv = group_id();
    let (sender, other, r) = (user("sender"), user("other"), user("r"));
    let key = unique("key");
    let first = append(
        store,
        keyed(&conv, &sender, "first", &key),
        std::slice::from_ref(&r),
    )
    .await;

    let retry = keyed(&conv, &sender, "retry with another id and body", &key);
    let appended = store
        .append(retry, std::slice::from_ref(&r))
        .await
        .expect("append of a retry failed");
    assert!(
        appended.duplicate,
        "a repeated (sender, client_msg_id) must be a duplicate"
    );
    assert_eq!(
        appended.message, first,
        "a duplicate must return the first message as stored"
    );
    assert_eq!(
        all_history(store, &conv).await,
        vec![first.clone()],
        "a duplicate must store nothing"
    );
    assert_eq!(
        all_pending(store, &r).await,
        vec![first.clone()],
        "a duplicate must add no pending delivery"
    );

    let others = append(
        store,
        keyed(&conv, &other, "same key", &key),
        std::slice::from_ref(&r),
    )
    .await;
    let plain1 = append(
        store,
        message(&conv, &sender, "no key"),
        std::slice::from_ref(&r),
    )
    .await;
    let plain2 = append(
        store,
        message(&conv, &sender, "no key"),
        std::slice::from_ref(&r),
    )
    .await;
    assert_eq!(
        ids(&all_history(store, &conv).await),
        vec![
            plain2.message_id,
            plain1.message_id,
            others.message_id,
            first.message_id
        ],
        "another sender's equal key and messages without a key must all be stored"
    );
}

/// Many tasks retry one (sender, `client_msg_id`) at once, each with its own
/// message id: exactly one append stores, every one returns that message,
/// and exactly one message and one pending delivery exist afterwards.
pub async fn append_concurrent_duplicates_store_once(store: Arc<dyn MessageStore>) {
    const TASKS: usize = 32;
    let conv = group_id();
    let (sender, r) = (user("sender"), user("r"));
    let key = unique("key");
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..TASKS {
        let (store, msg, r) = (
            store.clone(),
            keyed(&conv, &sender, &format!("attempt {n}"), &key),
            r.clone(),
        );
        tasks.spawn(async move { store.append(msg, &[r]).await });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(
            joined
                .expect("an append task panicked")
                .expect("a racing append failed instead of storing or deduplicating"),
        );
    }
    let stored: Vec<_> = results.iter().filter(|a| !a.duplicate).collect();
    assert_eq!(
        stored.len(),
        1,
        "exactly one of {TASKS} racing appends with one key must store (got {})",
        stored.len()
    );
    let winner = stored[0].message.clone();
    for a in &results {
        assert_eq!(
            a.message, winner,
            "every racing append must return the stored message"
        );
    }
    assert_eq!(
        all_history(&*store, &conv).await,
        vec![winner.clone()],
        "exactly one message must be stored"
    );
    assert_eq!(
        all_pending(&*store, &r).await,
        vec![winner],
        "exactly one delivery must be pending"
    );
}

/// `history` answers newest first, honours `limit` and `before`, pages
/// through every message exactly once, and sees only its conversation.
pub async fn history_newest_first_and_paged(store: &dyn MessageStore) {
    const COUNT: usize = 25;
    let (conv, noise) = (group_id(), group_id());
    let (a, b, r) = (user("a"), user("b"), user("r"));
    let mut sent: Vec<Message> = Vec::new();
    for n in 0..COUNT {
        let from = if n % 2 == 0 { &a } else { &b };
        sent.push(
            append(
                store,
                message(&conv, from, &format!("m{n}")),
                std::slice::from_ref(&r),
            )
            .await,
        );
        // Interleave another conversation so a store cannot mix them up.
        append(
            store,
            message(&noise, from, "noise"),
            std::slice::from_ref(&r),
        )
        .await;
    }
    let newest_first: Vec<Message> = sent.iter().rev().cloned().collect();

    assert_eq!(
        all_history(store, &conv).await,
        newest_first,
        "history must be every message, newest first"
    );
    let page = store
        .history(&conv, None, 10)
        .await
        .expect("history failed");
    assert_eq!(
        page,
        newest_first[..10],
        "history with limit 10 must be the 10 newest"
    );
    let page = store
        .history(&conv, Some(sent[10].message_id), 3)
        .await
        .expect("history failed");
    assert_eq!(
        page,
        [sent[9].clone(), sent[8].clone(), sent[7].clone()],
        "history before m10 with limit 3 must be m9, m8, m7"
    );
    let page = store
        .history(&conv, Some(sent[0].message_id), 10)
        .await
        .expect("history failed");
    assert!(page.is_empty(), "nothing is older than the first message");
    let page = store
        .history(&conv, Some(MessageId(u64::MAX)), 5)
        .await
        .expect("history failed");
    assert_eq!(
        page,
        newest_first[..5],
        "before past the newest must start at the newest"
    );
    let page = store.history(&conv, None, 0).await.expect("history failed");
    assert!(page.is_empty(), "limit 0 must answer nothing");

    // Walk page by page as a client scrolling up does.
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .history(&conv, before, 7)
            .await
            .expect("history failed");
        assert!(page.len() <= 7, "a page must hold at most limit messages");
        let Some(last) = page.last() else { break };
        before = Some(last.message_id);
        walked.extend(page);
        assert!(
            walked.len() <= COUNT,
            "paging must end and not repeat messages"
        );
    }
    assert_eq!(
        walked, newest_first,
        "paging with before must visit every message once, newest first"
    );

    let unknown = group_id();
    assert!(
        all_history(store, &unknown).await.is_empty(),
        "an unknown conversation has no history"
    );
    assert_eq!(
        store
            .last_message_id(&unknown)
            .await
            .expect("last_message_id failed"),
        None,
        "an unknown conversation has no last message"
    );
}

/// `remove` undoes an append fully: the message, its pending deliveries and
/// its dedup key (the same key stores again). Removing what is missing is
/// not an error.
pub async fn remove_undoes_append(store: &dyn MessageStore) {
    let conv = group_id();
    let (sender, r) = (user("sender"), user("r"));
    let key = unique("key");
    let keyed_msg = append(
        store,
        keyed(&conv, &sender, "undo me", &key),
        std::slice::from_ref(&r),
    )
    .await;
    let kept = append(
        store,
        message(&conv, &sender, "keep me"),
        std::slice::from_ref(&r),
    )
    .await;

    store
        .remove(&conv, keyed_msg.message_id)
        .await
        .expect("remove failed");
    assert_eq!(
        all_history(store, &conv).await,
        vec![kept.clone()],
        "remove must delete the message"
    );
    assert_eq!(
        all_pending(store, &r).await,
        vec![kept.clone()],
        "remove must delete its pending deliveries"
    );
    let again = store
        .append(
            keyed(&conv, &sender, "stored again", &key),
            std::slice::from_ref(&r),
        )
        .await
        .expect("append after remove failed");
    assert!(
        !again.duplicate,
        "remove must delete the dedup key: the same key must store again"
    );

    store
        .remove(&conv, kept.message_id)
        .await
        .expect("remove failed");
    store
        .remove(&conv, again.message.message_id)
        .await
        .expect("remove failed");
    assert!(
        all_history(store, &conv).await.is_empty(),
        "every message was removed"
    );
    assert!(
        all_pending(store, &r).await.is_empty(),
        "every pending delivery was removed"
    );
    assert_eq!(
        store
            .last_message_id(&conv)
            .await
            .expect("last_message_id failed"),
        None,
        "a conversation whose messages were all removed has no last message"
    );

    store
        .remove(&conv, kept.message_id)
        .await
        .expect("removing a removed message must not fail");
    store
        .remove(&group_id(), MessageId(1))
        .await
        .expect("removing from an unknown conversation must not fail");
}

/// Many senders append into one conversation at once: no message is lost or
/// doubled, history is complete and ordered, and every member's pending
/// list holds exactly the others' messages, oldest first.
pub async fn concurrent_senders_one_conversation(store: Arc<dyn MessageStore>) {
    const SENDERS: usize = 8;
    const EACH: usize = 20;
    let conv = group_id();
    let reader = user("reader");
    let senders: Vec<_> = (0..SENDERS).map(|n| user(&format!("s{n}"))).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for sender in &senders {
        let recipients: Vec<_> = senders
            .iter()
            .filter(|u| *u != sender)
            .chain([&reader])
            .cloned()
            .collect();
        let (store, conv, sender) = (store.clone(), conv.clone(), sender.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for n in 0..EACH {
                let msg = keyed(&conv, &sender, &format!("{n}"), &unique("key"));
                mine.push(append(&*store, msg, &recipients).await.message_id);
            }
            (sender, mine)
        });
    }
    let mut by_sender = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        by_sender.push(joined.expect("a sender task panicked"));
    }
    let all: BTreeSet<MessageId> = by_sender
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .collect();
    assert_eq!(
        all.len(),
        SENDERS * EACH,
        "the fixture must produce distinct ids"
    );

    let history = all_history(&*store, &conv).await;
    let got = ids(&history);
    let expected: Vec<MessageId> = all.iter().rev().copied().collect();
    assert_eq!(
        got, expected,
        "history must hold every message once, newest first"
    );

    let pending = all_pending(&*store, &reader).await;
    let expected: Vec<MessageId> = all.iter().copied().collect();
    assert_eq!(
        ids(&pending),
        expected,
        "the reader must have every message pending, oldest first"
    );

    for (sender, mine) in &by_sender {
        let others: Vec<MessageId> = all
            .iter()
            .filter(|id| !mine.contains(id))
            .copied()
            .collect();
        assert_eq!(
            ids(&all_pending(&*store, sender).await),
            others,
            "sender {sender} must have exactly the others' messages pending"
        );
    }
}

/// A store that serves answers `ping` (the readiness probe), also twice in a
/// row and from several callers at once.
pub async fn message_store_ping_answers(store: &dyn MessageStore) {
    store.ping().await.expect("ping of a store that serves");
    let (a, b) = tokio::join!(store.ping(), store.ping());
    a.and(b).expect("concurrent pings");
}
