//! The open-loop send schedule and the time stamps that messages carry.
//!
//! Every user sends on a fixed grid (`first + k × interval`), with the users'
//! grids offset so that the sends of all users are evenly spread. A send is
//! stamped with the time it was *due*, not the time it went out: when the
//! client or the server falls behind, the delay shows as latency instead of
//! silently thinning the load (coordinated omission).

use std::time::{Duration, Instant};

/// The run's time line, shared by all users: where stamps count from, and
/// which due times fall in the measured window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: Instant,
    /// First due time of the schedule (the warm-up begins).
    pub(crate) start: Instant,
    /// Measuring begins (the warm-up ends).
    pub(crate) measure_from: Instant,
    /// Measuring ends, and so does sending.
    pub(crate) end: Instant,
}

impl Clock {
    /// A time line that starts sending at `start`.
    pub(crate) fn new(
        origin: Instant,
        start: Instant,
        warmup: Duration,
        duration: Duration,
    ) -> Self {
        let measure_from = start + warmup;
        Self {
            origin,
            start,
            measure_from,
            end: measure_from + duration,
        }
    }

    /// `at` as nanoseconds since the origin, the stamp carried on the wire.
    pub(crate) fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant a stamp names.
    pub(crate) fn instant(&self, stamp: u64) -> Instant {
        self.origin + Duration::from_nanos(stamp)
    }

    /// Whether a send due at `at` is measured (not warm-up).
    pub(crate) fn measured(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.end
    }
}

/// One user's due times.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    first: Instant,
    interval: Duration,
    end: Instant,
}

impl Schedule {
    /// User `index` of `users`, each sending every `interval` from the
    /// clock's start until its end. User `i` starts `i / users` of an
    /// interval late, so the sends of all users are evenly spaced.
    pub(crate) fn for_user(clock: &Clock, index: usize, users: usize, interval: Duration) -> Self {
        let phase = interval.mul_f64(index as f64 / users.max(1) as f64);
        Self {
            first: clock.start + phase,
            interval,
            end: clock.end,
        }
    }

    /// The `k`-th due time (from 0), or `None` once past the end.
    pub(crate) fn due(&self, k: u64) -> Option<Instant> {
        // Multiplying from `first` each time keeps rounding errors from adding up.
        let offset = self.interval.checked_mul(u32::try_from(k).ok()?)?;
        let at = self.first.checked_add(offset)?;
        (at < self.end).then_some(at)
    }
}

/// Whether a send goes to a direct chat or to the sender's group (the
/// reader needs it to know how many deliveries to expect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A direct chat: one recipient.
    Direct,
    /// The sender's group: every other connected member.
    Group,
}

/// The `id` of a `send` frame: its kind and its due stamp, so that the
/// `sent` answer (which echoes it as `reply_to`) carries both back.
pub(crate) fn request_id(kind: Kind, stamp: u64) -> String {
    let tag = match kind {
        Kind::Direct => 'd',
        Kind::Group => 'g',
    };
    format!("{tag}{stamp}")
}

/// Reads back what [`request_id`] wrote.
pub(crate) fn parse_request_id(id: &str) -> Option<(Kind, u64)> {
    let kind = match id.as_bytes().first()? {
        b'd' => Kind::Direct,
        b'g' => Kind::Group,
        _ => return None,
    };
    Some((kind, id[1..].parse().ok()?))
}

/// A message body of `len` bytes (or just the stamp, when that is longer)
/// that starts with the due stamp: `<stamp>;` and then padding.
pub(crate) fn body(stamp: u64, len: usize) -> String {
    let mut body = format!("{stamp};");
    if body.len() < len {
        body.extend(std::iter::repeat_n('x', len - body.len()));
    }
    body
}

/// The due stamp at the start of a body that [`body`] wrote.
pub(crate) fn parse_body(body: &str) -> Option<u64> {
    body.split_once(';')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_spread_evenly_over_one_interval() {
        let origin = Instant::now();
        let clock = Clock::new(
            origin,
            origin + Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(2),
        );
        let interval = Duration::from_millis(400);
        let a = Schedule::for_user(&clock, 0, 4, interval);
        let b = Schedule::for_user(&clock, 1, 4, interval);
        assert_eq!(a.due(0), Some(clock.start));
        assert_eq!(b.due(0), Some(clock.start + Duration::from_millis(100)));
        assert_eq!(a.due(3), Some(clock.start + Duration::from_millis(1200)));
        // 3 s of schedule at one send per 400 ms: due times 0, 0.4, … 2.8 s.
        let count = (0..).take_while(|k| a.due(*k).is_some()).count();
        assert_eq!(count, 8);
        assert!(!clock.measured(a.due(2).unwrap()));
        assert!(clock.measured(a.due(3).unwrap()));
        assert!(!clock.measured(clock.end));
    }

    #[test]
    fn stamps_round_trip_through_ids_and_bodies() {
        let origin = Instant::now();
        let clock = Clock::new(origin, origin, Duration::ZERO, Duration::from_secs(1));
        let at = origin + Duration::from_micros(1234);
        let stamp = clock.stamp(at);
        assert_eq!(clock.instant(stamp), at);
        let id = request_id(Kind::Group, stamp);
        assert_eq!(parse_request_id(&id), Some((Kind::Group, stamp)));
        assert_eq!(parse_request_id("cli-1"), None);
        let b = body(stamp, 100);
        assert_eq!(b.len(), 100);
        assert_eq!(parse_body(&b), Some(stamp));
        assert_eq!(parse_body(&body(stamp, 0)), Some(stamp));
        assert_eq!(parse_body("hello"), None);
    }
}
