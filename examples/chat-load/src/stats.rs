//! What the connections count ([`Stats`], kept in a few locked shards by
//! a [`Recorder`] and merged at the end), the run-wide counters that tell
//! when everything has arrived ([`Progress`]), and latency histograms
//! ([`Latency`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency kept apart, in microseconds (60 s); longer ones are
/// recorded as 60 s.
const HIGHEST_MICROS: u64 = 60_000_000;

/// A latency histogram in microseconds, 3 significant digits.
#[derive(Clone, Debug)]
pub(crate) struct Latency(Histogram<u64>);

impl Latency {
    /// An empty histogram.
    pub(crate) fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts.
        Self(Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds"))
    }

    /// Records one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.clamp(1, HIGHEST_MICROS));
    }

    /// Adds another histogram's counts to this one.
    pub(crate) fn merge(&mut self, other: &Self) {
        // Same bounds on both sides: adding cannot fail.
        self.0.add(&other.0).expect("histograms of equal bounds");
    }

    /// Count and percentiles, in milliseconds.
    pub(crate) fn summary(&self) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let q = |q: f64| ms(self.0.value_at_quantile(q));
        Percentiles {
            count: self.0.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: ms(self.0.max()),
        }
    }
}

/// A latency distribution in milliseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Percentiles {
    /// How many were recorded.
    pub(crate) count: u64,
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// 99.9th percentile.
    pub(crate) p999: f64,
    /// Largest.
    pub(crate) max: f64,
}

/// What some connections saw. Only sends due in the measured window are
/// counted and timed, at the sender and at every recipient.
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    /// Sends written.
    pub(crate) sends: u64,
    /// From due time to the `sent` answer.
    pub(crate) sent: Latency,
    /// From due time to the `message` frame at a recipient.
    pub(crate) delivery: Latency,
    /// From due time to the moment the send was written: how far the
    /// client itself fell behind its schedule.
    pub(crate) lag: Latency,
    /// `message` frames received.
    pub(crate) deliveries: u64,
    /// `error` frames by code, whenever they came.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Connections the server closed (or that failed) before the end.
    pub(crate) dropped: usize,
    /// Those closes by WebSocket close code ("none": no close frame).
    pub(crate) closes: BTreeMap<String, u64>,
    /// Receipt frames (`receipt` and coalesced `receipts`) received.
    pub(crate) receipt_frames: u64,
}

impl Stats {
    /// Nothing counted yet.
    pub(crate) fn new() -> Self {
        Self {
            sends: 0,
            sent: Latency::new(),
            delivery: Latency::new(),
            lag: Latency::new(),
            deliveries: 0,
            errors: BTreeMap::new(),
            dropped: 0,
            closes: BTreeMap::new(),
            receipt_frames: 0,
        }
    }

    /// Adds another connection's counts to these.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.sends += other.sends;
        self.sent.merge(&other.sent);
        self.delivery.merge(&other.delivery);
        self.lag.merge(&other.lag);
        self.deliveries += other.deliveries;
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
        self.dropped += other.dropped;
        for (code, n) in &other.closes {
            *self.closes.entry(code.clone()).or_default() += n;
        }
        self.receipt_frames += other.receipt_frames;
    }

    /// Counts an error by its code.
    pub(crate) fn error(&mut self, code: &str) {
        *self.errors.entry(code.to_owned()).or_default() += 1;
    }
}

/// Where the connections record: a histogram set costs about 400 KiB
/// (three of them, 3 significant digits up to 60 s), too much to keep one
/// per connection with thousands of them, so connections share a few
/// shards, each behind its own lock (held for one record at a time).
#[derive(Debug)]
pub(crate) struct Recorder {
    shards: Vec<Mutex<Stats>>,
}

/// Shards of a [`Recorder`]: enough that two cores rarely meet on a lock.
const SHARDS: usize = 16;

impl Recorder {
    /// An empty recorder.
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Stats::new())).collect(),
        }
    }

    /// Records into the shard of connection `index`.
    pub(crate) fn with<T>(&self, index: usize, f: impl FnOnce(&mut Stats) -> T) -> T {
        let mut shard = self.shards[index % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut shard)
    }

    /// Everything recorded, merged.
    pub(crate) fn merged(&self) -> Stats {
        let mut all = Stats::new();
        for i in 0..SHARDS {
            self.with(i, |s| all.merge(s));
        }
        all
    }
}

/// Run-wide counters, warm-up included, that tell when every send has been
/// answered and every expected delivery has come.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// `send` frames written.
    pub(crate) written: AtomicU64,
    /// `sent` or `error` answers to them.
    pub(crate) answered: AtomicU64,
    /// Deliveries the `sent` answers promise (recipients that are connected).
    pub(crate) expected: AtomicU64,
    /// `message` frames received.
    pub(crate) delivered: AtomicU64,
}

impl Progress {
    /// Adds one to a counter.
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Every send answered and every promised delivery received.
    pub(crate) fn settled(&self) -> bool {
        let written = self.written.load(Ordering::Relaxed);
        let answered = self.answered.load(Ordering::Relaxed);
        let expected = self.expected.load(Ordering::Relaxed);
        let delivered = self.delivered.load(Ordering::Relaxed);
        answered >= written && delivered >= expected
    }

    /// Sends never answered, and promised deliveries that never came.
    pub(crate) fn missing(&self) -> (u64, u64) {
        let written = self.written.load(Ordering::Relaxed);
        let answered = self.answered.load(Ordering::Relaxed);
        let expected = self.expected.load(Ordering::Relaxed);
        let delivered = self.delivered.load(Ordering::Relaxed);
        (
            written.saturating_sub(answered),
            expected.saturating_sub(delivered),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_merge_and_summarize_in_milliseconds() {
        let mut a = Latency::new();
        for ms in 1..=100 {
            a.record(Duration::from_millis(ms));
        }
        let mut b = Latency::new();
        b.record(Duration::from_secs(3600));
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 101);
        assert!((s.p50 - 51.0).abs() < 0.1, "p50 {}", s.p50);
        assert!((s.max - 60_000.0).abs() < 60.0, "max {}", s.max);
    }

    #[test]
    fn shards_merge_counts_and_errors() {
        let r = Recorder::new();
        r.with(0, |s| {
            s.sends = 2;
            s.error("rate_limited");
        });
        r.with(SHARDS + 3, |s| {
            s.deliveries = 5;
            s.error("rate_limited");
            s.error("not_member");
            s.dropped += 1;
        });
        r.with(3, |s| s.delivery.record(Duration::from_millis(2)));
        let all = r.merged();
        assert_eq!((all.sends, all.deliveries, all.dropped), (2, 5, 1));
        assert_eq!(all.errors["rate_limited"], 2);
        assert_eq!(all.errors["not_member"], 1);
        assert_eq!(all.delivery.summary().count, 1);
    }

    #[test]
    fn progress_settles_when_all_is_answered_and_delivered() {
        let p = Progress::default();
        assert!(p.settled());
        Progress::bump(&p.written, 2);
        Progress::bump(&p.answered, 2);
        Progress::bump(&p.expected, 3);
        Progress::bump(&p.delivered, 2);
        assert!(!p.settled());
        assert_eq!(p.missing(), (0, 1));
        Progress::bump(&p.delivered, 1);
        assert!(p.settled());
    }
}
