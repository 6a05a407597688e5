//! The two-shard append of a direct conversation under `ShardBy::User`,
//! with its undo. See the module docs of `sharded` for the failure story.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::model::{ConversationId, MessageId, NewMessage, UserId};
use crate::store::{Appended, MessageStore};

use super::route::stable_hash;

/// How many locks the (sender, client_msg_id) keys are spread over. Two
/// unrelated sends wait for each other only when their keys share a stripe
/// and both are in flight; 128 keeps that rare at thousands of sends a
/// second while the table stays a fixed 128 small mutexes.
const STRIPES: usize = 128;

/// Serializes two-shard appends that share a dedup key within this process.
///
/// Without it, a retry racing the original could take the first shard's
/// copy as its duplicate, complete the second shard and answer `sent`,
/// while the original, whose second write failed, removes that very copy
/// as its undo. Across processes the window stays open; it needs a client
/// to resend to another node while its first attempt is still in flight.
pub(super) struct KeyLocks {
    stripes: Box<[Mutex<()>]>,
}

impl KeyLocks {
    pub(super) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    async fn lock(&self, sender: &UserId, key: &str) -> MutexGuard<'_, ()> {
        let hash = stable_hash(&[sender.as_str().as_bytes(), key.as_bytes()]);
        // The remainder is below STRIPES, so the cast is lossless.
        self.stripes[(hash % STRIPES as u64) as usize].lock().await
    }
}

/// One shard with its index (the index is only for logs and errors).
pub(super) struct Shard<'a> {
    pub(super) index: usize,
    pub(super) store: &'a Arc<dyn MessageStore>,
}

/// Appends `msg` to the sender's shard, then the same message to the other
/// shard; on failure takes the fresh message back out so that no shard
/// holds half a send.
pub(super) async fn append_mirrored(
    locks: &KeyLocks,
    senders: Shard<'_>,
    other: Shard<'_>,
    msg: NewMessage,
    recipients: &[UserId],
) -> Result<Appended> {
    let _turn = match &msg.client_msg_id {
        Some(key) => Some(locks.lock(&msg.message.sender_id, key).await),
        None => None,
    };
    let fresh = msg.message.message_id;
    let conversation = msg.message.conversation_id.clone();
    let key = msg.client_msg_id.clone();

    // A failure here leaves nothing to undo, except after a lost reply,
    // which is the same ambiguity a single store has: see the module docs.
    let one = senders.store.append(msg, recipients).await?;
    // On a duplicate this is the message stored before, which the second
    // shard must hold under the same id.
    let ours = one.message;
    let copy = NewMessage {
        message: ours.clone(),
        client_msg_id: key.clone(),
    };
    let two = match other.store.append(copy, recipients).await {
        Ok(two) => two,
        Err(error) => {
            let undone = if one.duplicate {
                // Not ours to remove: stored by an earlier attempt, which a
                // retry completes.
                true
            } else {
                // The fresh id can name no other message, so removing it
                // from both shards is safe; the second shard too, because
                // its write may have landed before its reply was lost.
                let (a, b) = tokio::join!(
                    undo(&senders, &conversation, fresh),
                    undo(&other, &conversation, fresh)
                );
                a && b
            };
            let reason = if undone {
                format!("shard {} failed; the message was not stored", other.index)
            } else {
                format!(
                    "shard {} failed and the undo failed too; the message was not sent, retry with the same client_msg_id",
                    other.index
                )
            };
            return Err(Error::unavailable(reason, error));
        }
    };
    if two.message.message_id == ours.message_id {
        return Ok(Appended {
            message: ours,
            // A duplicate on the first shard only is the residue of an
            // attempt that was never acknowledged: this call completes it,
            // so the caller must deliver it as new.
            duplicate: one.duplicate && two.duplicate,
        });
    }
    adopt(
        senders,
        &conversation,
        ours.message_id,
        two,
        key,
        recipients,
    )
    .await
}

/// The other shard answered with a different message under the same key:
/// an earlier attempt's write landed there, its reply was lost and its undo
/// failed. Neither copy was ever acknowledged (an acknowledged append leaves
/// the same message on both shards), so the first shard drops its copy and
/// takes the other's, and the sender is answered with that one.
async fn adopt(
    senders: Shard<'_>,
    conversation: &ConversationId,
    ours: MessageId,
    theirs: Appended,
    key: Option<String>,
    recipients: &[UserId],
) -> Result<Appended> {
    let theirs = theirs.message;
    tracing::warn!(
        conversation = %conversation,
        dropped = %ours,
        kept = %theirs.message_id,
        "two shards held different messages under one client_msg_id; reconciling"
    );
    let unavailable = |error: Error| {
        Error::unavailable(
            format!(
                "shard {} could not be reconciled; retry with the same client_msg_id",
                senders.index
            ),
            error,
        )
    };
    senders
        .store
        .remove(conversation, ours)
        .await
        .map_err(unavailable)?;
    let copy = NewMessage {
        message: theirs.clone(),
        client_msg_id: key,
    };
    let stored = senders
        .store
        .append(copy, recipients)
        .await
        .map_err(unavailable)?;
    if stored.message.message_id != theirs.message_id {
        // Another process wrote this key in between; the next retry
        // reconciles again.
        return Err(Error::unavailable_msg(format!(
            "shard {} changed while it was being reconciled; retry with the same client_msg_id",
            senders.index
        )));
    }
    Ok(Appended {
        message: theirs,
        duplicate: false,
    })
}

/// Removes `id` from `shard`; logs and answers false when that fails.
async fn undo(shard: &Shard<'_>, conversation: &ConversationId, id: MessageId) -> bool {
    match shard.store.remove(conversation, id).await {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(
                shard = shard.index,
                conversation = %conversation,
                message_id = %id,
                %error,
                "could not undo half of a two-shard append; the message stays on this shard until a retry with the same client_msg_id reconciles it"
            );
            false
        }
    }
}
