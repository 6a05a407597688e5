//! [`FaultyStore`]: a [`MessageStore`] decorator that fails chosen calls on
//! demand, for tests of failure paths (a shard down, a write that fails
//! half-way, a reply lost after the write landed).
//!
//! The faults are driven by a [`FaultSwitch`], a cheap shared handle: keep a
//! clone in the test and flip it while the store is in use. One switch may
//! drive several stores (to take several shards down at once). An injected
//! failure is an [`Error::Unavailable`] whose source is an
//! [`InjectedFault`], so a test can tell it from a real backend failure.
//!
//! ```
//! use std::sync::Arc;
//! use chat_core::store::{FaultSwitch, FaultyStore, MessageStore};
//!
//! fn wrap(inner: Arc<dyn MessageStore>) -> (Arc<dyn MessageStore>, FaultSwitch) {
//!     let switch = FaultSwitch::new();
//!     (Arc::new(FaultyStore::new(inner, switch.clone())), switch)
//! }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{ConversationId, DeviceId, Head, Message, MessageId, NewMessage, UserId};
use crate::store::{AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore};

/// One [`MessageStore`] method, as a fault target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`MessageStore::append`].
    Append,
    /// [`MessageStore::head`].
    Head,
    /// [`MessageStore::heads`].
    Heads,
    /// [`MessageStore::entry`].
    Entry,
    /// [`MessageStore::history`].
    History,
    /// [`MessageStore::range`].
    Range,
    /// [`MessageStore::remove`].
    Remove,
    /// [`MessageStore::purge`].
    Purge,
    /// [`MessageStore::cursors`].
    Cursors,
    /// [`MessageStore::user_cursors`].
    UserCursors,
    /// [`MessageStore::device_cursors`].
    DeviceCursors,
    /// [`MessageStore::conversation_cursors`].
    ConversationCursors,
    /// [`MessageStore::ack`].
    Ack,
    /// [`MessageStore::mark_read`].
    MarkRead,
    /// [`MessageStore::start_member`].
    StartMember,
    /// [`MessageStore::start_device`].
    StartDevice,
    /// [`MessageStore::forget_device`].
    ForgetDevice,
    /// [`MessageStore::ping`].
    Ping,
    /// [`MessageStore::append_after`].
    AppendAfter,
    /// [`MessageStore::put_intent`].
    PutIntent,
    /// [`MessageStore::intents`].
    Intents,
    /// [`MessageStore::clear_intent`].
    ClearIntent,
}

impl Op {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Append => "append",
            Op::Head => "head",
            Op::Heads => "heads",
            Op::Entry => "entry",
            Op::History => "history",
            Op::Range => "range",
            Op::Remove => "remove",
            Op::Purge => "purge",
            Op::Cursors => "cursors",
            Op::UserCursors => "user_cursors",
            Op::DeviceCursors => "device_cursors",
            Op::ConversationCursors => "conversation_cursors",
            Op::Ack => "ack",
            Op::MarkRead => "mark_read",
            Op::StartMember => "start_member",
            Op::StartDevice => "start_device",
            Op::ForgetDevice => "forget_device",
            Op::Ping => "ping",
            Op::AppendAfter => "append_after",
            Op::PutIntent => "put_intent",
            Op::Intents => "intents",
            Op::ClearIntent => "clear_intent",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The source of every failure a [`FaultyStore`] injects.
#[derive(Debug, thiserror::Error)]
#[error("injected fault in {op}{}", if *.landed { " after the call reached the store" } else { "" })]
pub struct InjectedFault {
    /// The method that failed.
    pub op: Op,
    /// True when the call reached the inner store and only its answer was
    /// replaced by the failure (see [`FaultSwitch::lose_append_replies`]).
    pub landed: bool,
}

#[derive(Default)]
struct Faults {
    all: AtomicBool,
    ops: AtomicU32,
    next_appends: AtomicUsize,
    lose_append_replies: AtomicBool,
    injected: AtomicU64,
}

/// The shared handle that turns a [`FaultyStore`]'s faults on and off.
/// Clones control the same faults. Every setting starts off.
#[derive(Clone, Default)]
pub struct FaultSwitch {
    faults: Arc<Faults>,
}

impl fmt::Debug for FaultSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultSwitch")
            .field("all", &self.faults.all.load(Ordering::Relaxed))
            .field("ops", &self.faults.ops.load(Ordering::Relaxed))
            .field(
                "next_appends",
                &self.faults.next_appends.load(Ordering::Relaxed),
            )
            .field(
                "lose_append_replies",
                &self.faults.lose_append_replies.load(Ordering::Relaxed),
            )
            .field("injected", &self.injected())
            .finish()
    }
}

