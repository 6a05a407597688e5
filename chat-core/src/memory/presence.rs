//! [`MemoryPresence`]: who is online, on which node, in process memory.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::cluster::{PresenceEntry, PresenceStore};
use crate::error::Result;
use crate::model::{Millis, NodeId, Presence, PresenceStatus, UserId, now_millis};

/// A [`PresenceStore`] in memory: counts connections per user and node.
///
/// Expiry: a node's connections count until `reap` is called with a time
/// past that node's last `heartbeat` plus its ttl; `presence` does not take
/// a time and reports what is stored, so an expired node counts until the
/// next reap. A node that never sent a heartbeat has no expiry: its
/// connections count until they disconnect (a single-node server needs no
/// heartbeats).
///
/// When `reap` takes a user offline, its `last_seen` is the last heartbeat
/// of the node that held it: the last moment it is known to have been there.
///
/// It never loses data by itself; [`MemoryPresence::wipe`] simulates a
/// store that did, for tests: offline answers are then uncertain until a
/// heartbeat puts the marker back and one ttl has passed (the settle time).
#[derive(Debug, Default)]
pub struct MemoryPresence {
    state: Mutex<PresenceState>,
}

#[derive(Debug, Default)]
struct PresenceState {
    /// Set by [`MemoryPresence::wipe`]: the marker that the store holds the
    /// deployment's data is gone (the default, false, is a fresh store).
    wiped: bool,
    /// Offline answers are uncertain until this time (wall clock).
    settling_until: Millis,
    /// Open connections per user and node; a user is online while it has an entry.
    connections: HashMap<UserId, BTreeMap<NodeId, u32>>,
    /// The users with connections on each node, so `reap` finds them fast.
    users_on: HashMap<NodeId, HashSet<UserId>>,
    /// The last heartbeat of each node.
    heartbeats: HashMap<NodeId, Heartbeat>,
    /// When each user that went offline was last seen.
    last_seen: HashMap<UserId, Millis>,
}

#[derive(Clone, Copy, Debug)]
struct Heartbeat {
    at: Millis,
    expires: Millis,
}

impl PresenceState {
    /// Drops one connection (or all of them when `all`) of `user` on `node`;
    /// returns true when that was the user's last connection anywhere.
    fn drop_connections(&mut self, user: &UserId, node: &NodeId, all: bool) -> bool {
        let Some(nodes) = self.connections.get_mut(user) else {
            return false;
        };
        let Some(count) = nodes.get_mut(node) else {
            return false;
        };
        *count -= 1;
        if *count == 0 || all {
            nodes.remove(node);
            if let Some(users) = self.users_on.get_mut(node) {
                users.remove(user);
                if users.is_empty() {
                    self.users_on.remove(node);
                }
            }
        }
        if nodes.is_empty() {
            self.connections.remove(user);
            return true;
        }
        false
    }
}

impl MemoryPresence {
    /// An empty presence store: everybody offline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything, as a Redis restarted without persistence would:
    /// until the nodes heartbeat and restore, offline answers are uncertain.
    pub fn wipe(&self) {
        *self.state.lock() = PresenceState {
            wiped: true,
            ..PresenceState::default()
        };
    }
}

impl PresenceState {
    fn certain(&self) -> bool {
        !self.wiped && now_millis() >= self.settling_until
    }

