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
use tokio::sync::Notify;

use super::gate::{Gate, Verdict};
use super::queue::{OutQueue, Pushed, Slot, SlotKey};
use crate::model::{ConversationId, DeviceId, MessageId, UserId};
use crate::observe::{Event, Observer};

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
    /// Its device was removed (or logged out): its tokens no longer work.
    Revoked,
    /// The node is draining (taken out of service): the client reconnects
    /// to another node and syncs. Its queue was written out first.
    Draining,
    /// This node lost the order of a conversation's entries (a gap it could
    /// not fill from the store): the client reconnects and syncs, in order.
    Resync,
}

/// The part of a session that fanout and the engine reach.
pub(crate) struct SessionShared {
    pub(crate) id: u64,
    pub(crate) user: UserId,
    pub(crate) device: DeviceId,
    /// What waits for the socket (see `queue`).
    queue: Mutex<OutQueue>,
    /// Wakes the writer when a frame is queued, and waiting pushers when
    /// the writer took one.
    queued: Notify,
    drained: Notify,
    closed: AtomicBool,
    /// Set once this connection has been counted out of presence.
    released: AtomicBool,
    reason: Mutex<Option<CloseReason>>,
    close_notify: Notify,
    /// Order and repeats of each conversation's entries (see `gate`).
    gate: Mutex<Gate>,
    /// The engine asked this session to finish (see [`SessionShared::drain`]).
    drain_asked: AtomicBool,
    drain_notify: Notify,
    /// The session ends once its queue is written out (see [`SessionShared::finish`]).
    finishing: Mutex<Option<CloseReason>>,
    /// Where frames out and the close are reported.
    observer: Arc<dyn Observer>,
}

impl SessionShared {
    pub(crate) fn new(
        id: u64,
        user: UserId,
        device: DeviceId,
        queue_bytes: usize,
        held_cap: usize,
        observer: Arc<dyn Observer>,
    ) -> Self {
        Self {
            id,
            user,
            device,
            queue: Mutex::new(OutQueue::new(queue_bytes)),
            queued: Notify::new(),
            drained: Notify::new(),
            closed: AtomicBool::new(false),
            released: AtomicBool::new(false),
            reason: Mutex::new(None),
            close_notify: Notify::new(),
            // Sessions start holding: the first sync runs right after connect.
            gate: Mutex::new(Gate::new(held_cap)),
            drain_asked: AtomicBool::new(false),
            drain_notify: Notify::new(),
            finishing: Mutex::new(None),
            observer,
        }
    }

    /// Asks the transport to stop reading new frames once the one in hand
    /// is answered, and to [`finish`](Self::finish) (the node drains).
    pub(crate) fn drain(&self) {
        self.drain_asked.store(true, Ordering::Release);
        self.drain_notify.notify_waiters();
    }

    /// Resolves once the engine asked this session to drain.
    pub(crate) async fn drain_asked(&self) {
        loop {
            let notified = self.drain_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.drain_asked.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Ends the session for `reason` once every frame queued now has been
    /// taken by the writer (answers to what the client sent are not lost
    /// to the close).
    pub(crate) fn finish(&self, reason: CloseReason) {
        *self.finishing.lock() = Some(reason);
        // Wake the writer: an empty queue now ends the session.
        self.queued.notify_one();
    }

    /// Bytes of ordered frames waiting for the socket.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queue.lock().bytes()
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
            self.observer.event(&Event::SessionClosed { reason });
            if reason == CloseReason::SlowConsumer {
                tracing::debug!(user = %self.user, session = self.id, "closing slow session");
            }
            self.close_notify.notify_waiters();
        }
    }

    /// Queues an ordered frame without waiting; closes the session when
    /// its byte budget is spent (the client reads too slowly).
    pub(crate) fn push(&self, frame: Bytes) -> bool {
        if self.is_closed() {
            return false;
        }
        let pushed = self.queue.lock().push(frame);
        match pushed {
            Pushed::Queued => {
                self.queued.notify_one();
                true
            }
            Pushed::Full => {
                self.close(CloseReason::SlowConsumer);
                false
            }
        }
    }

    /// Queues a state frame (typing, presence, receipts): it replaces the
    /// waiting one of the same key and never closes the session.
    pub(crate) fn put(&self, key: SlotKey, slot: Slot) {
        if self.is_closed() {
            return;
        }
        self.queue.lock().put(key, slot);
        self.queued.notify_one();
    }

