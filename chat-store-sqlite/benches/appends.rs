//! Appends and history reads through `SqliteStore`, on a file in the
//! system's temp directory.
//!
//! - `sqlite_append/{durability}/{writers}`: appends per second with 1 and
//!   with 64 concurrent writers, each in a conversation of its own and
//!   waiting for its answer before appending again (so one writer is one
//!   commit per append, and 64 writers share commits: group commit). Every
//!   append is as the engine makes it: a `client_msg_id` (dedup lookup) and
//!   a device (the sender's user and device cursors move).
//! - `sqlite_plain/{durability}/64`: the ceiling: the rows of 64 writers'
//!   appends (entry, head, user and device cursor; 64 conversations, round
//!   robin) written by plain prepared statements on one connection, 64
//!   appends per transaction, no dedup lookup, no savepoints, no threads.
//! - `sqlite_history/{readers}`: pages of 50 from a conversation of 10,000
//!   entries, newest first, at random depths, by 1 and by 8 concurrent
//!   readers.
//!
//! `cargo bench -p chat-store-sqlite --bench appends`. Criterion reports
//! appends (or pages) per second as `thrpt`. After each append run the
//! average number of writes per commit is printed. `CHAT_BENCH_CHECKPOINT_PAGES`
//! overrides `SqliteConfig::checkpoint_pages`.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn in this binary"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_core::id::IdGenerator;
use chat_core::store::MessageStore;
use chat_core::{ConversationId, DeviceId, Message, MessageId, NewMessage, UserId};
use chat_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::params;

static RUN: AtomicU64 = AtomicU64::new(0);

