//! The reads of the conversations list and of a sync over a large schema,
//! through `PostgresStore`, with their plans.
//!
//! The schema is filled with `generate_series` (what the adapter would
//! write, without going through it): `CHAT_BENCH_ENTRIES` entries (default
//! 5,000,000) over `CHAT_BENCH_CONVERSATIONS` conversations (100,000) of
//! 10 members each, every member with a user cursor and a device cursor
//! (1,000,000 of each), and one reader who is a member of 1,000 of them,
//! behind by 5 entries on its phone in 50 of them.
//!
//! Measured, each repeated `CHAT_BENCH_REPEAT` times (200), with p50, p90
//! and p99:
//! - the conversations list: `memberships` (ConversationStore), then
//!   `heads` and `user_cursors` of the 1,000 conversations (MessageStore);
//! - a sync of the phone: `device_cursors`, `heads` of those conversations,
//!   and a `range` from the cursor in each conversation that is behind;
//! - a history page, `mark_read` and `ack` (writes) on the large tables;
//! - the catch-up of a device back after a month offline (its laptop, set
//!   `CHAT_BENCH_OFFLINE` entries behind, 30 by default, in each of the
//!   1,000 conversations before each repetition): `device_cursors`,
//!   `heads` and one `range` per conversation, 100 entries a page, until
//!   every entry is read; repeated a tenth as often.
//!
//! `cargo bench -p chat-store-postgres --bench reads` with
//! `CHAT_TEST_POSTGRES_URL` set. The schema is dropped at the end unless
//! `CHAT_BENCH_KEEP=<schema>` names one to keep (and reuse: when that
//! schema exists already, it is not filled again). About 1.5 GB of disk
//! for the default size.

mod common;

use std::sync::Arc;
use std::time::Instant;

use chat_core::store::{ConversationStore, MessageStore};
use chat_core::{ConversationId, DeviceId, MessageId, UserId};
use chat_store_postgres::testing::SchemaGuard;
use chat_store_postgres::{HotQuery, PostgresConfig, PostgresStore, testing};
use common::{Latencies, db_id, env_usize, plain};

/// The reader's conversations, and how many of them its phone is behind in.
const READER_CONVERSATIONS: usize = 1_000;
const BEHIND: usize = 50;
/// Members per conversation.
const MEMBERS: usize = 10;
/// Where the fill's message ids start (a Snowflake id of 2025 or so).
const FIRST_ID: u64 = 400_000_000_000_000_000;

/// The fill. `{per}` entries per conversation, `{c}` conversations,
/// `{stride}`: every `{stride}`-th conversation is the reader's, `{first}`
/// the first id as a column value. Numbers only, put in with `format`.
const FILL: &[&str] = &[
    // Entry n of conversation c has id FIRST_ID + n * C + c: ids rise over
    // the whole table as time does, conversations interleaved.
    "INSERT INTO entries (conversation_id, message_id, kind, sender_id, body, ts, seq, client_msg_id)
     SELECT 'c' || c, {first} + n * {c} + c, 0, 'u' || ((c * 10 + n % 10) % ({c} * 2)),
            'message ' || n || ' of conversation ' || c || ', some text', 1735689600000 + n * 1000,
            n, 'k' || c || '-' || n
     FROM generate_series(0, {c} - 1) AS c, generate_series(1, {per}) AS n
     ORDER BY c, n",
    "INSERT INTO heads (conversation_id, last_id, seq, version)
     SELECT 'c' || c, {first} + {per} * {c} + c, {per}, 0
     FROM generate_series(0, {c} - 1) AS c",
    "INSERT INTO conversations (id, kind, name, created_by, created_at, member_count)
     SELECT 'c' || c, 'group', 'group ' || c, 'u' || c, 0, 10 FROM generate_series(0, {c} - 1) AS c",
    // Members: ten users per conversation; in the reader's conversations,
    // the reader instead of the first.
    "INSERT INTO members (conversation_id, user_id, role, joined, joined_at)
     SELECT 'c' || c,
            CASE WHEN m = 0 AND c % {stride} = 0 THEN 'reader' ELSE 'u' || ((c * {members} + m) % ({c} * 2)) END,
            'member', -9223372036854775808, 0
     FROM generate_series(0, {c} - 1) AS c, generate_series(0, {members} - 1) AS m
     ON CONFLICT DO NOTHING",
    // Everyone has everything, and read all but the last five.
    "INSERT INTO user_cursors (user_id, conversation_id, delivered, read, read_seq)
     SELECT m.user_id, m.conversation_id, h.last_id, h.last_id - 5 * {c}, h.seq - 5
     FROM members m JOIN heads h ON h.conversation_id = m.conversation_id",
    "INSERT INTO device_cursors (device_id, conversation_id, user_id, delivered)
     SELECT CASE WHEN m.user_id = 'reader' THEN 'reader-phone' ELSE 'dev-' || m.user_id END,
            m.conversation_id, m.user_id, h.last_id
     FROM members m JOIN heads h ON h.conversation_id = m.conversation_id",
];

