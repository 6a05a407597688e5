//! [`PresenceStore`] conformance: connection counting across nodes,
//! last_seen, heartbeat expiry and reap.
//!
//! Times are logical: the functions pass `now` values near the wall clock
//! and never sleep.

use super::fixtures::{unique, user};
use crate::cluster::{PresenceEntry, PresenceStore};
use crate::model::{Millis, NodeId, Presence, PresenceStatus, UserId, now_millis};

/// A day: the ttl of nodes that must not expire during a test.
const LONG_TTL: Millis = 24 * 60 * 60 * 1000;

fn node(label: &str) -> NodeId {
    NodeId::from(unique(label))
}

async fn entry(store: &dyn PresenceStore, user: &UserId) -> PresenceEntry {
    let mut entries = store
        .presence(std::slice::from_ref(user))
        .await
        .unwrap_or_else(|e| panic!("presence of {user} failed: {e}"));
    assert_eq!(
        entries.len(),
        1,
        "presence must answer one entry per user asked"
    );
    entries.remove(0)
}

fn sorted(mut nodes: Vec<NodeId>) -> Vec<NodeId> {
    nodes.sort();
    nodes
}

/// Connections count per user and node across two nodes: `connect` reports
/// the step to online, `disconnect` the step to offline (the last connection
/// anywhere), which sets last_seen.
pub async fn presence_counts_connections_across_nodes(store: &dyn PresenceStore) {
    let (n1, n2) = (node("n1"), node("n2"));
    let u = user("u");
    let t = now_millis();
    assert!(
        store.connect(&u, &n1, t).await.expect("connect failed"),
        "the first connection must report online"
    );
    assert!(
        !store.connect(&u, &n1, t + 1).await.expect("connect failed"),
        "a second connection is no change"
    );
    assert!(
        !store.connect(&u, &n2, t + 2).await.expect("connect failed"),
        "a connection on another node is no change"
    );
    let e = entry(store, &u).await;
    assert_eq!(
        e.presence.status,
        PresenceStatus::Online,
        "a connected user is online"
    );
    assert_eq!(
        sorted(e.nodes),
        sorted(vec![n1.clone(), n2.clone()]),
        "the user is on both nodes"
    );

    assert!(
        !store
            .disconnect(&u, &n1, t + 3)
            .await
            .expect("disconnect failed"),
        "one of two on n1 closed: still online"
    );
    assert!(
        !store
            .disconnect(&u, &n1, t + 4)
            .await
            .expect("disconnect failed"),
        "n2 still holds one: still online"
    );
    let e = entry(store, &u).await;
    assert_eq!(
        e.presence.status,
        PresenceStatus::Online,
        "still online on n2"
    );
    assert_eq!(e.nodes, vec![n2.clone()], "only n2 holds a connection now");

    assert!(
        store
            .disconnect(&u, &n2, t + 5)
            .await
            .expect("disconnect failed"),
        "the last connection closed: offline"
    );
    let e = entry(store, &u).await;
    assert_eq!(
        e.presence,
        Presence {
            user_id: u.clone(),
            status: PresenceStatus::Offline,
            last_seen: Some(t + 5)
        },
        "offline with last_seen = the time of the last disconnect"
    );
    assert!(e.nodes.is_empty(), "an offline user is on no node");

    assert!(
        !store
            .disconnect(&u, &n2, t + 6)
            .await
            .expect("disconnect failed"),
        "a disconnect without connection is no change"
    );
    assert_eq!(
        entry(store, &u).await.presence.last_seen,
        Some(t + 5),
        "a spurious disconnect must not move last_seen"
    );
    assert!(
        store.connect(&u, &n1, t + 7).await.expect("connect failed"),
        "connecting again must report online again"
    );
}

