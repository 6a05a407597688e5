//! What the Cassandra store does per second on a real node, through the
//! adapter (figures in README.md and docs/storage.md, "Cassandra"):
//!
//! - appends: plain, keyed (with a device), and eight writers racing into
//!   one conversation (the chain's transaction under contention);
//! - group sends into groups of 1,000 / 10,000 / 100,000 members (the
//!   membership check and the append: O(1) rows whatever the size);
//! - the conversations list of a user in 1,000 conversations (`heads` and
//!   `user_cursors`), beside `heads` as `IN` reads for comparison;
//! - syncs of a device in 100 conversations, 20 of them with news;
//! - a day of until-delivered traffic: send, ack, low-water mark, purge,
//!   then reads over the purged conversations; the node's log is searched
//!   for tombstone warnings about this keyspace afterwards.
//!
//! ```text
//! CHAT_TEST_CASSANDRA_URL=cassandra://127.0.0.1:9042 \
//!   cargo bench -p chat-store-cassandra --bench throughput
//! ```
//!
//! `BENCH_OPS` (default 4000) operations per throughput case,
//! `BENCH_CONCURRENCY` (default 32) in flight at once, `BENCH_GROUPS`
//! (default `1000,10000,100000`) the group sizes, `BENCH_DAY` (default
//! `20x500`) conversations × messages of the purge day, `BENCH_CASES` (a
//! comma list of `append,group,list,sync,purge`; default all),
//! `CASSANDRA_LOG` (default the shared node's log under
//! /var/tmp/chat-engine-services) the log to search. A bench binary rather
//! than criterion: throughput under concurrency is the figure, not the
//! latency of one call.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chat_core::id::IdGenerator;
use chat_core::store::{ConversationStore, MessageStore};
use chat_core::{
    Conversation, ConversationId, ConversationKind, DeviceId, Error, HistoryVisibility, JoinPolicy,
    Member, Message, NewMessage, Role, UserId, now_millis,
};
use chat_store_cassandra::{CassandraConfig, CassandraStore};
use futures::{StreamExt, TryStreamExt, stream};
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

fn report(name: &str, per_second: f64, note: &str) {
    println!("{name:<44} {per_second:>9.0}/s   ({note})");
}

fn text(ids: &IdGenerator, c: &ConversationId, sender: &UserId) -> NewMessage {
    NewMessage {
        message: Message::text(
            ids.next_id(),
            c.clone(),
            sender.clone(),
            "x".repeat(100),
            now_millis(),
        ),
        client_msg_id: None,
        device: None,
    }
}

/// Appends as the engine does: at the head's version, with a new id above
/// the head after a conflict.
async fn send(store: &CassandraStore, ids: &IdGenerator, mut entry: NewMessage) -> usize {
    let c = entry.message.conversation_id.clone();
    for attempt in 1.. {
        let head = store.head(&c).await.expect("head");
        if head.last_id.is_some_and(|l| entry.message.message_id <= l) {
            entry.message.message_id = loop {
                let id = ids.next_id();
                if head.last_id.is_none_or(|l| id > l) {
                    break id;
                }
            };
        }
        match store.append(entry.clone(), head.version).await {
            Ok(_) => return attempt,
            Err(Error::Conflict { .. }) => continue,
            Err(e) => panic!("append failed: {e}"),
        }
    }
    unreachable!()
}

struct Bench {
    store: Arc<CassandraStore>,
    session: Arc<Session>,
    keyspace: String,
    ids: Arc<IdGenerator>,
    ops: usize,
    concurrency: usize,
}

