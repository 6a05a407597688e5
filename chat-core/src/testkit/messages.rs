//! [`MessageStore`] conformance, part one: the log and its head: conditional
//! appends, the chain, dedup, events applied to their targets, history and
//! range reads, remove and purge.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::fixtures::{
    all_history, all_range, append, event, group_id, id_above, ids, keyed, text, unique, user,
};
use crate::error::Error;
use crate::model::{Head, MessageId, MessageKind};
use crate::store::MessageStore;

async fn head(store: &dyn MessageStore, c: &crate::model::ConversationId) -> Head {
    store
        .head(c)
        .await
        .unwrap_or_else(|e| panic!("head of {c} failed: {e}"))
}

/// `append` stores the entry as given and answers it with the previous
/// `last_id` as `prev`; the head follows: `last_id`, `seq` counting text
/// entries only, `version` counting group events only.
pub async fn append_stores_entry_and_moves_head(store: &dyn MessageStore) {
    let conv = group_id();
    let sender = user("sender");
    assert_eq!(
        head(store, &conv).await,
        Head::default(),
        "a conversation with no entry has an all-zero head"
    );
    let first = text(&conv, &sender, "hello");
    let appended = store
        .append(first.clone(), 0)
        .await
        .expect("the first append failed");
    assert!(!appended.duplicate, "a first append is not a duplicate");
    assert_eq!(
        appended.message, first.message,
        "append answers the entry as stored"
    );
    assert_eq!(appended.prev, None, "the first entry has no prev");
    assert_eq!(
        head(store, &conv).await,
        Head {
            last_id: Some(first.message.message_id),
            seq: 1,
            version: 0
        }
    );
    assert_eq!(
        store
            .entry(&conv, first.message.message_id)
            .await
            .expect("entry failed"),
        Some(first.message.clone()),
        "entry reads the appended entry back unchanged"
    );

    let second = append(store, text(&conv, &sender, "again")).await;
    assert_eq!(
        second.prev,
        Some(first.message.message_id),
        "prev is the entry before"
    );
    let reaction = append(
        store,
        event(
            &conv,
            &sender,
            MessageKind::Reaction,
            Some(first.message.message_id),
            "👍",
        ),
    )
    .await;
    assert_eq!(reaction.prev, Some(second.message.message_id));
    let group_event = append(
        store,
        event(&conv, &sender, MessageKind::GroupEvent, None, "{}"),
    )
    .await;
    assert_eq!(
        head(store, &conv).await,
        Head {
            last_id: Some(group_event.message.message_id),
            seq: 2,
            version: 1
        },
        "seq counts the two text entries, version the one group event"
    );
    assert_eq!(
        ids(&all_range(store, &conv).await),
        vec![
            first.message.message_id,
            second.message.message_id,
            reaction.message.message_id,
            group_event.message.message_id
        ],
        "range lists every entry, oldest first"
    );
}

/// An append whose id is not above the head's `last_id`, or whose expected
/// version is not the head's, stores nothing and fails with `Conflict`
/// carrying the head.
pub async fn append_refuses_stale_ids_and_versions(store: &dyn MessageStore) {
    let conv = group_id();
    let sender = user("sender");
    let older = text(&conv, &sender, "minted first");
    let newer = append(store, text(&conv, &sender, "stored first")).await;
    let before = head(store, &conv).await;
    match store.append(older.clone(), 0).await {
        Err(Error::Conflict { head: h }) => assert_eq!(h, before, "the conflict carries the head"),
        other => panic!("an id below the head must conflict, got {other:?}"),
    }
    let mut same = text(&conv, &sender, "same id");
    same.message.message_id = newer.message.message_id;
    assert!(
        matches!(store.append(same, 0).await, Err(Error::Conflict { .. })),
        "an id equal to the head must conflict"
    );
    assert!(
        matches!(
            store.append(text(&conv, &sender, "wrong version"), 7).await,
            Err(Error::Conflict { .. })
        ),
        "a wrong expected version must conflict"
    );
    assert_eq!(head(store, &conv).await, before, "a conflict moves nothing");
    assert_eq!(
        ids(&all_range(store, &conv).await),
        vec![newer.message.message_id],
        "a conflict stores nothing"
    );

    append(
        store,
        event(&conv, &sender, MessageKind::GroupEvent, None, "{}"),
    )
    .await;
    assert!(
        matches!(
            store
                .append(text(&conv, &sender, "read members at v0"), 0)
                .await,
            Err(Error::Conflict { .. })
        ),
        "after a group event, an append expecting the old version conflicts"
    );
    store
        .append(text(&conv, &sender, "read members at v1"), 1)
        .await
        .expect("an append at the new version goes through");
}

