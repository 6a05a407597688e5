//! The engine's background work: receiving from the bus, renewing this
//! node's id lease, heartbeats that keep this node alive in presence and
//! discovery, restore its presence when it may have drifted (see
//! [`super::membership`]) and reap dead nodes, the retention sweep, the
//! receipt flushes, and marking connected devices seen.

use std::sync::{Arc, Weak};

use super::Inner;
use super::deliver::slot_of;
use super::envelope::{Envelope, Header};
use super::frames::StoredEvent;
use super::local::Item;
use super::membership::{self, FULL_RESTORE_EVERY};
use super::queue::{Coalesced, Slot, SlotKey};
use super::registry::CloseReason;
use super::retention::TOUCH_EVERY;
use crate::auth::Identity;
use crate::cluster::{BusMessage, BusReceiver, Topic};
use crate::error::{Error, Result};
use crate::model::{Retention, UserId, now_millis};
use crate::observe::Event;

/// Registers this node and starts the background tasks. They hold only a
/// weak reference, so dropping the engine ends them.
pub(crate) async fn start(inner: &Arc<Inner>, receiver: BusReceiver) -> Result<()> {
    if let Err(e) = inner.bus.subscribe(&Topic::Cluster).await {
        tracing::warn!(error = %e, "could not subscribe to the cluster topic; device removals reach this node late");
    }
    membership::renew(inner).await;
    beat(inner).await;
    let weak = Arc::downgrade(inner);
    let tasks = [
        tokio::spawn(receive(weak.clone(), receiver)),
        tokio::spawn(renewals(weak.clone())),
        tokio::spawn(heartbeats(weak.clone())),
        tokio::spawn(sweeps(weak.clone())),
        tokio::spawn(receipt_flushes(weak.clone())),
        tokio::spawn(touches(weak)),
    ];
    inner.tasks.lock().extend(tasks);
    Ok(())
}

async fn receive(inner: Weak<Inner>, mut receiver: BusReceiver) {
    while let Some(msg) = receiver.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        if msg.topic == Topic::Resumed {
            inner.observer.event(&Event::BusResumed);
            // The connection was down: the store may have lost this node's
            // claim and presence (a restart) and missed its writes. Claim
            // and restore at once, while the sessions sync what they missed.
            // Device and block notices may have been missed too: forget
            // both caches (a session whose device went away closes below).
            inner.caches.forget_devices_and_blocks();
            inner.membership.mark_dirty();
            inner.membership.poke.notify_one();
            let claim = inner.clone();
            tokio::spawn(async move { membership::renew(&claim).await });
            resync_all(&inner);
            continue;
        }
        if msg.origin == inner.node {
            // Published here: local sessions were served directly.
            continue;
        }
        inner.observer.event(&Event::BusReceived);
        inner.on_bus(msg).await;
    }
}