/// `presence` answers in the order asked; a user never seen is offline
/// without last_seen.
pub async fn presence_answers_in_order(store: &dyn PresenceStore) {
    let n = node("n");
    let (online, never, gone) = (user("online"), user("never"), user("gone"));
    let t = now_millis();
    store.connect(&online, &n, t).await.expect("connect failed");
    store.connect(&gone, &n, t).await.expect("connect failed");
    store
        .disconnect(&gone, &n, t + 1)
        .await
        .expect("disconnect failed");
    let asked = [never.clone(), online.clone(), gone.clone()];
    let entries = store.presence(&asked).await.expect("presence failed");
    let users: Vec<_> = entries.iter().map(|e| e.presence.user_id.clone()).collect();
    assert_eq!(users, asked, "presence must answer in the order asked");
    assert_eq!(
        entries[0].presence,
        Presence {
            user_id: never,
            status: PresenceStatus::Offline,
            last_seen: None
        },
        "a user never seen is offline without last_seen"
    );
    assert_eq!(
        entries[1].presence.status,
        PresenceStatus::Online,
        "a connected user is online"
    );
    assert_eq!(entries[1].nodes, vec![n], "it is on its node");
    assert_eq!(
        entries[2].presence.last_seen,
        Some(t + 1),
        "a user that left has last_seen"
    );
}

/// Heartbeat expiry: `reap` forgets the connections of nodes whose heartbeat
/// expired and returns the users that went offline (with last_seen between
/// that node's last heartbeat and `now`); users also on a live node, or on a
/// node that never sent a heartbeat, stay online; a late disconnect from a
/// reaped node changes nothing.
///
/// `reap` sweeps every node of the instance: give this function an
/// instance that no concurrent test reaps.
pub async fn presence_heartbeat_expiry_and_reap(store: &dyn PresenceStore) {
    let (dead, live, quiet) = (node("dead"), node("live"), node("quiet"));
    let (only_dead, both, on_quiet) = (user("only-dead"), user("both"), user("on-quiet"));
    let t = now_millis();
    let ttl = 1_000;
    store
        .heartbeat(&dead, t, ttl)
        .await
        .expect("heartbeat failed");
    store
        .heartbeat(&live, t, LONG_TTL)
        .await
        .expect("heartbeat failed");
    store
        .connect(&only_dead, &dead, t)
        .await
        .expect("connect failed");
    store
        .connect(&both, &dead, t)
        .await
        .expect("connect failed");
    store
        .connect(&both, &live, t)
        .await
        .expect("connect failed");
    store
        .connect(&on_quiet, &quiet, t)
        .await
        .expect("connect failed");
    let mine = |p: &Presence| [&only_dead, &both, &on_quiet].contains(&&p.user_id);

    let early: Vec<_> = store
        .reap(t + ttl / 2)
        .await
        .expect("reap failed")
        .into_iter()
        .filter(mine)
        .collect();
    assert!(
        early.is_empty(),
        "nothing has expired yet, but reap returned {early:?}"
    );
    store
        .heartbeat(&dead, t + ttl / 2, ttl)
        .await
        .expect("heartbeat failed");
    let refreshed: Vec<_> = store
        .reap(t + ttl + 1)
        .await
        .expect("reap failed")
        .into_iter()
        .filter(mine)
        .collect();
    assert!(
        refreshed.is_empty(),
        "a refreshed heartbeat must extend the ttl, but reap returned {refreshed:?}"
    );

    let now = t + ttl / 2 + ttl + 1;
    let reaped: Vec<_> = store
        .reap(now)
        .await
        .expect("reap failed")
        .into_iter()
        .filter(mine)
        .collect();
    assert_eq!(
        reaped.len(),
        1,
        "exactly the user only on the expired node must go offline, got {reaped:?}"
    );
    let gone = &reaped[0];
    assert_eq!(
        gone.user_id, only_dead,
        "the user only on the expired node goes offline"
    );
    assert_eq!(
        gone.status,
        PresenceStatus::Offline,
        "reaped users are offline"
    );
    let last_seen = gone.last_seen.expect("a reaped user must have last_seen");
    assert!(
        (t + ttl / 2..=now).contains(&last_seen),
        "last_seen {last_seen} must lie between the last heartbeat {} and the reap {now}",
        t + ttl / 2
    );
    assert_eq!(
        entry(store, &only_dead).await.presence,
        gone.clone(),
        "presence must agree with reap"
    );
    let e = entry(store, &both).await;
    assert_eq!(
        e.presence.status,
        PresenceStatus::Online,
        "a user also on a live node stays online"
    );
    assert_eq!(
        e.nodes,
        vec![live.clone()],
        "only the live node holds it now"
    );
    assert_eq!(
        entry(store, &on_quiet).await.presence.status,
        PresenceStatus::Online,
        "a node that never sent a heartbeat never expires"
    );

    assert!(
        !store
            .disconnect(&both, &dead, now + 1)
            .await
            .expect("disconnect failed"),
        "a late disconnect from a reaped node must change nothing"
    );
    assert_eq!(
        entry(store, &both).await.nodes,
        vec![live.clone()],
        "the live node's connection must still count"
    );
    store
        .heartbeat(&dead, now + 2, ttl)
        .await
        .expect("heartbeat failed");
    assert!(
        store
            .connect(&only_dead, &dead, now + 2)
            .await
            .expect("connect failed"),
        "a user reaped offline comes online again on connect"
    );
}

