//! The engine's background work: receiving from the bus, renewing this
//! node's id lease, and heartbeats that keep this node alive in presence
//! and discovery, restore its presence when it may have drifted (see
//! [`super::membership`]) and reap dead nodes.

use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::Inner;
use super::membership::{self, FULL_RESTORE_EVERY};
use super::registry::SessionShared;
use super::session::sync_session;
use crate::cluster::{BusReceiver, Topic};
use crate::error::Result;
use crate::model::now_millis;
use crate::protocol::{ServerFrame, decode_server};

/// Registers this node and starts the background tasks. They hold only a
/// weak reference, so dropping the engine ends them.
pub(crate) async fn start(inner: &Arc<Inner>, receiver: BusReceiver) -> Result<()> {
    membership::renew(inner).await;
    beat(inner).await;
    let bus_task = tokio::spawn(receive(Arc::downgrade(inner), receiver));
    let lease_task = tokio::spawn(renewals(Arc::downgrade(inner)));
    let beat_task = tokio::spawn(heartbeats(Arc::downgrade(inner)));
    inner.tasks.lock().extend([bus_task, lease_task, beat_task]);
    Ok(())
}

async fn receive(inner: Weak<Inner>, mut receiver: BusReceiver) {
    while let Some(msg) = receiver.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        if msg.topic == Topic::Resumed {
            // The connection was down: the store may have lost this node's
            // claim and presence (a restart) and missed its writes. Claim
            // and restore at once, while the sessions sync what they missed.
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
        match &msg.topic {
            Topic::User(user) => {
                inner
                    .registry
                    .for_each(user, |session| deliver_remote(session, &msg.payload));
            }
            Topic::Presence(user) => inner.watchers.notify(user, &msg.payload),
            Topic::Resumed => {}
        }
    }
}

/// The bus was down for a while: every local session syncs, so what other
/// nodes published meanwhile reaches it from the store.
fn resync_all(inner: &Arc<Inner>) {
    let sessions = inner.registry.all_sessions();
    tracing::info!(
        sessions = sessions.len(),
        "bus resumed; syncing local sessions"
    );
    for session in sessions {
        let inner = inner.clone();
        tokio::spawn(async move {
            if let Err(e) = sync_session(&inner, &session, None).await {
                tracing::warn!(error = %e, user = %session.user, "resync after bus outage failed");
            }
        });
    }
}

/// Delivers a frame from another node. A session in the middle of a sync
/// must know a message's id to keep order, so only then is the frame read.
fn deliver_remote(session: &Arc<SessionShared>, frame: &Bytes) {
    let syncing = session.held.lock().is_some();
    if syncing
        && let Ok(text) = std::str::from_utf8(frame)
        && let Ok(ServerFrame::Message { message }) = decode_server(text)
    {
        session.deliver_message(message.message_id, frame);
        return;
    }
    session.push(frame.clone());
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
    let info = inner.node_info();
    if let Err(e) = inner.discovery.register(&info, now, ttl).await {
        tracing::warn!(error = %e, "discovery heartbeat failed");
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