impl Inner {
    async fn on_bus(&self, msg: BusMessage) {
        if let Topic::Presence(user) = &msg.topic {
            self.watchers.notify(user, &msg.payload);
            return;
        }
        let Some(envelope) = Envelope::decode(&msg.payload) else {
            tracing::warn!(topic = ?msg.topic, "undecodable bus message dropped");
            return;
        };
        let Envelope { header, frame } = envelope;
        let origin = msg.origin.clone();
        match (header, &msg.topic) {
            (
                Header::Entry {
                    c,
                    id,
                    prev,
                    skip,
                    event,
                },
                _,
            ) => {
                let event = event.as_deref().and_then(StoredEvent::parse);
                let item = Item {
                    id,
                    frame,
                    skip,
                    event,
                };
                self.offer(&c, prev, item);
            }
            (Header::Redeliver { c, id, skip }, _) => {
                self.redeliver(
                    &c,
                    Item {
                        id,
                        frame,
                        skip,
                        event: None,
                    },
                );
            }
            (Header::Ephemeral { c, not }, _) => match slot_of(&frame) {
                Some(key) => self.to_local_members(&c, &frame, not.as_ref(), &key),
                None => {
                    tracing::warn!(conversation = %c, "an ephemeral frame that is no state frame dropped")
                }
            },
            (Header::ToUser, Topic::User(user)) => {
                let key = slot_of(&frame);
                self.registry.for_each(user, |s| match &key {
                    Some(key) => s.put(key.clone(), Slot::Frame(frame.clone())),
                    None => {
                        s.push(frame.clone());
                    }
                });
            }
            (
                Header::Receipts {
                    c,
                    status,
                    message_id,
                    users,
                    count,
                },
                Topic::User(user),
            ) => {
                let coalesced = Coalesced {
                    message_id,
                    users: users.into_iter().collect(),
                    count,
                };
                self.registry.for_each(user, |s| {
                    s.put(
                        SlotKey::Receipts(c.clone(), status),
                        Slot::Receipts(coalesced.clone()),
                    );
                });
            }
            (Header::Attach { c }, Topic::User(user)) => self.attach_joined(user, &c).await,
            (Header::DeviceRemoved { user, device, ack }, _) => {
                self.caches.forget_device(&device);
                self.registry.for_each(&user, |s| {
                    if s.device == device {
                        s.close(CloseReason::Revoked);
                    }
                });
                self.confirm_applied(origin, ack).await;
            }
            (Header::BlocksChanged { user, ack }, _) => {
                self.caches.forget_blocks(&user);
                self.confirm_applied(origin, ack).await;
            }
            (Header::Applied { to, ack }, _) => self.on_applied(&origin, &to, ack),
            (header, topic) => {
                tracing::warn!(
                    ?header,
                    ?topic,
                    "bus message on an unexpected topic dropped"
                );
            }
        }
    }

    /// `user` became a member of `c` (a notice from the node that made it
    /// so): if connected here, it starts receiving `c`, from its join on.
    pub(crate) async fn attach_joined(&self, user: &UserId, c: &crate::model::ConversationId) {
        if !self.registry.has_user(user) || self.local.member_floor(c, user).is_some() {
            return;
        }
        let member = match self.conversations.member(c, user).await {
            Ok(Some(member)) => member,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, conversation = %c, "membership unavailable; the next sync delivers it");
                return;
            }
        };
        let mut sessions = Vec::new();
        self.registry.for_each(user, |s| {
            s.hold(c);
            sessions.push(s.clone());
        });
        self.attach(user, &[(c.clone(), member.clone())]).await;
        for session in sessions {
            if let Err(e) = self.catch_up(&session, c, Some(member.joined)).await {
                tracing::warn!(error = %e, conversation = %c, "catch-up failed; the next sync delivers it");
            }
            session.release_hold(Some(c)).await;
        }
    }
}

/// The bus was down for a while: every local session syncs, so what other
/// nodes published meanwhile reaches it from the store; a session whose
/// device was logged out meanwhile closes instead.
///
/// Spread out: each session waits a random delay within a window of one
/// millisecond per session (at most one heartbeat interval) before its
/// sync. After a Redis failover every node resumes at once; without the
/// jitter each would send its whole population's syncs to the store in
/// the same instant.
fn resync_all(inner: &Arc<Inner>) {
    let sessions = inner.registry.all_sessions();
    let window = resync_window(sessions.len(), inner.limits.heartbeat_every);
    tracing::info!(
        sessions = sessions.len(),
        window_ms = window.as_millis(),
        "bus resumed; syncing local sessions"
    );
    for session in sessions {
        let inner = inner.clone();
        let delay = jitter(window);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let identity = Identity {
                user_id: session.user.clone(),
                device_id: session.device.clone(),
            };
            // Logged out while this node missed the notice? (Another error
            // means the store is not answering: the sync below says so.)
            if let Err(Error::Unauthorized { .. }) = inner.check_device(&identity).await {
                session.close(CloseReason::Revoked);
                return;
            }
            if let Err(e) = inner.sync_session(&session, None, false).await {
                tracing::warn!(error = %e, user = %session.user, "resync after bus outage failed");
            }
        });
    }
}