fn ids() -> &'static IdGenerator {
    static IDS: std::sync::OnceLock<IdGenerator> = std::sync::OnceLock::new();
    IDS.get_or_init(|| IdGenerator::new(1).expect("worker 1"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn open(
    rt: &tokio::runtime::Runtime,
    durability: Durability,
) -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = SqliteConfig::builder(dir.path().join("bench.db")).durability(durability);
    if let Some(pages) = std::env::var("CHAT_BENCH_CHECKPOINT_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config = config.checkpoint_pages(pages);
    }
    let config = config.build().expect("config");
    let store = rt
        .block_on(SqliteStore::connect(config))
        .expect("open the bench file");
    (Arc::new(store), dir)
}

/// The `n`th append of `sender` into `conversation`, as the engine makes it.
fn entry(conversation: &ConversationId, sender: &UserId, device: &DeviceId, n: u64) -> NewMessage {
    NewMessage {
        message: Message::text(
            ids().next_id(),
            conversation.clone(),
            sender.clone(),
            "a message of about the length people type in a chat, fifty-odd bytes",
            chat_core::now_millis(),
        ),
        client_msg_id: Some(format!("{sender}-{n}")),
        device: Some(device.clone()),
    }
}

/// `total` appends by `writers` concurrent writers, each in a fresh
/// conversation of its own; the time they took.
async fn appends(store: &Arc<SqliteStore>, writers: u64, total: u64) -> Duration {
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let count = total / writers + u64::from(w < total % writers);
            tokio::spawn(async move {
                let conversation = ConversationId::from(format!("bench-{run}-{w}"));
                let sender = UserId::from(format!("u-{run}-{w}"));
                let device = DeviceId::from(format!("d-{run}-{w}"));
                for n in 0..count {
                    store
                        .append(entry(&conversation, &sender, &device, n), 0)
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    start.elapsed()
}

fn bench_appends(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("sqlite_append");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for (name, durability) in [("full", Durability::Full), ("normal", Durability::Normal)] {
        let (store, _dir) = open(&rt, durability);
        for writers in [1u64, 64] {
            let before = store.write_stats();
            group.bench_with_input(BenchmarkId::new(name, writers), &writers, |b, &writers| {
                b.to_async(&rt)
                    .iter_custom(|iters| appends(&store, writers, iters))
            });
            let after = store.write_stats();
            eprintln!(
                "  {name}/{writers}: {:.1} writes per commit",
                (after.writes - before.writes) as f64
                    / (after.batches - before.batches).max(1) as f64
            );
        }
    }
    group.finish();
}

/// The ceiling: the rows the appends of 64 writers write (entry, head, user
/// and device cursor, each writer in its own conversation, round robin),
/// by plain prepared statements on one connection, 64 appends per
/// transaction: the best batch that 64 writers can form.
fn bench_plain(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("sqlite_plain");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for (name, durability) in [("full", Durability::Full), ("normal", Durability::Normal)] {
        // The store creates the schema; then a plain connection writes with
        // the store's settings.
        let (store, dir) = open(&rt, durability);
        let config = store.config().clone();
        drop(store);
        let conn = rusqlite::Connection::open(dir.path().join("bench.db")).expect("open");
        let synchronous = if durability == Durability::Full {
            "FULL"
        } else {
            "NORMAL"
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .expect("synchronous");
        conn.pragma_update(None, "wal_autocheckpoint", config.checkpoint_pages)
            .expect("wal_autocheckpoint");
        group.bench_function(BenchmarkId::new(name, 64), |b| {
            b.iter_custom(|iters| {
                let run = RUN.fetch_add(1, Ordering::Relaxed);
                let start = Instant::now();
                let mut done = 0;
                while done < iters {
                    let tx = conn.unchecked_transaction().expect("begin");
                    for _ in 0..64.min(iters - done) {
                        done += 1;
                        plain_append(&tx, run, done);
                    }
                    tx.commit().expect("commit");
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

/// The `n`th plain append of a run: writer `n % 64`.
fn plain_append(tx: &rusqlite::Transaction<'_>, run: u64, n: u64) {
    let writer = n % 64;
    let conversation = format!("plain-{run}-{writer}");
    let (user, device) = (format!("pu-{run}-{writer}"), format!("pd-{run}-{writer}"));
    let id = (ids().next_id().0 ^ (1 << 63)) as i64;
    let seq = (n / 64) as i64;
    tx.prepare_cached(
        "INSERT INTO entries (conversation_id, message_id, sender_id, kind, body, ts, seq, \
         client_msg_id) VALUES (?1, ?2, ?3, 'text', ?4, 0, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            conversation,
            id,
            user,
            "a message of about the length people type in a chat, fifty-odd bytes",
            seq,
            format!("{user}-{n}")
        ])
    })
    .expect("entry");
    tx.prepare_cached(
        "INSERT INTO heads (conversation_id, last_id, seq, version) VALUES (?1, ?2, ?3, 0) \
         ON CONFLICT (conversation_id) DO UPDATE SET last_id = excluded.last_id, seq = excluded.seq",
    )
    .and_then(|mut s| s.execute(params![conversation, id, seq]))
    .expect("head");
    tx.prepare_cached(
        "INSERT INTO user_cursors (user_id, conversation_id, delivered, read, read_seq) \
         VALUES (?1, ?2, ?3, ?3, ?4) ON CONFLICT (user_id, conversation_id) DO UPDATE SET \
         delivered = excluded.delivered, read = excluded.read, read_seq = excluded.read_seq",
    )
    .and_then(|mut s| s.execute(params![user, conversation, id, seq]))
    .expect("user cursor");
    tx.prepare_cached(
        "INSERT INTO device_cursors (device_id, conversation_id, user_id, delivered) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device_id, conversation_id) DO UPDATE SET \
         delivered = excluded.delivered",
    )
    .and_then(|mut s| s.execute(params![device, conversation, user, id]))
    .expect("device cursor");
}

fn bench_history(c: &mut Criterion) {
    let rt = runtime();
    let (store, _dir) = open(&rt, Durability::Normal);
    let conversation = ConversationId::from("history");
    let sender = UserId::from("reader");
    let device = DeviceId::from("reader-phone");
    let mut all = Vec::new();
    rt.block_on(async {
        for n in 0..10_000 {
            let a = store
                .append(entry(&conversation, &sender, &device, n), 0)
                .await
                .expect("fill");
            all.push(a.message.message_id);
        }
    });
    let all = Arc::new(all);
    let mut group = c.benchmark_group("sqlite_history");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for readers in [1u64, 8] {
        group.bench_with_input(
            BenchmarkId::from_parameter(readers),
            &readers,
            |b, &readers| {
                b.to_async(&rt).iter_custom(|iters| {
                    let (store, all, conversation) =
                        (store.clone(), all.clone(), conversation.clone());
                    async move {
                        let start = Instant::now();
                        let tasks: Vec<_> = (0..readers)
                            .map(|r| {
                                let (store, all, conversation) =
                                    (store.clone(), all.clone(), conversation.clone());
                                let count = iters / readers + u64::from(r < iters % readers);
                                tokio::spawn(async move {
                                    for n in 0..count {
                                        // A page at a pseudo-random depth: before the
                                        // (n * 7919 + r)th entry, so pages differ.
                                        let at = ((n * 7919 + r) % all.len() as u64) as usize;
                                        let before =
                                            (at > 0).then(|| all[at]).or(Some(MessageId(u64::MAX)));
                                        let page = store
                                            .history(&conversation, before, None, 50)
                                            .await
                                            .expect("history");
                                        assert!(!page.is_empty() || at == 0);
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.expect("reader");
                        }
                        start.elapsed()
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_appends, bench_plain, bench_history);
criterion_main!(benches);
