//! The open-loop send schedule and the time stamps that messages carry.
//!
//! Sends are due on one fixed grid, `start + j / rate`, and send `j` is
//! user `j mod users`'s: every user sends at `rate / users` per second, and
//! the sends of all users are evenly spread. A send is stamped with the
//! time it was *due*, not the time it went out: when the client or the
//! server falls behind, the delay shows as latency instead of silently
//! thinning the load (coordinated omission).

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

/// The run's due times.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    start: Instant,
    nanos_per_send: f64,
    users: usize,
    end: Instant,
}

impl Schedule {
    /// `rate` sends per second in all, shared round-robin by `users`, from
    /// the clock's start until its end.
    pub(crate) fn new(clock: &Clock, rate: f64, users: usize) -> Self {
        Self {
            start: clock.start,
            nanos_per_send: 1e9 / rate,
            users: users.max(1),
            end: clock.end,
        }
    }

    /// The `j`-th send (from 0): when it is due and whose it is, or `None`
    /// once past the end.
    pub(crate) fn due(&self, j: u64) -> Option<(Instant, usize)> {
        // Multiplying from the start each time keeps rounding errors from adding up.
        let offset = Duration::from_nanos((j as f64 * self.nanos_per_send) as u64);
        let at = self.start.checked_add(offset)?;
        let user = (j % self.users as u64) as usize;
        (at < self.end).then_some((at, user))
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
    fn sends_are_evenly_spaced_and_dealt_round_robin() {
        let origin = Instant::now();
        let clock = Clock::new(
            origin,
            origin + Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(2),
        );
        // 10 per second in all, 4 users: each user every 400 ms.
        let s = Schedule::new(&clock, 10.0, 4);
        assert_eq!(s.due(0), Some((clock.start, 0)));
        assert_eq!(
            s.due(1),
            Some((clock.start + Duration::from_millis(100), 1))
        );
        assert_eq!(
            s.due(4),
            Some((clock.start + Duration::from_millis(400), 0))
        );
        // 3 s at 10 per second: due times 0, 0.1, … 2.9 s.
        let count = (0..).take_while(|j| s.due(*j).is_some()).count();
        assert_eq!(count, 30);
        assert!(!clock.measured(s.due(9).unwrap().0));
        assert!(clock.measured(s.due(10).unwrap().0));
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