    /// A heartbeat after a wipe: the marker is back, and offline
    /// answers stay uncertain for `settle` more.
    fn mark_present(&mut self, now: Millis, settle: Millis) {
        if self.wiped {
            self.wiped = false;
            self.settling_until = now.saturating_add(settle);
        }
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn connect(&self, user: &UserId, node: &NodeId, _now: Millis) -> Result<bool> {
        let mut state = self.state.lock();
        let nodes = state.connections.entry(user.clone()).or_default();
        let was_offline = nodes.is_empty();
        *nodes.entry(node.clone()).or_default() += 1;
        state
            .users_on
            .entry(node.clone())
            .or_default()
            .insert(user.clone());
        Ok(was_offline)
    }

    async fn disconnect(&self, user: &UserId, node: &NodeId, now: Millis) -> Result<bool> {
        let mut state = self.state.lock();
        let went_offline = state.drop_connections(user, node, false);
        if went_offline {
            state.last_seen.insert(user.clone(), now);
        }
        Ok(went_offline)
    }

    async fn presence(&self, users: &[UserId]) -> Result<Vec<PresenceEntry>> {
        let state = self.state.lock();
        let certain = state.certain();
        Ok(users
            .iter()
            .map(|user| match state.connections.get(user) {
                Some(nodes) => PresenceEntry {
                    presence: Presence {
                        user_id: user.clone(),
                        status: PresenceStatus::Online,
                        last_seen: None,
                    },
                    nodes: nodes.keys().cloned().collect(),
                    certain: true,
                },
                None => PresenceEntry {
                    presence: Presence {
                        user_id: user.clone(),
                        status: PresenceStatus::Offline,
                        last_seen: state.last_seen.get(user).copied(),
                    },
                    nodes: Vec::new(),
                    certain,
                },
            })
            .collect())
    }

    async fn heartbeat(&self, node: &NodeId, now: Millis, ttl: Millis) -> Result<()> {
        let beat = Heartbeat {
            at: now,
            expires: now.saturating_add(ttl),
        };
        let mut state = self.state.lock();
        state.mark_present(now, ttl);
        state.heartbeats.insert(node.clone(), beat);
        Ok(())
    }

    async fn restore(
        &self,
        node: &NodeId,
        connections: &[(UserId, u32)],
        now: Millis,
    ) -> Result<Vec<Presence>> {
        // The marker is the heartbeat's to put back: restoring one node does
        // not make the others' answers certain.
        let mut state = self.state.lock();
        let mut changes = Vec::new();
        let listed: HashSet<&UserId> = connections.iter().map(|(u, _)| u).collect();
        let stale: Vec<UserId> = state
            .users_on
            .get(node)
            .map(|users| {
                users
                    .iter()
                    .filter(|u| !listed.contains(u))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for user in stale {
            if state.drop_connections(&user, node, true) {
                state.last_seen.insert(user.clone(), now);
                changes.push(Presence {
                    user_id: user,
                    status: PresenceStatus::Offline,
                    last_seen: Some(now),
                });
            }
        }
        for (user, count) in connections.iter().filter(|(_, c)| *c > 0) {
            let nodes = state.connections.entry(user.clone()).or_default();
            let was_offline = nodes.is_empty();
            nodes.insert(node.clone(), *count);
            state
                .users_on
                .entry(node.clone())
                .or_default()
                .insert(user.clone());
            if was_offline {
                changes.push(Presence {
                    user_id: user.clone(),
                    status: PresenceStatus::Online,
                    last_seen: None,
                });
            }
        }
        Ok(changes)
    }

    async fn reap(&self, now: Millis) -> Result<Vec<Presence>> {
        let mut state = self.state.lock();
        let expired: Vec<(NodeId, Heartbeat)> = state
            .heartbeats
            .iter()
            .filter(|(_, beat)| beat.expires < now)
            .map(|(node, beat)| (node.clone(), *beat))
            .collect();
        // A user on several expired nodes was last seen at the latest of their beats.
        let mut offline: BTreeMap<UserId, Millis> = BTreeMap::new();
        for (node, beat) in expired {
            state.heartbeats.remove(&node);
            let users = state.users_on.get(&node).cloned().unwrap_or_default();
            for user in users {
                let last = offline.entry(user.clone()).or_insert(beat.at);
                *last = (*last).max(beat.at);
                state.drop_connections(&user, &node, true);
            }
        }
        offline.retain(|user, _| !state.connections.contains_key(user));
        for (user, at) in &offline {
            state.last_seen.insert(user.clone(), *at);
        }
        Ok(offline
            .into_iter()
            .map(|(user_id, at)| Presence {
                user_id,
                status: PresenceStatus::Offline,
                last_seen: Some(at),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_on_two_expired_nodes_was_last_seen_at_the_later_beat() {
        let presence = MemoryPresence::new();
        let (u, a, b) = (UserId::from("u"), NodeId::from("a"), NodeId::from("b"));
        presence.heartbeat(&a, 100, 10).await.unwrap();
        presence.heartbeat(&b, 105, 10).await.unwrap();
        presence.connect(&u, &a, 100).await.unwrap();
        presence.connect(&u, &b, 105).await.unwrap();
        let gone = presence.reap(200).await.unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].last_seen, Some(105));
    }

    async fn certain(presence: &MemoryPresence, user: &UserId) -> bool {
        presence
            .presence(std::slice::from_ref(user))
            .await
            .unwrap()
            .remove(0)
            .certain
    }

    #[tokio::test]
    async fn after_a_wipe_offline_answers_are_unsure_until_a_heartbeat_and_the_settle_time() {
        let presence = MemoryPresence::new();
        let (u, n) = (UserId::from("u"), NodeId::from("n"));
        assert!(certain(&presence, &u).await, "a fresh store is sure");
        presence.wipe();
        assert!(!certain(&presence, &u).await, "a wiped store is not");
        presence.heartbeat(&n, now_millis(), 100).await.unwrap();
        assert!(!certain(&presence, &u).await, "nor while it settles");
        presence.connect(&u, &n, now_millis()).await.unwrap();
        let entry = presence
            .presence(std::slice::from_ref(&u))
            .await
            .unwrap()
            .remove(0);
        assert!(entry.certain, "an online answer is always sure");
        presence.disconnect(&u, &n, now_millis()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(certain(&presence, &u).await, "sure again once settled");
    }
}