/// A repeated `(sender, client_msg_id)` stores nothing and answers the first
/// entry with `duplicate: true`, even with a stale id; other senders and
/// other keys are independent.
pub async fn append_dedups_by_sender_and_key(store: &dyn MessageStore) {
    let conv = group_id();
    let (alice, bob) = (user("alice"), user("bob"));
    let key = unique("key");
    let first = append(store, keyed(&conv, &alice, "once", &key)).await;
    let after = append(store, text(&conv, &alice, "later")).await;

    // The retry was minted before `after`: dedup answers before any head check.
    let mut retry = keyed(&conv, &alice, "once (retried)", &key);
    retry.message.message_id = MessageId(first.message.message_id.0.saturating_add(1));
    let again = store
        .append(retry, head(store, &conv).await.version)
        .await
        .expect("a retried append must answer, not fail");
    assert!(again.duplicate, "a repeated key is a duplicate");
    assert_eq!(
        again.message, first.message,
        "a duplicate answers the first entry"
    );
    assert_eq!(
        ids(&all_range(store, &conv).await),
        vec![first.message.message_id, after.message.message_id],
        "a duplicate stores nothing"
    );
    let theirs = append(store, keyed(&conv, &bob, "bob's", &key)).await;
    let other_key = append(store, keyed(&conv, &alice, "new key", &unique("key"))).await;
    assert_eq!(all_range(store, &conv).await.len(), 4);
    assert_ne!(theirs.message.message_id, first.message.message_id);
    assert_ne!(other_key.message.message_id, first.message.message_id);
}

/// Appends racing with one key store exactly one entry; every answer names it.
pub async fn append_concurrent_duplicates_store_once(store: Arc<dyn MessageStore>) {
    let conv = group_id();
    let sender = user("sender");
    let key = unique("key");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, conv, sender, key) =
                (store.clone(), conv.clone(), sender.clone(), key.clone());
            tokio::spawn(async move {
                let mut entry = keyed(&conv, &sender, &format!("attempt {i}"), &key);
                for _ in 0..100 {
                    let h = store.head(&conv).await.expect("head failed");
                    if h.last_id.is_some_and(|l| entry.message.message_id <= l) {
                        entry.message.message_id = id_above(h.last_id);
                    }
                    match store.append(entry.clone(), h.version).await {
                        Ok(a) => return a,
                        Err(Error::Conflict { .. }) => continue,
                        Err(e) => panic!("a racing append failed: {e}"),
                    }
                }
                panic!("a racing append kept conflicting")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task panicked"));
    }
    let stored = all_range(&*store, &conv).await;
    assert_eq!(
        stored.len(),
        1,
        "racing appends with one key store one entry"
    );
    assert_eq!(
        answers.iter().filter(|a| !a.duplicate).count(),
        1,
        "exactly one racing append is not a duplicate"
    );
    assert!(
        answers.iter().all(|a| a.message == stored[0]),
        "every racing append answers the stored entry"
    );
}

/// Several writers appending into one conversation at once (retrying their
/// conflicts) make one chain: every entry stored once, in id order, each
/// answered with the entry before it as `prev`.
pub async fn concurrent_appenders_form_one_chain(store: Arc<dyn MessageStore>) {
    let conv = group_id();
    let writers = 4;
    let each = 25;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, conv) = (store.clone(), conv.clone());
            tokio::spawn(async move {
                let sender = user(&format!("w{w}"));
                let mut links = Vec::new();
                for i in 0..each {
                    let mut entry = text(&conv, &sender, &format!("{w}/{i}"));
                    let mut done = false;
                    for _ in 0..1000 {
                        let h = store.head(&conv).await.expect("head failed");
                        if h.last_id.is_some_and(|l| entry.message.message_id <= l) {
                            entry.message.message_id = id_above(h.last_id);
                        }
                        match store.append(entry.clone(), h.version).await {
                            Ok(a) => {
                                links.push((a.message.message_id, a.prev));
                                done = true;
                                break;
                            }
                            Err(Error::Conflict { .. }) => continue,
                            Err(e) => panic!("append failed: {e}"),
                        }
                    }
                    assert!(done, "an append kept conflicting");
                }
                links
            })
        })
        .collect();
    let mut links = Vec::new();
    for t in tasks {
        links.extend(t.await.expect("task panicked"));
    }
    let stored = ids(&all_range(&*store, &conv).await);
    assert_eq!(stored.len(), writers * each, "every append stored once");
    let mut by_id: std::collections::HashMap<MessageId, Option<MessageId>> =
        links.into_iter().collect();
    let mut prev = None;
    for id in &stored {
        assert_eq!(
            by_id.remove(id),
            Some(prev),
            "entry {id}'s prev must be the entry before it in id order"
        );
        prev = Some(*id);
    }
    assert_eq!(
        head(&*store, &conv).await.seq,
        (writers * each) as u64,
        "seq counts every text entry"
    );
}

