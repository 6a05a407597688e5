//! ShardedStore's own behaviour: where each conversation lives, the two
//! copies of a direct conversation under `ShardBy::User` (written in order,
//! undone when the second write fails, completed by the retry when the undo
//! failed), reads that merge both copies, and shards that fail alone.

use std::slice::from_ref;
use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::store::{FaultSwitch, FaultyStore, MessageStore, ShardBy, ShardedStore};
use chat_core::{ConversationId, DeviceId, Error, Message, MessageId, NewMessage, UserId};

fn entry(id: u64, c: &ConversationId, sender: &UserId, key: Option<&str>) -> NewMessage {
    NewMessage {
        message: Message::text(
            MessageId(id),
            c.clone(),
            sender.clone(),
            format!("m{id}"),
            0,
        ),
        client_msg_id: key.map(str::to_owned),
        device: None,
    }
}

fn ids(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.message_id.0).collect()
}

/// Shards in memory behind fault switches, and the sharded store over them.
struct Cluster {
    shards: Vec<Arc<MemoryStore>>,
    switches: Vec<FaultSwitch>,
    store: ShardedStore,
}

impl Cluster {
    fn new(n: usize, by: ShardBy) -> Self {
        let shards: Vec<Arc<MemoryStore>> = (0..n).map(|_| Arc::new(MemoryStore::new())).collect();
        let switches: Vec<FaultSwitch> = (0..n).map(|_| FaultSwitch::new()).collect();
        let wrapped: Vec<Arc<dyn MessageStore>> = shards
            .iter()
            .zip(&switches)
            .map(|(s, f)| Arc::new(FaultyStore::new(s.clone(), f.clone())) as Arc<dyn MessageStore>)
            .collect();
        let store = ShardedStore::new(wrapped, by).unwrap();
        Self {
            shards,
            switches,
            store,
        }
    }

    /// Two users on different shards.
    fn users_apart(&self) -> (UserId, UserId) {
        let a = UserId::from("user-0");
        let b = (1..)
            .map(|i| UserId::from(format!("user-{i}")))
            .find(|b| self.store.shard_of_user(b) != self.store.shard_of_user(&a))
            .unwrap();
        (a, b)
    }

    async fn on(&self, shard: usize, c: &ConversationId) -> Vec<u64> {
        ids(&self.shards[shard].range(c, None, None, 100).await.unwrap())
    }
}

#[test]
fn zero_shards_is_invalid_input() {
    let err = ShardedStore::new(Vec::new(), ShardBy::Conversation).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[tokio::test]
async fn routing_is_stable_across_instances_and_restarts() {
    let shards: Vec<Arc<dyn MessageStore>> =
        (0..4).map(|_| Arc::new(MemoryStore::new()) as _).collect();
    let first = ShardedStore::new(shards.clone(), ShardBy::Conversation).unwrap();
    let c = ConversationId::from("g:stable");
    first
        .append(entry(1, &c, &UserId::from("carol"), None), 0)
        .await
        .unwrap();
    let again = ShardedStore::new(shards.clone(), ShardBy::Conversation).unwrap();
    assert_eq!(
        again.shard_of_conversation(&c),
        first.shard_of_conversation(&c)
    );
    assert_eq!(ids(&again.range(&c, None, None, 10).await.unwrap()), [1]);
    // Pinned placements: a changed hash would strand every deployed shard's data.
    let by_user = ShardedStore::new(shards, ShardBy::User).unwrap();
    let placed: Vec<usize> = ["alice", "bob", "carol", "dave", "erin"]
        .iter()
        .map(|u| by_user.shard_of_user(&UserId::from(*u)))
        .collect();
    assert_eq!(placed, [0, 0, 2, 2, 2]);
    assert_eq!(
        by_user.shard_of_conversation(&ConversationId::from("g:1")),
        3
    );
}

#[tokio::test]
async fn by_user_a_direct_conversation_lives_on_both_users_shards_only() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.store
        .append(entry(10, &c, &a, Some("k")), 0)
        .await
        .unwrap();
    for shard in 0..4 {
        let want: &[u64] = if shard == sa || shard == sb {
            &[10]
        } else {
            &[]
        };
        assert_eq!(cl.on(shard, &c).await, want, "shard {shard}");
    }
    // Cursor writes reach both copies; purges delete on both.
    let phone = DeviceId::from("phone");
    cl.store.ack(&b, &phone, &c, MessageId(10)).await.unwrap();
    for shard in [sa, sb] {
        let cur = cl.shards[shard]
            .cursors(&b, Some(&phone), &c)
            .await
            .unwrap();
        assert_eq!(cur.device_delivered, Some(MessageId(10)), "shard {shard}");
    }
    cl.store.purge(&c, MessageId(10)).await.unwrap();
    assert!(cl.on(sa, &c).await.is_empty() && cl.on(sb, &c).await.is_empty());
    // A group lives on its conversation's shard alone.
    let g = ConversationId::from("g:team");
    cl.store.append(entry(20, &g, &a, None), 0).await.unwrap();
    let home = cl.store.shard_of_conversation(&g);
    for shard in 0..4 {
        let want: &[u64] = if shard == home { &[20] } else { &[] };
        assert_eq!(cl.on(shard, &g).await, want);
    }
}