/// `restore` sets a node's connections to exactly the list: counts are set,
/// not added; users held on that node but not listed are counted out; each
/// change of presence is reported once; another node's connections stay;
/// restoring again with the same list changes nothing; and later connects
/// and disconnects count from the restored numbers.
pub async fn presence_restore_sets_a_nodes_connections(store: &dyn PresenceStore) {
    let (n1, n2) = (node("n1"), node("n2"));
    let (kept, stale, shared, fresh) = (user("kept"), user("stale"), user("shared"), user("fresh"));
    let t = now_millis();
    for u in [&kept, &kept, &stale, &shared] {
        store.connect(u, &n1, t).await.expect("connect failed");
    }
    store
        .connect(&shared, &n2, t)
        .await
        .expect("connect failed");

    let listed = [(kept.clone(), 1), (fresh.clone(), 2)];
    let mut changes = store
        .restore(&n1, &listed, t + 1)
        .await
        .expect("restore failed");
    changes.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let mut want = vec![
        Presence {
            user_id: stale.clone(),
            status: PresenceStatus::Offline,
            last_seen: Some(t + 1),
        },
        Presence {
            user_id: fresh.clone(),
            status: PresenceStatus::Online,
            last_seen: None,
        },
    ];
    want.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    assert_eq!(
        changes, want,
        "restore reports the user counted out and the user counted in, and nobody else"
    );
    assert_eq!(
        entry(store, &stale).await.presence.last_seen,
        Some(t + 1),
        "a user counted out by restore has last_seen = its time"
    );
    assert_eq!(
        entry(store, &shared).await.nodes,
        vec![n2.clone()],
        "restore of n1 leaves n2's connections alone"
    );
    assert_eq!(
        entry(store, &fresh).await.nodes,
        vec![n1.clone()],
        "a listed user is on the restored node"
    );
    assert!(
        store
            .restore(&n1, &listed, t + 2)
            .await
            .expect("restore failed")
            .is_empty(),
        "restoring the same list again changes nothing"
    );

    // Counts were set: kept has 1 connection on n1 (not 2 + 1), fresh has 2.
    assert!(
        store
            .disconnect(&kept, &n1, t + 3)
            .await
            .expect("disconnect failed"),
        "kept's one restored connection closed: offline"
    );
    assert!(
        !store
            .disconnect(&fresh, &n1, t + 3)
            .await
            .expect("disconnect failed"),
        "fresh still has its second restored connection"
    );
    assert!(
        store
            .disconnect(&fresh, &n1, t + 4)
            .await
            .expect("disconnect failed"),
        "fresh's second restored connection closed: offline"
    );
    let changes = store
        .restore(&n1, &[], t + 5)
        .await
        .expect("restore failed");
    assert!(
        changes.is_empty(),
        "an empty node restored empty changes nothing, got {changes:?}"
    );
}