/// `history` pages newest first over text and message events (never group
/// events) within `(floor, before)`; `range` reads every kind oldest first
/// within `(after, up_to]`.
pub async fn history_and_range_bounds(store: &dyn MessageStore) {
    let conv = group_id();
    let sender = user("sender");
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(
            append(store, text(&conv, &sender, &format!("m{i}")))
                .await
                .message,
        );
    }
    let group_event = append(
        store,
        event(&conv, &sender, MessageKind::GroupEvent, None, "{}"),
    )
    .await
    .message;
    let edit = append(
        store,
        event(
            &conv,
            &sender,
            MessageKind::Edit,
            Some(all[1].message_id),
            "m1'",
        ),
    )
    .await
    .message;
    let id = |i: usize| all[i].message_id;

    let h = ids(&all_history(store, &conv).await);
    assert_eq!(
        h,
        vec![edit.message_id, id(4), id(3), id(2), id(1), id(0)],
        "history is newest first and leaves out group events"
    );
    let page = store
        .history(&conv, Some(id(4)), None, 2)
        .await
        .expect("history failed");
    assert_eq!(ids(&page), vec![id(3), id(2)], "before and limit page");
    let floored = store
        .history(&conv, None, Some(id(2)), 100)
        .await
        .expect("history failed");
    assert_eq!(
        ids(&floored),
        vec![edit.message_id, id(4), id(3)],
        "history stops above the floor"
    );
    assert!(
        store
            .history(&conv, Some(id(1)), Some(id(1)), 10)
            .await
            .expect("history failed")
            .is_empty(),
        "an empty window reads nothing"
    );

    let r = ids(&store
        .range(&conv, Some(id(2)), Some(group_event.message_id), 100)
        .await
        .expect("range failed"));
    assert_eq!(
        r,
        vec![id(3), id(4), group_event.message_id],
        "range is (after, up_to], oldest first, group events included"
    );
    let r = ids(&store
        .range(&conv, Some(id(0)), None, 2)
        .await
        .expect("range failed"));
    assert_eq!(r, vec![id(1), id(2)], "range pages by limit");
    assert!(
        store
            .history(&group_id(), None, None, 10)
            .await
            .expect("history of an unknown conversation")
            .is_empty()
    );
}

/// Edits, deletes and reactions change their target in the same step as
/// they are appended; an event whose target is not in the conversation is
/// refused with `NotFound` and stores nothing.
pub async fn events_change_their_targets(store: &dyn MessageStore) {
    let conv = group_id();
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let target = append(store, text(&conv, &alice, "first words"))
        .await
        .message;
    let t = Some(target.message_id);
    append(
        store,
        event(&conv, &alice, MessageKind::Edit, t, "better words"),
    )
    .await;
    append(store, event(&conv, &bob, MessageKind::Reaction, t, "👍")).await;
    append(store, event(&conv, &carol, MessageKind::Reaction, t, "👍")).await;
    append(store, event(&conv, &carol, MessageKind::Reaction, t, "🎉")).await;
    let now = store
        .entry(&conv, target.message_id)
        .await
        .expect("entry failed")
        .expect("the target is there");
    assert_eq!(now.body, "better words", "an edit replaces the body");
    assert!(now.edited, "an edited message says so");
    let reactions = serde_json::to_value(&now.reactions).expect("reactions serialize");
    assert_eq!(
        reactions,
        serde_json::json!({"👍": [bob.as_str()], "🎉": [carol.as_str()]}),
        "one reaction per user, the latest"
    );
    append(store, event(&conv, &bob, MessageKind::Reaction, t, "")).await;
    let history = all_history(store, &conv).await;
    let shown = history
        .iter()
        .find(|m| m.message_id == target.message_id)
        .expect("history shows the target");
    assert_eq!(
        serde_json::to_value(&shown.reactions).expect("serialize"),
        serde_json::json!({"🎉": [carol.as_str()]}),
        "an empty emoji removes the reaction, and history shows the message as it is now"
    );
    assert_eq!(history.len(), 6, "history lists the events themselves too");

    append(store, event(&conv, &alice, MessageKind::Delete, t, "")).await;
    let deleted = store
        .entry(&conv, target.message_id)
        .await
        .expect("entry failed")
        .expect("a deleted message stays as a tombstone");
    assert!(
        deleted.deleted && deleted.body.is_empty(),
        "a delete empties the body"
    );
    assert!(deleted.reactions.is_empty(), "a delete drops reactions");

    let before = head(store, &conv).await;
    let missing = event(&conv, &alice, MessageKind::Edit, Some(MessageId(1)), "x");
    assert!(
        matches!(
            store.append(missing, before.version).await,
            Err(Error::NotFound { .. })
        ),
        "an event on a missing target is NotFound"
    );
    let elsewhere = append(store, text(&group_id(), &alice, "other conversation")).await;
    let cross = event(
        &conv,
        &alice,
        MessageKind::Delete,
        Some(elsewhere.message.message_id),
        "",
    );
    assert!(
        matches!(
            store.append(cross, before.version).await,
            Err(Error::NotFound { .. })
        ),
        "an event on a message of another conversation is NotFound"
    );
    assert_eq!(
        head(store, &conv).await,
        before,
        "refused events store nothing"
    );
}

