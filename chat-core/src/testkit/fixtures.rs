//! Unique names, ascending message ids and small readers shared by the suite.

use std::sync::OnceLock;

use crate::id::{IdGenerator, MAX_WORKERS};
use crate::model::{
    Conversation, ConversationId, ConversationKind, Message, MessageId, NewMessage, UserId,
    now_millis,
};
use crate::store::MessageStore;

/// A name no other call produces: `tk-<label>-<64 random bits>`. Hex digits
/// and dashes only, so it is a valid user id (no ':').
pub(crate) fn unique(label: &str) -> String {
    format!("tk-{label}-{:016x}", rand::random::<u64>())
}

/// A fresh user id.
pub(crate) fn user(label: &str) -> UserId {
    UserId::from(unique(label))
}

/// A fresh group conversation id.
pub(crate) fn group_id() -> ConversationId {
    ConversationId::from(unique("group"))
}

/// A group conversation record created by `creator` now.
pub(crate) fn group(id: &ConversationId, creator: &UserId) -> Conversation {
    Conversation {
        id: id.clone(),
        kind: ConversationKind::Group,
        name: Some(unique("name")),
        created_by: creator.clone(),
        created_at: now_millis(),
    }
}

/// The next message id: one generator per test process, with a random
/// worker so that processes sharing a database do not collide.
pub(crate) fn next_id() -> MessageId {
    static IDS: OnceLock<IdGenerator> = OnceLock::new();
    IDS.get_or_init(|| {
        IdGenerator::new(rand::random_range(0..MAX_WORKERS))
            .expect("a worker id below MAX_WORKERS is valid")
    })
    .next_id()
}

/// A new message with a fresh id and no dedup key.
pub(crate) fn message(conversation: &ConversationId, sender: &UserId, body: &str) -> NewMessage {
    NewMessage {
        message: Message {
            message_id: next_id(),
            conversation_id: conversation.clone(),
            sender_id: sender.clone(),
            body: body.to_owned(),
            ts: now_millis(),
        },
        client_msg_id: None,
    }
}

/// A new message with a fresh id and the dedup key `key`.
pub(crate) fn keyed(
    conversation: &ConversationId,
    sender: &UserId,
    body: &str,
    key: &str,
) -> NewMessage {
    NewMessage {
        client_msg_id: Some(key.to_owned()),
        ..message(conversation, sender, body)
    }
}

/// Appends and checks that it was not taken for a duplicate.
pub(crate) async fn append(
    store: &dyn MessageStore,
    msg: NewMessage,
    recipients: &[UserId],
) -> Message {
    let id = msg.message.message_id;
    let appended = store
        .append(msg, recipients)
        .await
        .unwrap_or_else(|e| panic!("append of message {id} failed: {e}"));
    assert!(
        !appended.duplicate,
        "append of message {id} without a repeated key was reported as a duplicate"
    );
    appended.message
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
        .history(conversation, None, ALL)
        .await
        .unwrap_or_else(|e| panic!("history of {conversation} failed: {e}"))
}

/// Everything pending for `user`, oldest first, in one call.
pub(crate) async fn all_pending(store: &dyn MessageStore, user: &UserId) -> Vec<Message> {
    store
        .pending(user, None, ALL)
        .await
        .unwrap_or_else(|e| panic!("pending of {user} failed: {e}"))
}

/// The ids of `messages`, in their order.
pub(crate) fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.message_id).collect()
}

/// `ids` sorted, for answers whose order the traits leave open.
pub(crate) fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}
