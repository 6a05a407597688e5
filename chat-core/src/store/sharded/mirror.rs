//! A send to a mirrored direct conversation: the intent, the first copy
//! (the commit point), the second copy, and the fill that brings a second
//! copy that missed entries up to the first one's chain.
//!
//! The steps of one send, and what a crash after each leaves:
//!
//! 1. `put_intent` on the first copy. A crash here leaves an intent whose
//!    entry is nowhere: the reconciler forgets it once it is older than
//!    [`super::RepairConfig::abandon_after`].
//! 2. `append` (or `append_after`) on the first copy: the send is stored
//!    and its `prev` is the first copy's. Every node links later entries to
//!    it, whoever sends them (they all append to the first copy first), so
//!    it is delivered even if nothing below ever runs. A crash here leaves
//!    the entry on the first copy only, and its intent.
//! 3. `append_after(entry, prev)` on the second copy: it goes in only right
//!    after its predecessor. If the second copy is behind (an earlier send
//!    died at step 2, or a racing sender's copy went first), the conflict
//!    says so and [`ShardedStore::fill`] copies what is missing, in order.
//! 4. `clear_intent`. A crash before it leaves an intent of a whole send:
//!    the reconciler finds the second copy complete and clears it.
//!
//! The second copy's entries carry no dedup key: a retry is deduplicated
//! on the first copy (every append goes there first), and a key on the
//! second would collide with the same sender's key in another
//! conversation of that shard.

use crate::error::{Error, Result};
use crate::model::{ConversationId, Message, MessageId, NewMessage};
use crate::store::{Appended, Intent};

use super::ShardedStore;

/// Entries read from the first copy per round of a fill.
const FILL_PAGE: usize = 256;

/// Rounds (pages, or retries of one entry after conflicts) before a fill
/// gives up with `Unavailable`; each conflict means another writer copied
/// meanwhile, so this is only reached under a storm of them.
const FILL_ROUNDS: usize = 64;

/// How the first copy is written.
#[derive(Clone, Copy, Debug)]
pub(super) enum FirstWrite {
    /// [`crate::store::MessageStore::append`] at this version.
    Append(u64),
    /// [`crate::store::MessageStore::append_after`] this entry.
    After(Option<MessageId>),
}

/// What a fill of the second copy up to an entry found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Filled {
    /// The second copy has every entry of the first up to it (or skipped
    /// one it cannot hold, see [`ShardedStore::fill`]).
    Done,
    /// The first copy does not hold the entry: its send never stored it
    /// (or has not yet), or it was purged or removed since.
    Absent,
}

/// An error after which the first copy surely stored nothing: its intent
/// can go at once. Any other error (a timeout, a lost reply) may have come
/// after the write landed; the intent stays for the reconciler.
fn stored_nothing(error: &Error) -> bool {
    matches!(
        error,
        Error::Conflict { .. } | Error::NotFound { .. } | Error::InvalidInput { .. }
    )
}

/// The second copy's version of `message`: no dedup key (see the module
/// docs); the sender's device only for the send being made.
fn copy_of(message: Message, device: Option<crate::model::DeviceId>) -> NewMessage {
    NewMessage {
        message,
        client_msg_id: None,
        device,
    }
}