/// The phone misses the last five entries of `BEHIND` of its conversations.
const BEHIND_SQL: &str = "UPDATE device_cursors SET delivered = delivered - 5 * {c} \
     WHERE device_id = 'reader-phone' AND conversation_id IN \
       (SELECT 'c' || (c * {stride}) FROM generate_series(0, {behind} - 1) AS c)";

async fn fill(url: &str, schema: &str, entries: usize, conversations: usize) {
    let client = plain(url, schema).await;
    let per = (entries / conversations).max(6);
    let c = conversations;
    let stride = (conversations / READER_CONVERSATIONS).max(1);
    let first = db_id(FIRST_ID);
    let fill_in = |sql: &str| {
        sql.replace("{per}", &per.to_string())
            .replace("{c}", &c.to_string())
            .replace("{stride}", &stride.to_string())
            .replace("{first}", &first.to_string())
            .replace("{members}", &MEMBERS.to_string())
            .replace("{behind}", &BEHIND.to_string())
    };
    for (i, sql) in FILL.iter().chain([&BEHIND_SQL]).enumerate() {
        let started = Instant::now();
        client
            .batch_execute(&fill_in(sql))
            .await
            .unwrap_or_else(|e| panic!("fill step {i}: {e}"));
        println!("  fill step {i}: {:.1} s", started.elapsed().as_secs_f64());
    }
    for table in [
        "entries",
        "heads",
        "conversations",
        "members",
        "user_cursors",
        "device_cursors",
    ] {
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .expect("vacuum analyze");
    }
}

async fn sizes(url: &str, schema: &str) {
    let client = plain(url, schema).await;
    let rows = client
        .query(
            "SELECT c.relname, c.reltuples::int8, pg_size_pretty(pg_total_relation_size(c.oid)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r' AND c.reltuples > 0 ORDER BY pg_total_relation_size(c.oid) DESC",
            &[&schema],
        )
        .await
        .expect("sizes");
    for row in rows {
        println!(
            "  {:<16} {:>10} rows  {:>8} with indexes",
            row.get::<_, &str>(0),
            row.get::<_, i64>(1),
            row.get::<_, &str>(2)
        );
    }
}

