//! The engine's background work: receiving from the bus, and heartbeats that
//! keep this node alive in presence and discovery while reaping dead nodes.

use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::Inner;
use super::registry::SessionShared;
use super::session::sync_session;
use crate::cluster::{BusReceiver, Topic};
use crate::error::Result;
use crate::model::now_millis;
use crate::protocol::{ServerFrame, decode_server};

/// Registers this node and starts the background tasks. They hold only a
/// weak reference, so dropping the engine ends them.
pub(crate) async fn start(inner: &Arc<Inner>, receiver: BusReceiver) -> Result<()> {
    beat(inner).await;
    let bus_task = tokio::spawn(receive(Arc::downgrade(inner), receiver));
    let beat_task = tokio::spawn(heartbeats(Arc::downgrade(inner)));
    inner.tasks.lock().extend([bus_task, beat_task]);
    Ok(())
}

async fn receive(inner: Weak<Inner>, mut receiver: BusReceiver) {
    while let Some(msg) = receiver.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        if msg.topic == Topic::Resumed {
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

async fn heartbeats(inner: Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(i) => i.limits.heartbeat_every,
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start() already beat once
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        beat(&inner).await;
    }
}

/// One heartbeat: refresh this node in presence and discovery, and turn the
/// users of nodes that stopped beating offline.
async fn beat(inner: &Arc<Inner>) {
    let now = now_millis();
    let ttl = inner.limits.heartbeat_ttl.as_millis() as i64;
    if let Err(e) = inner.presence.heartbeat(&inner.node, now, ttl).await {
        tracing::warn!(error = %e, "presence heartbeat failed");
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
