//! In-process fanout of one group message to 10,000 connected sessions:
//! deliveries per second, and heap bytes allocated per delivery (the body
//! must not be copied per recipient).
//!
//! `cargo bench -p chat-core --bench fanout`
// The counting allocator below needs `unsafe impl GlobalAlloc`; it only
// forwards to the system allocator. This is the one place the crate allows it.
#![allow(unsafe_code, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_core::engine::{Engine, Limits, Outbound, Session};
use chat_core::memory::MemoryStore;
use chat_core::store::{AccountStore, ConversationStore};
use chat_core::{Account, Conversation, ConversationId, ConversationKind, UserId};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::FutureExt;

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RECIPIENTS: usize = 10_000;
const BODY: usize = 1024;

struct Setup {
    engine: Engine,
    group: ConversationId,
    sender: Session,
    sender_out: Outbound,
    outs: Vec<Outbound>,
    _sessions: Vec<Session>,
}

async fn setup() -> Setup {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder()
        .store(store.clone())
        .limits(Limits {
            user_budget: None,
            addr_budget: None,
            ..Limits::default()
        })
        .build()
        .await
        .unwrap();
    let mut users = Vec::new();
    for i in 0..=RECIPIENTS {
        let user = UserId::from(format!("u{i}"));
        store
            .create_account(Account {
                user_id: user.clone(),
                username: format!("user{i}"),
                password_hash: String::new(),
                display_name: format!("user {i}"),
                created_at: 0,
            })
            .await
            .unwrap();
        users.push(user);
    }
    let group = ConversationId::from("g_bench");
    store
        .create_group(
            Conversation {
                id: group.clone(),
                kind: ConversationKind::Group,
                name: Some("bench".into()),
                created_by: users[0].clone(),
                created_at: 0,
            },
            &users,
        )
        .await
        .unwrap();
    let (mut sender, mut sender_out) = engine.connect(&users[0]).await.unwrap();
    sender.start().await.unwrap();
    sender_out.recv().await.unwrap();
    let mut sessions = Vec::new();
    let mut outs = Vec::new();
    for user in &users[1..] {
        let (mut s, mut out) = engine.connect(user).await.unwrap();
        s.start().await.unwrap();
        out.recv().await.unwrap(); // synced
        sessions.push(s);
        outs.push(out);
    }
    Setup {
        engine,
        group,
        sender,
        sender_out,
        outs,
        _sessions: sessions,
    }
}

impl Setup {
    /// One send to the group; returns when every local session has its frame queued.
    async fn send_one(&mut self, n: u64) {
        let frame = format!(
            r#"{{"type":"send","id":"{n}","conversation_id":"{}","body":"{}"}}"#,
            self.group,
            "x".repeat(BODY)
        );
        self.sender.handle_text(&frame).await;
    }

    fn drain(&mut self) {
        self.sender_out.recv().now_or_never();
        for out in &mut self.outs {
            assert!(out.recv().now_or_never().flatten().is_some(), "delivered");
        }
    }
}

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut s = rt.block_on(setup());

    // Allocation per delivery, outside criterion's timing.
    rt.block_on(s.send_one(0));
    s.drain();
    let sends = 20u64;
    let (bytes0, count0) = (
        ALLOCATED.load(Ordering::Relaxed),
        ALLOCATIONS.load(Ordering::Relaxed),
    );
    for n in 1..=sends {
        rt.block_on(s.send_one(n));
        s.drain();
    }
    let bytes = ALLOCATED.load(Ordering::Relaxed) - bytes0;
    let count = ALLOCATIONS.load(Ordering::Relaxed) - count0;
    let deliveries = sends * RECIPIENTS as u64;
    println!(
        "fanout alloc: {:.1} bytes and {:.2} allocations per delivery ({} recipients, {} byte body, \
         send + store + fanout + draining, all included)",
        bytes as f64 / deliveries as f64,
        count as f64 / deliveries as f64,
        RECIPIENTS,
        BODY
    );

    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(RECIPIENTS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    let mut n = 1_000u64;
    group.bench_function("group_message_to_10k_sessions", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let start = Instant::now();
                rt.block_on(s.send_one(n));
                total += start.elapsed();
                s.drain();
            }
            total
        })
    });
    group.finish();
    rt.block_on(s.engine.shutdown());
}

criterion_group!(benches, fanout);
criterion_main!(benches);
