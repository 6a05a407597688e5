//! Snowflake-style 64-bit message ids: ordered by time, unique per worker,
//! generated without a lock.
//!
//! # Layout
//!
//! ```text
//!  bit 63 | 62 ........................ 22 | 21 ....... 12 | 11 ......... 0
//!     0   | ms since EPOCH_UNIX_MS (41)    | worker (10)   | sequence (12)
//! ```
//!
//! The top bit is always 0, so every id fits a signed 64-bit integer (a
//! Postgres or Cassandra `bigint`) and sorts the same signed or unsigned.
//! 41 bits of milliseconds from [`EPOCH_UNIX_MS`] (2024-01-01T00:00:00Z) last
//! until [`LAST_UNIX_MS`] (2093-09-06). 10 bits name up to [`MAX_WORKERS`]
//! generators that run at the same time; the deployment must give each one
//! its own worker id, because two generators with the same worker id can
//! issue the same id. 12 bits count [`SEQUENCES_PER_MS`] ids per worker and
//! millisecond.
//!
//! # The logical clock
//!
//! A generator keeps one `AtomicU64`: the next free (millisecond, sequence)
//! pair, packed as `ms << 12 | sequence`. Each [`IdGenerator::next_id`] issues
//! `max(wall clock, next free pair)` and stores that pair plus one with a
//! compare-exchange loop; there is no lock, and a call never sleeps or waits
//! for the clock. Two cases follow from this, both tested:
//!
//! - **More than 4096 ids in one millisecond.** Adding one to sequence 4095
//!   carries into the millisecond: the 4097th id takes the next millisecond
//!   with sequence 0 (the logical clock borrows ahead of the wall clock).
//! - **The wall clock steps backwards** (NTP correction, VM migration). The
//!   generator ignores the older reading and keeps using its last timestamp,
//!   with rising sequences that carry into following milliseconds as needed
//!   (logical clock = max(wall, last)). Ids never repeat and never go down.
//!
//! In both cases, and under sustained overload of more than 4096 ids per
//! millisecond, the time inside the ids runs ahead of the wall clock. It
//! catches up by itself once the load drops or the wall clock passes the
//! logical one; until then [`MessageId::unix_ms`] reads a little in the future.
//!
//! The state lives in memory only: after a restart, a worker id's new ids are
//! unique against its old ones only if the wall clock has passed the time of
//! the last id issued before the restart.
//!
//! # Time and storage buckets
//!
//! [`MessageId::unix_ms`], [`MessageId::worker`] and [`MessageId::sequence`]
//! take an id apart. [`MessageId::first_at`] and [`MessageId::last_at`] give
//! the smallest and largest possible id of a millisecond, for range queries.
//! [`MessageId::bucket`] and [`bucket_bounds`] cut time into fixed-width
//! buckets counted from [`EPOCH_UNIX_MS`]; the Cassandra adapter partitions a
//! conversation's messages by bucket so that no partition grows without bound.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::model::MessageId;

/// The custom epoch of the id's timestamp: 2024-01-01T00:00:00Z in Unix ms.
pub const EPOCH_UNIX_MS: u64 = 1_704_067_200_000;

/// The last Unix millisecond an id can hold (2093-09-06T15:47:35.551Z).
pub const LAST_UNIX_MS: u64 = EPOCH_UNIX_MS + MAX_OFFSET_MS;

/// How many generators may run at once, each with its own worker id.
pub const MAX_WORKERS: u16 = 1 << WORKER_BITS;

/// How many ids one worker issues per millisecond before borrowing the next.
pub const SEQUENCES_PER_MS: u16 = 1 << SEQUENCE_BITS;

/// The default width of a storage time bucket: 10 days in milliseconds.
pub const DEFAULT_BUCKET_MS: u64 = 10 * 24 * 60 * 60 * 1000;

const TIMESTAMP_BITS: u32 = 41;
const WORKER_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
const WORKER_SHIFT: u32 = SEQUENCE_BITS;
const TIMESTAMP_SHIFT: u32 = WORKER_BITS + SEQUENCE_BITS;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;
const WORKER_MASK: u64 = (1 << WORKER_BITS) - 1;
/// Worker and sequence bits together: what `last_at` sets to all ones.
const BELOW_TIMESTAMP_MASK: u64 = (1 << TIMESTAMP_SHIFT) - 1;
const MAX_OFFSET_MS: u64 = (1 << TIMESTAMP_BITS) - 1;

/// A source of wall-clock time, pluggable so tests can freeze or rewind it.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock set before 1970 reads 0, which is before EPOCH_UNIX_MS: the
        // generator then keeps its last timestamp, as for any step back.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that reads whatever it was last set to, for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock frozen at `unix_ms`.
    pub fn new(unix_ms: u64) -> Self {
        Self {
            ms: AtomicU64::new(unix_ms),
        }
    }

    /// Sets the time, forwards or backwards.
    pub fn set(&self, unix_ms: u64) {
        self.ms.store(unix_ms, Ordering::Relaxed);
    }

    /// Moves the time forwards by `ms`.
    pub fn advance(&self, ms: u64) {
        self.ms.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::Relaxed)
    }
}