fn main() {
    let Ok(url) = std::env::var("CHAT_TEST_CASSANDRA_URL") else {
        println!("SKIPPED: set CHAT_TEST_CASSANDRA_URL (scripts/services up cassandra prints it)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(url));
}

async fn run(url: String) {
    let points = CassandraConfig::contact_points_from_url(&url).expect("a cassandra:// URL");
    let keyspace = format!("chat_bench_{:08x}", rand::random::<u32>());
    let mut config = CassandraConfig::new(points.clone(), &keyspace);
    config.request_timeout = Duration::from_secs(30);
    let store = Arc::new(CassandraStore::connect(config).await.expect("connect"));
    let session = Arc::new(
        SessionBuilder::new()
            .known_nodes(&points)
            .build()
            .await
            .expect("driver session"),
    );
    let bench = Bench {
        store,
        session: session.clone(),
        keyspace: keyspace.clone(),
        ids: Arc::new(IdGenerator::new(rand::random_range(0..1024)).expect("ids")),
        ops: env_usize("BENCH_OPS", 4000),
        concurrency: env_usize("BENCH_CONCURRENCY", 32),
    };
    let cases = std::env::var("BENCH_CASES").unwrap_or_default();
    let wanted = |case: &str| cases.is_empty() || cases.split(',').any(|c| c == case);
    println!(
        "ops {}, concurrency {}, keyspace {keyspace}",
        bench.ops, bench.concurrency
    );
    if wanted("append") {
        bench.appends().await;
    }
    if wanted("group") {
        bench.group_sends().await;
    }
    if wanted("list") {
        bench.conversation_list().await;
    }
    if wanted("sync") {
        bench.syncs().await;
    }
    if wanted("purge") {
        bench.purge_day().await;
    }
    let _ = session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), &[])
        .await;
}

impl Bench {
    async fn appends(&self) {
        // One conversation per task slot: the chain serializes each one.
        let convs: Arc<Vec<ConversationId>> = Arc::new(
            (0..self.concurrency)
                .map(|i| ConversationId::from(format!("append-{i}")))
                .collect(),
        );
        let sender = UserId::from("sender");
        for keyed in [false, true] {
            let (store, ids, convs, sender) = (
                self.store.clone(),
                self.ids.clone(),
                convs.clone(),
                sender.clone(),
            );
            let rate = measure(self.ops, self.concurrency, move |i| {
                let (store, ids) = (store.clone(), ids.clone());
                let mut entry = text(&ids, &convs[i % convs.len()], &sender);
                if keyed {
                    entry.client_msg_id = Some(format!("k-{i}-{:x}", rand::random::<u64>()));
                    entry.device = Some(DeviceId::from("sender-phone"));
                }
                async move {
                    send(&store, &ids, entry).await;
                }
            })
            .await;
            report(
                if keyed {
                    "append (keyed, with a device)"
                } else {
                    "append (text)"
                },
                rate,
                "head read, one LWT, 3-5 writes; one conversation per task",
            );
        }
        let one = ConversationId::from("append-contended");
        let tries = Arc::new(AtomicUsize::new(0));
        let (store, ids, tries2) = (self.store.clone(), self.ids.clone(), tries.clone());
        let ops = self.ops / 4;
        let rate = measure(ops, 8, move |_| {
            let (store, ids, tries) = (store.clone(), ids.clone(), tries2.clone());
            let entry = text(&ids, &one, &UserId::from("racer"));
            async move {
                tries.fetch_add(send(&store, &ids, entry).await, Ordering::Relaxed);
            }
        })
        .await;
        report(
            "append (8 writers, one conversation)",
            rate,
            &format!(
                "{:.2} attempts per append",
                tries.load(Ordering::Relaxed) as f64 / ops as f64
            ),
        );
    }

    async fn group_sends(&self) {
        let sizes: Vec<usize> = std::env::var("BENCH_GROUPS")
            .unwrap_or_else(|_| "1000,10000,100000".into())
            .split(',')
            .filter_map(|s| s.parse().ok())
            .collect();
        for size in sizes {
            let id = ConversationId::from(format!("group-{size}-{:x}", rand::random::<u32>()));
            let now = now_millis();
            let members: Vec<Member> = (0..size)
                .map(|i| {
                    let role = if i == 0 { Role::Owner } else { Role::Member };
                    Member::founding(UserId::from(format!("m{i}")), role, now)
                })
                .collect();
            let conversation = Conversation {
                id: id.clone(),
                kind: ConversationKind::Group,
                name: Some(format!("{size} members")),
                created_by: UserId::from("m0"),
                created_at: now,
                join: JoinPolicy::Invite,
                history: HistoryVisibility::All,
            };
            let started = Instant::now();
            self.store
                .create_group(conversation, &members)
                .await
                .expect("create group");
            let created = started.elapsed();
            // Sends into one group are one chain: measure them one at a
            // time (latency), then from 8 senders at once.
            for senders in [1usize, 8] {
                let (store, ids, id) = (self.store.clone(), self.ids.clone(), id.clone());
                let rate = measure(self.ops / 8, senders, move |i| {
                    let (store, ids, id) = (store.clone(), ids.clone(), id.clone());
                    let sender = UserId::from(format!("m{}", i % size.max(1)));
                    async move {
                        let member = store.member(&id, &sender).await.expect("member");
                        assert!(member.is_some(), "the sender is a member");
                        send(&store, &ids, text(&ids, &id, &sender)).await;
                    }
                })
                .await;
                report(
                    &format!("group send, {size} members, {senders} sender(s)"),
                    rate,
                    &format!(
                        "membership check + append; group created in {:.1} s",
                        created.as_secs_f64()
                    ),
                );
            }
        }
    }

