//! ShardedStore against a single MemoryStore as the reference model: any
//! sequence of sends, acks, reads, clears, purges and removes over direct
//! and group conversations must answer exactly as one store does, in both
//! modes and for 1 to 4 shards.
//!
//! Dedup keys are drawn per conversation: a sender reusing one key in two
//! conversations on different shards is the documented place where sharding
//! differs from one store (see the `store::sharded` docs).

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::store::{MessageStore, ShardBy, ShardedStore};
use chat_core::{ConversationId, Message, MessageId, NewMessage, UserId};
use proptest::prelude::*;

const USERS: usize = 5;

fn users() -> Vec<UserId> {
    (0..USERS).map(|i| UserId::from(format!("u{i}"))).collect()
}

/// Every direct pair, then two groups; each with its members.
fn conversations() -> Vec<(ConversationId, Vec<UserId>)> {
    let u = users();
    let mut convs = Vec::new();
    for a in 0..USERS {
        for b in a + 1..USERS {
            convs.push((
                ConversationId::direct(&u[a], &u[b]),
                vec![u[a].clone(), u[b].clone()],
            ));
        }
    }
    convs.push((ConversationId::from("g:front"), u[0..3].to_vec()));
    convs.push((ConversationId::from("g:back"), u[2..5].to_vec()));
    convs
}

