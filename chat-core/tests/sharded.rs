//! ShardedStore over in-memory shards: routing, the two-shard send with its
//! undo, a shard down, and the pending merge.

use std::slice::from_ref;
use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::store::faulty::{InjectedFault, Op};
use chat_core::store::{FaultSwitch, FaultyStore, MessageStore, ShardBy, ShardedStore};
use chat_core::{ConversationId, Error, Message, MessageId, NewMessage, UserId};

/// N memory shards, each behind its own fault switch; `inner` reads a shard
/// directly, past both the switch and the ShardedStore.
struct Cluster {
    store: ShardedStore,
    inner: Vec<Arc<MemoryStore>>,
    switches: Vec<FaultSwitch>,
}

impl Cluster {
    fn new(shards: usize, by: ShardBy) -> Self {
        let inner: Vec<Arc<MemoryStore>> =
            (0..shards).map(|_| Arc::new(MemoryStore::new())).collect();
        let switches: Vec<FaultSwitch> = (0..shards).map(|_| FaultSwitch::new()).collect();
        let faulty = inner
            .iter()
            .zip(&switches)
            .map(|(m, s)| Arc::new(FaultyStore::new(m.clone(), s.clone())) as Arc<dyn MessageStore>)
            .collect();
        let store = ShardedStore::new(faulty, by).expect("at least one shard");
        Self {
            store,
            inner,
            switches,
        }
    }

    /// Two users whose shards differ.
    fn users_apart(&self) -> (UserId, UserId) {
        let a = UserId::from("user-0");
        let b = (1..)
            .map(|i| UserId::from(format!("user-{i}")))
            .find(|b| self.store.shard_of_user(b) != self.store.shard_of_user(&a))
            .expect("some user lands on another shard");
        (a, b)
    }

    /// A group id on `shard`.
    fn group_on(&self, shard: usize, tag: &str) -> ConversationId {
        (0..)
            .map(|i| ConversationId::from(format!("g:{tag}-{i}")))
            .find(|c| self.store.shard_of_conversation(c) == shard)
            .expect("some group lands on every shard")
    }

    async fn shard_history(&self, shard: usize, c: &ConversationId) -> Vec<Message> {
        self.inner[shard]
            .history(c, None, 1000)
            .await
            .expect("memory history")
    }

    async fn shard_pending(&self, shard: usize, u: &UserId) -> Vec<Message> {
        self.inner[shard]
            .pending(u, None, 1000)
            .await
            .expect("memory pending")
    }
}

fn msg(id: u64, c: &ConversationId, sender: &UserId, key: Option<&str>) -> NewMessage {
    NewMessage {
        message: Message {
            message_id: MessageId(id),
            conversation_id: c.clone(),
            sender_id: sender.clone(),
            body: format!("body {id}"),
            ts: 1_700_000_000_000,
        },
        client_msg_id: key.map(str::to_owned),
    }
}

fn ids(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.message_id.get()).collect()
}

