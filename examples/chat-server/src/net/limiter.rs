//! [`ConnLimiter`]: open connections overall and per client address, and
//! the [`ConnPermit`] each accepted connection holds until it closes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chat_core::engine::AddrKey;
use parking_lot::Mutex;

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its address holds `--max-connections-per-addr` already: 429.
    AddressFull,
    /// The server holds `--max-connections` already: 503.
    ServerFull,
}

/// Counts open connections against the two caps.
pub(crate) struct ConnLimiter {
    max_total: usize,
    max_per_addr: Option<usize>,
    total: AtomicUsize,
    per_addr: Mutex<HashMap<AddrKey, usize>>,
}

impl ConnLimiter {
    pub(crate) fn new(max_total: usize, max_per_addr: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_addr,
            total: AtomicUsize::new(0),
            per_addr: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for a connection from `ip`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Refusal> {
        let key = AddrKey::of(ip);
        let mut per_addr = self.per_addr.lock();
        // Under the lock, so that two accepts cannot both take the last place.
        if self.total.load(Ordering::Relaxed) >= self.max_total {
            return Err(Refusal::ServerFull);
        }
        let count = per_addr.entry(key).or_insert(0);
        if self.max_per_addr.is_some_and(|max| *count >= max) {
            return Err(Refusal::AddressFull);
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(ConnPermit {
            limiter: self.clone(),
            key,
        })
    }

    /// Open connections now.
    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    fn release(&self, key: AddrKey) {
        let mut per_addr = self.per_addr.lock();
        if let Some(count) = per_addr.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                // No entry per address that once connected: the map stays
                // as small as the set of addresses connected now.
                per_addr.remove(&key);
            }
        }
        self.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection's place in the caps, given back when dropped.
pub(crate) struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    key: AddrKey,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limiter.release(self.key);
    }
}

/// Sockets kept free below the open-file limit when `--max-connections`
/// is automatic: the store's and cluster's connections, log files, and the
/// sockets being answered with a refusal.
const FD_RESERVE: u64 = 512;

/// The automatic `--max-connections`: the open-file limit (raised to its
/// hard maximum first, as far as the process may) less [`FD_RESERVE`], or a
/// quarter of it when that limit is small. Without a way to read the
/// limit, 10,000.
pub(crate) fn auto_max_connections() -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.maximum != limit.current {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                limit = raised;
            }
        }
        match limit.current {
            Some(files) => {
                let reserve = FD_RESERVE.min(files / 4);
                usize::try_from(files - reserve).unwrap_or(usize::MAX)
            }
            // No limit at all.
            None => 1_000_000,
        }
    }
    #[cfg(not(unix))]
    {
        10_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_address_and_overall_and_free_on_drop() {
        let limiter = ConnLimiter::new(3, Some(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limiter.admit(a).unwrap();
        let _a2 = limiter.admit(a).unwrap();
        assert_eq!(limiter.admit(a).err(), Some(Refusal::AddressFull));
        let _b1 = limiter.admit(b).unwrap();
        assert_eq!(limiter.admit(b).err(), Some(Refusal::ServerFull));
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.admit(b).is_ok());
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_address() {
        let limiter = ConnLimiter::new(100, Some(1));
        let _one = limiter.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(
            limiter.admit("2001:db8::ffff:2".parse().unwrap()).err(),
            Some(Refusal::AddressFull)
        );
        assert!(limiter.admit("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn the_automatic_cap_is_below_the_file_limit() {
        let max = auto_max_connections();
        assert!(max >= 16, "{max}");
    }
}