/// The window the resyncs of `sessions` sessions are spread over.
fn resync_window(sessions: usize, heartbeat: std::time::Duration) -> std::time::Duration {
    let per_session = std::time::Duration::from_millis(1);
    per_session
        .saturating_mul(u32::try_from(sessions).unwrap_or(u32::MAX))
        .min(heartbeat)
}

/// A uniformly random delay below `window` (zero for an empty window).
fn jitter(window: std::time::Duration) -> std::time::Duration {
    let micros = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
    if micros == 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_micros(rand::random_range(0..micros))
}

/// Renews the id lease every heartbeat interval, on its own so that slow
/// presence calls never delay it.
async fn renewals(inner: Weak<Inner>) {
    let Some(every) = inner.upgrade().map(|i| i.limits.heartbeat_every) else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start() already renewed
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.membership.is_lost() {
            return;
        }
        membership::renew(&inner).await;
    }
}

async fn heartbeats(inner: Weak<Inner>) {
    let Some((every, poke)) = inner
        .upgrade()
        .map(|i| (i.limits.heartbeat_every, i.membership.poke.clone()))
    else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start() already beat once
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = poke.notified() => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        if inner.membership.is_lost() {
            return;
        }
        beat(&inner).await;
    }
}

async fn sweeps(inner: Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(i) if i.retention == Retention::UntilDelivered => i.limits.purge_every,
        _ => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.sweep().await;
    }
}

/// Sends the receipts gathered for big groups, every `receipt_every`.
async fn receipt_flushes(inner: Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(i) => i.limits.receipt_every,
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.flush_receipts().await;
    }
}

/// Marks every connected device seen now and then (see `retention`).
async fn touches(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(TOUCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let now = now_millis();
        for session in inner.registry.all_sessions() {
            if let Err(e) = inner.accounts.touch_device(&session.device, now).await {
                tracing::warn!(error = %e, "could not mark a connected device seen");
            }
        }
    }
}

/// One heartbeat: refresh this node in presence and discovery, restore its
/// presence when due, and turn the users of nodes that stopped beating
/// offline. A node that lost its id writes nothing under its old name.
async fn beat(inner: &Arc<Inner>) {
    let mut since_restore = inner.membership.beating.lock().await;
    if inner.membership.is_lost() {
        return;
    }
    let now = now_millis();
    let ttl = inner.limits.heartbeat_ttl.as_millis() as i64;
    if let Err(e) = inner.presence.heartbeat(&inner.node, now, ttl).await {
        tracing::warn!(error = %e, "presence heartbeat failed");
    }
    *since_restore += 1;
    if inner.membership.take_dirty() || *since_restore >= FULL_RESTORE_EVERY {
        match membership::restore(inner).await {
            Ok(()) => *since_restore = 0,
            Err(e) => {
                tracing::warn!(error = %e, "presence restore failed; retrying at the next heartbeat");
                inner.membership.mark_dirty();
            }
        }
    }
    // A draining node left discovery: logins send users elsewhere.
    if !inner.is_draining() {
        let info = inner.node_info();
        if let Err(e) = inner.discovery.register(&info, now, ttl).await {
            tracing::warn!(error = %e, "discovery heartbeat failed");
        }
    }
    match inner.presence.reap(now).await {
        Ok(gone) => {
            for presence in gone {
                inner.announce_presence(presence).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "presence reaping failed"),
    }
}

#[cfg(test)]
mod resync_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_resync_window_grows_with_sessions_up_to_one_heartbeat() {
        let beat = Duration::from_secs(5);
        assert_eq!(resync_window(0, beat), Duration::ZERO);
        assert_eq!(resync_window(3, beat), Duration::from_millis(3));
        assert_eq!(resync_window(2_000, beat), Duration::from_secs(2));
        assert_eq!(resync_window(100_000, beat), beat);
    }

    #[test]
    fn jitter_stays_within_its_window_and_spreads() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        let window = Duration::from_millis(100);
        let delays: Vec<Duration> = (0..200).map(|_| jitter(window)).collect();
        assert!(delays.iter().all(|d| *d < window));
        // 200 draws over 100,000 microseconds: all equal would be a bug.
        assert!(delays.iter().any(|d| *d != delays[0]));
    }
}
