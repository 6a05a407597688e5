//! A token bucket per session: `rate` frames per second on average, `burst` at once.

use std::time::Instant;

pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_burst_then_refills_at_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(10, 3);
        b.last = start;
        assert!((0..3).all(|_| b.try_take_at(start)));
        assert!(!b.try_take_at(start));
        // 100 ms at 10/s gives one token back.
        assert!(b.try_take_at(start + Duration::from_millis(100)));
        assert!(!b.try_take_at(start + Duration::from_millis(100)));
    }
}
