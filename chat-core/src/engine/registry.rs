//! The sessions open on this node, by user, and who watches whose presence.
//!
//! Fanout looks users up here and hands each session the same shared
//! [`Bytes`] by a non-blocking `try_send`: the body is never copied per
//! recipient, and a full queue closes that one session instead of blocking
//! the sender.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc};

use crate::model::{MessageId, UserId};

/// Why the engine closed a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Its outbound queue was full: the client reads too slowly. It should
    /// reconnect; sync hands it everything it missed.
    SlowConsumer,
    /// The engine is shutting down.
    Shutdown,
    /// The session was closed or dropped by its owner (the client went away).
    Disconnected,
}

/// A live message held while a session's sync runs, so that it is sent
/// after the older messages the sync is sending.
pub(crate) struct Held {
    pub(crate) id: MessageId,
    pub(crate) frame: Bytes,
}

/// The part of a session that fanout and the engine reach.
pub(crate) struct SessionShared {
    pub(crate) id: u64,
    pub(crate) user: UserId,
    tx: mpsc::Sender<Bytes>,
    closed: AtomicBool,
    /// Set once this connection has been counted out of presence.
    released: AtomicBool,
    reason: Mutex<Option<CloseReason>>,
    close_notify: Notify,
    /// `Some` while a sync runs: live messages wait here.
    pub(crate) held: Mutex<Option<Vec<Held>>>,
    held_cap: usize,
}

