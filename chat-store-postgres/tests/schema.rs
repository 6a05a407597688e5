//! The schema: migrations (twice, and from several processes at once), the
//! upgrade of a version 1 schema holding data, and a schema newer than this
//! build refused.

mod support;

use chat_core::store::{AccountStore, ConversationStore, MessageStore};
use chat_core::{
    ConversationId, ConversationKind, DeviceId, Error, Head, HistoryVisibility, JoinPolicy,
    Message, MessageId, NewMessage, Role, UserId, now_millis,
};
use chat_store_postgres::testing::{self, SchemaGuard};
use chat_store_postgres::{PostgresConfig, PostgresStore};
use support::raw_client;

async fn connect(url: &str, schema: &str) -> chat_core::Result<PostgresStore> {
    PostgresStore::connect_with(
        url,
        PostgresConfig {
            schema: schema.to_owned(),
            ..PostgresConfig::default()
        },
    )
    .await
}

async fn applied(url: &str, schema: &str) -> Vec<i32> {
    raw_client(url, schema)
        .await
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("read schema_migrations")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A message id as version 1 stored it (top bit flipped, see src/ids.rs).
fn v1_id(id: u64) -> i64 {
    i64::from_ne_bytes((id ^ (1 << 63)).to_ne_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_from_concurrent_processes_and_again_safely() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let schema = testing::fresh_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    // Eight stores start at once on a schema that does not exist yet, as
    // eight server processes would: the advisory lock makes them take turns.
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (url, schema) = (url.clone(), schema.clone());
        starts.spawn(async move { connect(&url, &schema).await.map(drop) });
    }
    while let Some(started) = starts.join_next().await {
        started
            .expect("a start panicked")
            .expect("every concurrent start must succeed");
    }
    let versions = applied(&url, &schema).await;
    assert_eq!(
        versions,
        vec![1, 2, 3, 4],
        "each migration must be recorded exactly once"
    );

    // And once more, later: nothing to do, nothing broken.
    let store = connect(&url, &schema).await.expect("a second start");
    assert_eq!(applied(&url, &schema).await, versions);
    let conv = ConversationId::from("g:after-remigration");
    let entry = NewMessage {
        message: Message::text(
            MessageId(7),
            conv.clone(),
            UserId::from("u"),
            "still works",
            now_millis(),
        ),
        client_msg_id: None,
        device: None,
    };
    store
        .append(entry, 0)
        .await
        .expect("append after a second migration run");
    assert_eq!(
        store.head(&conv).await.expect("head").last_id,
        Some(MessageId(7))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_build_is_refused() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let schema = testing::fresh_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    drop(connect(&url, &schema).await.expect("create the schema"));
    raw_client(&url, &schema)
        .await
        .batch_execute(
            "INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')",
        )
        .await
        .expect("record a future migration");
    let refused = connect(&url, &schema).await;
    assert!(
        matches!(&refused, Err(Error::Unavailable { reason, .. }) if reason.contains("newer")),
        "a schema past this build's migrations must be refused, got {refused:?}"
    );
}

/// Version 1 data, written as version 1 wrote it, then upgraded by a
/// normal start and read through the new traits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_version_1_keeps_the_data() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let schema = testing::fresh_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    testing::create_schema_at(&url, &schema, 1)
        .await
        .expect("create a version 1 schema");
    assert_eq!(applied(&url, &schema).await, vec![1]);

    // A group g of ann (its creator), bob and cat with five messages; a
    // direct conversation of ann and bob with two. bob has the last two
    // group messages pending and read up to the second; cat has nothing
    // pending and no cursor; ann acked the direct messages.
    let created = 1_700_000_000_000_i64;
    let g = "g:old";
    let d = "d:ann:bob";
    let group_ids = [101_u64, 102, 103, 104, 105];
    let direct_ids = [201_u64, 202];
    let old = raw_client(&url, &schema).await;
    let accounts = "INSERT INTO accounts (user_id, username, password_hash, display_name, created_at) VALUES \
         ('ann', 'ann', '$argon2id$x', 'Ann', 1), ('bob', 'bob', '$argon2id$y', 'Bob', 2), \
         ('cat', 'cat', '$argon2id$z', 'Cat', 3)";
    old.batch_execute(accounts).await.expect("v1 accounts");
    old.execute(
        "INSERT INTO conversations (id, kind, name, created_by, created_at) VALUES \
         ($1, 'group', 'old friends', 'ann', $3), ($2, 'direct', NULL, 'bob', $3)",
        &[&g, &d, &created],
    )
    .await
    .expect("v1 conversations");
    old.execute(
        "INSERT INTO members (conversation_id, user_id) VALUES \
         ($1, 'ann'), ($1, 'bob'), ($1, 'cat'), ($2, 'ann'), ($2, 'bob')",
        &[&g, &d],
    )
    .await
    .expect("v1 members");
    for (i, id) in group_ids.iter().enumerate() {
        let sender = if i % 2 == 0 { "ann" } else { "cat" };
        let key = format!("k{id}");
        old.execute(
            "INSERT INTO messages (conversation_id, message_id, sender_id, body, ts, client_msg_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&g, &v1_id(*id), &sender, &format!("group {i}"), &(created + i as i64), &key],
        )
        .await
        .expect("v1 message");
        old.execute(
            "INSERT INTO dedup (sender_id, client_msg_id, conversation_id, message_id) \
             VALUES ($1, $2, $3, $4)",
            &[&sender, &key, &g, &v1_id(*id)],
        )
        .await
        .expect("v1 dedup key");
    }
    for id in direct_ids {
        old.execute(
            "INSERT INTO messages (conversation_id, message_id, sender_id, body, ts) \
             VALUES ($1, $2, 'bob', 'psst', $3)",
            &[&d, &v1_id(id), &created],
        )
        .await
        .expect("v1 direct message");
    }
    for id in [104_u64, 105] {
        let sender = if id == 104 { "cat" } else { "ann" };
        old.execute(
            "INSERT INTO pending (user_id, message_id, conversation_id, sender_id) \
             VALUES ('bob', $1, $2, $3)",
            &[&v1_id(id), &g, &sender],
        )
        .await
        .expect("v1 pending");
    }
    old.execute(
        "INSERT INTO cursors (user_id, conversation_id, delivered, read) VALUES \
         ('bob', $1, $2, $3), ('ann', $4, $5, NULL)",
        &[&g, &v1_id(103), &v1_id(102), &d, &v1_id(202)],
    )
    .await
    .expect("v1 cursors");

    let store = connect(&url, &schema).await.expect("upgrade to the newest");
    assert_eq!(applied(&url, &schema).await, vec![1, 2, 3, 4]);
    let (g, d) = (ConversationId::from(g), ConversationId::from(d));
    let (ann, bob, cat) = (
        UserId::from("ann"),
        UserId::from("bob"),
        UserId::from("cat"),
    );

    // Accounts.
    let account = store
        .account_by_username("bob")
        .await
        .expect("account")
        .expect("bob's account survives");
    assert_eq!(
        (account.user_id.as_str(), account.display_name.as_str()),
        ("bob", "Bob")
    );

    // Conversations, members and roles: the group's creator owns it.
    let group = store
        .conversation(&g)
        .await
        .expect("conversation")
        .expect("the group survives");
    assert_eq!(group.kind, ConversationKind::Group);
    assert_eq!(group.name.as_deref(), Some("old friends"));
    assert_eq!(
        (group.join, group.history),
        (JoinPolicy::Invite, HistoryVisibility::SinceJoin)
    );
    let members = store.members(&g).await.expect("members");
    let roles: Vec<(&str, Role)> = members
        .iter()
        .map(|m| (m.user_id.as_str(), m.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("ann", Role::Owner),
            ("bob", Role::Member),
            ("cat", Role::Member)
        ]
    );
    assert!(
        members
            .iter()
            .all(|m| m.joined == MessageId(0) && m.joined_at == created),
        "old members are founding members since the group's creation: {members:?}"
    );
    assert_eq!(store.member_count(&g).await.expect("count"), 3);
    let direct = store.members(&d).await.expect("members");
    assert!(direct.iter().all(|m| m.role == Role::Member));
    assert_eq!(store.memberships(&bob).await.expect("memberships").len(), 2);

    // The log: text entries in id order, with a head.
    let ids = |ms: &[Message]| ms.iter().map(|m| m.message_id.get()).collect::<Vec<_>>();
    let range = store.range(&g, None, None, 100).await.expect("range");
    assert_eq!(ids(&range), group_ids.to_vec());
    assert_eq!(range[1].body, "group 1");
    assert_eq!(range[1].sender_id, cat);
    let head = store.head(&g).await.expect("head");
    assert_eq!(
        head,
        Head {
            last_id: Some(MessageId(105)),
            seq: 5,
            version: 0
        }
    );
    assert_eq!(
        store.heads(std::slice::from_ref(&d)).await.expect("heads")[0].seq,
        2
    );
    let history = store
        .history(&g, Some(MessageId(105)), None, 2)
        .await
        .expect("history");
    assert_eq!(ids(&history), vec![104, 103]);

    // Cursors: bob is delivered up to the message before his oldest
    // pending one and keeps his read cursor with its seq; cat, a member
    // with nothing pending, had everything; ann keeps her direct cursor.
    let bobs = store.cursors(&bob, None, &g).await.expect("cursors");
    assert_eq!(
        (bobs.delivered, bobs.read, bobs.read_seq),
        (Some(MessageId(103)), Some(MessageId(102)), 2)
    );
    assert_eq!(head.seq - bobs.read_seq, 3, "bob's unread count");
    let cats = store.cursors(&cat, None, &g).await.expect("cursors");
    assert_eq!((cats.delivered, cats.read), (Some(MessageId(105)), None));
    let anns = store
        .user_cursors(&ann, &[d.clone(), g.clone()])
        .await
        .expect("user_cursors");
    assert_eq!(anns[0].delivered, Some(MessageId(202)));
    // bob's first device starts where his cursor is: his pending messages reach it.
    let phone = DeviceId::from("bob-phone");
    store
        .start_device(&bob, &phone)
        .await
        .expect("start_device");
    let mut synced = store.device_cursors(&phone).await.expect("device_cursors");
    synced.sort();
    assert!(synced.contains(&(g.clone(), MessageId(103))), "{synced:?}");
    let resent = store
        .range(&g, Some(MessageId(103)), None, 100)
        .await
        .expect("sync range");
    assert_eq!(
        ids(&resent),
        vec![104, 105],
        "the pending messages are synced again"
    );

    // Dedup keys: a retry of an old send answers the old message.
    let retry = NewMessage {
        message: Message::text(
            MessageId(999),
            g.clone(),
            cat.clone(),
            "again",
            now_millis(),
        ),
        client_msg_id: Some("k104".into()),
        device: None,
    };
    let answered = store.append(retry, 0).await.expect("retry of a v1 send");
    assert!(answered.duplicate);
    assert_eq!(answered.message.message_id, MessageId(104));

    // And the chain goes on from the old head.
    let next = NewMessage {
        message: Message::text(MessageId(106), g.clone(), bob.clone(), "new", now_millis()),
        client_msg_id: Some("fresh".into()),
        device: Some(phone.clone()),
    };
    let appended = store
        .append(next, 0)
        .await
        .expect("append after the upgrade");
    assert_eq!(appended.prev, Some(MessageId(105)));
    let bobs = store
        .cursors(&bob, Some(&phone), &g)
        .await
        .expect("cursors");
    assert_eq!(
        (
            bobs.delivered,
            bobs.device_delivered,
            bobs.read,
            bobs.read_seq
        ),
        (
            Some(MessageId(103)),
            Some(MessageId(103)),
            Some(MessageId(106)),
            6
        ),
        "bob read what he wrote; his phone still has 104 and 105 to get"
    );
}

/// A schema lent to other processes by name is there, migrated, while its
/// guard lives, and gone after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lent_schema_lives_as_long_as_its_guard() {
    let Some(url) = testing::test_url() else {
        return;
    };
    let Some(guard) = testing::fresh_migrated_schema().await else {
        return;
    };
    let schema = guard.schema().to_owned();
    assert_eq!(applied(&url, &schema).await, vec![1, 2, 3, 4]);
    drop(guard);
    let left = raw_client(&url, "public")
        .await
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .expect("count")
        .get::<_, i64>(0);
    assert_eq!(left, 0, "the guard drops the schema");
}
