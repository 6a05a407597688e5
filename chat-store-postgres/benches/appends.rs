//! Appends per second through `PostgresStore` (group commit, 64 concurrent
//! senders, each waiting for its answer before sending again) beside the
//! same rows written by plain bulk loads on the same server: one multi-row
//! `INSERT … SELECT unnest(…)` statement per 1,000 messages, and binary
//! `COPY`, each over one connection. The ratio is adapter / fastest plain.
//!
//! `cargo bench -p chat-store-postgres` with `CHAT_TEST_POSTGRES_URL` set
//! (`scripts/services up postgres` prints it). Environment knobs:
//! `CHAT_BENCH_MESSAGES` (default 64,000), `CHAT_BENCH_SENDERS` (64),
//! `CHAT_BENCH_RECIPIENTS` per message (1: a one-to-one chat).
//! Each run works in fresh schemas, so results do not depend on earlier runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::id::IdGenerator;
use chat_core::store::MessageStore;
use chat_core::{ConversationId, Message, NewMessage, UserId, now_millis};
use chat_store_postgres::{PostgresConfig, PostgresStore, testing};
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

/// Messages per bulk statement of the plain baseline.
fn chunk() -> usize {
    env_usize("CHAT_BENCH_CHUNK", 1_000).max(1)
}

/// CPU seconds used so far by this process (utime + stime from
/// /proc/self/stat; zero where it is not readable). The server's share is
/// not measured: other clients of a shared server would be counted too.
fn cpu_seconds() -> f64 {
    const HZ: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name, which is in parentheses; utime
    // and stime are fields 14 and 15 of the file, 12 and 13 of these.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (get(11) + get(12)) / HZ
}

/// One timed run: messages per second, and CPU microseconds per message
/// spent by this process (the client side).
#[derive(Clone, Copy)]
struct Measure {
    rate: f64,
    client_us: f64,
}

struct Clock {
    started: Instant,
    cpu: f64,
}

