//! Appends beyond the conformance suite: a group far past the size of one
//! Cassandra batch, and what an append that died half-way leaves (pending
//! rows without their message) — invisible to readers, cleaned by them once
//! old, and completed by a retry with the same key.
//!
//! The dead writer is played by writing its rows straight into the tables,
//! dated as it would have dated them (`USING TIMESTAMP`).

mod support;

use std::sync::Arc;

use chat_core::id::{IdGenerator, ManualClock};
use chat_core::store::MessageStore;
use chat_core::{ConversationId, Message, MessageId, NewMessage, UserId, now_millis};
use chat_store_cassandra::CassandraStore;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

fn unique(label: &str) -> String {
    format!("appends-{label}-{:016x}", rand::random::<u64>())
}

fn keyed(conversation: &ConversationId, sender: &UserId, id: MessageId, key: &str) -> NewMessage {
    NewMessage {
        message: Message {
            message_id: id,
            conversation_id: conversation.clone(),
            sender_id: sender.clone(),
            body: format!("body of {key}"),
            ts: now_millis(),
        },
        client_msg_id: Some(key.to_owned()),
    }
}

/// Ids issued an hour ago: old enough that a pending row of theirs whose
/// message is missing counts as the residue of a failed append.
fn hour_old_ids() -> IdGenerator {
    let hour_ago = u64::try_from(now_millis()).unwrap() - 3_600_000;
    IdGenerator::with_clock(
        rand::random_range(0..1024),
        Arc::new(ManualClock::new(hour_ago)),
    )
    .expect("ids")
}

/// An id as the crate stores it (see the crate docs: `id XOR 2^63`).
fn cql_id(id: MessageId) -> i64 {
    (id.0 ^ (1 << 63)) as i64
}

/// A session straight to the test keyspace, to play the dead writer and to
/// look at the tables.
async fn session() -> (Session, &'static str) {
    let keyspace = support::keyspace().await;
    let session = SessionBuilder::new()
        .known_nodes(support::contact_points())
        .build()
        .await
        .expect("direct session");
    (session, keyspace)
}

/// Writes `user`'s three pending rows of `message` dated at the message's
/// id time, as its writer would have before dying.
async fn dead_writers_pending(session: &Session, ks: &str, message: &Message, user: &UserId) {
    let at = i64::try_from(message.message_id.unix_ms() * 1000).unwrap();
    let (id, conv, sender) = (
        cql_id(message.message_id),
        message.conversation_id.as_str(),
        message.sender_id.as_str(),
    );
    let user = user.as_str();
    let by_user = format!(
        "INSERT INTO {ks}.pending_by_user (user_id, message_id, conversation_id) \
         VALUES (?, ?, ?) USING TIMESTAMP ?"
    );
    let by_conversation = format!(
        "INSERT INTO {ks}.pending_by_conversation \
         (user_id, conversation_id, message_id, sender_id) VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
    );
    let by_message = format!(
        "INSERT INTO {ks}.pending_by_message (conversation_id, message_id, user_id) \
         VALUES (?, ?, ?) USING TIMESTAMP ?"
    );
    session
        .query_unpaged(by_user, (user, id, conv, at))
        .await
        .expect("write a dead writer's pending_by_user row");
    session
        .query_unpaged(by_conversation, (user, conv, id, sender, at))
        .await
        .expect("write a dead writer's pending_by_conversation row");
    session
        .query_unpaged(by_message, (conv, id, user, at))
        .await
        .expect("write a dead writer's pending_by_message row");
}

/// How many pending rows of `id` for `user` the three tables hold.
async fn pending_rows(
    session: &Session,
    ks: &str,
    user: &UserId,
    conv: &ConversationId,
    id: MessageId,
) -> usize {
    let (user, conv, id) = (user.as_str(), conv.as_str(), cql_id(id));
    let mut count = 0;
    for (cql, first, second) in [
        (
            format!(
                "SELECT user_id FROM {ks}.pending_by_user \
                 WHERE user_id = ? AND message_id = ? AND conversation_id = ?"
            ),
            user,
            conv,
        ),
        (
            format!(
                "SELECT user_id FROM {ks}.pending_by_conversation \
                 WHERE user_id = ? AND message_id = ? AND conversation_id = ?"
            ),
            user,
            conv,
        ),
        (
            format!(
                "SELECT user_id FROM {ks}.pending_by_message \
                 WHERE conversation_id = ? AND message_id = ? AND user_id = ?"
            ),
            conv,
            user,
        ),
    ] {
        let rows = session
            .query_unpaged(cql, (first, id, second))
            .await
            .expect("read pending rows")
            .into_rows_result()
            .expect("rows");
        count += rows.rows_num();
    }
    count
}