#[tokio::test]
async fn by_user_a_failed_second_write_is_undone_and_the_retry_stores_once() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.switches[sb].fail_appends(true);
    let err = cl
        .store
        .append(entry(10, &c, &a, Some("k")), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(cl.on(sa, &c).await.is_empty(), "the first copy was undone");
    cl.switches[sb].fail_appends(false);
    let head = cl.store.head(&c).await.unwrap();
    let retry = cl
        .store
        .append(entry(11, &c, &a, Some("k")), head.version)
        .await
        .unwrap();
    assert!(!retry.duplicate);
    assert_eq!(
        (cl.on(sa, &c).await, cl.on(sb, &c).await),
        (vec![11], vec![11])
    );
}

#[tokio::test]
async fn by_user_a_failed_undo_leaves_a_residue_that_the_retry_completes() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.switches[sb].fail_appends(true);
    cl.switches[sa].fail_removes(true);
    cl.store
        .append(entry(10, &c, &a, Some("k")), 0)
        .await
        .unwrap_err();
    assert_eq!(
        cl.on(sa, &c).await,
        [10],
        "the residue on the sender's shard"
    );
    // Reads merge both copies: the residue is read.
    assert_eq!(
        ids(&cl.store.history(&c, None, None, 10).await.unwrap()),
        [10]
    );
    cl.switches[sb].fail_appends(false);
    cl.switches[sa].fail_removes(false);
    let retry = cl
        .store
        .append(entry(11, &c, &a, Some("k")), 0)
        .await
        .unwrap();
    assert!(retry.duplicate, "the retry meets the first attempt");
    assert_eq!(retry.message.message_id, MessageId(10));
    assert_eq!(
        (cl.on(sa, &c).await, cl.on(sb, &c).await),
        (vec![10], vec![10]),
        "completed on both"
    );
}

#[tokio::test]
async fn by_user_reads_fall_back_to_the_other_copy() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let sa = cl.store.shard_of_user(&a);
    let c = ConversationId::direct(&a, &b);
    cl.store.append(entry(10, &c, &a, None), 0).await.unwrap();
    cl.switches[sa].fail_all(true);
    assert_eq!(
        ids(&cl.store.range(&c, None, None, 10).await.unwrap()),
        [10]
    );
    assert_eq!(
        cl.store.head(&c).await.unwrap().last_id,
        Some(MessageId(10))
    );
    assert_eq!(
        cl.store
            .entry(&c, MessageId(10))
            .await
            .unwrap()
            .map(|m| m.message_id),
        Some(MessageId(10))
    );
}

#[tokio::test]
async fn by_conversation_a_shard_down_fails_only_its_conversations() {
    let cl = Cluster::new(3, ShardBy::Conversation);
    let u = UserId::from("u");
    let convs: Vec<ConversationId> = (0..30)
        .map(|i| ConversationId::from(format!("g:{i}")))
        .collect();
    let down = 1;
    cl.switches[down].fail_all(true);
    for (i, c) in convs.iter().enumerate() {
        let result = cl.store.append(entry(100 + i as u64, c, &u, None), 0).await;
        assert_eq!(
            result.is_err(),
            cl.store.shard_of_conversation(c) == down,
            "{c}"
        );
    }
    // The lists that span shards fail as a whole rather than answer a part.
    assert!(cl.store.heads(&convs).await.is_err());
    assert!(cl.store.device_cursors(&DeviceId::from("d")).await.is_err());
    cl.switches[down].fail_all(false);
    let heads = cl.store.heads(&convs).await.unwrap();
    assert_eq!(heads.len(), convs.len());
    assert_eq!(
        heads.iter().filter(|h| h.last_id.is_some()).count(),
        convs
            .iter()
            .filter(|c| cl.store.shard_of_conversation(c) != down)
            .count()
    );
    let _ = from_ref(&u);
}