/// `remove` takes one entry and its dedup key away (the head stays);
/// removing it again, or a missing entry, is fine.
pub async fn remove_undoes_append(store: &dyn MessageStore) {
    let conv = group_id();
    let sender = user("sender");
    let key = unique("key");
    let kept = append(store, text(&conv, &sender, "kept")).await.message;
    let gone = append(store, keyed(&conv, &sender, "undone", &key))
        .await
        .message;
    let h = head(store, &conv).await;
    store
        .remove(&conv, gone.message_id)
        .await
        .expect("remove failed");
    store
        .remove(&conv, gone.message_id)
        .await
        .expect("removing again is not an error");
    assert_eq!(ids(&all_range(store, &conv).await), vec![kept.message_id]);
    assert_eq!(
        store
            .entry(&conv, gone.message_id)
            .await
            .expect("entry failed"),
        None
    );
    assert_eq!(head(store, &conv).await, h, "remove leaves the head");
    let retried = append(store, keyed(&conv, &sender, "retried", &key)).await;
    assert_ne!(
        retried.message.message_id, gone.message_id,
        "the key is free again after remove"
    );
}

/// `purge` deletes every entry at or below its bound with their dedup keys,
/// leaves the head and the rest, and is idempotent.
pub async fn purge_deletes_up_to(store: &dyn MessageStore) {
    let conv = group_id();
    let sender = user("sender");
    let key = unique("key");
    let a = append(store, keyed(&conv, &sender, "a", &key))
        .await
        .message;
    let b = append(store, text(&conv, &sender, "b")).await.message;
    let c = append(store, text(&conv, &sender, "c")).await.message;
    let h = head(store, &conv).await;
    assert_eq!(
        store
            .purge(&conv, b.message_id)
            .await
            .expect("purge failed"),
        2,
        "purge answers how many entries it deleted"
    );
    assert_eq!(
        store
            .purge(&conv, b.message_id)
            .await
            .expect("purge failed"),
        0,
        "purging again deletes nothing"
    );
    assert_eq!(ids(&all_range(store, &conv).await), vec![c.message_id]);
    assert_eq!(ids(&all_history(store, &conv).await), vec![c.message_id]);
    assert_eq!(head(store, &conv).await, h, "purge leaves the head");
    assert_eq!(store.entry(&conv, a.message_id).await.expect("entry"), None);
    let again = append(store, keyed(&conv, &sender, "a again", &key)).await;
    assert!(
        again.message.message_id > c.message_id,
        "a purged entry's key is free again"
    );
    let unknown: BTreeSet<MessageId> = BTreeSet::new();
    assert_eq!(
        store
            .purge(&group_id(), MessageId(u64::MAX))
            .await
            .expect("purging an unknown conversation"),
        unknown.len() as u64
    );
}

/// A store that serves answers `ping` (the readiness probe), also twice in a
/// row and from several callers at once.
pub async fn message_store_ping_answers(store: &dyn MessageStore) {
    store.ping().await.expect("ping of a store that serves");
    let (a, b) = tokio::join!(store.ping(), store.ping());
    a.and(b).expect("concurrent pings");
}

