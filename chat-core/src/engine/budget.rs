//! Write budgets: one token bucket per user and one per client address,
//! shared by every session and HTTP request of that user or address on
//! this node, and the per-conversation gate of typing fan-out in big groups.
//!
//! Per node, not cluster-wide: a cluster-wide budget would cost a Redis
//! round trip per frame, and discovery sends each user to one node, so its
//! sessions share one budget there. docs/security.md says what that leaves.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Engine;
use crate::error::{Error, Result};
use crate::model::{ConversationId, UserId};

/// What a write costs. Frames that only move a cursor or prove liveness
/// (ack, read, ping) cost a quarter: a client acks every message it
/// receives, and its budget must not run out just by reading a busy group.
pub mod cost {
    /// A send, a typing frame, a history or sync request, a presence
    /// subscription, an HTTP write.
    pub const WRITE: f64 = 1.0;
    /// An ack, a read or a ping.
    pub const LIGHT: f64 = 0.25;
}

/// What one client frame costs.
pub(crate) fn frame_cost(frame: &crate::protocol::ClientFrame) -> f64 {
    use crate::protocol::ClientFrame as F;
    match frame {
        F::Ack { .. } | F::Read { .. } | F::Ping { .. } => cost::LIGHT,
        _ => cost::WRITE,
    }
}

/// A token bucket's shape: `rate` tokens per second on average, `burst` at
/// once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetRate {
    /// Tokens per second.
    pub rate: f64,
    /// Most tokens saved up (at least one).
    pub burst: f64,
}

impl BudgetRate {
    /// `None` (no budget) for a rate that is 0, negative or not finite.
    pub fn new(rate: f64, burst: f64) -> Option<Self> {
        (rate.is_finite() && rate > 0.0).then(|| Self {
            rate,
            burst: if burst.is_finite() {
                burst.max(1.0)
            } else {
                1.0
            },
        })
    }
}

/// A client address as budgets and connection caps count it: an IPv4
/// address (also when it arrives IPv4-mapped), or an IPv6 address's /64,
/// since one IPv6 client usually holds a whole /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// The tokens at `now` (refilled, not taken).
    fn level(&self, rate: BudgetRate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * rate.rate).min(rate.burst)
    }
}

/// Shards of each map: budget checks of different users rarely share a lock.
const SHARDS: usize = 16;
/// Entries a shard holds before it drops the ones that are full again
/// (those are the same as no entry).
const PRUNE_AT: usize = 1024;

/// Token buckets by key, created full at first use.
struct Buckets<K> {
    rate: BudgetRate,
    shards: Vec<Mutex<Shard<K>>>,
    hasher: std::collections::hash_map::RandomState,
}

struct Shard<K> {
    map: HashMap<K, Bucket>,
    prune_at: usize,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(rate: BudgetRate) -> Self {
        Self {
            rate,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        prune_at: PRUNE_AT,
                    })
                })
                .collect(),
            hasher: Default::default(),
        }
    }

    fn shard(&self, key: &K) -> &Mutex<Shard<K>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }
}

impl<K> Shard<K> {
    /// Drops full buckets once the map has grown past `prune_at`, so that
    /// memory follows the number of keys active lately, not ever.
    fn prune(&mut self, rate: BudgetRate, now: Instant) {
        if self.map.len() < self.prune_at {
            return;
        }
        self.map.retain(|_, b| b.level(rate, now) < rate.burst);
        self.prune_at = (self.map.len() * 2).max(PRUNE_AT);
    }
}

/// The write budgets of one engine.
pub(crate) struct Budgets {
    users: Option<Buckets<UserId>>,
    addrs: Option<Buckets<AddrKey>>,
}

impl Budgets {
    pub(crate) fn new(user: Option<BudgetRate>, addr: Option<BudgetRate>) -> Self {
        Self {
            users: user.map(Buckets::new),
            addrs: addr.map(Buckets::new),
        }
    }

    /// Takes `cost` from the user's bucket and the address's, both or
    /// neither. `Err` holds how long until both could pay.
    pub(crate) fn charge(
        &self,
        user: Option<&UserId>,
        addr: Option<AddrKey>,
        cost: f64,
    ) -> std::result::Result<(), Duration> {
        self.charge_at(user, addr, cost, Instant::now())
    }