impl Clock {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    fn finish(self, messages: usize) -> Measure {
        let elapsed = self.started.elapsed().as_secs_f64();
        let n = messages as f64;
        Measure {
            rate: n / elapsed,
            client_us: (cpu_seconds() - self.cpu) * 1e6 / n,
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Workload {
    /// Per sender: its messages, with their recipients.
    per_sender: Vec<Vec<(NewMessage, Vec<UserId>)>>,
}

impl Workload {
    /// `worker` keeps ids apart and `label` keys and conversations apart
    /// between workloads run against one schema.
    fn new(label: &str, worker: u16, messages: usize, senders: usize, recipients: usize) -> Self {
        let ids = IdGenerator::new(worker).expect("a small worker id is valid");
        let per_sender = (0..senders)
            .map(|s| {
                let sender = UserId::from(format!("sender-{s}"));
                let to: Vec<UserId> = (0..recipients)
                    .map(|r| UserId::from(format!("recipient-{s}-{r}")))
                    .collect();
                let conversation = ConversationId::from(format!("g:{label}-{s}"));
                (0..messages / senders)
                    .map(|n| {
                        let msg = NewMessage {
                            message: Message {
                                message_id: ids.next_id(),
                                conversation_id: conversation.clone(),
                                sender_id: sender.clone(),
                                body: format!(
                                    "message {n} from sender {s}, about sixty bytes long"
                                ),
                                ts: now_millis(),
                            },
                            client_msg_id: Some(format!("{label}-{s}-{n}")),
                        };
                        (msg, to.clone())
                    })
                    .collect()
            })
            .collect();
        Self { per_sender }
    }

    fn len(&self) -> usize {
        self.per_sender.iter().map(Vec::len).sum()
    }

    fn all(&self) -> impl Iterator<Item = &(NewMessage, Vec<UserId>)> {
        self.per_sender.iter().flatten()
    }
}

async fn adapter(url: &str, work: &Workload, senders: usize) -> Measure {
    let store = PostgresStore::connect_with(
        url,
        PostgresConfig {
            schema: testing::fresh_schema(),
            pool_size: 8,
            batch_inflight: env_usize(
                "CHAT_BENCH_INFLIGHT",
                PostgresConfig::default().batch_inflight,
            ),
            batch_linger: Duration::from_micros(env_usize("CHAT_BENCH_LINGER_US", 0) as u64),
            ..PostgresConfig::default()
        },
    )
    .await
    .expect("connect");
    let store: Arc<dyn MessageStore> = Arc::new(store);
    // Warm up: connections opened and statements prepared.
    let warm = Workload::new("warm", 2, senders * 20, senders, 1);
    run_senders(&store, warm.per_sender).await;
    let clock = Clock::start();
    run_senders(&store, work.per_sender.clone()).await;
    clock.finish(work.len())
}

async fn run_senders(
    store: &Arc<dyn MessageStore>,
    per_sender: Vec<Vec<(NewMessage, Vec<UserId>)>>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for mine in per_sender {
        let store = store.clone();
        tasks.spawn(async move {
            for (msg, to) in mine {
                let appended = store.append(msg, &to).await.expect("append");
                assert!(!appended.duplicate);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("sender task");
    }
}

/// A plain connection working in a fresh schema migrated by the adapter, so
/// that the baseline writes into the same tables and indexes.
async fn plain(url: &str) -> Client {
    let schema = testing::fresh_schema();
    let store = PostgresStore::connect_with(
        url,
        PostgresConfig {
            schema: schema.clone(),
            ..PostgresConfig::default()
        },
    )
    .await
    .expect("migrate");
    drop(store);
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search_path");
    client
}

const BULK: &str = r#"
WITH m AS (
    INSERT INTO messages (conversation_id, message_id, sender_id, body, ts, client_msg_id)
    SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[])
), d AS (
    INSERT INTO dedup (sender_id, client_msg_id, conversation_id, message_id)
    SELECT * FROM unnest($3::text[], $6::text[], $1::text[], $2::int8[])
)
INSERT INTO pending (user_id, message_id, conversation_id, sender_id)
SELECT * FROM unnest($7::text[], $8::int8[], $9::text[], $10::text[])
"#;

/// The adapter's column value for an id (top bit flipped, see src/ids.rs).
fn db_id(msg: &NewMessage) -> i64 {
    i64::from_ne_bytes((msg.message.message_id.get() ^ (1 << 63)).to_ne_bytes())
}

async fn bulk_insert(url: &str, work: &Workload) -> Measure {
    let client = plain(url).await;
    let statement = client.prepare(BULK).await.expect("prepare");
    let all: Vec<_> = work.all().collect();
    let clock = Clock::start();
    for chunk in all.chunks(chunk()) {
        // Column arrays: messages (and their keys), then deliveries.
        let (mut conversations, mut ids, mut senders, mut bodies, mut ts, mut keys) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut to_users, mut to_ids, mut to_conversations, mut to_senders) =
            (vec![], vec![], vec![], vec![]);
        for (msg, recipients) in chunk {
            let m = &msg.message;
            conversations.push(m.conversation_id.as_str());
            ids.push(db_id(msg));
            senders.push(m.sender_id.as_str());
            bodies.push(m.body.as_str());
            ts.push(m.ts);
            keys.push(msg.client_msg_id.as_deref().unwrap_or_default());
            for r in recipients {
                to_users.push(r.as_str());
                to_ids.push(db_id(msg));
                to_conversations.push(m.conversation_id.as_str());
                to_senders.push(m.sender_id.as_str());
            }
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
                    &keys,
                    &to_users,
                    &to_ids,
                    &to_conversations,
                    &to_senders,
                ],
            )
            .await
            .expect("bulk insert");
    }
    clock.finish(work.len())
}

async fn copy(url: &str, work: &Workload) -> Measure {
    let mut client = plain(url).await;
    let all: Vec<_> = work.all().collect();
    let clock = Clock::start();
    for chunk in all.chunks(chunk()) {
        let tx = client.transaction().await.expect("begin");
        let sink = tx
            .copy_in("COPY messages (conversation_id, message_id, sender_id, body, ts, client_msg_id) FROM STDIN BINARY")
            .await
            .expect("copy messages");
        let writer = BinaryCopyInWriter::new(
            sink,
            &[
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
            ],
        );
        pin_mut!(writer);
        for (msg, _) in chunk {
            let m = &msg.message;
            writer
                .as_mut()
                .write(&[
                    &m.conversation_id.as_str(),
                    &db_id(msg),
                    &m.sender_id.as_str(),
                    &m.body,
                    &m.ts,
                    &msg.client_msg_id,
                ])
                .await
                .expect("row");
        }
        writer.finish().await.expect("finish messages");
        let sink = tx
            .copy_in("COPY dedup (sender_id, client_msg_id, conversation_id, message_id) FROM STDIN BINARY")
            .await
            .expect("copy dedup");
        let writer =
            BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT, Type::TEXT, Type::INT8]);
        pin_mut!(writer);
        for (msg, _) in chunk {
            let m = &msg.message;
            writer
                .as_mut()
                .write(&[
                    &m.sender_id.as_str(),
                    &msg.client_msg_id,
                    &m.conversation_id.as_str(),
                    &db_id(msg),
                ])
                .await
                .expect("row");
        }
        writer.finish().await.expect("finish dedup");
        let sink = tx
            .copy_in(
                "COPY pending (user_id, message_id, conversation_id, sender_id) FROM STDIN BINARY",
            )
            .await
            .expect("copy pending");
        let writer =
            BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::INT8, Type::TEXT, Type::TEXT]);
        pin_mut!(writer);
        for (msg, recipients) in chunk {
            let m = &msg.message;
            for r in recipients {
                writer
                    .as_mut()
                    .write(&[
                        &r.as_str(),
                        &db_id(msg),
                        &m.conversation_id.as_str(),
                        &m.sender_id.as_str(),
                    ])
                    .await
                    .expect("row");
            }
        }
        writer.finish().await.expect("finish pending");
        tx.commit().await.expect("commit");
    }
    clock.finish(work.len())
}