/// Issues unique, ascending [`MessageId`]s for one worker; share it by
/// reference or `Arc` between threads.
pub struct IdGenerator {
    /// The worker id, already shifted into place.
    worker_bits: u64,
    clock: Arc<dyn Clock>,
    /// The next free `offset_ms << SEQUENCE_BITS | sequence`.
    next: AtomicU64,
}

impl IdGenerator {
    /// A generator for `worker` (below [`MAX_WORKERS`]) on the system clock.
    pub fn new(worker: u16) -> crate::Result<Self> {
        Self::with_clock(worker, Arc::new(SystemClock))
    }

    /// A generator for `worker` (below [`MAX_WORKERS`]) that reads `clock`.
    pub fn with_clock(worker: u16, clock: Arc<dyn Clock>) -> crate::Result<Self> {
        if worker >= MAX_WORKERS {
            return Err(Error::invalid(format!(
                "worker id {worker} is out of range: at most {}",
                MAX_WORKERS - 1
            )));
        }
        Ok(Self {
            worker_bits: u64::from(worker) << WORKER_SHIFT,
            clock,
            next: AtomicU64::new(0),
        })
    }

    /// This generator's worker id.
    pub fn worker(&self) -> u16 {
        // Lossless: the value was a u16 below MAX_WORKERS before the shift.
        (self.worker_bits >> WORKER_SHIFT) as u16
    }

    /// The next id: greater than every id this generator issued before.
    ///
    /// # Panics
    ///
    /// When the id space is used up: the logical clock has passed
    /// [`LAST_UNIX_MS`], which happens in 2093 or with a clock set that far
    /// ahead. [`IdGenerator::try_next_id`] returns an error instead.
    pub fn next_id(&self) -> MessageId {
        self.try_next_id().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next id, or [`Error::Unavailable`] when the logical clock has passed
    /// [`LAST_UNIX_MS`] (the state is then left as it was).
    pub fn try_next_id(&self) -> crate::Result<MessageId> {
        self.try_next_id_after(None)
    }

    /// The next id, also greater than `floor` (an id another node issued):
    /// when `floor` is ahead of this generator, its logical clock jumps to
    /// the millisecond after `floor`'s, so ids stay time-ordered across
    /// nodes. What a conversation's chain needs after another node's entry
    /// took the head.
    pub fn next_id_after(&self, floor: Option<MessageId>) -> MessageId {
        self.try_next_id_after(floor)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`IdGenerator::next_id_after`], or [`Error::Unavailable`] when the id
    /// space is used up.
    pub fn try_next_id_after(&self, floor: Option<MessageId>) -> crate::Result<MessageId> {
        let least = floor.map_or(0, |f| ((f.0 >> TIMESTAMP_SHIFT) + 1) << SEQUENCE_BITS);
        // Clamped to one past the range so that a far-future clock is refused
        // below rather than overflowing the shift.
        let wall = self
            .clock
            .now_ms()
            .saturating_sub(EPOCH_UNIX_MS)
            .min(MAX_OFFSET_MS + 1)
            << SEQUENCE_BITS;
        // Relaxed is enough: the ids come from the value each compare-exchange
        // replaced, and read-modify-writes of one atomic are totally ordered
        // (each thread also sees them in its program order), whatever the
        // memory ordering. No other memory is published through this atomic.
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let issued = wall.max(next).max(least);
            if issued >> SEQUENCE_BITS > MAX_OFFSET_MS {
                return Err(Error::Unavailable {
                    reason: format!(
                        "message id space of worker {} is used up: its clock is past \
                         {LAST_UNIX_MS} Unix ms",
                        self.worker()
                    ),
                    source: None,
                });
            }
            // One past sequence 4095 carries into the millisecond: that is the
            // borrowing-ahead the module docs describe.
            match self.next.compare_exchange_weak(
                next,
                issued + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let offset = issued >> SEQUENCE_BITS;
                    let sequence = issued & SEQUENCE_MASK;
                    return Ok(MessageId(
                        offset << TIMESTAMP_SHIFT | self.worker_bits | sequence,
                    ));
                }
                Err(actual) => next = actual,
            }
        }
    }
}

impl fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let next = self.next.load(Ordering::Relaxed);
        f.debug_struct("IdGenerator")
            .field("worker", &self.worker())
            .field("next_unix_ms", &((next >> SEQUENCE_BITS) + EPOCH_UNIX_MS))
            .field("next_sequence", &(next & SEQUENCE_MASK))
            .finish_non_exhaustive()
    }
}

