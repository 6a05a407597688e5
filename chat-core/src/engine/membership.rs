//! This node's standing in the deployment: the lease on its worker id
//! (whether it may mint ids), and keeping the shared presence true to the
//! sessions it holds.
//!
//! Shared presence (Redis) is a cache that each node can rebuild from its
//! own registry: [`restore`] writes this node's connection counts as they
//! are (set, not added), counts out users it no longer holds, and announces
//! whoever changed. It runs when presence may have drifted from the
//! registry: the bus came back after an outage, the lease had vanished (the
//! store lost its data), a presence write failed, and every
//! [`FULL_RESTORE_EVERY`] heartbeats as a backstop for partial losses (an
//! eviction, a failover that dropped recent writes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::sync::{Notify, RwLock, watch};

use super::Inner;
use crate::cluster::{NodeLease, Renewal};
use crate::error::{Error, Result};
use crate::model::{Millis, now_millis};
use crate::observe::Event;

/// Heartbeats between two restores that nothing asked for: partial losses
/// of presence data heal within this many heartbeats (a minute by default).
pub(crate) const FULL_RESTORE_EVERY: u32 = 12;

/// The lease and the presence bookkeeping of one node.
pub(crate) struct Membership {
    lease: Arc<dyn NodeLease>,
    /// Unix ms until which this node may mint ids.
    mint_until: AtomicI64,
    /// Set once another node took this node's id; never cleared.
    lost: watch::Sender<bool>,
    /// Held shared by each connect and disconnect from its registry change
    /// to its presence write, and exclusively by [`restore`]: the counts a
    /// restore reads are then exactly what presence holds when it writes
    /// them, and no connect or disconnect is counted twice or not at all.
    pub(crate) gate: RwLock<()>,
    /// Presence may differ from the registry: the next heartbeat restores.
    dirty: AtomicBool,
    /// Wakes the heartbeat early (the bus resumed, the lease was reclaimed).
    pub(crate) poke: Arc<Notify>,
    /// Serializes heartbeats (the timer's and the poked ones).
    pub(crate) beating: tokio::sync::Mutex<u32>,
}

impl Membership {
    pub(crate) fn new(lease: Arc<dyn NodeLease>) -> Self {
        Self {
            lease,
            mint_until: AtomicI64::new(0),
            lost: watch::Sender::new(false),
            gate: RwLock::new(()),
            // The first heartbeat restores: a node that comes back under the
            // name of one that crashed counts out what that one left behind.
            dirty: AtomicBool::new(true),
            poke: Arc::new(Notify::new()),
            beating: tokio::sync::Mutex::new(0),
        }
    }

    pub(crate) fn lease(&self) -> &dyn NodeLease {
        &*self.lease
    }

    /// Ok while this node may mint ids: its lease is known to be held.
    pub(crate) fn check_mint(&self) -> Result<()> {
        if self.is_lost() {
            return Err(Error::unavailable_msg(
                "this node's id was taken by another node; it is shutting down: reconnect",
            ));
        }
        if now_millis() >= self.mint_until.load(Ordering::Acquire) {
            return Err(Error::unavailable_msg(
                "this node cannot confirm its claim on its node id (the cluster store does \
                 not answer); nothing was stored: retry",
            ));
        }
        Ok(())
    }

    /// A renewal sent at `sent_at` succeeded: ids may be minted until one
    /// heartbeat before the claim could lapse, so that this node has
    /// stopped before another can take the id, with a heartbeat to spare
    /// for clocks that drift apart.
    pub(crate) fn renewed(&self, sent_at: Millis, lease: Millis, every: Millis) {
        let until = sent_at.saturating_add(lease.saturating_sub(every));
        self.mint_until.fetch_max(until, Ordering::AcqRel);
    }

    pub(crate) fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    fn mark_lost(&self) {
        self.mint_until.store(0, Ordering::Release);
        self.lost.send_replace(true);
    }

    /// Completes once this node has lost its id (never, normally).
    pub(crate) async fn wait_lost(&self) {
        let mut rx = self.lost.subscribe();
        // The sender lives as long as self, so this cannot fail.
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// Presence may have drifted from the registry: restore at the next beat.
    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    pub(crate) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }
}

/// Renews the lease once and acts on the answer.
pub(crate) async fn renew(inner: &Inner) {
    let m = &inner.membership;
    if m.is_lost() {
        return;
    }
    let every = inner.limits.heartbeat_every.as_millis() as Millis;
    let lease = inner.limits.id_lease.as_millis() as Millis;
    let sent_at = now_millis();
    let renewed = m.lease.renew(lease).await;
    inner.observer.event(&Event::LeaseRenewed {
        ok: matches!(renewed, Ok(Renewal::Held | Renewal::Reclaimed)),
    });
    match renewed {
        Ok(Renewal::Held) => m.renewed(sent_at, lease, every),
        Ok(Renewal::Reclaimed) => {
            m.renewed(sent_at, lease, every);
            tracing::warn!(
                node = %inner.node,
                worker = m.lease.worker_id(),
                "this node's claim on its id had vanished (the cluster store lost its data, \
                 or this node could not renew in time); claimed it again, re-registering sessions"
            );
            m.mark_dirty();
            m.poke.notify_one();
        }
        Ok(Renewal::Lost { holder }) => {
            m.mark_lost();
            tracing::error!(
                node = %inner.node,
                worker = m.lease.worker_id(),
                holder = holder.as_deref().unwrap_or("unknown"),
                "another node holds this node's id now; this node stops minting ids and shuts down"
            );
        }
        Err(e) => tracing::warn!(error = %e, "could not renew this node's id claim"),
    }
}

/// Writes this node's connections to presence as they are, and announces
/// the users whose presence changed. See the module docs for when.
pub(crate) async fn restore(inner: &Arc<Inner>) -> Result<()> {
    let gate = inner.membership.gate.write().await;
    if inner.membership.is_lost() {
        return Ok(());
    }
    let counts = inner.registry.connection_counts();
    let changes = inner
        .presence
        .restore(&inner.node, &counts, now_millis())
        .await;
    drop(gate);
    let changes = changes?;
    if changes.is_empty() {
        tracing::debug!(
            users = counts.len(),
            "presence checked against this node's sessions"
        );
    } else {
        tracing::info!(
            users = counts.len(),
            changed = changes.len(),
            "presence restored from this node's sessions"
        );
    }
    inner.observer.event(&Event::PresenceRestored {
        changed: changes.len(),
    });
    for presence in changes {
        inner.announce_presence(presence).await;
    }
    Ok(())
}
