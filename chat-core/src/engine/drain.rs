//! Taking a node out of service without losing a message: [`Engine::drain`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Engine, Inner};

/// What a drain did (see [`Engine::drain`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drained {
    /// Sessions open when the drain began.
    pub sessions: usize,
    /// Sessions still open when the grace period ended (closed by the
    /// shutdown that follows, without their queues written out).
    pub forced: usize,
}

impl Engine {
    /// Takes this node out of service, then shuts it down
    /// ([`Engine::shutdown`]):
    ///
    /// 1. it leaves discovery (logins hand out other nodes' `chat_url`),
    ///    [`Engine::ready`] answers [`ReadyPart::Draining`](super::ReadyPart::Draining)
    ///    (load balancers stop routing here) and new sessions are refused;
    /// 2. every session is asked to finish: its transport stops reading new
    ///    frames, answers the one in hand (a send in progress is stored and
    ///    gets its `sent`), writes out what is queued and closes with
    ///    [`CloseReason::Draining`](super::CloseReason::Draining), so the
    ///    client reconnects elsewhere and syncs;
    /// 3. after at most `grace`, the rest is closed, presence counts this
    ///    node's connections out and the node releases its worker id.
    ///
    /// Nothing is lost either way: what a client did not get is pending in
    /// the store and comes with its next sync; a send the node did not read
    /// got no `sent`, and the client sends it again with the same
    /// `client_msg_id`.
    pub async fn drain(&self, grace: Duration) -> Drained {
        let inner = &self.inner;
        inner.draining.store(true, Ordering::Release);
        if let Err(e) = inner.discovery.deregister(&inner.node).await {
            tracing::warn!(error = %e, "could not leave discovery; the entry lapses with the heartbeat");
        }
        let sessions = inner.registry.all_sessions();
        tracing::info!(
            sessions = sessions.len(),
            "draining: asking every session to finish"
        );
        for session in &sessions {
            session.drain();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while inner.registry.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let forced = inner.registry.session_count();
        if forced > 0 {
            tracing::warn!(forced, "drain grace over; closing the remaining sessions");
        }
        self.shutdown().await;
        Drained {
            sessions: sessions.len(),
            forced,
        }
    }

    /// Whether [`Engine::drain`] has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.is_draining()
    }
}

impl Inner {
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}
