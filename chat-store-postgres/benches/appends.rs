//! Appends through `PostgresStore`, two ways.
//!
//! 1. Appends per second (group commit, `CHAT_BENCH_SENDERS` concurrent
//!    senders, each in a conversation of its own and waiting for its
//!    answer before sending again; every append with a client_msg_id and a
//!    device) beside the same rows written by plain bulk statements on the
//!    same server: one multi-row `INSERT … SELECT unnest(…)` per 1,000
//!    entries that also moves the heads and the senders' user and device
//!    cursors (one upsert per conversation and chunk), and binary `COPY` of
//!    the entries alone. The ratio is adapter / fastest plain.
//! 2. Sends into groups of 1,000, 10,000 and 100,000 members (each member
//!    with a user cursor and a device cursor, as after its first ack):
//!    `CHAT_BENCH_GROUP_SENDERS` members send at once, each as the engine
//!    does (head, then an append at its version, again after a conflict).
//!    A send writes O(1) rows whatever the group's size; the members are
//!    read from the ConversationStore (`members`), timed beside it, which
//!    is the part that grows with the group.
//!
//! `cargo bench -p chat-store-postgres --bench appends` with
//! `CHAT_TEST_POSTGRES_URL` set (`scripts/services up postgres` prints it).
//! Knobs: `CHAT_BENCH_MESSAGES` (64,000), `CHAT_BENCH_SENDERS` (64),
//! `CHAT_BENCH_ROUNDS` (3), `CHAT_BENCH_INFLIGHT`, `CHAT_BENCH_LINGER_US`,
//! `CHAT_BENCH_CHUNK` (1,000), `CHAT_BENCH_GROUP_SIZES` (1000,10000,100000),
//! `CHAT_BENCH_GROUP_SENDS` (4,000), `CHAT_BENCH_GROUP_SENDERS` (8). Zero
//! messages or zero group sends leaves that part out.
//! Each run works in fresh schemas, dropped at the end.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_core::id::IdGenerator;
use chat_core::store::{ConversationStore, MessageStore};
use chat_core::{
    Conversation, ConversationId, ConversationKind, DeviceId, Error, HistoryVisibility, JoinPolicy,
    Member, Message, NewMessage, Role, UserId, now_millis,
};
use chat_store_postgres::testing::SchemaGuard;
use chat_store_postgres::{PostgresConfig, PostgresStore, testing};
use common::{Clock, Latencies, Measure, db_id, env_list, env_usize, plain, report};
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

/// Messages per bulk statement of the plain baseline.
fn chunk() -> usize {
    env_usize("CHAT_BENCH_CHUNK", 1_000).max(1)
}

fn config(schema: String, set_based: bool) -> PostgresConfig {
    PostgresConfig {
        schema,
        set_based_appends: set_based,
        pool_size: 8,
        batch_inflight: env_usize(
            "CHAT_BENCH_INFLIGHT",
            PostgresConfig::default().batch_inflight,
        ),
        batch_linger: Duration::from_micros(env_usize("CHAT_BENCH_LINGER_US", 0) as u64),
        ..PostgresConfig::default()
    }
}

/// A store in a fresh schema, with the guard that drops it.
async fn store(url: &str) -> (Arc<PostgresStore>, SchemaGuard) {
    store_with(url, true).await
}

async fn store_with(url: &str, set_based: bool) -> (Arc<PostgresStore>, SchemaGuard) {
    let schema = testing::fresh_schema();
    let guard = SchemaGuard::new(url, &schema);
    let store = PostgresStore::connect_with(url, config(schema, set_based))
        .await
        .expect("connect");
    (Arc::new(store), guard)
}

/// Per sender: its entries, in order.
struct Workload {
    per_sender: Vec<Vec<NewMessage>>,
}

impl Workload {
    fn new(label: &str, worker: u16, messages: usize, senders: usize) -> Self {
        let ids = IdGenerator::new(worker).expect("a small worker id is valid");
        let per_sender = (0..senders)
            .map(|s| {
                let sender = UserId::from(format!("sender-{s}"));
                let device = DeviceId::from(format!("device-{s}"));
                let conversation = ConversationId::from(format!("c:{label}-{s}"));
                (0..messages / senders)
                    .map(|n| NewMessage {
                        message: Message::text(
                            ids.next_id(),
                            conversation.clone(),
                            sender.clone(),
                            format!("message {n} from sender {s}, about sixty bytes long"),
                            now_millis(),
                        ),
                        client_msg_id: Some(format!("{label}-{s}-{n}")),
                        device: Some(device.clone()),
                    })
                    .collect()
            })
            .collect();
        Self { per_sender }
    }