/// Every one of `users` has exactly `want` pending (checked concurrently).
async fn assert_pending(store: &CassandraStore, users: &[UserId], want: &[Message]) {
    stream::iter(users)
        .map(|user| async move {
            let pending = store.pending(user, None, 10).await?;
            assert_eq!(pending, want, "pending of {user}");
            Ok::<_, chat_core::Error>(())
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("read every recipient's pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_2000_gets_every_delivery_and_remove_takes_them_back() {
    let store = support::store().await;
    let ids = IdGenerator::new(rand::random_range(0..1024)).expect("ids");
    let conv = ConversationId::from(unique("big"));
    let sender = UserId::from(unique("sender"));
    let members: Vec<UserId> = (0..2000)
        .map(|i| UserId::from(format!("{}-{i}", unique("m"))))
        .collect();

    // About 300 KB of pending rows: six times Cassandra's batch size limit.
    let first = keyed(&conv, &sender, ids.next_id(), &unique("key"));
    let appended = store
        .append(first.clone(), &members)
        .await
        .expect("append to 2000 recipients");
    assert!(!appended.duplicate);
    assert_pending(&store, &members, std::slice::from_ref(&first.message)).await;

    let retried = store
        .append(first.clone(), &members)
        .await
        .expect("retry with the same key");
    assert!(retried.duplicate, "a retry is answered as a duplicate");
    assert_eq!(retried.message, first.message);

    let second = keyed(&conv, &sender, ids.next_id(), &unique("key"));
    store
        .append(second.clone(), &members)
        .await
        .expect("second append to 2000 recipients");
    assert_eq!(
        store.history(&conv, None, 10).await.expect("history"),
        vec![second.message.clone(), first.message.clone()],
        "each message stored once"
    );
    assert_eq!(
        store
            .purge_delivered(&conv, &[first.message.message_id])
            .await
            .expect("purge"),
        vec![],
        "a message 2000 users wait for is not purged"
    );

    store
        .remove(&conv, second.message.message_id)
        .await
        .expect("remove a message of 2000 deliveries");
    assert_pending(&store, &members, std::slice::from_ref(&first.message)).await;
    assert_eq!(
        store.history(&conv, None, 10).await.expect("history"),
        vec![first.message.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_without_their_message_are_invisible_and_old_ones_are_cleaned() {
    let store = support::store().await;
    let (session, ks) = session().await;
    let conv = ConversationId::from(unique("residue"));
    let (sender, user) = (UserId::from(unique("s")), UserId::from(unique("u")));

    // A writer that died an hour ago after its pending rows, and one that
    // is writing now: neither stored its message.
    let dead = keyed(&conv, &sender, hour_old_ids().next_id(), &unique("k")).message;
    let ids = IdGenerator::new(rand::random_range(0..1024)).expect("ids");
    let in_flight = keyed(&conv, &sender, ids.next_id(), &unique("k")).message;
    dead_writers_pending(&session, ks, &dead, &user).await;
    dead_writers_pending(&session, ks, &in_flight, &user).await;
    // And one message that is stored.
    let stored = keyed(&conv, &sender, ids.next_id(), &unique("k"));
    store
        .append(stored.clone(), std::slice::from_ref(&user))
        .await
        .expect("append");

    assert_eq!(
        store.pending(&user, None, 10).await.expect("pending"),
        vec![stored.message.clone()],
        "deliveries without their message are not pending"
    );
    assert_eq!(
        pending_rows(&session, ks, &user, &conv, dead.message_id).await,
        0,
        "the reader deleted the old residue from all three tables"
    );
    assert_eq!(
        pending_rows(&session, ks, &user, &conv, in_flight.message_id).await,
        3,
        "the reader left the rows of an append that may be in flight"
    );

    let acked = store
        .ack(&user, &conv, MessageId(u64::MAX))
        .await
        .expect("ack");
    assert_eq!(
        acked.iter().map(|a| a.message_id).collect::<Vec<_>>(),
        vec![stored.message.message_id],
        "ack takes only deliveries of stored messages"
    );
    assert_eq!(
        pending_rows(&session, ks, &user, &conv, in_flight.message_id).await,
        3,
        "an ack leaves the deliveries of an append in flight pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_completes_an_append_whose_writer_died_after_some_deliveries() {
    let store = support::store().await;
    let (session, ks) = session().await;
    let conv = ConversationId::from(unique("retry"));
    let sender = UserId::from(unique("s"));
    let members: Vec<UserId> = (0..5)
        .map(|i| UserId::from(unique(&format!("m{i}"))))
        .collect();
    let key = unique("key");
    let lost = keyed(&conv, &sender, hour_old_ids().next_id(), &key);

    // The dead writer claimed the key and wrote two of five deliveries.
    let recipients: Vec<&str> = members.iter().map(UserId::as_str).collect();
    session
        .query_unpaged(
            format!(
                "INSERT INTO {ks}.dedup (sender_id, client_msg_id, conversation_id, message_id, \
                 body, ts, recipients) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                sender.as_str(),
                key.as_str(),
                conv.as_str(),
                cql_id(lost.message.message_id),
                lost.message.body.as_str(),
                lost.message.ts,
                recipients,
            ),
        )
        .await
        .expect("claim the key as the dead writer");
    for user in &members[..2] {
        dead_writers_pending(&session, ks, &lost.message, user).await;
    }
    // A reader meets the residue first and cleans it, dated at its cutoff.
    assert_eq!(store.pending(&members[0], None, 10).await.unwrap(), vec![]);
    assert_eq!(
        pending_rows(&session, ks, &members[0], &conv, lost.message.message_id).await,
        0
    );

    // The client's retry finds the claim, waits for the dead writer, and
    // writes the whole message itself: the cleaner's earlier deletes do
    // not hide the deliveries it writes.
    let retried = store
        .append(lost.clone(), &members)
        .await
        .expect("retry with the same key");
    assert!(retried.duplicate);
    assert_eq!(retried.message, lost.message);
    assert_pending(&store, &members, std::slice::from_ref(&lost.message)).await;
    assert_eq!(
        store.history(&conv, None, 10).await.expect("history"),
        vec![lost.message.clone()]
    );
}
