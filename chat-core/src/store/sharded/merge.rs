//! The k-way merge of per-shard `pending` pages.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::model::{Message, MessageId};

/// The head of one shard's page in the merge heap, ordered by message id
/// (then by shard, so the order is total and the earlier shard wins a tie).
struct Head {
    id: MessageId,
    page: usize,
    message: Message,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.id, self.page).cmp(&(other.id, other.page))
    }
}

/// Merges `pages`, each ascending by message id, into one ascending page of
/// at most `limit` messages, keeping one message per id.
///
/// Equal ids happen under `ShardBy::User`, where both shards of a direct
/// conversation hold the same pending delivery. Dropping them does not break
/// paging: if each page is the first `limit` of its shard after the same
/// cursor, every message among the first `limit` distinct ids of the union
/// is also among the first `limit` of its own shard, so it is in `pages`.
pub(super) fn merge_pages(pages: Vec<Vec<Message>>, limit: usize) -> Vec<Message> {
    let mut rests: Vec<std::vec::IntoIter<Message>> =
        pages.into_iter().map(Vec::into_iter).collect();
    let mut heap = BinaryHeap::with_capacity(rests.len());
    for (page, rest) in rests.iter_mut().enumerate() {
        if let Some(message) = rest.next() {
            heap.push(Reverse(Head {
                id: message.message_id,
                page,
                message,
            }));
        }
    }
    let mut out: Vec<Message> = Vec::with_capacity(limit.min(64));
    while out.len() < limit {
        let Some(Reverse(head)) = heap.pop() else {
            break;
        };
        if let Some(next) = rests[head.page].next() {
            heap.push(Reverse(Head {
                id: next.message_id,
                page: head.page,
                message: next,
            }));
        }
        if out.last().map(|m| m.message_id) != Some(head.id) {
            out.push(head.message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversationId, UserId};

    fn msg(id: u64) -> Message {
        Message {
            message_id: MessageId(id),
            conversation_id: ConversationId::from(format!("g:{}", id % 3)),
            sender_id: UserId::from("s"),
            body: format!("m{id}"),
            ts: 0,
        }
    }

    fn ids(messages: &[Message]) -> Vec<u64> {
        messages.iter().map(|m| m.message_id.get()).collect()
    }

    #[test]
    fn merges_in_id_order_up_to_limit() {
        let pages = vec![
            vec![msg(1), msg(4), msg(9)],
            vec![],
            vec![msg(2), msg(3), msg(10)],
            vec![msg(5)],
        ];
        assert_eq!(ids(&merge_pages(pages.clone(), 10)), [1, 2, 3, 4, 5, 9, 10]);
        assert_eq!(ids(&merge_pages(pages.clone(), 4)), [1, 2, 3, 4]);
        assert!(merge_pages(pages, 0).is_empty());
        assert!(merge_pages(Vec::new(), 5).is_empty());
    }

    #[test]
    fn equal_ids_count_once() {
        let pages = vec![vec![msg(1), msg(2), msg(6)], vec![msg(2), msg(3), msg(6)]];
        assert_eq!(ids(&merge_pages(pages.clone(), 3)), [1, 2, 3]);
        assert_eq!(ids(&merge_pages(pages, 10)), [1, 2, 3, 6]);
    }
}