    /// Queues an ordered frame, waiting for room (the session's own sync and
    /// replies, where waiting slows only this client).
    pub(crate) async fn push_wait(&self, frame: Bytes) -> bool {
        loop {
            if self.is_closed() {
                return false;
            }
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let mut queue = self.queue.lock();
                if queue.fits(frame.len()) {
                    queue.push(frame);
                    drop(queue);
                    self.queued.notify_one();
                    return true;
                }
            }
            tokio::select! {
                _ = drained => {}
                _ = self.closed() => return false,
            }
        }
    }

    /// The next queued frame, waiting for one; `None` once closed.
    pub(crate) async fn next_frame(&self) -> Option<Bytes> {
        loop {
            if self.is_closed() {
                return None;
            }
            let queued = self.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            if let Some(frame) = self.queue.lock().pop() {
                return Some(self.taken(frame));
            }
            let finishing = *self.finishing.lock();
            if let Some(reason) = finishing {
                self.close(reason);
                return None;
            }
            tokio::select! {
                _ = queued => {}
                _ = self.closed() => return None,
            }
        }
    }

    /// The next queued frame if there is one now, without waiting; `None`
    /// when the queue is empty or the session closed.
    pub(crate) fn try_frame(&self) -> Option<Bytes> {
        if self.is_closed() {
            return None;
        }
        let frame = self.queue.lock().pop()?;
        Some(self.taken(frame))
    }

    /// A frame the writer took: room for pushers, and counted out.
    fn taken(&self, frame: Bytes) -> Bytes {
        self.drained.notify_waiters();
        self.observer.event(&Event::FrameOut {
            kind: crate::protocol::server_frame_type(&frame),
        });
        frame
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

    /// Delivers a live entry of `conversation` through the gate: sent now,
    /// held while a catch-up of it runs, or dropped as a repeat. `frame` is
    /// `None` for the session's own entry (it got `sent`; the gate only
    /// notes it).
    pub(crate) fn deliver_entry(
        &self,
        conversation: &ConversationId,
        id: MessageId,
        frame: Option<&Bytes>,
    ) -> bool {
        let mut gate = self.gate.lock();
        match gate.live(conversation, id, frame) {
            Verdict::Send => match frame {
                // Queued under the gate's lock, so that two deliverers of
                // one conversation cannot swap their frames.
                Some(frame) => self.push(frame.clone()),
                None => true,
            },
            Verdict::Repeat | Verdict::Held => true,
            Verdict::Overflow => {
                drop(gate);
                self.close(CloseReason::SlowConsumer);
                false
            }
        }
    }

    /// Sends an entry read from the store (a sync or catch-up, while the
    /// conversation is held), unless it was sent already (`again`: send it
    /// even then, for a sync the client asked for: it answers with every
    /// unacked entry); waits for room.
    pub(crate) async fn send_stored(
        &self,
        conversation: &ConversationId,
        id: MessageId,
        frame: Bytes,
        again: bool,
    ) -> bool {
        let fresh = self.gate.lock().admit(conversation, id) == Verdict::Send;
        if !fresh && !again {
            return true;
        }
        self.push_wait(frame).await
    }

    /// Holds every live entry (a sync on request begins).
    pub(crate) fn hold_all(&self) {
        self.gate.lock().hold_everything();
    }

    /// Holds the live entries of `conversation` (a catch-up begins).
    pub(crate) fn hold(&self, conversation: &ConversationId) {
        self.gate.lock().hold(conversation);
    }

    /// Ends one hold (of `conversation`, or the sync's hold of everything),
    /// first sending what waited, waiting for room in the queue as a sync
    /// does: live entries that come meanwhile keep waiting behind them.
    pub(crate) async fn release_hold(&self, conversation: Option<&ConversationId>) {
        loop {
            let due = self.gate.lock().take_due(conversation);
            if due.is_empty() {
                if self.gate.lock().end(conversation) || self.is_closed() {
                    return;
                }
                continue;
            }
            for frame in due {
                if !self.push_wait(frame).await {
                    return;
                }
            }
        }
    }

    /// The newest entry of `conversation` sent on this connection: an ack
    /// covers nothing above it.
    pub(crate) fn last_sent(&self, conversation: &ConversationId) -> Option<MessageId> {
        self.gate.lock().last_sent(conversation)
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

    /// Whether `user` has an open session here.
    pub(crate) fn has_user(&self, user: &UserId) -> bool {
        self.shard(user).read().contains_key(user)
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

    /// Sends `frame` to every local watcher of `user` (a newer presence
    /// replaces one still waiting).
    pub(crate) fn notify(&self, user: &UserId, frame: &Bytes) {
        if let Some(entry) = self.by_user.read().get(user) {
            for s in entry.values() {
                s.put(SlotKey::Presence(user.clone()), Slot::Frame(frame.clone()));
            }
        }
    }
}
