//! Property tests of the Snowflake id generator: ids are unique and ascend per
//! generator, also when threads share one and the clock jumps around, and two
//! workers never collide, even on the same frozen clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

use chat_core::MessageId;
use chat_core::id::{EPOCH_UNIX_MS, IdGenerator, ManualClock, SEQUENCES_PER_MS};
use proptest::prelude::*;

/// Where every test clock starts: 2025-06-01T12:00:00Z.
const START_MS: u64 = 1_748_779_200_000;

/// A clock script: each step moves the clock by a signed number of ms (0
/// freezes it, negative steps it back), then draws a number of ids. Some
/// draws exceed 4096 so that the generator must borrow the next millisecond.
fn script() -> impl Strategy<Value = Vec<(i64, usize)>> {
    let count = prop_oneof![3 => 0usize..64, 1 => 4_000usize..4_300];
    prop::collection::vec((prop_oneof![Just(0i64), -3_000i64..3_000], count), 1..12)
}

/// The clock reading after moving `from` by `delta` ms, kept at or after the
/// id epoch so that a step back never leaves the id range.
fn moved(from: u64, delta: i64) -> u64 {
    from.saturating_add_signed(delta).max(EPOCH_UNIX_MS)
}

/// Asserts `ids` strictly ascend, which also makes them unique.
fn assert_strictly_ascending(ids: &[MessageId]) -> Result<(), TestCaseError> {
    for pair in ids.windows(2) {
        prop_assert!(pair[0] < pair[1], "{:?} then {:?}", pair[0], pair[1]);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn one_generator_issues_strictly_ascending_ids(worker in 0u16..1024, steps in script()) {
        let clock = Arc::new(ManualClock::new(START_MS));
        let generator = IdGenerator::with_clock(worker, clock.clone()).unwrap();
        let (mut now, mut latest_wall) = (START_MS, START_MS);
        let mut ids = Vec::new();
        for (delta, count) in steps {
            now = moved(now, delta);
            latest_wall = latest_wall.max(now);
            clock.set(now);
            for _ in 0..count {
                let id = generator.next_id();
                prop_assert_eq!(id.worker(), worker);
                // The logical clock is never behind the wall clock...
                prop_assert!(id.unix_ms() >= now);
                ids.push(id);
            }
            // ...and runs ahead of the latest wall reading by no more than the
            // milliseconds it had to borrow for bursts beyond 4096 ids.
            let borrowed = (ids.len() as u64).div_ceil(u64::from(SEQUENCES_PER_MS));
            if let Some(last) = ids.last() {
                prop_assert!(last.unix_ms() <= latest_wall + borrowed);
            }
        }
        assert_strictly_ascending(&ids)?;
    }

    #[test]
    fn threads_sharing_a_generator_ascend_and_never_collide(
        threads in 2usize..=4,
        per_thread in 1usize..3_000,
        clock_moves in prop::collection::vec(-50i64..50, 1..64),
    ) {
        let clock = Arc::new(ManualClock::new(START_MS));
        let generator = IdGenerator::with_clock(9, clock.clone()).unwrap();
        let per_thread_ids: Vec<Vec<MessageId>> = thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (generator, clock, clock_moves) = (&generator, &clock, &clock_moves);
                    s.spawn(move || {
                        let mut now = START_MS;
                        (0..per_thread)
                            .map(|i| {
                                // Thread 0 drags the shared clock back and forth
                                // while the others draw ids.
                                if t == 0 {
                                    now = moved(now, clock_moves[i % clock_moves.len()]);
                                    clock.set(now);
                                }
                                generator.next_id()
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let mut all = HashSet::new();
        for ids in &per_thread_ids {
            assert_strictly_ascending(ids)?;
            for id in ids {
                prop_assert!(all.insert(*id), "duplicate id {:?}", id);
            }
        }
        prop_assert_eq!(all.len(), threads * per_thread);
    }

    #[test]
    fn two_workers_never_collide_on_the_same_clock(
        workers in (0u16..1024, 0u16..1024).prop_filter("distinct workers", |(a, b)| a != b),
        steps in script(),
        b_share in 0usize..=2,
    ) {
        let clock = Arc::new(ManualClock::new(START_MS));
        let a = IdGenerator::with_clock(workers.0, clock.clone()).unwrap();
        let b = IdGenerator::with_clock(workers.1, clock.clone()).unwrap();
        let (mut from_a, mut from_b) = (HashSet::new(), HashSet::new());
        let mut now = START_MS;
        for (delta, count) in steps {
            now = moved(now, delta);
            clock.set(now);
            // Both draw in the same (often frozen) millisecond, in different amounts.
            for i in 0..count {
                prop_assert!(from_a.insert(a.next_id()));
                if i % 2 < b_share {
                    prop_assert!(from_b.insert(b.next_id()));
                }
            }
        }
        prop_assert!(from_a.is_disjoint(&from_b));
        prop_assert!(from_a.iter().all(|id| id.worker() == workers.0));
        prop_assert!(from_b.iter().all(|id| id.worker() == workers.1));
    }
}