/// Whether `e` is Unavailable with an injected fault somewhere in its sources.
fn is_injected_unavailable(e: &Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<InjectedFault>().is_some() {
            return e.code() == "unavailable";
        }
        source = s.source();
    }
    false
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
    let u = UserId::from("carol");
    first
        .append(msg(1, &c, &u, None), &[UserId::from("dave")])
        .await
        .unwrap();

    // A second instance over the same shards, as after a restart, finds it
    // on the same shard.
    let again = ShardedStore::new(shards.clone(), ShardBy::Conversation).unwrap();
    assert_eq!(
        again.shard_of_conversation(&c),
        first.shard_of_conversation(&c)
    );
    assert_eq!(ids(&again.history(&c, None, 10).await.unwrap()), [1]);
    let home = first.shard_of_conversation(&c);
    assert_eq!(ids(&shards[home].history(&c, None, 10).await.unwrap()), [1]);

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
async fn by_user_direct_message_is_on_both_users_shards_only() {
    let cl = Cluster::new(4, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    let sent = cl
        .store
        .append(msg(10, &c, &a, Some("k")), from_ref(&b))
        .await
        .unwrap();
    assert!(!sent.duplicate);
    for shard in 0..4 {
        let expected: &[u64] = if shard == sa || shard == sb {
            &[10]
        } else {
            &[]
        };
        assert_eq!(
            ids(&cl.shard_history(shard, &c).await),
            expected,
            "history on shard {shard}"
        );
    }
    // Pending is on both copies, yet listed once.
    assert_eq!(ids(&cl.shard_pending(sb, &b).await), [10]);
    assert_eq!(ids(&cl.shard_pending(sa, &b).await), [10]);
    assert_eq!(ids(&cl.store.pending(&b, None, 10).await.unwrap()), [10]);

    // An ack reaches both copies, and is reported once.
    let acked = cl.store.ack(&b, &c, MessageId(10)).await.unwrap();
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0].sender_id, a);
    assert!(cl.shard_pending(sa, &b).await.is_empty());
    assert!(cl.shard_pending(sb, &b).await.is_empty());

    // So purge deletes on both, and only once acked.
    let d = cl
        .store
        .append(msg(11, &c, &b, None), from_ref(&a))
        .await
        .unwrap();
    assert!(!d.duplicate);
    let purged = cl
        .store
        .purge_delivered(&c, &[MessageId(10), MessageId(11)])
        .await
        .unwrap();
    assert_eq!(purged, [MessageId(10)]);
    assert_eq!(ids(&cl.shard_history(sa, &c).await), [11]);
    assert_eq!(ids(&cl.shard_history(sb, &c).await), [11]);
}

#[tokio::test]
async fn by_user_same_shard_pair_is_written_once() {
    let cl = Cluster::new(3, ShardBy::User);
    let a = UserId::from("user-0");
    let b = (1..)
        .map(|i| UserId::from(format!("user-{i}")))
        .find(|b| cl.store.shard_of_user(b) == cl.store.shard_of_user(&a))
        .unwrap();
    let home = cl.store.shard_of_user(&a);
    let c = ConversationId::direct(&a, &b);
    cl.store
        .append(msg(5, &c, &b, Some("k")), from_ref(&a))
        .await
        .unwrap();
    for shard in 0..3 {
        let expected: &[u64] = if shard == home { &[5] } else { &[] };
        assert_eq!(
            ids(&cl.shard_history(shard, &c).await),
            expected,
            "history on shard {shard}"
        );
    }
}

#[tokio::test]
async fn by_user_groups_live_on_the_conversation_shard() {
    let cl = Cluster::new(3, ShardBy::User);
    let g = cl.group_on(2, "team");
    let (a, b) = cl.users_apart();
    cl.store
        .append(msg(7, &g, &a, None), from_ref(&b))
        .await
        .unwrap();
    for shard in 0..3 {
        let expected: &[u64] = if shard == 2 { &[7] } else { &[] };
        assert_eq!(
            ids(&cl.shard_history(shard, &g).await),
            expected,
            "history on shard {shard}"
        );
    }
    // b's group delivery is on the group's shard, not b's, and pending finds it.
    assert_eq!(ids(&cl.store.pending(&b, None, 10).await.unwrap()), [7]);
}