impl MessageId {
    /// The id's time in Unix milliseconds (its logical time: see the module
    /// docs for when that runs ahead of the wall clock).
    pub fn unix_ms(self) -> u64 {
        self.offset_ms() + EPOCH_UNIX_MS
    }

    /// The worker id of the generator that issued the id.
    pub fn worker(self) -> u16 {
        // Lossless: masked to 10 bits.
        ((self.0 >> WORKER_SHIFT) & WORKER_MASK) as u16
    }

    /// The id's sequence number within its millisecond and worker.
    pub fn sequence(self) -> u16 {
        // Lossless: masked to 12 bits.
        (self.0 & SEQUENCE_MASK) as u16
    }

    /// The index of the id's time bucket of `width_ms` milliseconds, counted
    /// from [`EPOCH_UNIX_MS`]: bucket `b` starts at
    /// `EPOCH_UNIX_MS + b * width_ms`. See [`bucket_bounds`] for its ids.
    ///
    /// # Panics
    ///
    /// When `width_ms` is 0.
    pub fn bucket(self, width_ms: u64) -> u64 {
        assert_ne!(width_ms, 0, "a bucket is at least 1 ms wide");
        self.offset_ms() / width_ms
    }

    /// The smallest possible id of millisecond `unix_ms`: ids issued at or
    /// after it are `>=` this. Times outside the id range are clamped to
    /// [`EPOCH_UNIX_MS`]..=[`LAST_UNIX_MS`].
    pub fn first_at(unix_ms: u64) -> Self {
        Self::first_at_offset(unix_ms.saturating_sub(EPOCH_UNIX_MS))
    }

    /// The largest possible id of millisecond `unix_ms`: ids issued at or
    /// before it are `<=` this. Times outside the id range are clamped to
    /// [`EPOCH_UNIX_MS`]..=[`LAST_UNIX_MS`].
    pub fn last_at(unix_ms: u64) -> Self {
        Self::last_at_offset(unix_ms.saturating_sub(EPOCH_UNIX_MS))
    }

    fn offset_ms(self) -> u64 {
        self.0 >> TIMESTAMP_SHIFT
    }

    fn first_at_offset(offset_ms: u64) -> Self {
        Self(offset_ms.min(MAX_OFFSET_MS) << TIMESTAMP_SHIFT)
    }

    fn last_at_offset(offset_ms: u64) -> Self {
        Self(offset_ms.min(MAX_OFFSET_MS) << TIMESTAMP_SHIFT | BELOW_TIMESTAMP_MASK)
    }
}

