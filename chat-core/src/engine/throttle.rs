//! [`LoginThrottle`]: failed logins per username and per client address,
//! with a lockout that doubles at each failure past the free ones.
//!
//! While a username or an address is locked out, its logins are answered
//! [`Error::RateLimited`] (429 with `Retry-After`) without hashing, the
//! right password included: guessing gets slow, and a locked-out flood
//! costs no hashing. A successful login clears its username's failures
//! (not its address's: one good account must not launder an address that
//! guesses at others). Failures are forgotten `forget_after` after the
//! last one.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::budget::AddrKey;
use crate::error::{Error, Result};

/// How the login throttle behaves.
#[derive(Clone, Debug)]
pub struct LoginThrottleConfig {
    /// Failed logins of one username before the first lockout. Default 5.
    pub free_failures: u32,
    /// Failed logins from one address before its first lockout, as a
    /// multiple of `free_failures` (an address may hold many users behind
    /// a NAT). Default 4.
    pub address_factor: u32,
    /// The first lockout; each further failure doubles it. Default 1 s.
    pub first_lockout: Duration,
    /// The longest lockout. Default 15 minutes.
    pub max_lockout: Duration,
    /// Failures are forgotten this long after the last one (counted from
    /// the end of its lockout). Default 15 minutes.
    pub forget_after: Duration,
    /// Most usernames and most addresses tracked (each); past it, entries
    /// that lock nothing are forgotten first. Default 100,000.
    pub max_entries: usize,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            address_factor: 4,
            first_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
            max_entries: 100_000,
        }
    }
}

impl LoginThrottleConfig {
    /// The lockout after the `failures`-th failure when `free` are free:
    /// none up to `free`, then `first_lockout` doubling up to `max_lockout`.
    pub fn lockout_after(&self, failures: u32, free: u32) -> Duration {
        let Some(past) = failures.checked_sub(free).filter(|p| *p > 0) else {
            return Duration::ZERO;
        };
        let doublings = (past - 1).min(40);
        self.first_lockout
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_lockout)
    }
}

struct Entry {
    failures: u32,
    locked_until: Instant,
    last_failure: Instant,
}

struct Table<K> {
    entries: Mutex<HashMap<K, Entry>>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn locked_for(&self, key: &K, now: Instant) -> Duration {
        self.entries.lock().get(key).map_or(Duration::ZERO, |e| {
            e.locked_until.saturating_duration_since(now)
        })
    }

    fn fail(&self, key: &K, free: u32, config: &LoginThrottleConfig, now: Instant) {
        let mut entries = self.entries.lock();
        if !entries.contains_key(key) && entries.len() >= config.max_entries {
            prune(&mut entries, free, config, now);
            if entries.len() >= config.max_entries {
                // Full of live lockouts: this key goes untracked rather
                // than memory growing without bound.
                return;
            }
        }
        let entry = entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            locked_until: now,
            last_failure: now,
        });
        if expired(entry, config, now) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        entry.locked_until = now + config.lockout_after(entry.failures, free);
    }

    fn clear(&self, key: &K) {
        self.entries.lock().remove(key);
    }
}

fn expired(entry: &Entry, config: &LoginThrottleConfig, now: Instant) -> bool {
    now.saturating_duration_since(entry.locked_until.max(entry.last_failure)) >= config.forget_after
}

/// Forgets expired entries, then (if still full) those that lock nothing.
fn prune<K>(
    entries: &mut HashMap<K, Entry>,
    free: u32,
    config: &LoginThrottleConfig,
    now: Instant,
) {
    entries.retain(|_, e| !expired(e, config, now));
    if entries.len() >= config.max_entries {
        entries.retain(|_, e| e.failures > free || e.locked_until > now);
    }
}

/// Failed logins per username key and per address.
pub(crate) struct LoginThrottle {
    config: LoginThrottleConfig,
    users: Table<String>,
    addrs: Table<AddrKey>,
}

impl LoginThrottle {
    pub(crate) fn new(config: LoginThrottleConfig) -> Self {
        Self {
            config,
            users: Table::new(),
            addrs: Table::new(),
        }
    }

    fn addr_free(&self) -> u32 {
        self.config
            .free_failures
            .saturating_mul(self.config.address_factor.max(1))
    }

    /// [`Error::RateLimited`] while `user_key` or `addr` is locked out.
    pub(crate) fn check(&self, user_key: &str, addr: Option<IpAddr>) -> Result<()> {
        let now = Instant::now();
        let user_wait = self.users.locked_for(&user_key.to_owned(), now);
        let addr_wait = addr.map_or(Duration::ZERO, |a| {
            self.addrs.locked_for(&AddrKey::of(a), now)
        });
        let retry_after = user_wait.max(addr_wait);
        if retry_after.is_zero() {
            Ok(())
        } else {
            Err(Error::RateLimited { retry_after })
        }
    }

    /// Counts a failed login.
    pub(crate) fn failed(&self, user_key: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        self.users.fail(
            &user_key.to_owned(),
            self.config.free_failures,
            &self.config,
            now,
        );
        if let Some(a) = addr {
            self.addrs
                .fail(&AddrKey::of(a), self.addr_free(), &self.config, now);
        }
    }

    /// A successful login clears its username's failures.
    pub(crate) fn succeeded(&self, user_key: &str) {
        self.users.clear(&user_key.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lockout_doubles_past_the_free_failures_up_to_the_cap() {
        let c = LoginThrottleConfig::default();
        let secs: Vec<u64> = (1..=17).map(|n| c.lockout_after(n, 5).as_secs()).collect();
        assert_eq!(
            secs,
            [
                0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900
            ]
        );
        assert_eq!(c.lockout_after(u32::MAX, 5), c.max_lockout);
        assert_eq!(c.lockout_after(3, u32::MAX), Duration::ZERO);
    }

    #[test]
    fn a_username_locks_after_its_free_failures_and_success_clears_it() {
        let t = LoginThrottle::new(LoginThrottleConfig::default());
        for _ in 0..5 {
            t.check("alice", None).unwrap();
            t.failed("alice", None);
        }
        t.check("alice", None).unwrap();
        t.failed("alice", None);
        let Err(Error::RateLimited { retry_after }) = t.check("alice", None) else {
            panic!("alice should be locked out");
        };
        assert!(retry_after > Duration::from_millis(900), "{retry_after:?}");
        assert!(t.check("bob", None).is_ok());
        t.succeeded("alice");
        assert!(t.check("alice", None).is_ok());
    }

    #[test]
    fn an_address_locks_after_failures_on_many_usernames() {
        let t = LoginThrottle::new(LoginThrottleConfig::default());
        let addr: IpAddr = "10.1.2.3".parse().unwrap();
        for n in 0..20 {
            t.failed(&format!("user{n}"), Some(addr));
        }
        assert!(t.check("fresh", Some(addr)).is_ok());
        t.failed("user20", Some(addr));
        assert!(t.check("fresh", Some(addr)).is_err());
        assert!(t.check("fresh", Some("10.1.2.4".parse().unwrap())).is_ok());
    }

    #[test]
    fn tracked_entries_are_bounded() {
        let t = LoginThrottle::new(LoginThrottleConfig {
            max_entries: 100,
            ..LoginThrottleConfig::default()
        });
        for n in 0..10_000 {
            t.failed(&format!("user{n}"), None);
        }
        assert!(t.users.entries.lock().len() <= 100);
    }
}
