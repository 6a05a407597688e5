//! Group commit: appends that share one batch (a long linger and one batch
//! in flight put everything sent at once into one call) keep every promise
//! of appends made one by one: dedup between the appends of one batch, a
//! refused append (conflict, missing target, bad input) failing only
//! itself, and each conversation's chain in the order its appends came.

use std::sync::Arc;
use std::time::Duration;

use chat_core::store::{Appended, MessageStore};
use chat_core::{
    ConversationId, DeviceId, Error, Head, Message, MessageId, MessageKind, NewMessage, UserId,
    now_millis,
};
use chat_store_postgres::{PostgresConfig, PostgresStore, testing};

async fn batching_store() -> Option<Arc<PostgresStore>> {
    testing::fresh_store_with(PostgresConfig {
        batch_inflight: 1,
        batch_linger: Duration::from_millis(300),
        ..PostgresConfig::default()
    })
    .await
}

fn text(conversation: &ConversationId, sender: &UserId, id: u64, key: Option<&str>) -> NewMessage {
    NewMessage {
        message: Message::text(
            MessageId(id),
            conversation.clone(),
            sender.clone(),
            format!("body of {id}"),
            now_millis(),
        ),
        client_msg_id: key.map(str::to_owned),
        device: None,
    }
}

fn event(
    conversation: &ConversationId,
    sender: &UserId,
    id: u64,
    kind: MessageKind,
    target: Option<u64>,
) -> NewMessage {
    let mut entry = text(conversation, sender, id, None);
    entry.message.kind = kind;
    entry.message.ref_id = target.map(MessageId);
    entry
}

/// Starts every append at once, in order, and collects the answers in
/// that order.
async fn append_all(
    store: &Arc<PostgresStore>,
    entries: Vec<(NewMessage, u64)>,
) -> Vec<chat_core::Result<Appended>> {
    let calls = entries.into_iter().map(|(entry, version)| {
        let store = store.clone();
        async move { store.append(entry, version).await }
    });
    futures::future::join_all(calls).await
}