/// The smallest and largest possible id of time bucket `bucket` of
/// `width_ms` milliseconds (see [`MessageId::bucket`]), both inclusive. A
/// bucket past [`LAST_UNIX_MS`] is clamped to the last millisecond.
///
/// # Panics
///
/// When `width_ms` is 0.
pub fn bucket_bounds(bucket: u64, width_ms: u64) -> (MessageId, MessageId) {
    assert_ne!(width_ms, 0, "a bucket is at least 1 ms wide");
    let start = bucket.saturating_mul(width_ms);
    let end = start.saturating_add(width_ms - 1);
    (
        MessageId::first_at_offset(start),
        MessageId::last_at_offset(end),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed time well inside the id range: 2025-06-01T12:00:00Z.
    const T: u64 = 1_748_779_200_000;

    fn manual(worker: u16, unix_ms: u64) -> (IdGenerator, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(unix_ms));
        let generator = IdGenerator::with_clock(worker, clock.clone()).unwrap();
        (generator, clock)
    }

    #[test]
    fn layout_round_trips() {
        let (generator, clock) = manual(1023, T);
        let first = generator.next_id();
        assert_eq!(
            (first.unix_ms(), first.worker(), first.sequence()),
            (T, 1023, 0)
        );
        let second = generator.next_id();
        assert_eq!(
            (second.unix_ms(), second.worker(), second.sequence()),
            (T, 1023, 1)
        );
        assert_eq!(
            first.0,
            (T - EPOCH_UNIX_MS) << 22 | 1023 << 12,
            "bits are ms | worker | sequence"
        );

        // The last representable millisecond still leaves the top bit 0.
        clock.set(LAST_UNIX_MS);
        let last = generator.next_id();
        assert_eq!((last.unix_ms(), last.worker()), (LAST_UNIX_MS, 1023));
        assert!(i64::try_from(last.0).is_ok(), "fits a signed bigint");
        assert_eq!(MessageId::last_at(LAST_UNIX_MS).0, i64::MAX as u64);
    }

    #[test]
    fn worker_ids_must_be_below_1024() {
        assert_eq!(IdGenerator::new(0).unwrap().worker(), 0);
        assert_eq!(IdGenerator::new(1023).unwrap().worker(), 1023);
        for worker in [1024, u16::MAX] {
            let err = IdGenerator::new(worker).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
        }
    }

    #[test]
    fn clock_step_back_keeps_the_last_timestamp() {
        let (generator, clock) = manual(7, T);
        let before = generator.next_id();
        clock.set(T - 5_000);
        let during: Vec<_> = (0..3).map(|_| generator.next_id()).collect();
        for (i, id) in during.iter().enumerate() {
            assert_eq!(id.unix_ms(), T, "keeps its last timestamp");
            assert_eq!(usize::from(id.sequence()), i + 1);
        }
        assert!(before < during[0] && during.is_sorted());

        // Once the wall clock passes the logical one, its time is used again.
        clock.set(T + 1);
        let after = generator.next_id();
        assert_eq!((after.unix_ms(), after.sequence()), (T + 1, 0));
        assert!(after > during[2]);
    }

    #[test]
    fn the_4097th_id_in_a_frozen_ms_borrows_the_next_ms() {
        let (generator, clock) = manual(3, T);
        let ids: Vec<_> = (0..4097).map(|_| generator.next_id()).collect();
        for (i, id) in ids[..4096].iter().enumerate() {
            assert_eq!((id.unix_ms(), usize::from(id.sequence())), (T, i));
        }
        assert_eq!((ids[4096].unix_ms(), ids[4096].sequence()), (T + 1, 0));
        assert!(ids.is_sorted() && ids[4095] < ids[4096]);

        // The wall clock reaches the borrowed ms: its sequence continues.
        clock.set(T + 1);
        let next = generator.next_id();
        assert_eq!((next.unix_ms(), next.sequence()), (T + 1, 1));
        // And then passes it: back on the wall clock.
        clock.set(T + 2);
        let caught_up = generator.next_id();
        assert_eq!((caught_up.unix_ms(), caught_up.sequence()), (T + 2, 0));
    }

    #[test]
    fn a_clock_before_the_epoch_issues_epoch_ids() {
        let (generator, _) = manual(0, 0);
        let ids = [generator.next_id(), generator.next_id()];
        assert_eq!(ids.map(|id| id.0), [0, 1]);
        assert_eq!(ids[1].unix_ms(), EPOCH_UNIX_MS);
    }

    #[test]
    fn a_used_up_id_space_is_an_error_and_leaves_the_state() {
        let (generator, _) = manual(5, LAST_UNIX_MS);
        for _ in 0..SEQUENCES_PER_MS {
            assert_eq!(generator.next_id().unix_ms(), LAST_UNIX_MS);
        }
        let err = generator.try_next_id().unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");

        let (generator, clock_ahead) = manual(5, u64::MAX);
        assert!(generator.try_next_id().is_err(), "a far-future clock");
        clock_ahead.set(T);
        assert_eq!(generator.next_id().unix_ms(), T, "nothing was consumed");
    }

    #[test]
    fn first_last_and_buckets_agree() {
        let (generator, _) = manual(1000, T);
        let id = generator.next_id();
        assert!(MessageId::first_at(T) <= id && id <= MessageId::last_at(T));
        assert_eq!(MessageId::last_at(T).0 + 1, MessageId::first_at(T + 1).0);
        assert_eq!(MessageId::last_at(T).unix_ms(), T);
        assert_eq!(MessageId::first_at(T).unix_ms(), T);

        let bucket = id.bucket(DEFAULT_BUCKET_MS);
        let (low, high) = bucket_bounds(bucket, DEFAULT_BUCKET_MS);
        assert!(low <= id && id <= high);
        assert_eq!(
            (
                low.bucket(DEFAULT_BUCKET_MS),
                high.bucket(DEFAULT_BUCKET_MS)
            ),
            (bucket, bucket)
        );
        assert_eq!(low.unix_ms(), EPOCH_UNIX_MS + bucket * DEFAULT_BUCKET_MS);
        assert_eq!(high.unix_ms() + 1, low.unix_ms() + DEFAULT_BUCKET_MS);
        let (next_low, _) = bucket_bounds(bucket + 1, DEFAULT_BUCKET_MS);
        assert_eq!(high.0 + 1, next_low.0, "buckets tile the id space");
        assert_eq!(
            bucket_bounds(0, 1),
            (MessageId(0), MessageId::last_at(EPOCH_UNIX_MS))
        );

        // Clamped at both ends of the range.
        assert_eq!(MessageId::first_at(0), MessageId(0));
        assert_eq!(
            MessageId::first_at(u64::MAX),
            MessageId::first_at(LAST_UNIX_MS)
        );
        assert_eq!(
            bucket_bounds(u64::MAX, DEFAULT_BUCKET_MS).1,
            MessageId::last_at(LAST_UNIX_MS)
        );
    }
}
