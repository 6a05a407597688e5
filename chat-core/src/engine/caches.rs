//! What a node remembers so that the hot paths cost no store round trip:
//! which devices are valid (a token check per request and connection), who
//! blocks whom (a check per direct send), each conversation's head (the id
//! and version a send appends at) and member list (push, receipts).
//!
//! Every cache is a hint that is checked where it matters or expires:
//! - devices: a removed device is announced on the cluster topic and
//!   forgotten everywhere before the removal answers (see `confirm`);
//!   entries also expire after a minute, and all are forgotten when the
//!   bus comes back after an outage (notices may have been missed);
//! - blocks: the same, on the cluster topic;
//! - heads: an append at a stale head fails its condition and re-reads it;
//! - members: keyed by the head version they were read at.
//!
//! Each map is bounded: past its size it is emptied and refills on demand
//! (a cheap, predictable bound; a miss costs one store read).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use super::Inner;
use crate::auth::Identity;
use crate::error::{Error, Result};
use crate::model::{ConversationId, DeviceId, Head, Member, UserId};

/// How long a device or block entry is trusted without a notice.
const TTL: Duration = Duration::from_secs(60);
/// Most entries per map.
const MAX_ENTRIES: usize = 200_000;

/// A bounded map of values with the time they were read.
struct Bounded<K, V> {
    map: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    fn get(&self, key: &K, ttl: Option<Duration>) -> Option<V> {
        let map = self.map.read();
        let (at, value) = map.get(key)?;
        match ttl {
            Some(ttl) if at.elapsed() > ttl => None,
            _ => Some(value.clone()),
        }
    }

    fn put(&self, key: K, value: V) {
        let mut map = self.map.write();
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, (Instant::now(), value));
    }

    fn remove(&self, key: &K) {
        self.map.write().remove(key);
    }

    fn clear(&self) {
        self.map.write().clear();
    }
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
        }
    }
}

/// The node's caches (see the module docs).
#[derive(Default)]
pub(crate) struct Caches {
    /// Devices known to exist, with their user.
    devices: Bounded<DeviceId, UserId>,
    /// Blocker → whom it blocks.
    blocks: Bounded<UserId, Arc<HashSet<UserId>>>,
    heads: Bounded<ConversationId, Head>,
    /// Member lists with the head version they were read at.
    members: Bounded<ConversationId, (u64, Arc<Vec<Member>>)>,
}

impl Caches {
    pub(crate) fn forget_device(&self, device: &DeviceId) {
        self.devices.remove(device);
    }

    pub(crate) fn forget_blocks(&self, user: &UserId) {
        self.blocks.remove(user);
    }

    /// Forgets every device and block: after the bus was down, this node
    /// may have missed the notices that would have made it forget some.
    pub(crate) fn forget_devices_and_blocks(&self) {
        self.devices.clear();
        self.blocks.clear();
    }

    pub(crate) fn head(&self, c: &ConversationId) -> Option<Head> {
        self.heads.get(c, None)
    }

    /// Notes a head seen (an append's or a conflict's); never moves back.
    pub(crate) fn saw_head(&self, c: &ConversationId, head: Head) {
        let newer = self
            .heads
            .get(c, None)
            .is_none_or(|old| (head.version, head.last_id) >= (old.version, old.last_id));
        if newer {
            self.heads.put(c.clone(), head);
        }
    }
}

impl Inner {
    /// The device of a verified token must still exist, for its user.
    pub(crate) async fn check_device(&self, identity: &Identity) -> Result<()> {
        if let Some(user) = self.caches.devices.get(&identity.device_id, Some(TTL)) {
            return if user == identity.user_id {
                Ok(())
            } else {
                Err(Error::unauthorized(
                    "the token's device belongs to another user",
                ))
            };
        }
        match self.accounts.device(&identity.device_id).await? {
            Some(device) if device.user_id == identity.user_id => {
                self.caches
                    .devices
                    .put(identity.device_id.clone(), device.user_id);
                Ok(())
            }
            _ => Err(Error::unauthorized("the token's device was logged out")),
        }
    }

    /// Whether `blocker` blocks `blocked`.
    pub(crate) async fn blocks(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        if let Some(set) = self.caches.blocks.get(blocker, Some(TTL)) {
            return Ok(set.contains(blocked));
        }
        let set: HashSet<UserId> = self
            .accounts
            .blocked_by(blocker)
            .await?
            .into_iter()
            .collect();
        let answer = set.contains(blocked);
        self.caches.blocks.put(blocker.clone(), Arc::new(set));
        Ok(answer)
    }

    /// The head a send appends at: the cached one, or the store's.
    pub(crate) async fn head_hint(&self, c: &ConversationId) -> Result<Head> {
        if let Some(head) = self.caches.head(c) {
            return Ok(head);
        }
        let head = self.messages.head(c).await?;
        self.caches.saw_head(c, head);
        Ok(head)
    }

    /// The members of `c` as of head version `version` (read again when the
    /// cached list is older).
    pub(crate) async fn members_at(
        &self,
        c: &ConversationId,
        version: u64,
    ) -> Result<Arc<Vec<Member>>> {
        if let Some((v, members)) = self.caches.members.get(c, None)
            && v >= version
        {
            return Ok(members);
        }
        let members = Arc::new(self.conversations.members(c).await?);
        self.caches
            .members
            .put(c.clone(), (version, members.clone()));
        Ok(members)
    }

    /// Drops a cached member list (after a membership change made here).
    pub(crate) fn forget_members(&self, c: &ConversationId) {
        self.caches.members.remove(c);
    }
}
