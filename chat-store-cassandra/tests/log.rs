//! The Cassandra log beyond the conformance suite:
//! - what an append whose writer died right after its transaction leaves
//!   (the entry only in the head): readers show it, a retry of its key is a
//!   duplicate, and the next append writes it out before moving the head;
//! - `remove` of such an entry;
//! - purges across buckets: whole buckets go with their index rows, reads
//!   start above the low-water mark, the seq of purged entries is kept;
//! - cursors written without reads before (or racing) keep the highest id.
//!
//! The dead writer is played by running the append's transaction straight
//! on the tables, as the adapter would have before dying (the crate docs,
//! "Append", describe the columns).

mod support;

use std::sync::Arc;

use chat_core::store::MessageStore;
use chat_core::{
    ConversationId, DeviceId, Head, Message, MessageId, MessageKind, NewMessage, UserId, now_millis,
};
use chat_store_cassandra::CassandraStore;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::CqlValue;

fn unique(label: &str) -> String {
    format!("log-{label}-{:016x}", rand::random::<u64>())
}

fn ids() -> chat_core::id::IdGenerator {
    chat_core::id::IdGenerator::new(rand::random_range(0..1024)).expect("ids")
}

/// An id as the crate stores it (see the crate docs: `id XOR 2^63`).
fn cql_id(id: MessageId) -> i64 {
    (id.0 ^ (1 << 63)) as i64
}