    async fn conversation_list(&self) {
        let user = UserId::from("lister");
        let convs: Vec<ConversationId> = (0..1000)
            .map(|i| ConversationId::from(format!("list-{i}")))
            .collect();
        stream::iter(convs.clone())
            .map(|c| {
                let (store, ids, user) = (self.store.clone(), self.ids.clone(), user.clone());
                async move {
                    send(&store, &ids, text(&ids, &c, &user)).await;
                }
            })
            .buffer_unordered(64)
            .collect::<Vec<()>>()
            .await;
        let convs = Arc::new(convs);
        let ops = (self.ops / 20).max(20);
        let (store, c2) = (self.store.clone(), convs.clone());
        let rate = measure(ops, 4, move |_| {
            let (store, convs) = (store.clone(), c2.clone());
            async move {
                let heads = store.heads(&convs).await.expect("heads");
                assert!(heads.iter().all(|h| h.last_id.is_some()));
            }
        })
        .await;
        report(
            "heads of 1,000 conversations",
            rate,
            "IN reads of 250 partition keys, 8 in flight",
        );
        let (store, c2, u2) = (self.store.clone(), convs.clone(), user.clone());
        let rate = measure(ops, 4, move |_| {
            let (store, convs, user) = (store.clone(), c2.clone(), u2.clone());
            async move {
                let cursors = store.user_cursors(&user, &convs).await.expect("cursors");
                assert!(cursors.iter().all(|c| c.read.is_some()));
            }
        })
        .await;
        report(
            "user_cursors in 1,000 conversations",
            rate,
            "the user's partition, paged",
        );
        let (store, c2, u2) = (self.store.clone(), convs.clone(), user.clone());
        let rate = measure(ops, 4, move |_| {
            let (store, convs, user) = (store.clone(), c2.clone(), u2.clone());
            async move {
                let (heads, cursors) =
                    futures::try_join!(store.heads(&convs), store.user_cursors(&user, &convs))
                        .expect("list");
                assert_eq!(heads.len(), cursors.len());
            }
        })
        .await;
        report(
            "conversations list (heads + cursors, 1,000)",
            rate,
            "both at once, as the engine reads them",
        );
        // For comparison, through the driver: other ways to read the same.
        let single = self
            .session
            .prepare(format!(
                "SELECT DISTINCT conversation_id, last_id, seq, version FROM {}.heads \
                 WHERE conversation_id = ?",
                self.keyspace
            ))
            .await
            .expect("prepare");
        let (session, c2, st) = (self.session.clone(), convs.clone(), single.clone());
        let rate = measure(ops, 4, move |_| {
            let (session, convs, st) = (session.clone(), c2.clone(), st.clone());
            async move {
                let n: usize = stream::iter(convs.iter().cloned())
                    .map(|c| {
                        let (session, st) = (session.clone(), st.clone());
                        async move {
                            session
                                .execute_unpaged(&st, (c.to_string(),))
                                .await
                                .expect("read")
                                .into_rows_result()
                                .expect("rows")
                                .rows_num()
                        }
                    })
                    .buffer_unordered(128)
                    .fold(0, |n, m| async move { n + m })
                    .await;
                assert_eq!(n, convs.len());
            }
        })
        .await;
        report(
            "  heads: 1,000 single-partition reads",
            rate,
            "driver only, 128 in flight, for comparison",
        );
        let heads_in = self
            .session
            .prepare(format!(
                "SELECT DISTINCT conversation_id, last_id, seq, version FROM {}.heads \
                 WHERE conversation_id IN ?",
                self.keyspace
            ))
            .await
            .expect("prepare IN");
        for chunk in [250usize, 1000] {
            let (session, c2, st) = (self.session.clone(), convs.clone(), heads_in.clone());
            let rate = measure(ops, 4, move |_| {
                let (session, convs, st) = (session.clone(), c2.clone(), st.clone());
                async move {
                    let reads = convs.chunks(chunk).map(|part| {
                        let keys: Vec<String> = part.iter().map(|c| c.to_string()).collect();
                        let (session, st) = (session.clone(), st.clone());
                        async move {
                            session
                                .execute_unpaged(&st, (keys,))
                                .await
                                .expect("IN read")
                                .into_rows_result()
                                .expect("rows")
                                .rows_num()
                        }
                    });
                    let n: usize = futures::future::join_all(reads).await.into_iter().sum();
                    assert_eq!(n, convs.len());
                }
            })
            .await;
            report(
                &format!("  heads: IN reads of {chunk}"),
                rate,
                "driver only, for comparison",
            );
        }
        let whole = self
            .session
            .prepare(format!(
                "SELECT conversation_id, delivered, read, read_seq FROM {}.user_cursors \
                 WHERE user_id = ?",
                self.keyspace
            ))
            .await
            .expect("prepare");
        let (session, u2) = (self.session.clone(), user.clone());
        let rate = measure(ops, 4, move |_| {
            let (session, st, user) = (session.clone(), whole.clone(), u2.clone());
            async move {
                let mut pager = session
                    .execute_iter(st, (user.to_string(),))
                    .await
                    .expect("read")
                    .rows_stream::<(String, Option<i64>, Option<i64>, Option<i64>)>()
                    .expect("rows");
                let mut n = 0;
                while let Some(row) = pager.next().await {
                    row.expect("row");
                    n += 1;
                }
                assert_eq!(n, 1000);
            }
        })
        .await;
        report(
            "  user_cursors: the user's whole partition",
            rate,
            "driver only, paged, for comparison",
        );
    }