/// `append_after` stores an entry only right after the head's `last_id`
/// it names (whatever the version), moving the head like `append`;
/// otherwise it stores nothing and answers `Conflict` with the head.
pub async fn append_after_follows_the_named_entry(store: &dyn MessageStore) {
    let conv = group_id();
    let sender = user("sender");
    // Minted in chain order.
    let first = text(&conv, &sender, "one");
    let ev = event(&conv, &sender, MessageKind::GroupEvent, None, "{}");
    let second = text(&conv, &sender, "two");
    let third = text(&conv, &sender, "three");
    match store
        .append_after(second.clone(), Some(first.message.message_id))
        .await
    {
        Err(Error::Conflict { head: h }) => {
            assert_eq!(h, Head::default(), "the conflict carries the empty head")
        }
        other => panic!("an append after a missing entry must conflict, got {other:?}"),
    }
    let stored = store
        .append_after(first.clone(), None)
        .await
        .expect("the first entry goes in after nothing");
    assert_eq!(stored.prev, None);
    assert!(!stored.duplicate);
    // A group event moves the version; append_after does not look at it.
    let ev = store
        .append_after(ev, Some(first.message.message_id))
        .await
        .expect("an event goes in after the first entry");
    assert_eq!(ev.prev, Some(first.message.message_id));
    let before = head(store, &conv).await;
    assert_eq!(before.version, 1, "a copied group event moves the version");
    for (stale, what) in [
        (None, "after nothing, once the log has entries"),
        (
            Some(first.message.message_id),
            "after an entry that is not the last",
        ),
    ] {
        match store.append_after(second.clone(), stale).await {
            Err(Error::Conflict { head: h }) => assert_eq!(h, before, "{what}"),
            other => panic!("{what}: must conflict, got {other:?}"),
        }
    }
    let mut low = text(&conv, &sender, "below its predecessor");
    low.message.message_id = MessageId(first.message.message_id.get() - 1);
    assert!(
        matches!(
            store.append_after(low, before.last_id).await,
            Err(Error::Conflict { .. })
        ),
        "an id not above the entry it follows conflicts"
    );
    assert_eq!(head(store, &conv).await, before, "a conflict moves nothing");
    let next = store
        .append_after(second.clone(), before.last_id)
        .await
        .expect("an append right after the head's last entry");
    assert_eq!(next.prev, before.last_id);
    store
        .append(third.clone(), 1)
        .await
        .expect("append goes on from a copied chain");
    assert_eq!(
        head(store, &conv).await,
        Head {
            last_id: Some(third.message.message_id),
            seq: 3,
            version: 1
        }
    );
    assert_eq!(
        ids(&all_range(store, &conv).await),
        vec![
            first.message.message_id,
            ev.message.message_id,
            second.message.message_id,
            third.message.message_id
        ]
    );
}

/// Intents are recorded idempotently, listed by ascending id within
/// `(after, before)` up to a limit, and forgotten (a missing one too).
pub async fn intents_are_listed_in_order_and_cleared(store: &dyn MessageStore) {
    use crate::store::Intent;
    let conv = group_id();
    let other = group_id();
    let ids_: Vec<MessageId> = (0..4).map(|_| id_above(None)).collect();
    let intent = |i: usize, c: &crate::model::ConversationId| Intent {
        message_id: ids_[i],
        conversation_id: c.clone(),
    };
    // Others' intents may be listed too (a shared store): keep ours.
    let ours = |found: Vec<Intent>| -> Vec<Intent> {
        found
            .into_iter()
            .filter(|i| i.conversation_id == conv || i.conversation_id == other)
            .collect()
    };
    let below = MessageId(ids_[0].get() - 1);
    let above = MessageId(ids_[3].get() + 1);
    for i in [
        intent(2, &conv),
        intent(0, &conv),
        intent(1, &other),
        intent(0, &conv),
    ] {
        store.put_intent(&i).await.expect("put_intent failed");
    }
    let listed = store
        .intents(Some(below), above, 100)
        .await
        .expect("intents failed");
    assert_eq!(
        ours(listed),
        vec![intent(0, &conv), intent(1, &other), intent(2, &conv)],
        "each intent once, by ascending id"
    );
    let page = store
        .intents(Some(ids_[0]), ids_[2], 100)
        .await
        .expect("intents failed");
    assert_eq!(
        ours(page),
        vec![intent(1, &other)],
        "both bounds are exclusive"
    );
    let first = store
        .intents(Some(below), above, 1)
        .await
        .expect("intents failed");
    assert_eq!(first.len(), 1, "the limit holds");
    store
        .clear_intent(&intent(0, &conv))
        .await
        .expect("clear_intent failed");
    store
        .clear_intent(&intent(3, &conv))
        .await
        .expect("clearing a missing intent is not an error");
    let left = store
        .intents(Some(below), above, 100)
        .await
        .expect("intents failed");
    assert_eq!(ours(left), vec![intent(1, &other), intent(2, &conv)]);
}
