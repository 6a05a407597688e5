//! ShardedStore against a single MemoryStore as the reference model: any
//! sequence of appends (text and events, with and without retry keys),
//! acks, reads, joins, purges and removes over direct and group
//! conversations answers exactly as one store does, in both modes and for
//! 1 to 4 shards.
//!
//! Dedup keys are drawn per conversation: a sender reusing one key in two
//! conversations on different shards is the documented place where sharding
//! differs from one store (see the `store::sharded` docs).

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::store::{MessageStore, ShardBy, ShardedStore};
use chat_core::{
    ConversationId, DeviceId, Error, Message, MessageId, MessageKind, NewMessage, UserId,
};
use proptest::prelude::*;

const USERS: usize = 5;

fn users() -> Vec<UserId> {
    (0..USERS).map(|i| UserId::from(format!("u{i}"))).collect()
}

fn device(u: usize) -> DeviceId {
    DeviceId::from(format!("dev{u}"))
}

/// Every direct pair, then two groups.
fn conversations() -> Vec<ConversationId> {
    let u = users();
    let mut convs = Vec::new();
    for a in 0..USERS {
        for b in a + 1..USERS {
            convs.push(ConversationId::direct(&u[a], &u[b]));
        }
    }
    convs.push(ConversationId::from("g:front"));
    convs.push(ConversationId::from("g:back"));
    convs
}