impl ShardedStore {
    /// Appends `entry` to a mirrored conversation held by `first` and
    /// `second` (see the module docs). Answers the first copy's outcome:
    /// once it stored the entry, the send is stored, even if the second
    /// copy failed (its intent stays, and the reconciler or the next send
    /// completes it).
    pub(super) async fn append_mirrored(
        &self,
        (first, second): (usize, usize),
        entry: NewMessage,
        how: FirstWrite,
    ) -> Result<Appended> {
        let conversation = entry.message.conversation_id.clone();
        let intent = Intent {
            message_id: entry.message.message_id,
            conversation_id: conversation.clone(),
        };
        self.shard(first).put_intent(&intent).await?;
        let device = entry.device.clone();
        let written = match how {
            FirstWrite::Append(version) => self.shard(first).append(entry, version).await,
            FirstWrite::After(after) => self.shard(first).append_after(entry, after).await,
        };
        let appended = match written {
            Ok(appended) => appended,
            Err(error) => {
                if stored_nothing(&error) {
                    self.forget(first, &intent).await;
                }
                return Err(error);
            }
        };
        let id = appended.message.message_id;
        let copied = if appended.duplicate {
            // A retry of a send stored before, whose second write may have
            // died: bring the second copy up to it.
            self.fill((first, second), &conversation, id, None).await
        } else {
            let copy = copy_of(appended.message.clone(), device.clone());
            match self.shard(second).append_after(copy, appended.prev).await {
                Ok(_) => Ok(Filled::Done),
                // Behind (or a racing copy went first): copy in order.
                Err(Error::Conflict { .. }) => {
                    self.fill((first, second), &conversation, id, device).await
                }
                // Its target is gone from the second copy: skipped (see fill).
                Err(Error::NotFound { .. }) => Ok(Filled::Done),
                Err(e) => Err(e),
            }
        };
        match copied {
            Ok(_) => self.forget(first, &intent).await,
            Err(error) => {
                tracing::warn!(%conversation, %id, shard = second, %error,
                    "the second copy of a direct send failed; the reconciler completes it");
            }
        }
        Ok(appended)
    }

    /// Clears `intent` on `shard`; a failure only leaves work for the
    /// reconciler, so it is logged, not answered.
    pub(super) async fn forget(&self, shard: usize, intent: &Intent) {
        if let Err(error) = self.shard(shard).clear_intent(intent).await {
            tracing::warn!(conversation = %intent.conversation_id, id = %intent.message_id,
                %error, "could not clear an intent; the reconciler clears it later");
        }
    }

    /// Brings the second copy of `conversation` up to entry `up_to` of the
    /// first: reads the first copy from the second's head on and appends
    /// each entry with `append_after` its predecessor, so copies racing
    /// with this one (a sender, another reconciler) interleave safely: a
    /// conflict names the head that went in, and the copy goes on from it.
    /// `device` is the sender's device for `up_to` itself (its cursor moves
    /// on the second copy as on the first).
    ///
    /// An event whose target the second copy does not hold (purged there
    /// first) is skipped: it changes nothing there, and the chain goes on
    /// after the entry before it.
    pub(super) async fn fill(
        &self,
        (first, second): (usize, usize),
        conversation: &ConversationId,
        up_to: MessageId,
        device: Option<crate::model::DeviceId>,
    ) -> Result<Filled> {
        let mut after = self.shard(second).head(conversation).await?.last_id;
        let mut from = after;
        let mut met = false;
        let mut rounds = 0;
        while !met && after.is_none_or(|a| a < up_to) {
            rounds += 1;
            if rounds > FILL_ROUNDS {
                return Err(give_up(conversation));
            }
            let page = self
                .shard(first)
                .range(conversation, from, Some(up_to), FILL_PAGE)
                .await?;
            let full = page.len() == FILL_PAGE;
            for message in page {
                let id = message.message_id;
                from = Some(id);
                met |= id == up_to;
                let device = if id == up_to { device.clone() } else { None };
                let copy = copy_of(message, device);
                while after.is_none_or(|a| a < id) {
                    rounds += 1;
                    if rounds > FILL_ROUNDS {
                        return Err(give_up(conversation));
                    }
                    match self.shard(second).append_after(copy.clone(), after).await {
                        Ok(_) => after = Some(id),
                        // Someone else copied up to `head`: skip to it.
                        Err(Error::Conflict { head }) => after = head.last_id,
                        Err(Error::NotFound { .. }) => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(if met || after.is_some_and(|a| a >= up_to) {
            Filled::Done
        } else {
            Filled::Absent
        })
    }
}

fn give_up(conversation: &ConversationId) -> Error {
    Error::unavailable_msg(format!(
        "the second copy of {conversation} kept conflicting while being filled"
    ))
}
