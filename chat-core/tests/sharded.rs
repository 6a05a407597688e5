//! ShardedStore's own behaviour: where each conversation lives, the two
//! copies of a direct conversation under `ShardBy::User` (the first copy is
//! the commit point; a second copy left behind is completed by the
//! reconciler, the next send or a retry), reads that merge both copies, and
//! shards that fail alone.

use std::slice::from_ref;
use std::sync::Arc;

use chat_core::memory::MemoryStore;
use std::time::Duration;

use chat_core::store::{
    FaultSwitch, FaultyStore, Intent, MessageStore, Reconciled, RepairConfig, ShardBy, ShardedStore,
};
use chat_core::{ConversationId, DeviceId, Error, Message, MessageId, NewMessage, UserId};

fn now_ms() -> u64 {
    u64::try_from(chat_core::now_millis()).unwrap()
}

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
        // Act on every intent at once: these tests run no racing send.
        let store = ShardedStore::new(wrapped, by)
            .unwrap()
            .with_repair(RepairConfig {
                grace: Duration::ZERO,
                abandon_after: Duration::from_secs(600),
                page: 2,
            });
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

/// What the shards hold of `c` once the reconciler ran: each copy's ids,
/// and the intents left on every shard.
async fn settle(cl: &Cluster, c: &ConversationId, first: usize, second: usize) -> Settled {
    let pass = cl.store.reconcile().await;
    let mut intents = 0;
    for shard in &cl.shards {
        intents += shard
            .intents(None, MessageId(u64::MAX), 100)
            .await
            .unwrap()
            .len();
    }
    Settled {
        pass,
        first: cl.on(first, c).await,
        second: cl.on(second, c).await,
        intents,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Settled {
    pass: Reconciled,
    first: Vec<u64>,
    second: Vec<u64>,
    intents: usize,
}

#[tokio::test]
async fn by_user_a_failed_second_write_is_stored_and_the_reconciler_completes_it() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.switches[sb].fail_appends(true);
    let sent = cl
        .store
        .append(entry(10, &c, &a, Some("k")), 0)
        .await
        .expect("stored on the first copy: the send is stored");
    assert!(!sent.duplicate);
    assert_eq!(
        (cl.on(sa, &c).await, cl.on(sb, &c).await),
        (vec![10], vec![])
    );
    // Reads merge both copies, and either user reads it.
    assert_eq!(
        ids(&cl.store.history(&c, None, None, 10).await.unwrap()),
        [10]
    );
    // While the second copy still refuses, a pass leaves the intent.
    let stuck = cl.store.reconcile().await;
    assert_eq!((stuck.completed, stuck.left), (0, 1));
    cl.switches[sb].fail_appends(false);
    assert_eq!(
        settle(&cl, &c, sa, sb).await,
        Settled {
            pass: Reconciled {
                completed: 1,
                ..Reconciled::default()
            },
            first: vec![10],
            second: vec![10],
            intents: 0,
        }
    );
}

#[tokio::test]
async fn by_user_the_next_send_completes_a_copy_left_behind_in_order() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.switches[sb].fail_appends(true);
    cl.store.append(entry(10, &c, &a, None), 0).await.unwrap();
    cl.switches[sb].fail_appends(false);
    // The other user answers: its send goes to the first copy too, and
    // its copy brings the second one up to date, in order.
    let reply = cl.store.append(entry(11, &c, &b, None), 0).await.unwrap();
    assert_eq!(reply.prev, Some(MessageId(10)));
    assert_eq!(
        (cl.on(sa, &c).await, cl.on(sb, &c).await),
        (vec![10, 11], vec![10, 11])
    );
    let settled = settle(&cl, &c, sa, sb).await;
    assert_eq!(settled.intents, 0, "{settled:?}");
    // Both copies agree on the head, seq included.
    assert_eq!(
        cl.shards[sa].head(&c).await.unwrap(),
        cl.shards[sb].head(&c).await.unwrap()
    );
}

#[tokio::test]
async fn by_user_a_retry_of_a_half_done_send_completes_it_with_the_first_id() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.switches[sb].fail_appends(true);
    cl.store
        .append(entry(10, &c, &a, Some("k")), 0)
        .await
        .unwrap();
    cl.switches[sb].fail_appends(false);
    let retry = cl
        .store
        .append(entry(11, &c, &a, Some("k")), 0)
        .await
        .unwrap();
    assert!(retry.duplicate, "the retry meets the first attempt");
    assert_eq!(retry.message.message_id, MessageId(10));
    assert_eq!(
        (cl.on(sa, &c).await, cl.on(sb, &c).await),
        (vec![10], vec![10])
    );
    assert_eq!(settle(&cl, &c, sa, sb).await.intents, 0);
}

#[tokio::test]
async fn by_user_the_reconciler_forgets_an_intent_whose_send_stored_nothing() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    // A process died after step 1 (the intent) and before the first write.
    // Id 10 is from 1970: far older than `abandon_after`.
    let intent = Intent {
        message_id: MessageId(10),
        conversation_id: c.clone(),
    };
    cl.shards[sa].put_intent(&intent).await.unwrap();
    let settled = settle(&cl, &c, sa, sb).await;
    assert_eq!(settled.pass.abandoned, 1, "{settled:?}");
    assert_eq!(
        (settled.first, settled.second, settled.intents),
        (vec![], vec![], 0)
    );
    // A young one is left alone: its send may still be running.
    let young = Intent {
        message_id: MessageId::first_at(now_ms()),
        conversation_id: c.clone(),
    };
    cl.shards[sa].put_intent(&young).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let pass = cl.store.reconcile().await;
    assert_eq!((pass.left, pass.abandoned), (1, 0));
}

#[tokio::test]
async fn by_user_the_second_shard_down_stops_no_send_and_no_read() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.switches[sb].fail_all(true);
    cl.store.append(entry(10, &c, &a, None), 0).await.unwrap();
    cl.store.append(entry(11, &c, &b, None), 0).await.unwrap();
    assert_eq!(
        ids(&cl.store.range(&c, None, None, 10).await.unwrap()),
        [10, 11]
    );
    cl.store.cursors(&a, None, &c).await.unwrap();
    cl.store
        .user_cursors(&a, std::slice::from_ref(&c))
        .await
        .unwrap();
    let phone = DeviceId::from("a-phone");
    cl.store
        .ack(&a, &phone, &c, MessageId(11))
        .await
        .expect_err("an ack writes both copies: it reports the one down");
    // The pass reports the shard it cannot read, and completes nothing.
    let pass = cl.store.reconcile().await;
    assert_eq!(pass.unreadable_shards, 1, "{pass:?}");
    cl.switches[sb].fail_all(false);
    let settled = settle(&cl, &c, sa, sb).await;
    assert_eq!(
        (settled.first, settled.second, settled.intents),
        (vec![10, 11], vec![10, 11], 0)
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