#[derive(Clone, Debug)]
enum Step {
    Send {
        conv: usize,
        sender: usize,
        key: Option<u8>,
        react: bool,
    },
    Ack {
        conv: usize,
        user: usize,
        back: usize,
    },
    Read {
        conv: usize,
        user: usize,
        back: usize,
    },
    Join {
        conv: usize,
        user: usize,
    },
    Purge {
        conv: usize,
        back: usize,
    },
    Remove {
        conv: usize,
        back: usize,
    },
    NewDevice {
        user: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let conv = 0..conversations().len();
    let user = 0..USERS;
    prop_oneof![
        5 => (conv.clone(), user.clone(), proptest::option::of(0..3u8), proptest::bool::weighted(0.2))
            .prop_map(|(conv, sender, key, react)| Step::Send { conv, sender, key, react }),
        2 => (conv.clone(), user.clone(), 0..4usize).prop_map(|(conv, user, back)| Step::Ack { conv, user, back }),
        1 => (conv.clone(), user.clone(), 0..4usize).prop_map(|(conv, user, back)| Step::Read { conv, user, back }),
        1 => (conv.clone(), user.clone()).prop_map(|(conv, user)| Step::Join { conv, user }),
        1 => (conv.clone(), 0..4usize).prop_map(|(conv, back)| Step::Purge { conv, back }),
        1 => (conv, 0..4usize).prop_map(|(conv, back)| Step::Remove { conv, back }),
        1 => user.prop_map(|user| Step::NewDevice { user }),
    ]
}

/// One of the ids appended to a conversation, counted back from the newest.
fn sent_id(sent: &[MessageId], back: usize) -> Option<MessageId> {
    sent.len()
        .checked_sub(1 + back % sent.len().max(1))
        .map(|i| sent[i])
}

/// Reads everything both stores hold and compares.
async fn same_state(model: &dyn MessageStore, sharded: &dyn MessageStore) {
    let convs = conversations();
    assert_eq!(
        model.heads(&convs).await.unwrap(),
        sharded.heads(&convs).await.unwrap(),
        "heads"
    );
    for c in &convs {
        assert_eq!(
            model.range(c, None, None, 100).await.unwrap(),
            sharded.range(c, None, None, 100).await.unwrap(),
            "range of {c}"
        );
        assert_eq!(
            model.history(c, None, None, 100).await.unwrap(),
            sharded.history(c, None, None, 100).await.unwrap(),
            "history of {c}"
        );
        let mut a = model.conversation_cursors(c).await.unwrap();
        let mut b = sharded.conversation_cursors(c).await.unwrap();
        a.sort_by(|x, y| (&x.user_id, &x.device_id).cmp(&(&y.user_id, &y.device_id)));
        b.sort_by(|x, y| (&x.user_id, &x.device_id).cmp(&(&y.user_id, &y.device_id)));
        assert_eq!(a, b, "cursors in {c}");
    }
    for (i, u) in users().iter().enumerate() {
        assert_eq!(
            model.user_cursors(u, &convs).await.unwrap(),
            sharded.user_cursors(u, &convs).await.unwrap(),
            "user cursors of {u}"
        );
        assert_eq!(
            model.device_cursors(&device(i)).await.unwrap(),
            sharded.device_cursors(&device(i)).await.unwrap(),
            "device cursors of {u}"
        );
    }
}

async fn run(shards: usize, by: ShardBy, steps: Vec<Step>) {
    let model = MemoryStore::new();
    let parts: Vec<Arc<dyn MessageStore>> = (0..shards)
        .map(|_| Arc::new(MemoryStore::new()) as _)
        .collect();
    let sharded = ShardedStore::new(parts, by).unwrap();
    let convs = conversations();
    let users = users();
    let mut sent: Vec<Vec<MessageId>> = vec![Vec::new(); convs.len()];
    let mut next = 1u64;
    for step in steps {
        match step {
            Step::Send {
                conv,
                sender,
                key,
                react,
            } => {
                let c = &convs[conv];
                let head = model.head(c).await.unwrap();
                next = next.max(head.last_id.map_or(0, |l| l.0) + 1);
                let mut message =
                    Message::text(MessageId(next), c.clone(), users[sender].clone(), "x", 0);
                if react && let Some(target) = sent_id(&sent[conv], 0) {
                    message.kind = MessageKind::Reaction;
                    message.ref_id = Some(target);
                    message.body = "👍".into();
                }
                let entry = NewMessage {
                    message,
                    client_msg_id: key.map(|k| format!("{conv}-{k}")),
                    device: Some(device(sender)),
                };
                next += 1;
                let a = model.append(entry.clone(), head.version).await;
                let b = sharded.append(entry, head.version).await;
                match (&a, &b) {
                    (Ok(x), Ok(y)) => {
                        assert_eq!(x, y, "append answers");
                        if !x.duplicate {
                            sent[conv].push(x.message.message_id);
                        }
                    }
                    (Err(Error::NotFound { .. }), Err(Error::NotFound { .. })) => {}
                    other => panic!("append differs: {other:?}"),
                }
            }
            Step::Ack { conv, user, back } => {
                if let Some(id) = sent_id(&sent[conv], back) {
                    let c = &convs[conv];
                    let a = model.ack(&users[user], &device(user), c, id).await.unwrap();
                    let b = sharded
                        .ack(&users[user], &device(user), c, id)
                        .await
                        .unwrap();
                    assert_eq!(a, b, "ack answers");
                }
            }
            Step::Read { conv, user, back } => {
                if let Some(id) = sent_id(&sent[conv], back) {
                    let c = &convs[conv];
                    let a = model.mark_read(&users[user], c, id).await.unwrap();
                    let b = sharded.mark_read(&users[user], c, id).await.unwrap();
                    assert_eq!(a, b, "mark_read answers");
                }
            }
            Step::Join { conv, user } => {
                let c = &convs[conv];
                let head = model.head(c).await.unwrap();
                model.start_member(&users[user], c, head).await.unwrap();
                sharded.start_member(&users[user], c, head).await.unwrap();
            }
            Step::Purge { conv, back } => {
                if let Some(id) = sent_id(&sent[conv], back) {
                    let c = &convs[conv];
                    let a = model.purge(c, id).await.unwrap();
                    let b = sharded.purge(c, id).await.unwrap();
                    assert_eq!(a, b, "purge answers");
                    sent[conv].retain(|m| *m > id);
                }
            }
            Step::Remove { conv, back } => {
                if let Some(id) = sent_id(&sent[conv], back) {
                    let c = &convs[conv];
                    model.remove(c, id).await.unwrap();
                    sharded.remove(c, id).await.unwrap();
                    sent[conv].retain(|m| *m != id);
                }
            }
            Step::NewDevice { user } => {
                let d = DeviceId::from(format!("extra{user}"));
                model.start_device(&users[user], &d).await.unwrap();
                sharded.start_device(&users[user], &d).await.unwrap();
                assert_eq!(
                    model.device_cursors(&d).await.unwrap(),
                    sharded.device_cursors(&d).await.unwrap(),
                    "a new device's start"
                );
                model.forget_device(&d).await.unwrap();
                sharded.forget_device(&d).await.unwrap();
            }
        }
        same_state(&model, &sharded).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sharded_by_user_answers_as_one_store(shards in 1..5usize, steps in proptest::collection::vec(step(), 1..40)) {
        runtime().block_on(run(shards, ShardBy::User, steps));
    }

    #[test]
    fn sharded_by_conversation_answers_as_one_store(shards in 1..5usize, steps in proptest::collection::vec(step(), 1..40)) {
        runtime().block_on(run(shards, ShardBy::Conversation, steps));
    }
}
