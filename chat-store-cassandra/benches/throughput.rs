//! Appends/s and history pages/s through `CassandraStore`, beside the same
//! work as plain prepared statements run with the driver, at the same
//! concurrency. Needs a server:
//!
//! ```text
//! CHAT_TEST_CASSANDRA_URL=$(scripts/services up cassandra) cargo bench -p chat-store-cassandra
//! ```
//!
//! `BENCH_OPS` (default 4000) operations per case, `BENCH_CONCURRENCY`
//! (default 32) in flight at once. A bench binary rather than criterion:
//! throughput under concurrency is the figure, not the latency of one call.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chat_core::id::IdGenerator;
use chat_core::store::MessageStore;
use chat_core::{ConversationId, Message, NewMessage, UserId, now_millis};
use chat_store_cassandra::{CassandraConfig, CassandraStore};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `op(i)` for i in 0..ops with `concurrency` tasks; returns ops/s.
async fn measure<F, Fut>(ops: usize, concurrency: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (op, next) = (op.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    break;
                }
                op(i).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a bench task panicked");
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

fn report(name: &str, adapter: f64, raw: f64, note: &str) {
    println!(
        "{name:<34} adapter {adapter:>9.0}/s   driver {raw:>9.0}/s   ratio {:.2}   ({note})",
        adapter / raw
    );
}

fn main() {
    let Ok(url) = std::env::var("CHAT_TEST_CASSANDRA_URL") else {
        println!("SKIPPED: set CHAT_TEST_CASSANDRA_URL (scripts/services up cassandra prints it)");
        return;
    };
    let ops = env_usize("BENCH_OPS", 4000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(url, ops, concurrency));
}

async fn bench(url: String, ops: usize, concurrency: usize) {
    let points = CassandraConfig::contact_points_from_url(&url).expect("a cassandra:// URL");
    let keyspace = format!("chat_bench_{:08x}", rand::random::<u32>());
    let mut config = CassandraConfig::new(points.clone(), &keyspace);
    config.request_timeout = Duration::from_secs(30);
    let store = Arc::new(CassandraStore::connect(config).await.expect("connect"));
    let session: Arc<Session> = Arc::new(
        SessionBuilder::new()
            .known_nodes(&points)
            .build()
            .await
            .expect("driver session"),
    );
    let ids = Arc::new(IdGenerator::new(1).expect("ids"));
    println!("ops {ops}, concurrency {concurrency}, keyspace {keyspace}");

    // Appends: one conversation per task slot, two recipients each.
    let convs: Arc<Vec<ConversationId>> = Arc::new(
        (0..concurrency)
            .map(|i| ConversationId::from(format!("bench-{i}")))
            .collect(),
    );
    let recipients: Arc<Vec<UserId>> = Arc::new(vec![UserId::from("r1"), UserId::from("r2")]);
    let new_message = {
        let (ids, convs) = (ids.clone(), convs.clone());
        move |i: usize, key: Option<String>| NewMessage {
            message: Message {
                message_id: ids.next_id(),
                conversation_id: convs[i % convs.len()].clone(),
                sender_id: UserId::from("sender"),
                body: "x".repeat(100),
                ts: now_millis(),
            },
            client_msg_id: key,
        }
    };

    let plain = {
        let (store, recipients, new_message) =
            (store.clone(), recipients.clone(), new_message.clone());
        measure(ops, concurrency, move |i| {
            let (store, recipients, msg) =
                (store.clone(), recipients.clone(), new_message(i, None));
            async move {
                store.append(msg, &recipients).await.expect("append");
            }
        })
        .await
    };
    let keyed = {
        let (store, recipients, new_message) =
            (store.clone(), recipients.clone(), new_message.clone());
        measure(ops, concurrency, move |i| {
            let key = format!("k-{i}-{:x}", rand::random::<u64>());
            let (store, recipients, msg) =
                (store.clone(), recipients.clone(), new_message(i, Some(key)));
            async move {
                store.append(msg, &recipients).await.expect("append");
            }
        })
        .await
    };
    let insert = session
        .prepare(format!(
            "INSERT INTO {keyspace}.messages \
             (conversation_id, bucket, message_id, sender_id, body, ts) VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .await
        .expect("prepare insert");
    let raw_insert = {
        let (session, insert, ids) = (session.clone(), insert.clone(), ids.clone());
        measure(ops, concurrency, move |i| {
            let (session, insert) = (session.clone(), insert.clone());
            let id = ids.next_id();
            let conv = format!("raw-{}", i % concurrency);
            async move {
                session
                    .execute_unpaged(
                        &insert,
                        (
                            conv,
                            0i64,
                            id.0 as i64,
                            "sender",
                            "x".repeat(100),
                            now_millis(),
                        ),
                    )
                    .await
                    .expect("insert");
            }
        })
        .await
    };
    report(
        "append (no key, 2 recipients)",
        plain,
        raw_insert,
        "8 writes: 3 delivery rows per recipient, bucket, message; vs one INSERT",
    );
    report(
        "append (keyed, 2 recipients)",
        keyed,
        raw_insert,
        "LWT dedup claim + the 8 writes; vs one INSERT",
    );

    // History pages of 50 from the conversations filled above.
    let page = 50;
    let adapter_reads = {
        let (store, convs) = (store.clone(), convs.clone());
        measure(ops, concurrency, move |i| {
            let (store, conv) = (store.clone(), convs[i % convs.len()].clone());
            async move {
                let got = store.history(&conv, None, page).await.expect("history");
                assert_eq!(got.len(), page, "the bench conversation holds a full page");
            }
        })
        .await
    };
    let bucket = ids.next_id().bucket(chat_core::id::DEFAULT_BUCKET_MS) as i64;
    let select = session
        .prepare(format!(
            "SELECT message_id, sender_id, body, ts FROM {keyspace}.messages \
             WHERE conversation_id = ? AND bucket = ? LIMIT {page}"
        ))
        .await
        .expect("prepare select");
    let raw_reads = {
        let (session, select, convs) = (session.clone(), select.clone(), convs.clone());
        measure(ops, concurrency, move |i| {
            let (session, select) = (session.clone(), select.clone());
            let conv = convs[i % convs.len()].to_string();
            async move {
                let rows = session
                    .execute_unpaged(&select, (conv, bucket))
                    .await
                    .expect("select")
                    .into_rows_result()
                    .expect("rows");
                let rows: Vec<(i64, String, String, i64)> = rows
                    .rows()
                    .expect("typed rows")
                    .collect::<Result<_, _>>()
                    .expect("decode");
                assert_eq!(rows.len(), page, "a full page");
            }
        })
        .await
    };
    report(
        "history page of 50",
        adapter_reads,
        raw_reads,
        "bucket list + paged slice vs one SELECT",
    );
    let _ = session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), &[])
        .await;
}