fn ids(entries: &[Message]) -> Vec<u64> {
    entries.iter().map(|m| m.message_id.get()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_batch_dedups_equal_keys_and_stores_the_rest() {
    let Some(store) = batching_store().await else {
        return;
    };
    let conv = ConversationId::from("g:batch");
    let sender = UserId::from("sender");
    let mut entries = Vec::new();
    // Ten retries of one key, each with its own (higher) id ...
    for n in 0..10 {
        entries.push((text(&conv, &sender, 100 + n, Some("same")), 0));
    }
    // ... then fresh keys and entries without a key.
    for n in 0..5 {
        let key = format!("fresh-{n}");
        entries.push((text(&conv, &sender, 200 + 2 * n, Some(&key)), 0));
        entries.push((text(&conv, &sender, 201 + 2 * n, None), 0));
    }
    let answers: Vec<Appended> = append_all(&store, entries)
        .await
        .into_iter()
        .map(|a| a.expect("every append of the batch must succeed"))
        .collect();

    assert!(!answers[0].duplicate, "the first of the equal keys stores");
    for a in &answers[1..10] {
        assert!(
            a.duplicate,
            "a repeated key in the same batch is a duplicate"
        );
        assert_eq!(a.message, answers[0].message, "and answers the first");
        assert_eq!(a.prev, None);
    }
    assert!(answers[10..].iter().all(|a| !a.duplicate));
    let stored = store.range(&conv, None, None, 100).await.expect("range");
    let want: Vec<u64> = std::iter::once(100).chain(200..210).collect();
    assert_eq!(ids(&stored), want);
    // The chain: each stored append's prev is the one stored before it.
    let mut prev = None;
    for a in answers.iter().filter(|a| !a.duplicate) {
        assert_eq!(a.prev, prev, "entry {}'s prev", a.message.message_id);
        prev = Some(a.message.message_id);
    }
    assert_eq!(store.head(&conv).await.expect("head").seq, 11);
    assert!(
        store.append_stats().one_by_one >= 1,
        "a batch with a key twice is written one by one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_append_fails_only_itself() {
    let Some(store) = batching_store().await else {
        return;
    };
    let conv = ConversationId::from("g:refusals");
    let sender = UserId::from("sender");
    let mut bad = text(&conv, &sender, 65, None);
    bad.message.body = "a NUL \0 inside".into();
    let answers = append_all(
        &store,
        vec![
            (text(&conv, &sender, 10, Some("a")), 0),
            // Below the entry before it.
            (text(&conv, &sender, 5, Some("b")), 0),
            (text(&conv, &sender, 20, None), 0),
            // A group event: the version becomes 1 ...
            (event(&conv, &sender, 30, MessageKind::GroupEvent, None), 0),
            // ... so an append that read the members at 0 conflicts,
            (text(&conv, &sender, 40, None), 0),
            // and one at 1 goes through.
            (text(&conv, &sender, 50, None), 1),
            // A reaction to an entry that is not there.
            (event(&conv, &sender, 60, MessageKind::Reaction, Some(7)), 1),
            // Text PostgreSQL cannot hold.
            (bad, 1),
            // An edit of the first entry.
            (event(&conv, &sender, 70, MessageKind::Edit, Some(10)), 1),
        ],
    )
    .await;
    let head_at = |last: u64, seq: u64, version: u64| Head {
        last_id: Some(MessageId(last)),
        seq,
        version,
    };
    let mut answers = answers.into_iter();
    let mut next = || answers.next().expect("one answer per append");
    assert_eq!(next().expect("first").prev, None);
    match next() {
        Err(Error::Conflict { head }) => assert_eq!(head, head_at(10, 1, 0)),
        other => panic!("an id below the head must conflict, got {other:?}"),
    }
    assert_eq!(next().expect("third").prev, Some(MessageId(10)));
    assert_eq!(next().expect("group event").prev, Some(MessageId(20)));
    match next() {
        Err(Error::Conflict { head }) => assert_eq!(head, head_at(30, 2, 1)),
        other => panic!("an old version must conflict, got {other:?}"),
    }
    assert_eq!(
        next().expect("at the new version").prev,
        Some(MessageId(30))
    );
    assert!(
        matches!(next(), Err(Error::NotFound { .. })),
        "a reaction to a missing entry is NotFound"
    );
    assert!(
        matches!(next(), Err(Error::InvalidInput { .. })),
        "a NUL character is InvalidInput"
    );
    assert_eq!(next().expect("the edit").prev, Some(MessageId(50)));

    let stored = store.range(&conv, None, None, 100).await.expect("range");
    assert_eq!(ids(&stored), vec![10, 20, 30, 50, 70]);
    assert_eq!(stored[0].body, "body of 70", "the edit changed its target");
    assert!(stored[0].edited);
    assert_eq!(store.head(&conv).await.expect("head"), head_at(70, 3, 1));
    // The refused keyed append left no key behind.
    let again = store
        .append(text(&conv, &sender, 80, Some("b")), 1)
        .await
        .expect("the refused key, with a fresh id");
    assert!(!again.duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_conversation_keeps_its_chain_inside_a_batch() {
    let Some(store) = batching_store().await else {
        return;
    };
    let conversations: Vec<ConversationId> = ["g:zed", "g:alpha", "g:mid"]
        .into_iter()
        .map(ConversationId::from)
        .collect();
    // Interleaved: zed 1, alpha 2, mid 3, zed 4, …; ids rise in the order
    // sent, each by a sender of its own.
    let entries: Vec<(NewMessage, u64)> = (1..=30)
        .map(|n| {
            let sender = UserId::from(format!("sender-{n}"));
            let conv = &conversations[(n as usize - 1) % 3];
            (text(conv, &sender, n, None), 0)
        })
        .collect();
    let answers: Vec<Appended> = append_all(&store, entries)
        .await
        .into_iter()
        .map(|a| a.expect("append"))
        .collect();
    let stats = store.append_stats();
    assert_eq!(stats.appends, 30);
    assert_eq!(
        stats.one_by_one, 0,
        "appends that agree are written by the set-based statement: {stats:?}"
    );
    for (i, conv) in conversations.iter().enumerate() {
        let stored = store.range(conv, None, None, 100).await.expect("range");
        let want: Vec<u64> = (1..=30).filter(|n| (n - 1) % 3 == i as u64).collect();
        assert_eq!(ids(&stored), want, "{conv} holds its own entries, in order");
        let mut prev = None;
        for id in want {
            let a = &answers[id as usize - 1];
            assert_eq!(a.prev, prev, "{conv}: entry {id}'s prev");
            prev = Some(MessageId(id));
        }
    }
}

/// Inside a set-based batch too, an append moves its sender's read cursor,
/// and its delivered cursors only when they covered the entry before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn senders_cursors_inside_a_batch() {
    let Some(store) = batching_store().await else {
        return;
    };
    let conv = ConversationId::from("g:cursors");
    let (alice, bob, carol) = (
        UserId::from("alice"),
        UserId::from("bob"),
        UserId::from("carol"),
    );
    let phone = DeviceId::from("alice-phone");
    let laptop = DeviceId::from("carol-laptop");
    let on = |mut entry: NewMessage, device: &DeviceId| {
        entry.device = Some(device.clone());
        entry
    };
    // carol had everything before: her laptop acked the conversation's first entry.
    store
        .append(text(&conv, &bob, 1, None), 0)
        .await
        .expect("first entry");
    store
        .ack(&carol, &laptop, &conv, MessageId(1))
        .await
        .expect("ack");
    let before = store.append_stats();
    let answers = append_all(
        &store,
        vec![
            (text(&conv, &bob, 2, None), 0),
            // alice never had bob's entries: her cursors stay, read moves.
            (on(text(&conv, &alice, 3, None), &phone), 0),
            // carol had up to 1, but 2 and 3 came before this one.
            (on(text(&conv, &carol, 4, None), &laptop), 0),
        ],
    )
    .await;
    for a in answers {
        a.expect("append");
    }
    let after = store.append_stats();
    assert_eq!(
        (
            after.appends - before.appends,
            after.one_by_one - before.one_by_one
        ),
        (3, 0),
        "these appends agree: written by the set-based statement"
    );
    let a = store
        .cursors(&alice, Some(&phone), &conv)
        .await
        .expect("cursors");
    assert_eq!(
        (a.delivered, a.device_delivered, a.read, a.read_seq),
        (None, None, Some(MessageId(3)), 3)
    );
    let c = store
        .cursors(&carol, Some(&laptop), &conv)
        .await
        .expect("cursors");
    assert_eq!(
        (c.delivered, c.device_delivered, c.read, c.read_seq),
        (
            Some(MessageId(1)),
            Some(MessageId(1)),
            Some(MessageId(4)),
            4
        )
    );
    let b = store.cursors(&bob, None, &conv).await.expect("cursors");
    assert_eq!(
        (b.delivered, b.read),
        (Some(MessageId(2)), Some(MessageId(2))),
        "bob's 2 followed his own 1: both his cursors move"
    );
}