    fn charge_at(
        &self,
        user: Option<&UserId>,
        addr: Option<AddrKey>,
        cost: f64,
        now: Instant,
    ) -> std::result::Result<(), Duration> {
        // Locks always in this order (user, then address): no deadlock.
        let mut user_slot = match (&self.users, user) {
            (Some(b), Some(u)) => Some((b.rate, u, b.shard(u).lock())),
            _ => None,
        };
        let mut addr_slot = match (&self.addrs, addr) {
            (Some(b), Some(a)) => Some((b.rate, a, b.shard(&a).lock())),
            _ => None,
        };
        let mut wait = Duration::ZERO;
        let user_level = user_slot.as_ref().map(|(rate, u, shard)| {
            let level = shard
                .map
                .get(*u)
                .map_or(rate.burst, |b| b.level(*rate, now));
            wait = wait.max(shortfall(*rate, level, cost));
            level
        });
        let addr_level = addr_slot.as_ref().map(|(rate, a, shard)| {
            let level = shard.map.get(a).map_or(rate.burst, |b| b.level(*rate, now));
            wait = wait.max(shortfall(*rate, level, cost));
            level
        });
        if !wait.is_zero() {
            return Err(wait);
        }
        if let (Some((rate, u, shard)), Some(level)) = (&mut user_slot, user_level) {
            shard.prune(*rate, now);
            shard.map.insert(
                (*u).clone(),
                Bucket {
                    tokens: level - cost,
                    last: now,
                },
            );
        }
        if let (Some((rate, a, shard)), Some(level)) = (&mut addr_slot, addr_level) {
            shard.prune(*rate, now);
            shard.map.insert(
                *a,
                Bucket {
                    tokens: level - cost,
                    last: now,
                },
            );
        }
        Ok(())
    }
}

/// How long until a bucket at `level` holds `cost`.
fn shortfall(rate: BudgetRate, level: f64, cost: f64) -> Duration {
    // A cost above the burst could never be paid: charge it as the burst.
    let missing = cost.min(rate.burst) - level;
    if missing <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(missing / rate.rate)
    }
}

/// Typing frames of one big conversation fanned out per second on
/// average, whoever types, and at once.
const TYPING_PER_SECOND: f64 = 1.0;
const TYPING_BURST: f64 = 3.0;

/// Conversations with more other members than this have their typing
/// fan-out gated.
pub(crate) const TYPING_GATED_ABOVE: usize = 32;

/// The per-conversation gate of typing fan-out in big groups: one typing
/// frame costs a frame per online member, so in a group of thousands a few
/// typists would flood everyone. Typing is a hint: what the gate holds
/// back is dropped, not refused.
pub(crate) struct TypingGate {
    buckets: Buckets<ConversationId>,
}

impl Default for TypingGate {
    fn default() -> Self {
        Self {
            buckets: Buckets::new(BudgetRate {
                rate: TYPING_PER_SECOND,
                burst: TYPING_BURST,
            }),
        }
    }
}

impl TypingGate {
    /// Whether a typing frame of `conversation` may go out now.
    pub(crate) fn pass(&self, conversation: &ConversationId) -> bool {
        let now = Instant::now();
        let rate = self.buckets.rate;
        let mut shard = self.buckets.shard(conversation).lock();
        let level = shard
            .map
            .get(conversation)
            .map_or(rate.burst, |b| b.level(rate, now));
        if level < 1.0 {
            return false;
        }
        shard.prune(rate, now);
        shard.map.insert(
            conversation.clone(),
            Bucket {
                tokens: level - 1.0,
                last: now,
            },
        );
        true
    }
}