fn report(name: &str, runs: &[Measure]) -> f64 {
    let best = runs
        .iter()
        .copied()
        .max_by(|a, b| a.rate.total_cmp(&b.rate))
        .expect("at least one run");
    let all: Vec<String> = runs.iter().map(|m| format!("{:.0}", m.rate)).collect();
    println!(
        "{name:<48} best {:>8.0}/s  (runs: {})  client cpu {:.1} us/message",
        best.rate,
        all.join(", "),
        best.client_us
    );
    best.rate
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
    let recipients = env_usize("CHAT_BENCH_RECIPIENTS", 1);
    let rounds = env_usize("CHAT_BENCH_ROUNDS", 3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!(
            "appends bench: {messages} messages, {senders} concurrent senders, {recipients} recipient(s) each, \
             a client_msg_id on every message; best of {rounds} interleaved rounds"
        );
        let work = Workload::new("bench", 1, messages, senders, recipients);
        let (mut bulk, mut copied, mut through) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            bulk.push(bulk_insert(&url, &work).await);
            copied.push(copy(&url, &work).await);
            through.push(adapter(&url, &work, senders).await);
        }
        let bulk = report(&format!("plain INSERT … unnest, {}/statement", chunk()), &bulk);
        let copied = report(&format!("plain binary COPY, {}/transaction", chunk()), &copied);
        let through = report(&format!("PostgresStore::append, {senders} senders"), &through);
        println!(
            "ratio adapter / fastest plain: {:.0}%",
            through / bulk.max(copied) * 100.0
        );
    });
}