    fn len(&self) -> usize {
        self.per_sender.iter().map(Vec::len).sum()
    }

    /// Every entry, round robin over the senders: the order they would
    /// arrive in.
    fn interleaved(&self) -> Vec<&NewMessage> {
        let longest = self.per_sender.iter().map(Vec::len).max().unwrap_or(0);
        (0..longest)
            .flat_map(|i| self.per_sender.iter().filter_map(move |s| s.get(i)))
            .collect()
    }
}

async fn adapter(url: &str, work: &Workload, senders: usize, set_based: bool) -> Measure {
    let (pg, _guard) = store_with(url, set_based).await;
    let store: Arc<dyn MessageStore> = pg.clone();
    // Warm up: connections opened and statements prepared.
    let warm = Workload::new("warm", 2, senders * 20, senders);
    run_senders(&store, warm.per_sender).await;
    let before = pg.append_stats();
    let clock = Clock::start();
    run_senders(&store, work.per_sender.clone()).await;
    let measure = clock.finish(work.len());
    let after = pg.append_stats();
    let batches = after.batches - before.batches;
    println!(
        "  (set-based {set_based}: {batches} batches of {:.1} appends on average, {} written one by one)",
        (after.appends - before.appends) as f64 / batches.max(1) as f64,
        after.one_by_one - before.one_by_one
    );
    measure
}

