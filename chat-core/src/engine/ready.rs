//! Readiness: whether this node can serve now, found by one real round trip
//! to each part it depends on (the stores, presence and discovery), each
//! bounded by a timeout.
//!
//! A node whose store is down still runs (open sockets stay open, sends
//! answer `unavailable`), so the process being up says little; readiness
//! is what a load balancer or an orchestrator should route by.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use crate::error::{Error, Result};
use crate::model::{UserId, now_millis};

/// A part of the engine that [`Engine::ready`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadyPart {
    /// The message, conversation and account stores.
    Store,
    /// Presence (in a cluster, the shared presence store).
    Presence,
    /// Service discovery (in a cluster, the shared node list).
    Discovery,
    /// This node's claim on its worker id: not ready while the node may not
    /// mint message ids (it could not renew its lease in time, or another
    /// node took its id), since every send would answer `unavailable`.
    NodeId,
    /// The node is draining ([`Engine::drain`]): it is being taken out of
    /// service and takes no new connections.
    Draining,
}

impl ReadyPart {
    /// The part's name, as it leads a [`NotReady`] message.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Presence => "presence",
            Self::Discovery => "discovery",
            Self::NodeId => "node id",
            Self::Draining => "draining",
        }
    }
}

impl fmt::Display for ReadyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`Engine::ready`] failed: the first part, in the order store,
/// presence, discovery, node id, that did not answer in time or answered an
/// error.
///
/// Its message is `part: reason`, for example `store: cassandra: ping` or
/// `presence: no answer within 2000 ms`; the part's own error (with the
/// backend's detail as its source) is [`NotReady::cause`].
#[derive(Debug, thiserror::Error)]
#[error("{part}: {}", reason(.cause))]
pub struct NotReady {
    part: ReadyPart,
    #[source]
    cause: Error,
}

impl NotReady {
    /// The part that failed.
    pub fn part(&self) -> ReadyPart {
        self.part
    }

    /// What it answered (a timeout is an [`Error::Unavailable`]).
    pub fn cause(&self) -> &Error {
        &self.cause
    }
}

