//! [`Observed`]: any store, with every call timed and its outcome reported
//! to an [`Observer`] as an [`Event::StoreCall`] (store latency and errors
//! per backend and call, for metrics).
//!
//! A layer in OpenDAL's sense: it implements the same traits as what it
//! wraps and changes nothing else. The forwarding is generated, one line
//! per method, so a method added to a trait fails to compile here until it
//! is listed.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{
    Account, Conversation, ConversationId, Departure, Device, DeviceId, GroupSettings, Head,
    Invite, Member, Message, MessageId, Millis, NewMessage, Role, UserId,
};
use crate::observe::{Event, Observer};
use crate::store::{
    AccountStore, AckMoved, Appended, ConversationStore, Cursors, DeviceCursor, Intent,
    MessageStore,
};

/// `S` with every call reported to an [`Observer`] under a backend name.
pub struct Observed<S: ?Sized> {
    inner: Arc<S>,
    observer: Arc<dyn Observer>,
    backend: String,
}

impl<S: ?Sized> Observed<S> {
    /// Wraps `inner`; its calls are reported as `backend` (`postgres`,
    /// `cassandra`, …).
    pub fn new(inner: Arc<S>, observer: Arc<dyn Observer>, backend: impl Into<String>) -> Self {
        Self {
            inner,
            observer,
            backend: backend.into(),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    fn report(&self, op: &'static str, started: Instant, error: Option<&Error>) {
        self.observer.event(&Event::StoreCall {
            backend: &self.backend,
            op,
            latency: started.elapsed(),
            error,
        });
    }
}

impl<S: ?Sized> std::fmt::Debug for Observed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// One `impl Trait for Observed<S>` whose every method times the inner call.
macro_rules! observed_impl {
    ($trait:ident { $( fn $name:ident( $($arg:ident : $ty:ty),* ) -> $ret:ty; )* }) => {
        #[async_trait]
        impl<S: $trait + ?Sized> $trait for Observed<S> {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                    let started = Instant::now();
                    let result = <S as $trait>::$name(&self.inner, $($arg),*).await;
                    self.report(stringify!($name), started, result.as_ref().err());
                    result
                }
            )*
        }
    };
}

observed_impl!(MessageStore {
    fn append(entry: NewMessage, expected_version: u64) -> Appended;
    fn append_after(entry: NewMessage, after: Option<MessageId>) -> Appended;
    fn head(conversation: &ConversationId) -> Head;
    fn heads(conversations: &[ConversationId]) -> Vec<Head>;
    fn entry(conversation: &ConversationId, id: MessageId) -> Option<Message>;
    fn history(
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize
    ) -> Vec<Message>;
    fn range(
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize
    ) -> Vec<Message>;
    fn remove(conversation: &ConversationId, id: MessageId) -> ();
    fn purge(conversation: &ConversationId, up_to: MessageId) -> u64;
    fn cursors(
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId
    ) -> Cursors;
    fn user_cursors(user: &UserId, conversations: &[ConversationId]) -> Vec<Cursors>;
    fn device_cursors(device: &DeviceId) -> Vec<(ConversationId, MessageId)>;
    fn conversation_cursors(conversation: &ConversationId) -> Vec<DeviceCursor>;
    fn ack(
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        up_to: MessageId
    ) -> AckMoved;
    fn mark_read(
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId
    ) -> (Option<MessageId>, bool);
    fn start_member(user: &UserId, conversation: &ConversationId, head: Head) -> ();
    fn start_device(user: &UserId, device: &DeviceId) -> ();
    fn forget_device(device: &DeviceId) -> ();
    fn put_intent(intent: &Intent) -> ();
    fn intents(after: Option<MessageId>, before: MessageId, limit: usize) -> Vec<Intent>;
    fn clear_intent(intent: &Intent) -> ();
    fn ping() -> ();
});

observed_impl!(ConversationStore {
    fn create_group(conversation: Conversation, members: &[Member]) -> ();
    fn ensure_direct(conversation: Conversation) -> (Conversation, bool);
    fn conversation(id: &ConversationId) -> Option<Conversation>;
    fn update_group(id: &ConversationId, settings: &GroupSettings) -> Conversation;
    fn members(id: &ConversationId) -> Vec<Member>;
    fn member(id: &ConversationId, user: &UserId) -> Option<Member>;
    fn member_count(id: &ConversationId) -> u64;
    fn add_member(id: &ConversationId, member: Member) -> bool;
    fn remove_member(id: &ConversationId, user: &UserId, ban: bool) -> Option<Member>;
    fn set_role(id: &ConversationId, user: &UserId, role: Role) -> bool;
    fn is_banned(id: &ConversationId, user: &UserId) -> bool;
    fn memberships(user: &UserId) -> Vec<(ConversationId, Member)>;
    fn record_departure(user: &UserId, departure: Departure) -> ();
    fn departures(user: &UserId) -> Vec<Departure>;
    fn create_invite(invite: Invite) -> ();
    fn redeem_invite(code_hash: &str, now: Millis) -> ConversationId;
    fn revoke_invite(id: &ConversationId, code_hash: &str) -> bool;
    fn ping() -> ();
});

observed_impl!(AccountStore {
    fn create_account(account: Account) -> ();
    fn account_by_username(username: &str) -> Option<Account>;
    fn account(id: &UserId) -> Option<Account>;
    fn set_display_name(id: &UserId, display_name: &str) -> Account;
    fn create_device(device: Device) -> ();
    fn device(id: &DeviceId) -> Option<Device>;
    fn devices(user: &UserId) -> Vec<Device>;
    fn remove_device(user: &UserId, id: &DeviceId) -> bool;
    fn touch_device(id: &DeviceId, at: Millis) -> ();
    fn block(blocker: &UserId, blocked: &UserId) -> bool;
    fn unblock(blocker: &UserId, blocked: &UserId) -> bool;
    fn blocked_by(blocker: &UserId) -> Vec<UserId>;
    fn is_blocked(blocker: &UserId, blocked: &UserId) -> bool;
    fn ping() -> ();
});

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::memory::MemoryStore;

    /// Remembers (backend, op, failed) of every store call.
    #[derive(Default)]
    struct Calls(Mutex<Vec<(String, &'static str, bool)>>);

    impl Observer for Calls {
        fn event(&self, event: &Event<'_>) {
            if let Event::StoreCall {
                backend, op, error, ..
            } = event
            {
                self.0
                    .lock()
                    .push(((*backend).to_owned(), *op, error.is_some()));
            }
        }
    }

    #[tokio::test]
    async fn every_call_is_reported_with_its_outcome() {
        let calls = Arc::new(Calls::default());
        let store = Observed::new(Arc::new(MemoryStore::default()), calls.clone(), "memory");
        MessageStore::ping(&store).await.unwrap();
        let head = store.head(&ConversationId::from("g:1")).await.unwrap();
        assert_eq!(head.last_id, None);
        assert!(
            store
                .account(&UserId::from("nobody"))
                .await
                .unwrap()
                .is_none()
        );
        let err = store
            .update_group(&ConversationId::from("g:none"), &GroupSettings::default())
            .await;
        assert!(err.is_err());
        assert_eq!(
            *calls.0.lock(),
            vec![
                ("memory".to_owned(), "ping", false),
                ("memory".to_owned(), "head", false),
                ("memory".to_owned(), "account", false),
                ("memory".to_owned(), "update_group", true),
            ]
        );
    }
}