async fn run_senders(store: &Arc<dyn MessageStore>, per_sender: Vec<Vec<NewMessage>>) {
    let mut tasks = tokio::task::JoinSet::new();
    for mine in per_sender {
        let store = store.clone();
        tasks.spawn(async move {
            for entry in mine {
                let appended = store.append(entry, 0).await.expect("append");
                assert!(!appended.duplicate);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("sender task");
    }
}

/// The entries, the heads they move and the senders' cursors, as plain
/// bulk statements write them.
const BULK: &str = r#"
WITH e AS (
    INSERT INTO entries (conversation_id, message_id, kind, sender_id, body, ts, seq, client_msg_id)
    SELECT c, id, 0, s, b, t, q, k
    FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[])
        AS x(c, id, s, b, t, q, k)
), h AS (
    INSERT INTO heads AS h (conversation_id, last_id, seq)
    SELECT * FROM unnest($8::text[], $9::int8[], $10::int8[])
    ON CONFLICT (conversation_id) DO UPDATE SET last_id = EXCLUDED.last_id, seq = EXCLUDED.seq
), u AS (
    INSERT INTO user_cursors AS c (user_id, conversation_id, delivered, read, read_seq)
    SELECT u, c, l, l, q FROM unnest($11::text[], $8::text[], $9::int8[], $10::int8[]) AS x(u, c, l, q)
    ON CONFLICT (user_id, conversation_id) DO UPDATE
    SET delivered = EXCLUDED.delivered, read = EXCLUDED.read, read_seq = EXCLUDED.read_seq
)
INSERT INTO device_cursors AS d (device_id, conversation_id, user_id, delivered)
SELECT * FROM unnest($12::text[], $8::text[], $11::text[], $9::int8[])
ON CONFLICT (device_id, conversation_id) DO UPDATE SET delivered = EXCLUDED.delivered
"#;

async fn bulk_insert(url: &str, work: &Workload) -> Measure {
    let (store, _guard) = store(url).await;
    let client = plain(url, &store.config().schema).await;
    let statement = client.prepare(BULK).await.expect("prepare");
    let all = work.interleaved();
    let mut seqs: HashMap<&str, i64> = HashMap::new();
    let clock = Clock::start();
    for chunk in all.chunks(chunk()) {
        let (mut conversations, mut ids, mut senders, mut bodies, mut ts, mut seq, mut keys) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        // Per conversation of the chunk: its last entry, seq and sender.
        let mut heads: HashMap<&str, (i64, i64, &str, &str)> = HashMap::new();
        for entry in chunk {
            let m = &entry.message;
            let c = m.conversation_id.as_str();
            let s = seqs.entry(c).or_insert(0);
            *s += 1;
            conversations.push(c);
            ids.push(db_id(m.message_id.get()));
            senders.push(m.sender_id.as_str());
            bodies.push(m.body.as_str());
            ts.push(m.ts);
            seq.push(*s);
            keys.push(entry.client_msg_id.as_deref().unwrap_or_default());
            let device = entry.device.as_ref().map_or("", |d| d.as_str());
            heads.insert(
                c,
                (db_id(m.message_id.get()), *s, m.sender_id.as_str(), device),
            );
        }
        let (mut hc, mut hl, mut hs, mut hu, mut hd) = (vec![], vec![], vec![], vec![], vec![]);
        for (c, (last, s, user, device)) in heads {
            hc.push(c);
            hl.push(last);
            hs.push(s);
            hu.push(user);
            hd.push(device);
        }
        client
            .execute(
                &statement,
                &[
                    &conversations,
                    &ids,
                    &senders,
                    &bodies,
                    &ts,
                    &seq,
                    &keys,
                    &hc,
                    &hl,
                    &hs,
                    &hu,
                    &hd,
                ],
            )
            .await
            .expect("bulk insert");
    }
    clock.finish(work.len())
}

async fn copy(url: &str, work: &Workload) -> Measure {
    let (store, _guard) = store(url).await;
    let mut client = plain(url, &store.config().schema).await;
    let all = work.interleaved();
    let mut seqs: HashMap<&str, i64> = HashMap::new();
    let clock = Clock::start();
    for chunk in all.chunks(chunk()) {
        let tx = client.transaction().await.expect("begin");
        let sink = tx
            .copy_in(
                "COPY entries (conversation_id, message_id, kind, sender_id, body, ts, seq, client_msg_id) \
                 FROM STDIN BINARY",
            )
            .await
            .expect("copy entries");
        let writer = BinaryCopyInWriter::new(
            sink,
            &[
                Type::TEXT,
                Type::INT8,
                Type::INT2,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::TEXT,
            ],
        );
        pin_mut!(writer);
        for entry in chunk {
            let m = &entry.message;
            let s = seqs.entry(m.conversation_id.as_str()).or_insert(0);
            *s += 1;
            writer
                .as_mut()
                .write(&[
                    &m.conversation_id.as_str(),
                    &db_id(m.message_id.get()),
                    &0_i16,
                    &m.sender_id.as_str(),
                    &m.body,
                    &m.ts,
                    &*s,
                    &entry.client_msg_id,
                ])
                .await
                .expect("row");
        }
        writer.finish().await.expect("finish entries");
        tx.commit().await.expect("commit");
    }
    clock.finish(work.len())
}

/// Members of a group of `size`, and the user and device cursors each has
/// once it acked something, written in bulk.
async fn group_of(store: &PostgresStore, url: &str, size: usize) -> (ConversationId, Vec<UserId>) {
    let id = ConversationId::from(format!("g:{size}"));
    let users: Vec<UserId> = (0..size)
        .map(|n| UserId::from(format!("m{size}-{n}")))
        .collect();
    let at = now_millis();
    let members: Vec<Member> = users
        .iter()
        .enumerate()
        .map(|(n, u)| {
            Member::founding(
                u.clone(),
                if n == 0 { Role::Owner } else { Role::Member },
                at,
            )
        })
        .collect();
    let conversation = Conversation {
        id: id.clone(),
        kind: ConversationKind::Group,
        name: Some(format!("{size} members")),
        created_by: users[0].clone(),
        created_at: at,
        join: JoinPolicy::Invite,
        history: HistoryVisibility::SinceJoin,
    };
    store
        .create_group(conversation, &members)
        .await
        .expect("create group");
    let client = plain(url, &store.config().schema).await;
    client
        .execute(
            "INSERT INTO user_cursors (user_id, conversation_id, delivered, read, read_seq) \
             SELECT user_id, conversation_id, -9223372036854775808, NULL, 0 FROM members \
             WHERE conversation_id = $1",
            &[&id.as_str()],
        )
        .await
        .expect("user cursors");
    client
        .execute(
            "INSERT INTO device_cursors (device_id, conversation_id, user_id, delivered) \
             SELECT 'dev-' || user_id, conversation_id, user_id, -9223372036854775808 FROM members \
             WHERE conversation_id = $1",
            &[&id.as_str()],
        )
        .await
        .expect("device cursors");
    client.batch_execute("ANALYZE").await.expect("analyze");
    (id, users)
}

/// `senders` members send `sends` entries into the group between them,
/// each as the engine does; answers the sends per second, the latencies
/// and how many appends conflicted.
async fn group_sends(
    store: &Arc<PostgresStore>,
    group: &ConversationId,
    members: &[UserId],
    sends: usize,
    senders: usize,
) -> (Measure, Latencies, u64) {
    let ids = Arc::new(IdGenerator::new(7).expect("worker"));
    let conflicts = Arc::new(AtomicU64::new(0));
    let clock = Clock::start();
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..senders {
        let (store, group, ids, conflicts) =
            (store.clone(), group.clone(), ids.clone(), conflicts.clone());
        let sender = members[s * members.len() / senders].clone();
        let device = DeviceId::from(format!("dev-{sender}"));
        tasks.spawn(async move {
            let mut latencies = Latencies::new();
            for n in 0..sends / senders {
                let started = Instant::now();
                let mut entry = NewMessage {
                    message: Message::text(
                        ids.next_id(),
                        group.clone(),
                        sender.clone(),
                        format!("send {n} into the group, about forty bytes"),
                        now_millis(),
                    ),
                    client_msg_id: Some(format!("{sender}-{n}")),
                    device: Some(device.clone()),
                };
                let mut head = store.head(&group).await.expect("head");
                loop {
                    if head.last_id.is_some_and(|l| entry.message.message_id <= l) {
                        entry.message.message_id = loop {
                            let id = ids.next_id();
                            if head.last_id.is_none_or(|l| id > l) {
                                break id;
                            }
                        };
                    }
                    match store.append(entry.clone(), head.version).await {
                        Ok(_) => break,
                        Err(Error::Conflict { head: found }) => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                            head = found;
                        }
                        Err(e) => panic!("group send failed: {e}"),
                    }
                }
                latencies.push(started.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Latencies::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.expect("sender task"));
    }
    let measure = clock.finish(sends / senders * senders);
    (measure, latencies, conflicts.load(Ordering::Relaxed))
}

async fn groups(url: &str) {
    let sizes = env_list("CHAT_BENCH_GROUP_SIZES", &[1_000, 10_000, 100_000]);
    let sends = env_usize("CHAT_BENCH_GROUP_SENDS", 4_000);
    let senders = env_usize("CHAT_BENCH_GROUP_SENDERS", 8).max(1);
    if sends == 0 {
        return;
    }
    println!(
        "\ngroup sends: {sends} sends by {senders} members at once into one group, \
         each member with a user and a device cursor"
    );
    for size in sizes {
        let (store, _guard) = store(url).await;
        let (group, members) = group_of(&store, url, size).await;
        // Warm up: connections and statements.
        group_sends(&store, &group, &members, senders * 10, senders).await;
        let before = store.append_stats();
        let (measure, mut latencies, conflicts) =
            group_sends(&store, &group, &members, sends, senders).await;
        let after = store.append_stats();
        let started = Instant::now();
        let listed = store.members(&group).await.expect("members");
        let members_ms = started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(listed.len(), size);
        let (entries, cursors) = table_rows(url, &store.config().schema).await;
        println!(
            "{:>7} members: {:>7.0} sends/s  {}  conflicts {conflicts}, {} of {} batches one by one  \
             | members() {members_ms:.1} ms | rows: {entries} entries, {cursors} user cursors",
            size,
            measure.rate,
            latencies.summary(),
            after.one_by_one - before.one_by_one,
            after.batches - before.batches,
        );
    }
}

async fn table_rows(url: &str, schema: &str) -> (i64, i64) {
    let client = plain(url, schema).await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM user_cursors)",
            &[],
        )
        .await
        .expect("count");
    (row.get(0), row.get(1))
}

fn main() {
    let Ok(url) = std::env::var(testing::URL_VAR) else {
        eprintln!(
            "appends bench: {} is not set (scripts/services up postgres); nothing measured",
            testing::URL_VAR
        );
        return;
    };
    let messages = env_usize("CHAT_BENCH_MESSAGES", 64_000);
    let senders = env_usize("CHAT_BENCH_SENDERS", 64).max(1);
    let rounds = env_usize("CHAT_BENCH_ROUNDS", 3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if messages > 0 {
            println!(
                "appends bench: {messages} appends, {senders} concurrent senders each in its own \
                 conversation, a client_msg_id and a device on every append; best of {rounds} \
                 interleaved rounds"
            );
            let work = Workload::new("bench", 1, messages, senders);
            let (mut bulk, mut copied, mut through, mut one_by_one) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                bulk.push(bulk_insert(&url, &work).await);
                copied.push(copy(&url, &work).await);
                through.push(adapter(&url, &work, senders, true).await);
                one_by_one.push(adapter(&url, &work, senders, false).await);
            }
            let bulk = report(
                &format!(
                    "plain INSERT … unnest + heads + cursors, {}/statement",
                    chunk()
                ),
                &bulk,
            );
            let copied = report(
                &format!("plain binary COPY of the entries only, {}/tx", chunk()),
                &copied,
            );
            let through = report(
                &format!("PostgresStore::append, {senders} senders"),
                &through,
            );
            report(
                "  the same, every batch one by one (append_entries)",
                &one_by_one,
            );
            println!(
                "ratio adapter / plain INSERT: {:.0}%, adapter / COPY: {:.0}%",
                through / bulk * 100.0,
                through / copied * 100.0
            );
        }
        groups(&url).await;
    });
}