impl FaultSwitch {
    /// A switch with every fault off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails every call (the store is down) while `on`.
    pub fn fail_all(&self, on: bool) {
        self.faults.all.store(on, Ordering::SeqCst);
    }

    /// Fails every call of `op` while `on`.
    pub fn fail(&self, op: Op, on: bool) {
        if on {
            self.faults.ops.fetch_or(op.bit(), Ordering::SeqCst);
        } else {
            self.faults.ops.fetch_and(!op.bit(), Ordering::SeqCst);
        }
    }

    /// Fails every append while `on`: [`MessageStore::append`] and
    /// [`MessageStore::append_after`].
    pub fn fail_appends(&self, on: bool) {
        self.fail(Op::Append, on);
        self.fail(Op::AppendAfter, on);
    }

    /// Fails every remove while `on` (an undo that cannot be done).
    pub fn fail_removes(&self, on: bool) {
        self.fail(Op::Remove, on);
    }

    /// Fails the next `n` appends, then lets appends through again
    /// (replaces any count still left).
    pub fn fail_next_appends(&self, n: usize) {
        self.faults.next_appends.store(n, Ordering::SeqCst);
    }

    /// While `on`, appends reach the inner store and are stored, but answer
    /// [`Error::Unavailable`]: a reply lost after the write committed.
    pub fn lose_append_replies(&self, on: bool) {
        self.faults.lose_append_replies.store(on, Ordering::SeqCst);
    }

    /// Turns every fault off (the count of injected faults stays).
    pub fn clear(&self) {
        self.fail_all(false);
        self.faults.ops.store(0, Ordering::SeqCst);
        self.fail_next_appends(0);
        self.lose_append_replies(false);
    }

    /// How many failures were injected so far, so a test can check that
    /// its fault actually fired.
    pub fn injected(&self) -> u64 {
        self.faults.injected.load(Ordering::SeqCst)
    }

    /// Whether a call of `op` must fail before reaching the store; counts
    /// the fault when it does.
    fn fails_before(&self, op: Op) -> bool {
        let f = &self.faults;
        let fails = f.all.load(Ordering::SeqCst)
            || f.ops.load(Ordering::SeqCst) & op.bit() != 0
            || (op == Op::Append
                && f.next_appends
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok());
        if fails {
            f.injected.fetch_add(1, Ordering::SeqCst);
        }
        fails
    }

    fn loses_append_reply(&self) -> bool {
        let loses = self.faults.lose_append_replies.load(Ordering::SeqCst);
        if loses {
            self.faults.injected.fetch_add(1, Ordering::SeqCst);
        }
        loses
    }
}

fn injected(op: Op, landed: bool) -> Error {
    Error::unavailable(
        format!("injected fault in {op}"),
        InjectedFault { op, landed },
    )
}

/// A [`MessageStore`] that passes every call to an inner store unless its
/// [`FaultSwitch`] says to fail it.
pub struct FaultyStore {
    inner: Arc<dyn MessageStore>,
    switch: FaultSwitch,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("switch", &self.switch)
            .finish_non_exhaustive()
    }
}

impl FaultyStore {
    /// Wraps `inner`, failing calls as `switch` says.
    pub fn new(inner: Arc<dyn MessageStore>, switch: FaultSwitch) -> Self {
        Self { inner, switch }
    }