    async fn syncs(&self) {
        let user = UserId::from("syncer");
        let device = DeviceId::from("syncer-phone");
        let other = UserId::from("friend");
        let convs: Vec<ConversationId> = (0..100)
            .map(|i| ConversationId::from(format!("sync-{i}")))
            .collect();
        for c in &convs {
            let m = send_get(&self.store, &self.ids, text(&self.ids, c, &other)).await;
            self.store.ack(&user, &device, c, m).await.expect("ack");
        }
        for c in convs.iter().take(20) {
            for _ in 0..10 {
                send(&self.store, &self.ids, text(&self.ids, c, &other)).await;
            }
        }
        let ops = (self.ops / 10).max(20);
        let store = self.store.clone();
        let rate = measure(ops, 8, move |_| {
            let (store, device) = (store.clone(), device.clone());
            async move {
                let cursors = store.device_cursors(&device).await.expect("device cursors");
                let ids: Vec<ConversationId> = cursors.iter().map(|(c, _)| c.clone()).collect();
                let heads = store.heads(&ids).await.expect("heads");
                let behind: Vec<_> = cursors
                    .iter()
                    .zip(&heads)
                    .filter(|((_, at), head)| head.last_id.is_some_and(|l| l > *at))
                    .map(|((c, at), head)| (c.clone(), *at, head.last_id))
                    .collect();
                let got: usize = stream::iter(behind)
                    .map(|(c, at, last)| {
                        let store = store.clone();
                        async move { store.range(&c, Some(at), last, 100).await.map(|r| r.len()) }
                    })
                    .buffer_unordered(32)
                    .try_fold(0, |n, len| async move { Ok(n + len) })
                    .await
                    .expect("ranges");
                assert_eq!(got, 200, "20 conversations with 10 new entries each");
            }
        })
        .await;
        report(
            "sync (100 conversations, 20 with 10 news)",
            rate,
            "device_cursors + heads + 20 ranges",
        );
    }

