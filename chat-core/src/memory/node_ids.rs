//! [`MemoryNodeIds`]: worker id claims with leases, in process memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::cluster::{NodeIds, NodeLease, Renewal};
use crate::error::{Error, Result};
use crate::id::MAX_WORKERS;
use crate::model::Millis;

/// [`NodeIds`] in memory: the single-node default (a private one, which
/// nobody else claims from), and the reference that the conformance suite
/// holds other adapters to. Clones share the claims, so several engines of
/// one process can claim from one as nodes of one deployment.
///
/// A claim lapses `ttl` after it was made or last renewed, by the
/// process's monotonic clock. [`MemoryNodeIds::claim`] without an id takes
/// the lowest free one.
#[derive(Clone, Debug, Default)]
pub struct MemoryNodeIds {
    claims: Arc<Mutex<HashMap<u16, Claim>>>,
}

#[derive(Clone, Debug)]
struct Claim {
    token: u64,
    holder: String,
    expires: Instant,
}

impl Claim {
    fn live(&self, now: Instant) -> bool {
        self.expires > now
    }
}

fn expiry(now: Instant, ttl: Millis) -> Instant {
    now + Duration::from_millis(u64::try_from(ttl).unwrap_or(0))
}

impl MemoryNodeIds {
    /// No id claimed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every claim, as a store that lost its data (a Redis
    /// restarted without persistence) would: the holders find their claims
    /// gone at their next renewal.
    pub fn wipe(&self) {
        self.claims.lock().clear();
    }

    /// Claims `wanted` (or the lowest free id) for `ttl` ms; see [`NodeIds::claim`].
    pub fn claim_now(&self, wanted: Option<u16>, holder: &str, ttl: Millis) -> Result<MemoryLease> {
        let now = Instant::now();
        let mut claims = self.claims.lock();
        let id = match wanted {
            Some(id) if id >= MAX_WORKERS => {
                return Err(Error::invalid(format!(
                    "node id {id} is out of range: at most {}",
                    MAX_WORKERS - 1
                )));
            }
            Some(id) => {
                if let Some(other) = claims.get(&id).filter(|c| c.live(now)) {
                    return Err(Error::already_exists(format!(
                        "node id {id} (held by {}, for {} more ms unless renewed)",
                        other.holder,
                        other.expires.saturating_duration_since(now).as_millis()
                    )));
                }
                id
            }
            None => (0..MAX_WORKERS)
                .find(|id| !claims.get(id).is_some_and(|c| c.live(now)))
                .ok_or_else(|| {
                    Error::unavailable_msg(format!("all {MAX_WORKERS} node ids are in use"))
                })?,
        };
        let token = rand::random();
        claims.insert(
            id,
            Claim {
                token,
                holder: holder.to_owned(),
                expires: expiry(now, ttl),
            },
        );
        Ok(MemoryLease {
            ids: self.clone(),
            id,
            token,
            holder: holder.to_owned(),
        })
    }
}

#[async_trait]
impl NodeIds for MemoryNodeIds {
    async fn claim(
        &self,
        wanted: Option<u16>,
        holder: &str,
        ttl: Millis,
    ) -> Result<Box<dyn NodeLease>> {
        Ok(Box::new(self.claim_now(wanted, holder, ttl)?))
    }
}

/// One claim of a [`MemoryNodeIds`].
#[derive(Debug)]
pub struct MemoryLease {
    ids: MemoryNodeIds,
    id: u16,
    token: u64,
    holder: String,
}

#[async_trait]
impl NodeLease for MemoryLease {
    fn worker_id(&self) -> u16 {
        self.id
    }

    async fn renew(&self, ttl: Millis) -> Result<Renewal> {
        let now = Instant::now();
        let mut claims = self.ids.claims.lock();
        let renewal = match claims.get_mut(&self.id) {
            Some(claim) if claim.token == self.token => {
                // Ours, even if it lapsed meanwhile: nobody took it.
                let lapsed = !claim.live(now);
                claim.expires = expiry(now, ttl);
                return Ok(if lapsed {
                    Renewal::Reclaimed
                } else {
                    Renewal::Held
                });
            }
            Some(claim) if claim.live(now) => {
                return Ok(Renewal::Lost {
                    holder: Some(claim.holder.clone()),
                });
            }
            _ => Renewal::Reclaimed,
        };
        claims.insert(
            self.id,
            Claim {
                token: self.token,
                holder: self.holder.clone(),
                expires: expiry(now, ttl),
            },
        );
        Ok(renewal)
    }

    async fn release(&self) -> Result<()> {
        let mut claims = self.ids.claims.lock();
        if claims.get(&self.id).is_some_and(|c| c.token == self.token) {
            claims.remove(&self.id);
        }
        Ok(())
    }
}
