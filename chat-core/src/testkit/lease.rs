//! [`NodeIds`] conformance: distinct ids for concurrent claims, refusal of
//! a held id, release, expiry, and what a renewal reports.
//!
//! Expiry is real time: claims with a short ttl, then a sleep of twice
//! that (a lower bound on the wait, so a slow machine cannot break it).
//!
//! Each function claims ids without naming them, so the instance it gets
//! must be its own (a fresh key prefix, say).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use crate::cluster::{NodeIds, NodeLease, Renewal};
use crate::error::Error;
use crate::id::MAX_WORKERS;
use crate::model::Millis;

/// A ttl no test outlives.
const LONG_TTL: Millis = 60 * 1000;

/// A ttl that lapses within the test.
const SHORT_TTL: Millis = 200;

async fn claim(
    ids: &dyn NodeIds,
    wanted: Option<u16>,
    holder: &str,
    ttl: Millis,
) -> Box<dyn NodeLease> {
    ids.claim(wanted, holder, ttl)
        .await
        .unwrap_or_else(|e| panic!("claim of {wanted:?} by {holder} failed: {e}"))
}

async fn lapse() {
    tokio::time::sleep(Duration::from_millis(2 * SHORT_TTL as u64)).await;
}

/// Nodes that claim without naming an id at the same moment get distinct
/// ids, and each renewal finds its claim held.
pub async fn node_ids_concurrent_claims_are_distinct(ids: Arc<dyn NodeIds>) {
    let claims = (0..8).map(|n| {
        let ids = ids.clone();
        tokio::spawn(async move { ids.claim(None, &format!("node {n}"), LONG_TTL).await })
    });
    let leases: Vec<Box<dyn NodeLease>> = join_all(claims)
        .await
        .into_iter()
        .map(|r| r.expect("claim task").expect("claim failed"))
        .collect();
    let mut workers: Vec<u16> = leases.iter().map(|l| l.worker_id()).collect();
    workers.sort_unstable();
    workers.dedup();
    assert_eq!(
        workers.len(),
        8,
        "eight claims must get eight ids: {workers:?}"
    );
    assert!(
        workers.iter().all(|w| *w < MAX_WORKERS),
        "ids must be worker ids: {workers:?}"
    );
    for lease in &leases {
        assert_eq!(
            lease.renew(LONG_TTL).await.expect("renew failed"),
            Renewal::Held,
            "a live claim renews as held"
        );
    }
}

/// A held id is refused with `AlreadyExists` naming its holder, until its
/// holder releases it; an id out of range is `InvalidInput`.
pub async fn node_ids_a_held_id_is_refused_until_released(ids: &dyn NodeIds) {
    let first = claim(ids, None, "ws://first/ws", LONG_TTL).await;
    let id = first.worker_id();
    match ids.claim(Some(id), "ws://second/ws", LONG_TTL).await {
        Err(e @ Error::AlreadyExists { .. }) => assert!(
            e.to_string().contains("ws://first/ws"),
            "the refusal must name the holder: {e}"
        ),
        Err(e) => panic!("a held id must be refused with AlreadyExists, got {e}"),
        Ok(l) => panic!("id {id} was handed out twice (to {})", l.worker_id()),
    }
    first.release().await.expect("release failed");
    let second = claim(ids, Some(id), "ws://second/ws", LONG_TTL).await;
    assert_eq!(
        second.worker_id(),
        id,
        "a released id can be claimed by name"
    );
    match ids
        .claim(Some(MAX_WORKERS), "ws://third/ws", LONG_TTL)
        .await
    {
        Err(Error::InvalidInput { .. }) => {}
        Err(e) => panic!("an id out of range must be InvalidInput, got {e}"),
        Ok(_) => panic!("id {MAX_WORKERS} is out of range but was handed out"),
    }
}

/// A claim not renewed within its ttl lapses: the id is free for another
/// node, whose claim the old holder's renewal reports as `Lost` (and whose
/// claim the old holder's release leaves alone); a lapsed claim that nobody
/// took renews as `Reclaimed`, then as `Held`.
pub async fn node_ids_a_lapsed_claim_is_free_and_renewal_says_so(ids: &dyn NodeIds) {
    let old = claim(ids, None, "ws://old/ws", SHORT_TTL).await;
    let id = old.worker_id();
    lapse().await;
    let new = claim(ids, Some(id), "ws://new/ws", LONG_TTL).await;
    match old.renew(LONG_TTL).await.expect("renew failed") {
        Renewal::Lost { holder } => assert!(
            holder.as_deref().is_some_and(|h| h.contains("ws://new/ws")),
            "Lost must name the new holder, got {holder:?}"
        ),
        other => panic!("the old holder of a taken id must get Lost, got {other:?}"),
    }
    old.release().await.expect("release failed");
    assert!(
        matches!(
            ids.claim(Some(id), "ws://third/ws", LONG_TTL).await,
            Err(Error::AlreadyExists { .. })
        ),
        "the old holder's release must not free the new holder's claim"
    );
    assert_eq!(
        new.renew(LONG_TTL).await.expect("renew failed"),
        Renewal::Held
    );

    let lonely = claim(ids, None, "ws://lonely/ws", SHORT_TTL).await;
    lapse().await;
    assert_eq!(
        lonely.renew(LONG_TTL).await.expect("renew failed"),
        Renewal::Reclaimed,
        "a lapsed claim that nobody took is reclaimed"
    );
    assert_eq!(
        lonely.renew(LONG_TTL).await.expect("renew failed"),
        Renewal::Held
    );
}