#[derive(Clone, Debug)]
enum Step {
    Send {
        conv: usize,
        sender: usize,
        key: Option<u8>,
    },
    Ack {
        conv: usize,
        member: usize,
        back: usize,
    },
    MarkRead {
        conv: usize,
        member: usize,
        back: usize,
    },
    ClearPending {
        conv: usize,
        member: usize,
    },
    Purge {
        conv: usize,
        count: usize,
    },
    Remove {
        conv: usize,
        back: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let conv = 0..conversations().len();
    prop_oneof![
        4 => (conv.clone(), 0..3usize, proptest::option::of(0..3u8))
            .prop_map(|(conv, sender, key)| Step::Send { conv, sender, key }),
        2 => (conv.clone(), 0..3usize, 0..4usize)
            .prop_map(|(conv, member, back)| Step::Ack { conv, member, back }),
        1 => (conv.clone(), 0..3usize, 0..4usize)
            .prop_map(|(conv, member, back)| Step::MarkRead { conv, member, back }),
        1 => (conv.clone(), 0..3usize).prop_map(|(conv, member)| Step::ClearPending { conv, member }),
        1 => (conv.clone(), 0..4usize).prop_map(|(conv, count)| Step::Purge { conv, count }),
        1 => (conv, 0..4usize).prop_map(|(conv, back)| Step::Remove { conv, back }),
    ]
}

/// One of the ids sent to a conversation, counted back from the newest.
fn sent_id(sent: &[MessageId], back: usize) -> Option<MessageId> {
    sent.len()
        .checked_sub(1 + back % sent.len().max(1))
        .map(|i| sent[i])
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Reads everything both stores hold and compares.
async fn same_state(model: &dyn MessageStore, sharded: &dyn MessageStore) {
    for (c, members) in conversations() {
        assert_eq!(
            model.history(&c, None, 100).await.unwrap(),
            sharded.history(&c, None, 100).await.unwrap(),
            "history of {c}"
        );
        assert_eq!(
            model.last_message_id(&c).await.unwrap(),
            sharded.last_message_id(&c).await.unwrap(),
            "last of {c}"
        );
        for u in &members {
            assert_eq!(
                model.cursors(u, &c).await.unwrap(),
                sharded.cursors(u, &c).await.unwrap(),
                "cursors of {u} in {c}"
            );
            assert_eq!(
                model.unread(u, &c).await.unwrap(),
                sharded.unread(u, &c).await.unwrap(),
                "unread of {u} in {c}"
            );
        }
    }
    for u in users() {
        let all = model.pending(&u, None, 100).await.unwrap();
        assert_eq!(
            all,
            sharded.pending(&u, None, 100).await.unwrap(),
            "pending of {u}"
        );
        // Page through the sharded store two at a time.
        let mut paged: Vec<Message> = Vec::new();
        loop {
            let after = paged.last().map(|m| m.message_id);
            let page = sharded.pending(&u, after, 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            paged.extend(page);
        }
        assert_eq!(all, paged, "pending of {u}, two at a time");
    }
}

async fn run(by: ShardBy, shards: usize, steps: Vec<Step>) {
    let model = MemoryStore::new();
    let parts: Vec<Arc<dyn MessageStore>> = (0..shards)
        .map(|_| Arc::new(MemoryStore::new()) as _)
        .collect();
    let sharded = ShardedStore::new(parts, by).unwrap();
    let convs = conversations();
    let mut sent: Vec<Vec<MessageId>> = vec![Vec::new(); convs.len()];
    let mut next_id = 1000u64;
    for step in steps {
        match step {
            Step::Send { conv, sender, key } => {
                let (c, members) = &convs[conv];
                let sender = &members[sender % members.len()];
                let recipients: Vec<UserId> =
                    members.iter().filter(|m| *m != sender).cloned().collect();
                next_id += 1;
                let msg = NewMessage {
                    message: Message {
                        message_id: MessageId(next_id),
                        conversation_id: c.clone(),
                        sender_id: sender.clone(),
                        body: format!("m{next_id}"),
                        ts: 0,
                    },
                    client_msg_id: key.map(|k| format!("{c}/{k}")),
                };
                let want = model.append(msg.clone(), &recipients).await.unwrap();
                let got = sharded.append(msg, &recipients).await.unwrap();
                assert_eq!(want, got, "append");
                sent[conv].push(MessageId(next_id));
            }
            Step::Ack { conv, member, back } => {
                let (c, members) = &convs[conv];
                let u = &members[member % members.len()];
                if let Some(id) = sent_id(&sent[conv], back) {
                    let want = model.ack(u, c, id).await.unwrap();
                    let got = sharded.ack(u, c, id).await.unwrap();
                    let key = |a: &chat_core::store::Acked| a.message_id;
                    let (mut want, mut got) = (want, got);
                    want.sort_by_key(key);
                    got.sort_by_key(key);
                    assert_eq!(want, got, "ack");
                }
            }
            Step::MarkRead { conv, member, back } => {
                let (c, members) = &convs[conv];
                let u = &members[member % members.len()];
                if let Some(id) = sent_id(&sent[conv], back) {
                    assert_eq!(
                        model.mark_read(u, c, id).await.unwrap(),
                        sharded.mark_read(u, c, id).await.unwrap(),
                        "mark_read"
                    );
                }
            }
            Step::ClearPending { conv, member } => {
                let (c, members) = &convs[conv];
                let u = &members[member % members.len()];
                assert_eq!(
                    sorted(model.clear_pending(u, c).await.unwrap()),
                    sorted(sharded.clear_pending(u, c).await.unwrap()),
                    "clear_pending"
                );
            }
            Step::Purge { conv, count } => {
                let c = &convs[conv].0;
                let ids = &sent[conv][sent[conv].len().saturating_sub(count + 1)..];
                assert_eq!(
                    sorted(model.purge_delivered(c, ids).await.unwrap()),
                    sorted(sharded.purge_delivered(c, ids).await.unwrap()),
                    "purge_delivered"
                );
            }
            Step::Remove { conv, back } => {
                let c = &convs[conv].0;
                if let Some(id) = sent_id(&sent[conv], back) {
                    model.remove(c, id).await.unwrap();
                    sharded.remove(c, id).await.unwrap();
                }
            }
        }
        same_state(&model, &sharded).await;
    }
}

#[test]
fn the_model_users_are_spread_so_direct_conversations_mirror() {
    // Otherwise the property below would never take the two-shard path.
    for shards in 2..=4 {
        let parts: Vec<Arc<dyn MessageStore>> = (0..shards)
            .map(|_| Arc::new(MemoryStore::new()) as _)
            .collect();
        let store = ShardedStore::new(parts, ShardBy::User).unwrap();
        let mut used: Vec<usize> = users().iter().map(|u| store.shard_of_user(u)).collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() >= 2, "{shards} shards: users all on {used:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sharded_answers_like_one_store(
        by in prop_oneof![Just(ShardBy::User), Just(ShardBy::Conversation)],
        shards in 1..=4usize,
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(run(by, shards, steps));
    }
}