fn main() {
    let Ok(url) = std::env::var(testing::URL_VAR) else {
        eprintln!(
            "reads bench: {} is not set (scripts/services up postgres); nothing measured",
            testing::URL_VAR
        );
        return;
    };
    let entries = env_usize("CHAT_BENCH_ENTRIES", 5_000_000);
    let conversations = env_usize("CHAT_BENCH_CONVERSATIONS", 100_000).max(READER_CONVERSATIONS);
    let repeat = env_usize("CHAT_BENCH_REPEAT", 200).max(1);
    let kept = std::env::var("CHAT_BENCH_KEEP")
        .ok()
        .filter(|s| !s.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let schema = kept.clone().unwrap_or_else(testing::fresh_schema);
        // Dropped at the end, unless kept.
        let _guard = kept.is_none().then(|| SchemaGuard::new(&url, &schema));
        let existed = {
            let client = plain(&url, "public").await;
            client
                .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema])
                .await
                .expect("schema exists?")
                .get::<_, bool>(0)
        };
        let store = Arc::new(
            PostgresStore::connect_with(
                &url,
                PostgresConfig {
                    schema: schema.clone(),
                    ..PostgresConfig::default()
                },
            )
            .await
            .expect("connect"),
        );
        if existed {
            println!("reads bench: reusing schema {schema}");
        } else {
            println!(
                "reads bench: filling {schema} with {entries} entries over {conversations} conversations"
            );
            let started = Instant::now();
            fill(&url, &schema, entries, conversations).await;
            println!("  filled in {:.0} s", started.elapsed().as_secs_f64());
        }
        sizes(&url, &schema).await;
        measure(&store, repeat).await;
        let offline = env_usize("CHAT_BENCH_OFFLINE", 30);
        month_offline(&url, &schema, &store, conversations, offline, (repeat / 10).max(3)).await;
    });
}

async fn measure(store: &Arc<PostgresStore>, repeat: usize) {
    let reader = UserId::from("reader");
    let phone = DeviceId::from("reader-phone");

    // The conversations list.
    let (mut list, mut memberships_only, mut heads_only, mut cursors_only) = (
        Latencies::new(),
        Latencies::new(),
        Latencies::new(),
        Latencies::new(),
    );
    let mut conversations: Vec<ConversationId> = Vec::new();
    for _ in 0..repeat {
        let started = Instant::now();
        let mine = store.memberships(&reader).await.expect("memberships");
        let after_memberships = Instant::now();
        conversations = mine.into_iter().map(|(c, _)| c).collect();
        let heads = store.heads(&conversations).await.expect("heads");
        let after_heads = Instant::now();
        let cursors = store
            .user_cursors(&reader, &conversations)
            .await
            .expect("user_cursors");
        let done = Instant::now();
        let unread: u64 = heads
            .iter()
            .zip(&cursors)
            .map(|(h, c)| h.seq.saturating_sub(c.read_seq))
            .sum();
        assert_eq!(conversations.len(), READER_CONVERSATIONS);
        // Five unread in each, as filled (a reused schema has fewer: the
        // mark_read below moved some).
        assert!(unread <= 5 * READER_CONVERSATIONS as u64);
        list.push(done - started);
        memberships_only.push(after_memberships - started);
        heads_only.push(after_heads - after_memberships);
        cursors_only.push(done - after_heads);
    }
    println!("\nconversations list of a user in {READER_CONVERSATIONS} conversations:");
    println!("  memberships + heads + user_cursors  {}", list.summary());
    println!(
        "  memberships (ConversationStore)     {}",
        memberships_only.summary()
    );
    println!(
        "  heads of {READER_CONVERSATIONS}                      {}",
        heads_only.summary()
    );
    println!(
        "  user_cursors of {READER_CONVERSATIONS}               {}",
        cursors_only.summary()
    );

    // A sync of the phone.
    let (mut sync, mut behind_entries) = (Latencies::new(), 0);
    for _ in 0..repeat {
        let started = Instant::now();
        let cursors = store.device_cursors(&phone).await.expect("device_cursors");
        let ids: Vec<ConversationId> = cursors.iter().map(|(c, _)| c.clone()).collect();
        let heads = store.heads(&ids).await.expect("heads");
        let mut missed = 0;
        for ((c, at), head) in cursors.iter().zip(&heads) {
            if head.last_id.is_some_and(|last| last > *at) {
                let entries = store
                    .range(c, Some(*at), head.last_id, 100)
                    .await
                    .expect("range");
                missed += entries.len();
            }
        }
        sync.push(started.elapsed());
        behind_entries = missed;
    }
    println!(
        "\nsync of a device with {READER_CONVERSATIONS} cursors, behind in {BEHIND} \
         ({behind_entries} entries): device_cursors + heads + {BEHIND} ranges"
    );
    println!("  {}", sync.summary());

    // A history page, and the writes on the large tables.
    let (mut history, mut read, mut ack) = (Latencies::new(), Latencies::new(), Latencies::new());
    for i in 0..repeat {
        let c = &conversations[i % conversations.len()];
        let started = Instant::now();
        let page = store.history(c, None, None, 50).await.expect("history");
        history.push(started.elapsed());
        let newest = page.first().map_or(MessageId(0), |m| m.message_id);
        let started = Instant::now();
        store
            .mark_read(&reader, c, newest)
            .await
            .expect("mark_read");
        read.push(started.elapsed());
        let started = Instant::now();
        store.ack(&reader, &phone, c, newest).await.expect("ack");
        ack.push(started.elapsed());
    }
    println!("\nhistory page of 50              {}", history.summary());
    println!("mark_read (read_seq from the key) {}", read.summary());
    println!("ack (device and user cursors)     {}", ack.summary());

    // The plans, with what they read.
    let c = conversations[0].clone();
    for query in [
        HotQuery::Heads(conversations.clone()),
        HotQuery::UserCursors(reader.clone(), conversations.clone()),
        HotQuery::DeviceCursors(phone.clone()),
        HotQuery::Range(c.clone(), MessageId(FIRST_ID)),
        HotQuery::History(c.clone()),
        HotQuery::ReadSeq(c.clone(), MessageId(FIRST_ID + 1_000_000)),
        HotQuery::Memberships(reader.clone()),
    ] {
        let plan = store.explain(&query, true).await.expect("explain");
        let name = format!("{query:?}");
        let short: String = name.chars().take(60).collect();
        println!("\n{short}:\n{plan}");
    }
}