#[tokio::test]
async fn by_user_second_shard_failure_stores_nothing_and_the_retry_stores_once() {
    let cl = Cluster::new(3, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.switches[sb].fail_next_appends(1);

    let err = cl
        .store
        .append(msg(20, &c, &a, Some("k1")), from_ref(&b))
        .await
        .unwrap_err();
    assert!(is_injected_unavailable(&err), "{err:?}");
    assert_eq!(
        cl.switches[sb].injected(),
        1,
        "the recipient's shard must have been asked"
    );
    for shard in [sa, sb] {
        assert!(
            cl.shard_history(shard, &c).await.is_empty(),
            "history left on shard {shard}"
        );
        assert!(
            cl.shard_pending(shard, &b).await.is_empty(),
            "pending left on shard {shard}"
        );
    }
    assert!(cl.store.pending(&b, None, 10).await.unwrap().is_empty());

    // The engine retries with a new id and the same key: it stores, once,
    // under the retry's id, so no dedup key was left behind.
    let retry = cl
        .store
        .append(msg(21, &c, &a, Some("k1")), from_ref(&b))
        .await
        .unwrap();
    assert!(!retry.duplicate);
    assert_eq!(retry.message.message_id, MessageId(21));
    for shard in [sa, sb] {
        assert_eq!(
            ids(&cl.shard_history(shard, &c).await),
            [21],
            "history on shard {shard}"
        );
        assert_eq!(
            ids(&cl.shard_pending(shard, &b).await),
            [21],
            "pending on shard {shard}"
        );
    }
    // And a third attempt is a plain duplicate.
    let third = cl
        .store
        .append(msg(22, &c, &a, Some("k1")), from_ref(&b))
        .await
        .unwrap();
    assert!(third.duplicate);
    assert_eq!(third.message, retry.message);
    assert_eq!(ids(&cl.store.history(&c, None, 10).await.unwrap()), [21]);
}

#[tokio::test]
async fn by_user_failed_undo_leaves_a_residue_that_the_retry_completes() {
    let cl = Cluster::new(3, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    cl.switches[sb].fail_appends(true);
    cl.switches[sa].fail_removes(true);

    let err = cl
        .store
        .append(msg(30, &c, &a, Some("k")), from_ref(&b))
        .await
        .unwrap_err();
    assert!(is_injected_unavailable(&err), "{err:?}");
    // The residue: the sender's shard kept what it could not undo.
    assert_eq!(ids(&cl.shard_history(sa, &c).await), [30]);
    assert!(cl.shard_history(sb, &c).await.is_empty());

    cl.switches[sa].clear();
    cl.switches[sb].clear();
    // The retry dedups to the residue and completes it under its first id,
    // answered as new so that the caller delivers it.
    let retry = cl
        .store
        .append(msg(31, &c, &a, Some("k")), from_ref(&b))
        .await
        .unwrap();
    assert!(!retry.duplicate);
    assert_eq!(retry.message.message_id, MessageId(30));
    for shard in [sa, sb] {
        assert_eq!(
            ids(&cl.shard_history(shard, &c).await),
            [30],
            "history on shard {shard}"
        );
        assert_eq!(
            ids(&cl.shard_pending(shard, &b).await),
            [30],
            "pending on shard {shard}"
        );
    }
}

#[tokio::test]
async fn by_user_lost_reply_on_the_second_shard_is_reconciled_by_the_retry() {
    let cl = Cluster::new(3, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    // The recipient's shard stores, then its answer is lost, then it cannot
    // take the message back.
    cl.switches[sb].lose_append_replies(true);
    cl.switches[sb].fail_removes(true);

    let err = cl
        .store
        .append(msg(40, &c, &b, Some("k")), from_ref(&a))
        .await
        .unwrap_err();
    assert!(is_injected_unavailable(&err), "{err:?}");
    cl.switches[sb].clear();

    // b sent, so b's shard took the first write: it lost its reply and the
    // message stays there, as after a single store's lost reply; a's shard
    // was never asked.
    assert_eq!(ids(&cl.shard_history(sb, &c).await), [40]);
    assert!(cl.shard_history(sa, &c).await.is_empty());

    // Now the reverse: a sends, the first write lands on a's shard, b's
    // shard stores but loses its reply and cannot undo; a's shard undoes.
    cl.switches[sb].lose_append_replies(true);
    cl.switches[sb].fail_removes(true);
    let err = cl
        .store
        .append(msg(41, &c, &a, Some("k2")), from_ref(&b))
        .await
        .unwrap_err();
    assert!(is_injected_unavailable(&err), "{err:?}");
    assert_eq!(ids(&cl.shard_history(sa, &c).await), Vec::<u64>::new());
    assert_eq!(ids(&cl.shard_history(sb, &c).await), [41, 40]);
    cl.switches[sb].clear();

    // a's retry meets 41 on b's shard under its key: a's shard adopts it.
    let retry = cl
        .store
        .append(msg(42, &c, &a, Some("k2")), from_ref(&b))
        .await
        .unwrap();
    assert_eq!(retry.message.message_id, MessageId(41));
    assert!(!retry.duplicate);
    assert_eq!(ids(&cl.shard_history(sa, &c).await), [41]);
    assert_eq!(ids(&cl.shard_history(sb, &c).await), [41, 40]);
    assert_eq!(ids(&cl.shard_pending(sa, &b).await), [41]);
    assert_eq!(ids(&cl.shard_pending(sb, &b).await), [41]);

    // b's retry of 40 completes it on a's shard.
    let retry = cl
        .store
        .append(msg(43, &c, &b, Some("k")), from_ref(&a))
        .await
        .unwrap();
    assert_eq!(retry.message.message_id, MessageId(40));
    assert_eq!(ids(&cl.shard_history(sa, &c).await), [41, 40]);
    assert_eq!(ids(&cl.store.pending(&a, None, 10).await.unwrap()), [40]);
}

#[tokio::test]
async fn by_user_racing_retries_store_once_on_both_shards() {
    let cl = Arc::new(Cluster::new(3, ShardBy::User));
    let (a, b) = cl.users_apart();
    let c = ConversationId::direct(&a, &b);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16u64 {
        let (cl, m, b) = (cl.clone(), msg(100 + n, &c, &a, Some("race")), b.clone());
        tasks.spawn(async move { cl.store.append(m, &[b]).await });
    }
    let mut stored = Vec::new();
    let mut answers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let appended = joined.unwrap().unwrap();
        if !appended.duplicate {
            stored.push(appended.message.message_id);
        }
        answers.push(appended.message.message_id);
    }
    assert_eq!(stored.len(), 1, "exactly one append stores: {stored:?}");
    assert!(answers.iter().all(|id| *id == stored[0]));
    for shard in [cl.store.shard_of_user(&a), cl.store.shard_of_user(&b)] {
        assert_eq!(ids(&cl.shard_history(shard, &c).await), [stored[0].get()]);
    }
}

#[tokio::test]
async fn by_user_reads_fall_back_to_the_other_copy() {
    let cl = Cluster::new(3, ShardBy::User);
    let (a, b) = cl.users_apart();
    let c = ConversationId::direct(&a, &b);
    cl.store
        .append(msg(50, &c, &a, None), from_ref(&b))
        .await
        .unwrap();
    cl.store
        .append(msg(51, &c, &b, None), from_ref(&a))
        .await
        .unwrap();
    cl.store.mark_read(&a, &c, MessageId(51)).await.unwrap();
    // a sorts first ("user-0"), so a's shard is the primary copy.
    assert!(a < b);
    let first = cl.store.shard_of_user(&a);
    cl.switches[first].fail_all(true);
    assert_eq!(
        ids(&cl.store.history(&c, None, 10).await.unwrap()),
        [51, 50]
    );
    assert_eq!(
        cl.store.last_message_id(&c).await.unwrap(),
        Some(MessageId(51))
    );
    assert_eq!(
        cl.store.cursors(&a, &c).await.unwrap().read,
        Some(MessageId(51))
    );
    assert_eq!(cl.store.unread(&a, &c).await.unwrap(), 0);
    assert_eq!(cl.store.unread(&b, &c).await.unwrap(), 1);
    assert_eq!(
        cl.switches[first].injected(),
        4,
        "the primary copy must have been tried"
    );
    // Writes need both copies.
    let err = cl.store.ack(&b, &c, MessageId(50)).await.unwrap_err();
    assert!(is_injected_unavailable(&err), "{err:?}");
}

#[tokio::test]
async fn by_user_half_done_ack_is_finished_by_the_next_ack() {
    let cl = Cluster::new(3, ShardBy::User);
    let (a, b) = cl.users_apart();
    let (sa, sb) = (cl.store.shard_of_user(&a), cl.store.shard_of_user(&b));
    let c = ConversationId::direct(&a, &b);
    for id in [60, 61] {
        cl.store
            .append(msg(id, &c, &a, None), from_ref(&b))
            .await
            .unwrap();
    }
    cl.switches[sa].fail(Op::Ack, true);
    assert!(cl.store.ack(&b, &c, MessageId(60)).await.is_err());
    assert_eq!(ids(&cl.shard_pending(sb, &b).await), [61]);
    assert_eq!(ids(&cl.shard_pending(sa, &b).await), [60, 61]);
    // Until then the lagging copy may deliver 60 again (at least once).
    assert_eq!(
        ids(&cl.store.pending(&b, None, 10).await.unwrap()),
        [60, 61]
    );
    cl.switches[sa].clear();

    let acked = cl.store.ack(&b, &c, MessageId(61)).await.unwrap();
    let acked: Vec<u64> = acked.iter().map(|x| x.message_id.get()).collect();
    assert_eq!(acked, [60, 61], "the union of both copies, each once");
    assert!(cl.store.pending(&b, None, 10).await.unwrap().is_empty());
    assert_eq!(
        cl.store.cursors(&b, &c).await.unwrap().delivered,
        Some(MessageId(61))
    );
}

#[tokio::test]
async fn by_conversation_one_shard_down_fails_only_its_conversations() {
    let cl = Cluster::new(3, ShardBy::Conversation);
    let (a, b) = (UserId::from("alice"), UserId::from("bob"));
    let groups: Vec<ConversationId> = (0..3).map(|s| cl.group_on(s, "down")).collect();
    for (n, g) in groups.iter().enumerate() {
        cl.store
            .append(msg(70 + n as u64, g, &a, None), from_ref(&b))
            .await
            .unwrap();
    }
    cl.switches[1].fail_all(true);

    for (n, g) in groups.iter().enumerate() {
        let send = cl
            .store
            .append(msg(80 + n as u64, g, &a, None), from_ref(&b))
            .await;
        let history = cl.store.history(g, None, 10).await;
        let ack = cl.store.ack(&b, g, MessageId(90)).await;
        if n == 1 {
            assert!(is_injected_unavailable(&send.unwrap_err()));
            assert!(is_injected_unavailable(&history.unwrap_err()));
            assert!(is_injected_unavailable(&ack.unwrap_err()));
        } else {
            assert!(!send.unwrap().duplicate);
            assert_eq!(ids(&history.unwrap()), [80 + n as u64, 70 + n as u64]);
            assert_eq!(ack.unwrap().len(), 2);
        }
    }
    // pending spans every shard, so it waits for the one that is down
    // rather than skip what that shard holds.
    assert!(is_injected_unavailable(
        &cl.store.pending(&b, None, 10).await.unwrap_err()
    ));
    cl.switches[1].clear();
    assert_eq!(ids(&cl.store.pending(&b, None, 10).await.unwrap()), [71]);
}

#[tokio::test]
async fn pending_merges_every_shard_in_id_order_with_paging() {
    for by in [ShardBy::Conversation, ShardBy::User] {
        let cl = Cluster::new(3, by);
        let r = UserId::from("reader");
        let others: Vec<UserId> = (0..4)
            .map(|i| UserId::from(format!("friend-{i}")))
            .collect();
        let mut convs: Vec<ConversationId> = (0..3).map(|s| cl.group_on(s, "merge")).collect();
        convs.extend(others.iter().map(|o| ConversationId::direct(&r, o)));
        // Interleave ids over the conversations so that every page mixes shards.
        let mut expected = Vec::new();
        for id in 1..=40u64 {
            let c = &convs[(id as usize * 3) % convs.len()];
            let sender = &others[id as usize % others.len()];
            let sender = match c.direct_pair() {
                Some((x, y)) => {
                    if x == r {
                        y
                    } else {
                        x
                    }
                }
                None => sender.clone(),
            };
            cl.store
                .append(msg(id, c, &sender, None), from_ref(&r))
                .await
                .unwrap();
            expected.push(id);
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = cl.store.pending(&r, after, 6).await.unwrap();
            assert!(page.len() <= 6);
            if page.is_empty() {
                break;
            }
            after = page.last().map(|m| m.message_id);
            seen.extend(ids(&page));
        }
        assert_eq!(seen, expected, "{by:?}: every delivery once, oldest first");
        let mut shards_used = 0;
        for shard in 0..3 {
            if !cl.shard_pending(shard, &r).await.is_empty() {
                shards_used += 1;
            }
        }
        assert!(
            shards_used >= 2,
            "{by:?}: the deliveries must be spread over shards"
        );
    }
}
