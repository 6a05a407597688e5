//! Throughput of `IdGenerator::next_id`: on one thread, on one thread with a
//! frozen clock (the cost without the clock read), and on two threads sharing
//! one generator. Criterion reports ids per second ("elem/s").
//!
//! The design limit of a worker is 4096 ids per millisecond (about 4.1M ids/s)
//! of *wall-clock* time. The generator never blocks: drawing faster borrows
//! milliseconds ahead, so after this bench the ids' time runs ahead of the
//! wall clock; the bench prints by how much.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn in this binary"
)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use chat_core::id::{Clock, IdGenerator, ManualClock, SystemClock};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// 2025-06-01T12:00:00Z, for the frozen clock.
const FROZEN_MS: u64 = 1_748_779_200_000;

/// Two threads each draw `iters` ids from `generator`, started together; the
/// time is the slower thread's.
fn two_threads(generator: &IdGenerator, iters: u64) -> Duration {
    let start = Barrier::new(2);
    thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        black_box(generator.next_id());
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

/// Prints how far the ids of `generator` have run ahead of the wall clock.
fn report_lead(name: &str, generator: &IdGenerator) {
    let lead = generator
        .next_id()
        .unix_ms()
        .saturating_sub(SystemClock.now_ms());
    eprintln!("{name}: ids now run {lead} ms ahead of the wall clock (borrowed ahead)");
}

fn next_id(c: &mut Criterion) {
    let mut group = c.benchmark_group("next_id");

    group.throughput(Throughput::Elements(1));
    let one = IdGenerator::new(1).expect("worker 1 is valid");
    group.bench_function("one_thread", |b| b.iter(|| black_box(one.next_id())));

    let frozen = IdGenerator::with_clock(2, Arc::new(ManualClock::new(FROZEN_MS)))
        .expect("worker 2 is valid");
    group.bench_function("one_thread_frozen_clock", |b| {
        b.iter(|| black_box(frozen.next_id()))
    });

    // Each iteration draws one id on each of the two threads.
    group.throughput(Throughput::Elements(2));
    let shared = IdGenerator::new(3).expect("worker 3 is valid");
    group.bench_function("two_threads_shared", |b| {
        b.iter_custom(|iters| two_threads(&shared, iters))
    });
    group.finish();

    report_lead("one_thread", &one);
    report_lead("two_threads_shared", &shared);
}

criterion_group!(benches, next_id);
criterion_main!(benches);
