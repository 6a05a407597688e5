//! Unique names, ascending message ids and small readers shared by the suite.

use std::sync::OnceLock;

use crate::error::Error;
use crate::id::{IdGenerator, MAX_WORKERS};
use crate::model::{
    Conversation, ConversationId, ConversationKind, DeviceId, HistoryVisibility, JoinPolicy,
    Message, MessageId, MessageKind, NewMessage, UserId, now_millis,
};
use crate::store::{Appended, MessageStore};

/// A name no other call produces: `tk-<label>-<64 random bits>`. Hex digits
/// and dashes only, so it is a valid user id (no ':').
pub(crate) fn unique(label: &str) -> String {
    format!("tk-{label}-{:016x}", rand::random::<u64>())
}

/// A fresh user id.
pub(crate) fn user(label: &str) -> UserId {
    UserId::from(unique(label))
}

/// A fresh device id.
pub(crate) fn device(label: &str) -> DeviceId {
    DeviceId::from(unique(label))
}

/// A fresh group conversation id.
pub(crate) fn group_id() -> ConversationId {
    ConversationId::from(unique("group"))
}

/// A group conversation record created by `creator` now, default settings.
pub(crate) fn group(id: &ConversationId, creator: &UserId) -> Conversation {
    Conversation {
        id: id.clone(),
        kind: ConversationKind::Group,
        name: Some(unique("name")),
        created_by: creator.clone(),
        created_at: now_millis(),
        join: JoinPolicy::Invite,
        history: HistoryVisibility::SinceJoin,
    }
}

/// The next message id: one generator per test process, with a random
/// worker so that processes sharing a database do not collide.
pub(crate) fn next_id() -> MessageId {
    generator().next_id()
}

/// An id above `floor` (for retries after a conflict).
pub(crate) fn id_above(floor: Option<MessageId>) -> MessageId {
    loop {
        let id = next_id();
        if floor.is_none_or(|f| id > f) {
            return id;
        }
    }
}

fn generator() -> &'static IdGenerator {
    static IDS: OnceLock<IdGenerator> = OnceLock::new();
    IDS.get_or_init(|| {
        IdGenerator::new(rand::random_range(0..MAX_WORKERS))
            .expect("a worker id below MAX_WORKERS is valid")
    })
}

/// A new text entry with a fresh id, no dedup key, no device.
pub(crate) fn text(conversation: &ConversationId, sender: &UserId, body: &str) -> NewMessage {
    NewMessage {
        message: Message::text(
            next_id(),
            conversation.clone(),
            sender.clone(),
            body,
            now_millis(),
        ),
        client_msg_id: None,
        device: None,
    }
}

/// A new text entry with the dedup key `key`.
pub(crate) fn keyed(
    conversation: &ConversationId,
    sender: &UserId,
    body: &str,
    key: &str,
) -> NewMessage {
    NewMessage {
        client_msg_id: Some(key.to_owned()),
        ..text(conversation, sender, body)
    }
}

/// A new event entry of `kind` about `target` (or a group event when `target` is `None`).
pub(crate) fn event(
    conversation: &ConversationId,
    sender: &UserId,
    kind: MessageKind,
    target: Option<MessageId>,
    body: &str,
) -> NewMessage {
    let mut entry = text(conversation, sender, body);
    entry.message.kind = kind;
    entry.message.ref_id = target;
    entry
}

/// Appends at the conversation's current version, retrying with a new id
/// after a conflict on the id (as the engine does), and checks that it was
/// not taken for a duplicate.
pub(crate) async fn append(store: &dyn MessageStore, mut entry: NewMessage) -> Appended {
    for _ in 0..100 {
        let conversation = entry.message.conversation_id.clone();
        let head = store
            .head(&conversation)
            .await
            .unwrap_or_else(|e| panic!("head of {conversation} failed: {e}"));
        if head.last_id.is_some_and(|l| entry.message.message_id <= l) {
            entry.message.message_id = id_above(head.last_id);
        }
        match store.append(entry.clone(), head.version).await {
            Ok(appended) => {
                assert!(
                    !appended.duplicate,
                    "append of entry {} without a repeated key was reported as a duplicate",
                    entry.message.message_id
                );
                return appended;
            }
            Err(Error::Conflict { .. }) => continue,
            Err(e) => panic!("append of entry {} failed: {e}", entry.message.message_id),
        }
    }
    panic!("append kept conflicting 100 times on a conversation nobody else writes")
}

/// A page size larger than any test writes: "everything". Not `usize::MAX`,
/// which a database's LIMIT cannot hold.
pub(crate) const ALL: usize = 10_000;

/// The whole history of `conversation`, newest first, in one call.
pub(crate) async fn all_history(
    store: &dyn MessageStore,
    conversation: &ConversationId,
) -> Vec<Message> {
    store
        .history(conversation, None, None, ALL)
        .await
        .unwrap_or_else(|e| panic!("history of {conversation} failed: {e}"))
}

/// Every entry of `conversation`, oldest first, in one call.
pub(crate) async fn all_range(
    store: &dyn MessageStore,
    conversation: &ConversationId,
) -> Vec<Message> {
    store
        .range(conversation, None, None, ALL)
        .await
        .unwrap_or_else(|e| panic!("range of {conversation} failed: {e}"))
}

/// The ids of `messages`, in their order.
pub(crate) fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.message_id).collect()
}

/// `items` sorted, for answers whose order the traits leave open.
pub(crate) fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}