impl Engine {
    /// Charges one write of `cost` (see [`cost`]) to `user`'s budget and to
    /// the budget of the client address `addr`, both or neither;
    /// [`Error::RateLimited`] with the wait when either is spent. The HTTP
    /// API calls this for every write; sessions for every frame.
    pub fn charge_write(
        &self,
        user: Option<&UserId>,
        addr: Option<IpAddr>,
        cost: f64,
    ) -> Result<()> {
        self.inner
            .budgets
            .charge(user, addr.map(AddrKey::of), cost)
            .map_err(|retry_after| {
                self.inner
                    .observer
                    .event(&crate::observe::Event::RateLimited { source: "http" });
                Error::RateLimited { retry_after }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(rate: f64, burst: f64) -> Option<BudgetRate> {
        BudgetRate::new(rate, burst)
    }

    #[test]
    fn a_budget_allows_its_burst_then_refills_at_its_rate() {
        let budgets = Budgets::new(rate(10.0, 3.0), None);
        let u = UserId::from("u");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(budgets.charge_at(Some(&u), None, 1.0, t0).is_ok());
        }
        let wait = budgets.charge_at(Some(&u), None, 1.0, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        let later = t0 + Duration::from_millis(100);
        assert!(budgets.charge_at(Some(&u), None, 1.0, later).is_ok());
        // Another user has its own bucket.
        assert!(
            budgets
                .charge_at(Some(&UserId::from("v")), None, 1.0, t0)
                .is_ok()
        );
    }

    #[test]
    fn both_budgets_pay_or_neither_does() {
        let budgets = Budgets::new(rate(1.0, 2.0), rate(1.0, 3.0));
        let (a, b) = (UserId::from("a"), UserId::from("b"));
        let addr = Some(AddrKey::of("10.0.0.1".parse().unwrap()));
        let t0 = Instant::now();
        assert!(budgets.charge_at(Some(&a), addr, 1.0, t0).is_ok());
        assert!(budgets.charge_at(Some(&a), addr, 1.0, t0).is_ok());
        // a is spent; the refused charge must not take from the address.
        assert!(budgets.charge_at(Some(&a), addr, 1.0, t0).is_err());
        assert!(budgets.charge_at(Some(&b), addr, 1.0, t0).is_ok());
        // Now the address is spent, whoever the user.
        assert!(budgets.charge_at(Some(&b), addr, 1.0, t0).is_err());
        assert!(budgets.charge_at(Some(&b), None, 1.0, t0).is_ok());
    }

    #[test]
    fn light_frames_cost_a_quarter() {
        let budgets = Budgets::new(rate(1.0, 1.0), None);
        let u = UserId::from("u");
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(budgets.charge_at(Some(&u), None, cost::LIGHT, t0).is_ok());
        }
        assert!(budgets.charge_at(Some(&u), None, cost::LIGHT, t0).is_err());
    }

    #[test]
    fn no_rate_means_no_budget() {
        assert_eq!(BudgetRate::new(0.0, 10.0), None);
        assert_eq!(BudgetRate::new(f64::NAN, 10.0), None);
        let budgets = Budgets::new(None, None);
        let u = UserId::from("u");
        assert!((0..10_000).all(|_| budgets.charge(Some(&u), None, 1.0).is_ok()));
    }

    #[test]
    fn full_buckets_are_pruned_so_memory_follows_active_keys() {
        let budgets = Budgets::new(rate(1000.0, 1.0), None);
        let t0 = Instant::now();
        // One new user per millisecond: each bucket is full again 1 ms on.
        for i in 0..(SHARDS * PRUNE_AT * 4) {
            let u = UserId::from(format!("u{i}"));
            let now = t0 + Duration::from_millis(i as u64);
            budgets.charge_at(Some(&u), None, 1.0, now).unwrap();
        }
        let held: usize = budgets
            .users
            .as_ref()
            .unwrap()
            .shards
            .iter()
            .map(|s| s.lock().map.len())
            .sum();
        assert!(held <= SHARDS * PRUNE_AT, "{held}");
    }

    #[test]
    fn addresses_group_ipv6_by_slash_64_and_unmap_ipv4() {
        let key = |s: &str| AddrKey::of(s.parse().unwrap());
        assert_eq!(key("2001:db8::1"), key("2001:db8::2:3"));
        assert_ne!(key("2001:db8::1"), key("2001:db8:0:1::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
    }

    #[test]
    fn the_typing_gate_lets_a_burst_through_then_one_per_second() {
        let gate = TypingGate::default();
        let c = ConversationId::from("g_1");
        assert!((0..3).all(|_| gate.pass(&c)));
        assert!(!gate.pass(&c));
        assert!(gate.pass(&ConversationId::from("g_2")));
    }
}