/// The cause without the "unavailable: " prefix that every failure here
/// would repeat.
fn reason(cause: &Error) -> String {
    match cause {
        Error::Unavailable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// A user id that no account has (ids the server issues never contain a
/// space): presence reads it as offline, which costs one real lookup.
const PROBE_USER: &str = "readiness probe";

impl Engine {
    /// Whether this node can serve now: one cheap real call to each store
    /// ([`MessageStore::ping`](crate::store::MessageStore::ping) and its
    /// siblings, once per distinct store object), to presence (one user's
    /// presence) and to discovery (the live nodes), all at once, each given
    /// at most `timeout`. In-memory parts answer at once, so on one node
    /// without a cluster this checks the store alone.
    ///
    /// A draining node is not ready, without a call.
    ///
    /// Returns the first part that failed, in the order store, presence,
    /// discovery, node id (whether this node may mint ids now: no round
    /// trip, the answer of its last lease renewal).
    pub async fn ready(&self, timeout: Duration) -> Result<(), NotReady> {
        let inner = &self.inner;
        if inner.is_draining() {
            return Err(NotReady {
                part: ReadyPart::Draining,
                cause: Error::unavailable_msg("this node is being taken out of service"),
            });
        }
        let store = async {
            // One object usually serves all three traits (`EngineBuilder::
            // store`): ask it once. Addresses compare the objects, not the
            // vtables.
            let messages = Arc::as_ptr(&inner.messages).cast::<()>();
            let conversations = Arc::as_ptr(&inner.conversations).cast::<()>();
            let accounts = Arc::as_ptr(&inner.accounts).cast::<()>();
            let ask_conversations = conversations != messages;
            let ask_accounts = accounts != messages && accounts != conversations;
            let (m, c, a) = tokio::join!(
                bounded(timeout, inner.messages.ping()),
                async {
                    if ask_conversations {
                        bounded(timeout, inner.conversations.ping()).await
                    } else {
                        Ok(())
                    }
                },
                async {
                    if ask_accounts {
                        bounded(timeout, inner.accounts.ping()).await
                    } else {
                        Ok(())
                    }
                },
            );
            m.and(c).and(a)
        };
        let probe = [UserId::from(PROBE_USER)];
        let presence = bounded(timeout, async {
            inner.presence.presence(&probe).await.map(drop)
        });
        let discovery = bounded(timeout, async {
            inner.discovery.live_nodes(now_millis()).await.map(drop)
        });
        let (store, presence, discovery) = tokio::join!(store, presence, discovery);
        let fail = |part| move |cause| NotReady { part, cause };
        store.map_err(fail(ReadyPart::Store))?;
        presence.map_err(fail(ReadyPart::Presence))?;
        discovery.map_err(fail(ReadyPart::Discovery))?;
        inner
            .membership
            .check_mint()
            .map_err(fail(ReadyPart::NodeId))?;
        Ok(())
    }
}

/// `call`, or [`Error::Unavailable`] when it takes longer than `timeout`.
async fn bounded(timeout: Duration, call: impl Future<Output = Result<()>>) -> Result<()> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(Error::unavailable_msg(format!(
                "no answer within {} ms",
                timeout.as_millis()
            )))
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::cluster::{PresenceEntry, PresenceStore};
    use crate::memory::MemoryStore;
    use crate::model::{Account, Device, DeviceId, Millis, NodeId, Presence};
    use crate::store::faulty::Op;
    use crate::store::{AccountStore, FaultSwitch, FaultyStore, MessageStore};

    async fn engine_with(messages: Arc<dyn MessageStore>) -> Engine {
        Engine::builder()
            .message_store(messages)
            .build()
            .await
            .expect("engine")
    }

    #[tokio::test]
    async fn in_memory_parts_are_ready() {
        let engine = Engine::builder().build().await.expect("engine");
        engine
            .ready(Duration::from_secs(1))
            .await
            .expect("memory answers");
    }

    #[tokio::test]
    async fn a_failing_store_is_named_until_it_answers_again() {
        let switch = FaultSwitch::new();
        let store = Arc::new(FaultyStore::new(
            Arc::new(MemoryStore::default()),
            switch.clone(),
        ));
        let engine = engine_with(store).await;
        switch.fail(Op::Ping, true);
        let err = engine.ready(Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.part(), ReadyPart::Store);
        assert_eq!(err.to_string(), "store: injected fault in ping");
        assert_eq!(err.cause().code(), "unavailable");
        switch.clear();
        engine
            .ready(Duration::from_secs(1))
            .await
            .expect("ready once the store answers");
    }

    /// A store that never answers a ping.
    struct Silent(MemoryStore);

    #[async_trait]
    impl AccountStore for Silent {
        async fn create_account(&self, account: Account) -> Result<()> {
            self.0.create_account(account).await
        }
        async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
            self.0.account_by_username(username).await
        }
        async fn account(&self, id: &UserId) -> Result<Option<Account>> {
            self.0.account(id).await
        }
        async fn set_display_name(&self, id: &UserId, display_name: &str) -> Result<Account> {
            self.0.set_display_name(id, display_name).await
        }
        async fn create_device(&self, device: Device) -> Result<()> {
            self.0.create_device(device).await
        }
        async fn device(&self, id: &DeviceId) -> Result<Option<Device>> {
            self.0.device(id).await
        }
        async fn devices(&self, user: &UserId) -> Result<Vec<Device>> {
            self.0.devices(user).await
        }
        async fn remove_device(&self, user: &UserId, id: &DeviceId) -> Result<bool> {
            self.0.remove_device(user, id).await
        }
        async fn touch_device(&self, id: &DeviceId, at: Millis) -> Result<()> {
            self.0.touch_device(id, at).await
        }
        async fn block(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
            self.0.block(blocker, blocked).await
        }
        async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
            self.0.unblock(blocker, blocked).await
        }
        async fn blocked_by(&self, blocker: &UserId) -> Result<Vec<UserId>> {
            self.0.blocked_by(blocker).await
        }
        async fn is_blocked(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
            self.0.is_blocked(blocker, blocked).await
        }
        async fn ping(&self) -> Result<()> {
            std::future::pending().await
        }
    }

    /// Presence whose backend is down: every call fails.
    struct DownPresence;

    fn down() -> Error {
        Error::unavailable_msg("redis: connection refused")
    }

    #[async_trait]
    impl PresenceStore for DownPresence {
        async fn connect(&self, _: &UserId, _: &NodeId, _: Millis) -> Result<bool> {
            Err(down())
        }
        async fn disconnect(&self, _: &UserId, _: &NodeId, _: Millis) -> Result<bool> {
            Err(down())
        }
        async fn presence(&self, _: &[UserId]) -> Result<Vec<PresenceEntry>> {
            Err(down())
        }
        async fn heartbeat(&self, _: &NodeId, _: Millis, _: Millis) -> Result<()> {
            Err(down())
        }
        async fn reap(&self, _: Millis) -> Result<Vec<Presence>> {
            Err(down())
        }
        async fn restore(
            &self,
            _: &NodeId,
            _: &[(UserId, u32)],
            _: Millis,
        ) -> Result<Vec<Presence>> {
            Err(down())
        }
    }

    #[tokio::test]
    async fn a_failing_presence_is_named_after_a_working_store() {
        let engine = Engine::builder()
            .presence(Arc::new(DownPresence))
            .build()
            .await
            .expect("engine");
        let err = engine.ready(Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.part(), ReadyPart::Presence);
        assert_eq!(err.to_string(), "presence: redis: connection refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_does_not_answer_times_out() {
        let engine = Engine::builder()
            .account_store(Arc::new(Silent(MemoryStore::default())))
            .build()
            .await
            .expect("engine");
        let err = engine.ready(Duration::from_millis(250)).await.unwrap_err();
        assert_eq!(err.part(), ReadyPart::Store);
        assert_eq!(err.to_string(), "store: no answer within 250 ms");
    }
}