    async fn purge_day(&self) {
        let day = std::env::var("BENCH_DAY").unwrap_or_else(|_| "20x500".into());
        let (convs, per) = day
            .split_once('x')
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .expect("BENCH_DAY is CONVERSATIONSxMESSAGES");
        let log = std::env::var("CASSANDRA_LOG")
            .unwrap_or_else(|_| "/var/tmp/chat-engine-services/cassandra/cassandra.log".to_owned());
        let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
        let purged = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        stream::iter(0..convs)
            .map(|i| {
                let (store, ids, purged) = (self.store.clone(), self.ids.clone(), purged.clone());
                async move {
                    let c = ConversationId::from(format!("day-{i}"));
                    let (alice, bob) =
                        (UserId::from(format!("a{i}")), UserId::from(format!("b{i}")));
                    let (phone, laptop) = (
                        DeviceId::from(format!("a{i}-phone")),
                        DeviceId::from(format!("b{i}-laptop")),
                    );
                    for n in 0..per {
                        let mut entry = text(&ids, &c, &alice);
                        entry.client_msg_id = Some(format!("{i}-{n}"));
                        entry.device = Some(phone.clone());
                        let m = send_get(&store, &ids, entry).await;
                        store.ack(&bob, &laptop, &c, m).await.expect("ack");
                        // The low-water mark over every device and user cursor.
                        let mark = store
                            .conversation_cursors(&c)
                            .await
                            .expect("conversation cursors")
                            .iter()
                            .map(|d| d.delivered)
                            .min();
                        if let Some(mark) = mark {
                            let n = store.purge(&c, mark).await.expect("purge");
                            purged.fetch_add(n as usize, Ordering::Relaxed);
                        }
                    }
                }
            })
            .buffer_unordered(self.concurrency.min(convs))
            .collect::<Vec<()>>()
            .await;
        let elapsed = started.elapsed();
        let cycles = convs * per;
        report(
            &format!("until-delivered day ({convs} x {per})"),
            cycles as f64 / elapsed.as_secs_f64(),
            &format!(
                "send + ack + mark + purge per cycle; {} purged in {:.1} s",
                purged.load(Ordering::Relaxed),
                elapsed.as_secs_f64()
            ),
        );
        // Reads over the purged conversations: history, range and sync
        // would walk tombstones here if they were not bounded by the mark.
        let started = Instant::now();
        for i in 0..convs {
            let c = ConversationId::from(format!("day-{i}"));
            let history = self
                .store
                .history(&c, None, None, 50)
                .await
                .expect("history");
            let range = self.store.range(&c, None, None, 50).await.expect("range");
            assert!(
                history.len() <= 1 && range.len() <= 1,
                "everything delivered was purged"
            );
        }
        report(
            "reads of the purged conversations",
            (2 * convs) as f64 / started.elapsed().as_secs_f64(),
            "history + range of each",
        );
        // The control: the same search must find the warning that a design
        // with a tombstone per row gets (1,100 rows deleted one by one in
        // one partition, then read), in a table of its own.
        let control = format!("{}.tombstone_control", self.keyspace);
        self.session
            .query_unpaged(
                format!("CREATE TABLE {control} (p text, c int, PRIMARY KEY (p, c))"),
                &[],
            )
            .await
            .expect("control table");
        let insert = self
            .session
            .prepare(format!("INSERT INTO {control} (p, c) VALUES ('p', ?)"))
            .await
            .expect("prepare");
        let delete = self
            .session
            .prepare(format!("DELETE FROM {control} WHERE p = 'p' AND c = ?"))
            .await
            .expect("prepare");
        for c in 0..1100i32 {
            self.session
                .execute_unpaged(&insert, (c,))
                .await
                .expect("insert");
            self.session
                .execute_unpaged(&delete, (c,))
                .await
                .expect("delete");
        }
        self.session
            .query_unpaged(format!("SELECT c FROM {control} WHERE p = 'p'"), &[])
            .await
            .expect("read the control");
        // Give the node a moment to write its log, then look.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let text = std::fs::read(&log)
            .map(|b| String::from_utf8_lossy(&b[(log_start as usize).min(b.len())..]).into_owned())
            .unwrap_or_default();
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&self.keyspace) && l.to_lowercase().contains("tombstone"))
            .collect();
        let (controls, ours): (Vec<&str>, Vec<&str>) =
            warnings.into_iter().partition(|l| l.contains(&control));
        println!(
            "tombstone warnings in {log}: {} about the store's tables of {}, {} about the \
             control table (at least one expected)",
            ours.len(),
            self.keyspace,
            controls.len()
        );
        for w in ours.iter().take(5) {
            println!("  {w}");
        }
    }
}

/// [`send`], answering the id stored.
async fn send_get(
    store: &CassandraStore,
    ids: &IdGenerator,
    mut entry: NewMessage,
) -> chat_core::MessageId {
    let c = entry.message.conversation_id.clone();
    loop {
        let head = store.head(&c).await.expect("head");
        if head.last_id.is_some_and(|l| entry.message.message_id <= l) {
            entry.message.message_id = ids.next_id();
            continue;
        }
        match store.append(entry.clone(), head.version).await {
            Ok(a) => return a.message.message_id,
            Err(Error::Conflict { .. }) => continue,
            Err(e) => panic!("append failed: {e}"),
        }
    }
}