/// The laptop's cursors, `{offline}` entries behind in each of the
/// reader's conversations (entry n of conversation c has id
/// `FIRST_ID + n * C + c`, so `k * C` below the head is `k` entries back).
const OFFLINE_SQL: &str = "INSERT INTO device_cursors (device_id, conversation_id, user_id, delivered) \
     SELECT 'reader-laptop', m.conversation_id, 'reader', h.last_id - {offline} * {c} \
     FROM members m JOIN heads h ON h.conversation_id = m.conversation_id \
     WHERE m.user_id = 'reader' \
     ON CONFLICT (device_id, conversation_id) DO UPDATE SET delivered = EXCLUDED.delivered";

async fn month_offline(
    url: &str,
    schema: &str,
    store: &Arc<PostgresStore>,
    conversations: usize,
    offline: usize,
    repeat: usize,
) {
    let client = plain(url, schema).await;
    let laptop = DeviceId::from("reader-laptop");
    let (mut catch_up, mut read) = (Latencies::new(), 0);
    for _ in 0..repeat {
        client
            .batch_execute(
                &OFFLINE_SQL
                    .replace("{offline}", &offline.to_string())
                    .replace("{c}", &conversations.to_string()),
            )
            .await
            .expect("set the laptop's cursors");
        let started = Instant::now();
        let cursors = store.device_cursors(&laptop).await.expect("device_cursors");
        let ids: Vec<ConversationId> = cursors.iter().map(|(c, _)| c.clone()).collect();
        let heads = store.heads(&ids).await.expect("heads");
        let mut entries = 0;
        for ((c, at), head) in cursors.iter().zip(&heads) {
            let mut from = *at;
            while head.last_id.is_some_and(|last| last > from) {
                let page = store
                    .range(c, Some(from), head.last_id, 100)
                    .await
                    .expect("range");
                let Some(last) = page.last() else { break };
                from = last.message_id;
                entries += page.len();
            }
        }
        catch_up.push(started.elapsed());
        read = entries;
    }
    println!(
        "\nback after a month offline: a device {offline} entries behind in each of its {} \
         conversations ({read} entries), device_cursors + heads + ranges of 100 until caught up",
        READER_CONVERSATIONS
    );
    println!("  {}", catch_up.summary());
}