fn text(conversation: &ConversationId, sender: &UserId, id: MessageId) -> NewMessage {
    NewMessage {
        message: Message::text(
            id,
            conversation.clone(),
            sender.clone(),
            format!("text {id}"),
            now_millis(),
        ),
        client_msg_id: None,
        device: None,
    }
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

/// Commits `entry` the way the append's transaction does (in a bucket of
/// its own, after `head`), and writes nothing else: its writer died.
async fn commit_only(
    session: &Session,
    ks: &str,
    head: Head,
    entry: &NewMessage,
    target_bucket: Option<i64>,
) {
    let m = &entry.message;
    let none = cql_id(MessageId(0));
    let update = format!(
        "UPDATE {ks}.heads SET last_id = ?, seq = ?, version = ?, bucket_start = ?, \
         bucket_entries = 1, bucket_bytes = ?, p_sender = ?, p_kind = ?, p_body = ?, p_ts = ?, \
         p_ref = ?, p_ref_bucket = ?, p_reply = ?, p_keyed = ?, p_key = ?, p_device = ?, \
         p_apply = ?, p_move_delivered = false, p_move_device = false, p_removed = false \
         WHERE conversation_id = ? \
         IF last_id = ? AND version = ?"
    );
    let kind: i8 = match m.kind {
        MessageKind::Text => 0,
        MessageKind::Edit => 1,
        MessageKind::Delete => 2,
        MessageKind::Reaction => 3,
        MessageKind::GroupEvent => 4,
    };
    let seq = head.seq + u64::from(m.kind == MessageKind::Text);
    let big = |n: i64| Some(CqlValue::BigInt(n));
    let txt = |t: &str| Some(CqlValue::Text(t.to_owned()));
    let values: Vec<Option<CqlValue>> = vec![
        big(cql_id(m.message_id)),
        big(i64::try_from(seq).unwrap()),
        big(i64::try_from(head.version).unwrap()),
        big(cql_id(m.message_id)),
        big(i64::try_from(m.body.len()).unwrap()),
        txt(m.sender_id.as_str()),
        Some(CqlValue::TinyInt(kind)),
        txt(&m.body),
        big(m.ts),
        big(m.ref_id.map_or(none, cql_id)),
        big(target_bucket.unwrap_or(none)),
        big(none),
        Some(CqlValue::Boolean(entry.client_msg_id.is_some())),
        txt(entry.client_msg_id.as_deref().unwrap_or("")),
        txt(entry.device.as_ref().map_or("", |d| d.as_str())),
        Some(CqlValue::Boolean(m.kind.has_target())),
        txt(m.conversation_id.as_str()),
        head.last_id.map(|l| CqlValue::BigInt(cql_id(l))),
        head.last_id
            .map(|_| CqlValue::BigInt(i64::try_from(head.version).unwrap())),
    ];
    let mut batch =
        scylla::statement::batch::Batch::new(scylla::statement::batch::BatchType::Logged);
    batch.append_statement(update.as_str());
    batch.append_statement(
        format!("INSERT INTO {ks}.heads (conversation_id, bucket) VALUES (?, ?)").as_str(),
    );
    let result = session
        .batch(
            &batch,
            (values, (m.conversation_id.as_str(), cql_id(m.message_id))),
        )
        .await
        .expect("the dead writer's transaction");
    let row = result
        .into_rows_result()
        .expect("rows")
        .rows::<scylla::value::Row>()
        .expect("untyped rows")
        .next()
        .expect("the [applied] row")
        .expect("a row");
    assert_eq!(
        row.columns[0].as_ref().and_then(|v| v.as_boolean()),
        Some(true),
        "the dead writer's transaction applies"
    );
}

/// Whether `messages` holds a row (with its sender) for `id`, committed by
/// [`commit_only`] (so in a bucket that starts with it).
async fn written(session: &Session, ks: &str, c: &ConversationId, id: MessageId) -> bool {
    let rows = session
        .query_unpaged(
            format!(
                "SELECT sender_id FROM {ks}.messages WHERE conversation_id = ? \
                 AND bucket = ? AND message_id = ?"
            ),
            (c.as_str(), cql_id(id), cql_id(id)),
        )
        .await
        .expect("look at messages")
        .into_rows_result()
        .expect("rows");
    rows.rows::<(Option<String>,)>()
        .expect("typed")
        .any(|r| r.is_ok_and(|(sender,)| sender.is_some()))
}

/// How many bucket index rows the conversation has.
async fn bucket_rows(session: &Session, ks: &str, c: &ConversationId) -> usize {
    session
        .query_unpaged(
            format!("SELECT bucket FROM {ks}.heads WHERE conversation_id = ?"),
            (c.as_str(),),
        )
        .await
        .expect("look at heads")
        .into_rows_result()
        .expect("rows")
        .rows::<(Option<i64>,)>()
        .expect("typed")
        .filter(|r| matches!(r, Ok((Some(_),))))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_whose_writer_died_after_its_commit_is_read_and_written_out() {
    let store = support::store().await;
    let (session, ks) = session().await;
    let ids = ids();
    let conv = ConversationId::from(unique("c"));
    let (alice, bob) = (UserId::from(unique("alice")), UserId::from(unique("bob")));
    let phone = DeviceId::from(unique("phone"));

    let first = store
        .append(text(&conv, &alice, ids.next_id()), 0)
        .await
        .expect("append")
        .message;
    let mut dead = text(&conv, &bob, ids.next_id());
    dead.client_msg_id = Some(unique("key"));
    dead.device = Some(phone.clone());
    let head = store.head(&conv).await.expect("head");
    commit_only(&session, ks, head, &dead, None).await;
    assert!(!written(&session, ks, &conv, dead.message.message_id).await);

    assert_eq!(
        store.head(&conv).await.expect("head"),
        Head {
            last_id: Some(dead.message.message_id),
            seq: 2,
            version: 0
        },
        "the commit moved the head"
    );
    assert_eq!(
        store.range(&conv, None, None, 10).await.expect("range"),
        vec![first.clone(), dead.message.clone()],
        "range shows the committed entry from the head"
    );
    assert_eq!(
        store.history(&conv, None, None, 10).await.expect("history"),
        vec![dead.message.clone(), first.clone()],
        "history shows it too"
    );
    assert_eq!(
        store
            .entry(&conv, dead.message.message_id)
            .await
            .expect("entry"),
        Some(dead.message.clone())
    );

    // Its client retries with the key: a duplicate, not a second entry.
    let mut retry = dead.clone();
    retry.message.message_id = ids.next_id();
    let again = store.append(retry, 0).await.expect("retry");
    assert!(again.duplicate && again.message == dead.message);
    assert!(
        written(&session, ks, &conv, dead.message.message_id).await,
        "the retry wrote the entry out before answering"
    );

    let next = store
        .append(text(&conv, &alice, ids.next_id()), 0)
        .await
        .expect("append after");
    assert_eq!(next.prev, Some(dead.message.message_id), "one chain");
    let c = store
        .cursors(&bob, Some(&phone), &conv)
        .await
        .expect("cursors");
    assert_eq!(
        (c.device_delivered, c.delivered, c.read, c.read_seq),
        (None, None, Some(dead.message.message_id), 2),
        "writing it out moved its sender's read cursor (its delivered ones \
         stay: bob never had alice's first entry)"
    );
    assert_eq!(
        store.range(&conv, None, None, 10).await.expect("range"),
        vec![first, dead.message, next.message],
        "each entry once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_whose_writer_died_shows_on_its_target_and_is_applied_later() {
    let store = support::store().await;
    let (session, ks) = session().await;
    let ids = ids();
    let conv = ConversationId::from(unique("c"));
    let alice = UserId::from(unique("alice"));

    let target = store
        .append(text(&conv, &alice, ids.next_id()), 0)
        .await
        .expect("append")
        .message;
    let mut edit = text(&conv, &alice, ids.next_id());
    edit.message.kind = MessageKind::Edit;
    edit.message.ref_id = Some(target.message_id);
    edit.message.body = "edited".into();
    let head = store.head(&conv).await.expect("head");
    commit_only(&session, ks, head, &edit, Some(cql_id(target.message_id))).await;

    let shown = store
        .entry(&conv, target.message_id)
        .await
        .expect("entry")
        .expect("the target");
    assert!(
        shown.edited && shown.body == "edited",
        "readers apply the committed edit"
    );
    let history = store.history(&conv, None, None, 10).await.expect("history");
    assert_eq!(history.len(), 2);
    assert!(history[1].edited, "history shows the target as it is now");

    store
        .append(text(&conv, &alice, ids.next_id()), 0)
        .await
        .expect("the next append");
    let rows = session
        .query_unpaged(
            format!(
                "SELECT body, edited FROM {ks}.messages WHERE conversation_id = ? AND bucket = ? \
                 AND message_id = ?"
            ),
            (
                conv.as_str(),
                cql_id(target.message_id),
                cql_id(target.message_id),
            ),
        )
        .await
        .expect("look at the target")
        .into_rows_result()
        .expect("rows");
    let (body, edited): (String, Option<bool>) = rows.first_row().expect("the target row");
    assert_eq!(
        (body.as_str(), edited),
        ("edited", Some(true)),
        "the next append applied the edit to the stored target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_of_an_entry_not_written_out_yet() {
    let store = support::store().await;
    let (session, ks) = session().await;
    let ids = ids();
    let conv = ConversationId::from(unique("c"));
    let alice = UserId::from(unique("alice"));
    let mut dead = text(&conv, &alice, ids.next_id());
    dead.client_msg_id = Some(unique("key"));
    commit_only(&session, ks, Head::default(), &dead, None).await;

    store
        .remove(&conv, dead.message.message_id)
        .await
        .expect("remove");
    assert!(
        store
            .range(&conv, None, None, 10)
            .await
            .expect("range")
            .is_empty()
    );
    assert_eq!(
        store
            .entry(&conv, dead.message.message_id)
            .await
            .expect("entry"),
        None
    );
    let mut retry = dead.clone();
    retry.message.message_id = ids.next_id();
    let again = store.append(retry.clone(), 0).await.expect("retry");
    assert!(!again.duplicate, "a removed entry's key is free");
    assert_eq!(again.prev, Some(dead.message.message_id), "the head stayed");
    assert!(
        !written(&session, ks, &conv, dead.message.message_id).await,
        "the next append does not write out a removed entry"
    );
    assert_eq!(
        store.range(&conv, None, None, 10).await.expect("range"),
        vec![retry.message]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_take_whole_buckets_and_reads_start_above_them() {
    let store = support::store_with(|c| c.bucket_max_entries = 3).await;
    let (session, ks) = session().await;
    let ids = ids();
    let conv = ConversationId::from(unique("c"));
    let (alice, bob) = (UserId::from(unique("alice")), UserId::from(unique("bob")));
    let mut all = Vec::new();
    for _ in 0..10 {
        all.push(
            store
                .append(text(&conv, &alice, ids.next_id()), 0)
                .await
                .expect("append")
                .message,
        );
    }
    let id = |i: usize| all[i].message_id;
    assert_eq!(bucket_rows(&session, ks, &conv).await, 4, "buckets of 3");

    assert_eq!(store.purge(&conv, id(4)).await.expect("purge"), 5);
    assert_eq!(
        bucket_rows(&session, ks, &conv).await,
        3,
        "the wholly purged bucket's index row is gone"
    );
    assert_eq!(store.purge(&conv, id(4)).await.expect("purge"), 0);
    assert_eq!(
        store.range(&conv, None, None, 100).await.expect("range"),
        all[5..].to_vec()
    );
    let mut newest_first = all[5..].to_vec();
    newest_first.reverse();
    assert_eq!(
        store
            .history(&conv, None, None, 100)
            .await
            .expect("history"),
        newest_first
    );
    assert_eq!(
        store
            .range(&conv, Some(id(1)), Some(id(6)), 100)
            .await
            .expect("range"),
        all[5..7].to_vec(),
        "a window that starts below the mark reads from above it"
    );
    assert_eq!(store.entry(&conv, id(2)).await.expect("entry"), None);
    store
        .mark_read(&bob, &conv, id(3))
        .await
        .expect("mark_read");
    assert_eq!(
        store
            .cursors(&bob, None, &conv)
            .await
            .expect("cursors")
            .read_seq,
        5,
        "a read cursor in purged entries counts them all (the purged seq)"
    );
    store
        .mark_read(&bob, &conv, id(7))
        .await
        .expect("mark_read");
    assert_eq!(
        store
            .cursors(&bob, None, &conv)
            .await
            .expect("cursors")
            .read_seq,
        8
    );

    assert_eq!(
        store
            .purge(&conv, MessageId(u64::MAX))
            .await
            .expect("purge all"),
        5,
        "a bound past the head purges up to the head"
    );
    assert!(
        store
            .range(&conv, None, None, 100)
            .await
            .expect("range")
            .is_empty()
    );
    let later = store
        .append(text(&conv, &alice, ids.next_id()), 0)
        .await
        .expect("append after purging everything");
    assert_eq!(later.prev, Some(id(9)), "the head stays");
    assert_eq!(
        store.range(&conv, None, None, 100).await.expect("range"),
        vec![later.message],
        "entries after the mark are read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cursors_keep_the_highest_id_whatever_order_writes_arrive_in() {
    let store: Arc<CassandraStore> = support::store().await;
    let conv = ConversationId::from(unique("c"));
    let user = UserId::from(unique("u"));
    // Two ids of one millisecond and the same microsecond of write time:
    // Cassandra breaks the tie by the greater stored value, the higher id.
    let ms = u64::try_from(now_millis()).unwrap();
    let (low, high) = (
        MessageId(MessageId::first_at(ms).0 + 1),
        MessageId(MessageId::first_at(ms).0 + 2),
    );
    let at = |id: MessageId| Head {
        last_id: Some(id),
        seq: 1,
        version: 0,
    };
    store
        .start_member(&user, &conv, at(high))
        .await
        .expect("start");
    store
        .start_member(&user, &conv, at(low))
        .await
        .expect("start");
    assert_eq!(
        store
            .cursors(&user, None, &conv)
            .await
            .expect("cursors")
            .read,
        Some(high),
        "a lower id written later loses, also within one microsecond"
    );

    // Acks racing from many tasks: the highest wins.
    let ids = ids();
    let acks: Vec<MessageId> = (0..64).map(|_| ids.next_id()).collect();
    let highest = *acks.iter().max().unwrap();
    let device = DeviceId::from(unique("d"));
    let tasks: Vec<_> = acks
        .into_iter()
        .rev()
        .map(|id| {
            let (store, user, device, conv) =
                (store.clone(), user.clone(), device.clone(), conv.clone());
            tokio::spawn(async move { store.ack(&user, &device, &conv, id).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("ack");
    }
    let c = store
        .cursors(&user, Some(&device), &conv)
        .await
        .expect("cursors");
    assert_eq!(
        (c.device_delivered, c.delivered),
        (Some(highest), Some(highest))
    );
    assert_eq!(
        store.device_cursors(&device).await.expect("device cursors"),
        vec![(conv.clone(), highest)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lists_of_heads_and_cursors_answer_in_order() {
    let store = support::store().await;
    let ids = ids();
    let user = UserId::from(unique("u"));
    // More than one IN read of heads (250 keys each), and more than the
    // user_cursors IN limit (50): the paths the suite's short lists miss.
    let convs: Vec<ConversationId> = (0..300)
        .map(|i| ConversationId::from(unique(&format!("c{i}"))))
        .collect();
    let mut want_heads = Vec::new();
    for (i, c) in convs.iter().enumerate() {
        if i % 7 == 0 {
            let m = store
                .append(text(c, &user, ids.next_id()), 0)
                .await
                .expect("append")
                .message;
            want_heads.push(Head {
                last_id: Some(m.message_id),
                seq: 1,
                version: 0,
            });
        } else {
            want_heads.push(Head::default());
        }
    }
    let mut asked = convs.clone();
    asked.reverse();
    want_heads.reverse();
    assert_eq!(store.heads(&asked).await.expect("heads"), want_heads);
    let cursors = store.user_cursors(&user, &asked).await.expect("cursors");
    assert_eq!(cursors.len(), asked.len());
    for (c, head) in cursors.iter().zip(&want_heads) {
        assert_eq!(c.read, head.last_id, "the sender's read cursor, in order");
        assert_eq!(c.read_seq, head.seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyspace_of_the_previous_layout_is_refused() {
    let (session, _) = session().await;
    let old = support::fresh_keyspace_name();
    for ddl in [
        format!(
            "CREATE KEYSPACE {old} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        format!(
            "CREATE TABLE {old}.pending_by_user (user_id text, message_id bigint, \
             conversation_id text, PRIMARY KEY (user_id, message_id, conversation_id))"
        ),
    ] {
        session
            .query_unpaged(ddl, &[])
            .await
            .expect("an old layout");
    }
    let refused = CassandraStore::connect(support::config(support::contact_points(), &old)).await;
    session
        .query_unpaged(format!("DROP KEYSPACE {old}"), &[])
        .await
        .expect("drop the old layout");
    let err = refused.expect_err("the previous layout is refused");
    assert!(
        matches!(err, chat_core::Error::InvalidInput { .. })
            && err.to_string().contains("previous layout"),
        "got {err}"
    );
}