    /// The switch that drives this store's faults.
    pub fn switch(&self) -> &FaultSwitch {
        &self.switch
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn MessageStore> {
        &self.inner
    }

    fn check(&self, op: Op) -> Result<()> {
        if self.switch.fails_before(op) {
            Err(injected(op, false))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl MessageStore for FaultyStore {
    async fn append(&self, entry: NewMessage, expected_version: u64) -> Result<Appended> {
        self.check(Op::Append)?;
        let appended = self.inner.append(entry, expected_version).await?;
        if self.switch.loses_append_reply() {
            return Err(injected(Op::Append, true));
        }
        Ok(appended)
    }

    async fn append_after(&self, entry: NewMessage, after: Option<MessageId>) -> Result<Appended> {
        self.check(Op::AppendAfter)?;
        self.inner.append_after(entry, after).await
    }

    async fn put_intent(&self, intent: &Intent) -> Result<()> {
        self.check(Op::PutIntent)?;
        self.inner.put_intent(intent).await
    }

    async fn intents(
        &self,
        after: Option<MessageId>,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<Intent>> {
        self.check(Op::Intents)?;
        self.inner.intents(after, before, limit).await
    }

    async fn clear_intent(&self, intent: &Intent) -> Result<()> {
        self.check(Op::ClearIntent)?;
        self.inner.clear_intent(intent).await
    }

    async fn head(&self, conversation: &ConversationId) -> Result<Head> {
        self.check(Op::Head)?;
        self.inner.head(conversation).await
    }

    async fn heads(&self, conversations: &[ConversationId]) -> Result<Vec<Head>> {
        self.check(Op::Heads)?;
        self.inner.heads(conversations).await
    }

    async fn entry(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>> {
        self.check(Op::Entry)?;
        self.inner.entry(conversation, id).await
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        floor: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.check(Op::History)?;
        self.inner.history(conversation, before, floor, limit).await
    }

    async fn range(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.check(Op::Range)?;
        self.inner.range(conversation, after, up_to, limit).await
    }

    async fn remove(&self, conversation: &ConversationId, id: MessageId) -> Result<()> {
        self.check(Op::Remove)?;
        self.inner.remove(conversation, id).await
    }

    async fn purge(&self, conversation: &ConversationId, up_to: MessageId) -> Result<u64> {
        self.check(Op::Purge)?;
        self.inner.purge(conversation, up_to).await
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: Option<&DeviceId>,
        conversation: &ConversationId,
    ) -> Result<Cursors> {
        self.check(Op::Cursors)?;
        self.inner.cursors(user, device, conversation).await
    }

    async fn user_cursors(
        &self,
        user: &UserId,
        conversations: &[ConversationId],
    ) -> Result<Vec<Cursors>> {
        self.check(Op::UserCursors)?;
        self.inner.user_cursors(user, conversations).await
    }

    async fn device_cursors(&self, device: &DeviceId) -> Result<Vec<(ConversationId, MessageId)>> {
        self.check(Op::DeviceCursors)?;
        self.inner.device_cursors(device).await
    }

    async fn conversation_cursors(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<DeviceCursor>> {
        self.check(Op::ConversationCursors)?;
        self.inner.conversation_cursors(conversation).await
    }

    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<AckMoved> {
        self.check(Op::Ack)?;
        self.inner.ack(user, device, conversation, up_to).await
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)> {
        self.check(Op::MarkRead)?;
        self.inner.mark_read(user, conversation, up_to).await
    }

    async fn start_member(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        head: Head,
    ) -> Result<()> {
        self.check(Op::StartMember)?;
        self.inner.start_member(user, conversation, head).await
    }

    async fn start_device(&self, user: &UserId, device: &DeviceId) -> Result<()> {
        self.check(Op::StartDevice)?;
        self.inner.start_device(user, device).await
    }

    async fn forget_device(&self, device: &DeviceId) -> Result<()> {
        self.check(Op::ForgetDevice)?;
        self.inner.forget_device(device).await
    }

    async fn ping(&self) -> Result<()> {
        self.check(Op::Ping)?;
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_settings_combine_and_count() {
        let s = FaultSwitch::new();
        assert!(!s.fails_before(Op::Append));
        s.fail_next_appends(2);
        assert!(!s.fails_before(Op::Remove), "the count is for appends only");
        assert!(s.fails_before(Op::Append));
        assert!(s.fails_before(Op::Append));
        assert!(!s.fails_before(Op::Append));
        s.fail(Op::Ack, true);
        s.fail(Op::Purge, true);
        assert!(s.fails_before(Op::Ack) && s.fails_before(Op::Purge));
        s.fail(Op::Ack, false);
        assert!(!s.fails_before(Op::Ack) && s.fails_before(Op::Purge));
        s.clear();
        s.fail_all(true);
        assert!(
            s.clone().fails_before(Op::History),
            "clones share the faults"
        );
        s.clear();
        assert!(!s.fails_before(Op::History));
        assert_eq!(s.injected(), 6);
    }

    #[test]
    fn injected_errors_are_unavailable_with_their_source() {
        let e = injected(Op::Append, true);
        assert_eq!(e.code(), "unavailable");
        let source = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<InjectedFault>())
            .expect("an InjectedFault source");
        assert_eq!(source.op, Op::Append);
        assert!(source.landed);
    }
}
