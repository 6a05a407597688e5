//! Cluster notices that must have taken effect everywhere before the call
//! that made them answers: a device logged out (its tokens stop working at
//! once, on every node) and blocks changed (a blocked user's next send is
//! refused on whatever node it uses). Other nodes cache both, so that the
//! hot paths cost no store read; the notice makes them forget.
//!
//! The node that publishes such a notice waits until every other live node
//! (as discovery lists them) answered that it applied it, at most
//! [`CONFIRM_WAIT`]: a node that died meanwhile or lost its bus connection
//! holds the answer back that long, never longer. A node that lost its bus
//! connection forgets all its devices and blocks when it is back, and
//! closes the sessions of devices logged out meanwhile (see
//! `Topic::Resumed` in `background`).
//! The rare writes pay a bus round trip; the reads stay free.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::Inner;
use super::envelope::Header;
use crate::model::{NodeId, now_millis};

/// Longest a device logout or a block change waits for the other live
/// nodes to confirm that they applied it, before it answers anyway: what a
/// node that died (but is still listed live) or lost its bus connection
/// costs such a call.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(2);

/// The notices of this node waiting for other nodes to apply them.
#[derive(Default)]
pub(crate) struct Confirmations {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, Waiting>>,
}

struct Waiting {
    nodes: HashSet<NodeId>,
    done: Option<oneshot::Sender<()>>,
}

impl Confirmations {
    /// `node` applied notice `ack`.
    fn applied(&self, ack: u64, node: &NodeId) {
        let mut waiting = self.waiting.lock();
        if let Some(w) = waiting.get_mut(&ack) {
            w.nodes.remove(node);
            if w.nodes.is_empty() {
                if let Some(done) = w.done.take() {
                    let _ = done.send(());
                }
                waiting.remove(&ack);
            }
        }
    }
}

impl Inner {
    /// Publishes the notice that `header` makes of an acknowledgement
    /// number on the cluster topic, and waits until every other live node
    /// applied it (at most [`CONFIRM_WAIT`]).
    pub(crate) async fn notice_cluster_confirmed(
        &self,
        header: impl FnOnce(Option<u64>) -> Header,
    ) {
        let others: HashSet<NodeId> = match self.discovery.live_nodes(now_millis()).await {
            Ok(live) => live
                .into_iter()
                .map(|n| n.id)
                .filter(|n| *n != self.node)
                .collect(),
            Err(e) => {
                // Without the list, wait for nobody: the notice still goes
                // out, and the caches expire on their own.
                tracing::warn!(error = %e, "live nodes unknown: a cluster notice is not confirmed");
                HashSet::new()
            }
        };
        if others.is_empty() {
            self.notice_cluster(header(None)).await;
            return;
        }
        let ack = self.confirmations.next.fetch_add(1, Ordering::Relaxed);
        let (done, applied) = oneshot::channel();
        self.confirmations.waiting.lock().insert(
            ack,
            Waiting {
                nodes: others,
                done: Some(done),
            },
        );
        self.notice_cluster(header(Some(ack))).await;
        if tokio::time::timeout(CONFIRM_WAIT, applied).await.is_err() {
            let late = self.confirmations.waiting.lock().remove(&ack);
            tracing::warn!(
                nodes = ?late.map(|w| w.nodes),
                "nodes did not confirm a cluster notice in time"
            );
        }
    }

    /// Tells `origin` that this node applied its notice `ack`.
    pub(crate) async fn confirm_applied(&self, origin: NodeId, ack: Option<u64>) {
        let Some(ack) = ack else { return };
        self.notice_cluster(Header::Applied { to: origin, ack })
            .await;
    }

    /// Another node applied this node's notice `ack` (an answer meant for
    /// another node is ignored).
    pub(crate) fn on_applied(&self, from: &NodeId, to: &NodeId, ack: u64) {
        if *to == self.node {
            self.confirmations.applied(ack, from);
        }
    }
}
