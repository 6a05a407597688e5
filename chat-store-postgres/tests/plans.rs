//! The plan of every hot statement uses its index, over tables large
//! enough that the planner has a real choice (a sequential scan of a table
//! of a few pages is rightly cheaper than any index).

mod support;

use chat_core::{ConversationId, DeviceId, MessageId, UserId};
use chat_store_postgres::{HotQuery, testing};
use support::raw_client;

/// Conversations, entries per conversation and members per conversation
/// of the filled schema: 200,000 entries, 40,000 memberships and cursors.
const CONVERSATIONS: i64 = 2_000;
const ENTRIES: i64 = 100;
const MEMBERS: i64 = 20;

/// Fills the store's tables with generate_series (what the adapter would
/// write, without going through it: the plans are what is tested here).
const FILL: &str = r#"
INSERT INTO entries (conversation_id, message_id, kind, sender_id, body, ts, seq, client_msg_id)
SELECT 'c' || c, -9223372036854775808 + 1000 + n, CASE WHEN n % 10 = 0 THEN 4 ELSE 0 END,
       'u' || ((c + n) % 4000), 'message ' || n, 1700000000000 + n,
       n - n / 10, CASE WHEN n % 10 = 0 THEN NULL ELSE 'k' || c || '-' || n END
FROM generate_series(0, 1999) AS c, generate_series(1, 100) AS n;
INSERT INTO heads (conversation_id, last_id, seq, version)
SELECT 'c' || c, -9223372036854775808 + 1100, 90, 10 FROM generate_series(0, 1999) AS c;
-- Heads are small rows: many more conversations, so that 100 of them are
-- a small part of the table.
INSERT INTO heads (conversation_id, last_id, seq, version)
SELECT 'x' || c, -9223372036854775808 + 5, 1, 0 FROM generate_series(0, 99999) AS c;
INSERT INTO reactions (conversation_id, message_id, user_id, emoji)
SELECT 'c' || c, -9223372036854775808 + 1000 + n, 'u' || c, '👍'
FROM generate_series(0, 1999) AS c, generate_series(1, 100, 7) AS n;
INSERT INTO conversations (id, kind, name, created_by, created_at, member_count)
SELECT 'c' || c, 'group', 'group ' || c, 'u' || c, 0, 20 FROM generate_series(0, 1999) AS c;
INSERT INTO members (conversation_id, user_id, role, joined, joined_at)
SELECT 'c' || c, 'u' || ((c * 20 + m) % 4000), 'member', -9223372036854775808, 0
FROM generate_series(0, 1999) AS c, generate_series(0, 19) AS m
ON CONFLICT DO NOTHING;
INSERT INTO user_cursors (user_id, conversation_id, delivered, read, read_seq)
SELECT user_id, conversation_id, -9223372036854775808 + 1090, -9223372036854775808 + 1080, 72
FROM members;
INSERT INTO device_cursors (device_id, conversation_id, user_id, delivered)
SELECT 'dev-' || user_id, conversation_id, user_id, -9223372036854775808 + 1090 FROM members;
INSERT INTO invites (code_hash, conversation_id, created_by, created_at)
SELECT md5(c::text), 'c' || c, 'u' || c, 0 FROM generate_series(0, 1999) AS c;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_statements_use_their_indexes() {
    let Some(store) = testing::fresh_store().await else {
        return;
    };
    let Some(url) = testing::test_url() else {
        return;
    };
    let raw = raw_client(&url, &store.config().schema).await;
    raw.batch_execute(FILL).await.expect("fill");
    // VACUUM (not in a transaction, so one call each) sets the visibility
    // map that index-only scans need, and ANALYZE the statistics.
    for table in [
        "entries",
        "heads",
        "reactions",
        "conversations",
        "members",
        "user_cursors",
        "device_cursors",
        "invites",
    ] {
        raw.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .expect("vacuum analyze");
    }
    let counted: i64 = raw
        .query_one("SELECT count(*) FROM entries", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(counted, CONVERSATIONS * ENTRIES);
    let members: i64 = raw
        .query_one("SELECT count(*) FROM members", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(members, CONVERSATIONS * MEMBERS);

    let c = |n: i64| ConversationId::from(format!("c{n}"));
    let id = |n: u64| MessageId(1000 + n);
    let some: Vec<ConversationId> = (0..100).map(|n| c(n * 13)).collect();
    let user = UserId::from("u7");
    let device = DeviceId::from("dev-u7");
    // (query, the index it must use, a stricter step it must show)
    let cases = [
        (
            HotQuery::History(c(7)),
            "entries_pkey",
            Some("Index Scan Backward"),
        ),
        (
            HotQuery::Range(c(7), id(40)),
            "entries_pkey",
            Some("Index Scan"),
        ),
        (HotQuery::Heads(some.clone()), "heads_pkey", None),
        (
            HotQuery::UserCursors(user.clone(), some),
            "user_cursors_pkey",
            None,
        ),
        (
            HotQuery::DeviceCursors(device.clone()),
            "device_cursors_pkey",
            None,
        ),
        (
            HotQuery::ConversationCursors(c(7)),
            "device_cursors_by_conversation",
            Some("user_cursors_by_conversation"),
        ),
        (
            HotQuery::ReadSeq(c(7), id(55)),
            "entries_pkey",
            Some("Index Only Scan Backward"),
        ),
        (
            HotQuery::Purge(c(7), id(30)),
            "entries_pkey",
            Some("reactions_pkey"),
        ),
        (
            HotQuery::Remove(c(7), id(30)),
            "entries_pkey",
            Some("reactions_pkey"),
        ),
        (
            HotQuery::StartDevice(user.clone(), DeviceId::from("new")),
            "user_cursors_pkey",
            None,
        ),
        (HotQuery::ForgetDevice(device), "device_cursors_pkey", None),
        (HotQuery::Members(c(7)), "members_pkey", None),
        (HotQuery::Memberships(user), "members_by_user", None),
        (HotQuery::RedeemInvite("x".into()), "invites_pkey", None),
    ];
    for (query, index, step) in cases {
        let plan = store.explain(&query, false).await.expect("explain");
        println!("{query:?}:\n{plan}\n");
        assert!(
            plan.contains(index),
            "the plan of {query:?} must use {index}, got:\n{plan}"
        );
        assert!(
            !plan.contains("Seq Scan"),
            "the plan of {query:?} must not scan a table, got:\n{plan}"
        );
        if let Some(step) = step {
            assert!(
                plan.contains(step),
                "the plan of {query:?} must show {step:?}, got:\n{plan}"
            );
        }
    }
    // EXPLAIN ANALYZE of a write runs it and rolls it back.
    let analyzed = store
        .explain(&HotQuery::Purge(c(9), id(100)), true)
        .await
        .expect("explain analyze");
    assert!(analyzed.contains("actual"), "{analyzed}");
    let still: i64 = raw
        .query_one(
            "SELECT count(*) FROM entries WHERE conversation_id = 'c9'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(still, ENTRIES, "an analyzed purge is rolled back");
}