impl SessionShared {
    pub(crate) fn new(id: u64, user: UserId, tx: mpsc::Sender<Bytes>, held_cap: usize) -> Self {
        Self {
            id,
            user,
            tx,
            closed: AtomicBool::new(false),
            released: AtomicBool::new(false),
            reason: Mutex::new(None),
            close_notify: Notify::new(),
            // Sessions start in sync mode: the first sync runs right after connect.
            held: Mutex::new(Some(Vec::new())),
            held_cap,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// True the first time only: whoever gets it counts the connection out
    /// of presence.
    pub(crate) fn release(&self) -> bool {
        !self.released.swap(true, Ordering::AcqRel)
    }

    /// Whether it has been counted out of presence.
    fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        *self.reason.lock()
    }

    /// Marks the session closed; its [`super::Outbound`] then ends.
    pub(crate) fn close(&self, reason: CloseReason) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            *self.reason.lock() = Some(reason);
            if reason == CloseReason::SlowConsumer {
                tracing::debug!(user = %self.user, session = self.id, "closing slow session");
            }
            self.close_notify.notify_waiters();
        }
    }

    /// Queues a frame without waiting; closes the session when its queue is full.
    pub(crate) fn push(&self, frame: Bytes) -> bool {
        if self.is_closed() {
            return false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(CloseReason::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a frame, waiting for room (used by the session's own sync and
    /// replies, where waiting slows only this client).
    pub(crate) async fn push_wait(&self, frame: Bytes) -> bool {
        if self.is_closed() {
            return false;
        }
        tokio::select! {
            sent = self.tx.send(frame) => sent.is_ok(),
            _ = self.closed() => false,
        }
    }

    /// Resolves once the session is closed.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.close_notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag, so a close in between is not missed.
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Delivers a live message: held while a sync runs, queued otherwise.
    pub(crate) fn deliver_message(&self, id: MessageId, frame: &Bytes) -> bool {
        {
            let mut guard = self.held.lock();
            if let Some(held) = guard.as_mut() {
                if held.len() >= self.held_cap {
                    drop(guard);
                    self.close(CloseReason::SlowConsumer);
                    return false;
                }
                held.push(Held {
                    id,
                    frame: frame.clone(),
                });
                return true;
            }
        }
        self.push(frame.clone())
    }
}

const SHARDS: usize = 64;

/// Sessions by user, in shards so that fanout to many users does not
/// contend on one lock.
pub(crate) struct Registry {
    shards: Vec<RwLock<HashMap<UserId, Vec<Arc<SessionShared>>>>>,
    hasher: std::collections::hash_map::RandomState,
    next_id: AtomicU64,
    count: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: Default::default(),
            next_id: AtomicU64::new(1),
            count: AtomicUsize::new(0),
        }
    }
}

impl Registry {
    fn shard<K: Hash>(&self, key: &K) -> &RwLock<HashMap<UserId, Vec<Arc<SessionShared>>>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    pub(crate) fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds a session; returns true when it is the user's first on this node.
    pub(crate) fn insert(&self, session: Arc<SessionShared>) -> bool {
        let mut shard = self.shard(&session.user).write();
        let list = shard.entry(session.user.clone()).or_default();
        list.push(session);
        self.count.fetch_add(1, Ordering::Relaxed);
        list.len() == 1
    }

    /// Removes a session; returns true when it was the user's last on this node.
    pub(crate) fn remove(&self, user: &UserId, id: u64) -> bool {
        let mut shard = self.shard(user).write();
        let Some(list) = shard.get_mut(user) else {
            return false;
        };
        let before = list.len();
        list.retain(|s| s.id != id);
        if list.len() < before {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        if list.is_empty() {
            shard.remove(user);
            return before > 0;
        }
        false
    }

    /// Calls `f` with each open session of `user`; returns how many there were.
    pub(crate) fn for_each(&self, user: &UserId, mut f: impl FnMut(&Arc<SessionShared>)) -> usize {
        let shard = self.shard(user).read();
        match shard.get(user) {
            Some(list) => {
                list.iter().for_each(&mut f);
                list.len()
            }
            None => 0,
        }
    }

    /// Every open session on this node.
    pub(crate) fn all_sessions(&self) -> Vec<Arc<SessionShared>> {
        self.shards
            .iter()
            .flat_map(|shard| shard.read().values().flatten().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Each user with sessions here that presence still counts, and how
    /// many: what this node's presence must hold.
    pub(crate) fn connection_counts(&self) -> Vec<(UserId, u32)> {
        let mut counts = Vec::new();
        for shard in &self.shards {
            for (user, sessions) in shard.read().iter() {
                let n = sessions.iter().filter(|s| !s.is_released()).count();
                if n > 0 {
                    counts.push((user.clone(), u32::try_from(n).unwrap_or(u32::MAX)));
                }
            }
        }
        counts
    }

    pub(crate) fn session_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Closes every session; returns them.
    pub(crate) fn close_all(&self, reason: CloseReason) -> Vec<Arc<SessionShared>> {
        let sessions = self.all_sessions();
        for s in &sessions {
            s.close(reason);
        }
        sessions
    }
}

/// Who watches whose presence on this node: watched user → watching sessions.
#[derive(Default)]
pub(crate) struct Watchers {
    by_user: RwLock<HashMap<UserId, HashMap<u64, Arc<SessionShared>>>>,
}

impl Watchers {
    /// Returns the users that had no watcher here before (subscribe to them on the bus).
    pub(crate) fn watch(&self, session: &Arc<SessionShared>, users: &[UserId]) -> Vec<UserId> {
        let mut map = self.by_user.write();
        let mut fresh = Vec::new();
        for u in users {
            let entry = map.entry(u.clone()).or_default();
            if entry.is_empty() {
                fresh.push(u.clone());
            }
            entry.insert(session.id, session.clone());
        }
        fresh
    }

    /// Returns the users left with no watcher here (unsubscribe from them).
    pub(crate) fn unwatch(&self, session_id: u64, users: &HashSet<UserId>) -> Vec<UserId> {
        let mut map = self.by_user.write();
        let mut gone = Vec::new();
        for u in users {
            if let Some(entry) = map.get_mut(u) {
                entry.remove(&session_id);
                if entry.is_empty() {
                    map.remove(u);
                    gone.push(u.clone());
                }
            }
        }
        gone
    }

    /// Sends `frame` to every local watcher of `user`.
    pub(crate) fn notify(&self, user: &UserId, frame: &Bytes) {
        if let Some(entry) = self.by_user.read().get(user) {
            for s in entry.values() {
                s.push(frame.clone());
            }
        }
    }
}
