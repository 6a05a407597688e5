//! [`AccountStore`] conformance: accounts, unique usernames, profiles.

use std::sync::Arc;

use super::fixtures::{unique, user};
use crate::error::Error;
use crate::model::{Account, UserId, now_millis};
use crate::store::AccountStore;

fn account(id: &UserId, username: &str) -> Account {
    Account {
        user_id: id.clone(),
        username: username.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        display_name: format!("Display {username}"),
        created_at: now_millis(),
    }
}

/// A created account reads back by username and by id; unknown ones are `None`.
pub async fn account_create_and_read(store: &dyn AccountStore) {
    let id = user("acct");
    let name = unique("name");
    let acct = account(&id, &name);
    store
        .create_account(acct.clone())
        .await
        .expect("create_account failed");
    assert_eq!(
        store
            .account_by_username(&name)
            .await
            .expect("account_by_username failed"),
        Some(acct.clone()),
        "the account must read back by username"
    );
    assert_eq!(
        store.account(&id).await.expect("account failed"),
        Some(acct),
        "the account must read back by id"
    );
    assert_eq!(
        store
            .account_by_username(&unique("nobody"))
            .await
            .expect("account_by_username failed"),
        None,
        "an unknown username has no account"
    );
    assert_eq!(
        store
            .account(&user("nobody"))
            .await
            .expect("account failed"),
        None,
        "an unknown id has no account"
    );
}

/// A taken username, or a taken id, is `AlreadyExists` and changes nothing.
pub async fn account_username_and_id_unique(store: &dyn AccountStore) {
    let (id, other_id) = (user("acct"), user("other"));
    let (name, other_name) = (unique("name"), unique("name"));
    let first = account(&id, &name);
    store
        .create_account(first.clone())
        .await
        .expect("create_account failed");

    let err = store
        .create_account(account(&other_id, &name))
        .await
        .expect_err("a taken username must be refused");
    assert!(
        matches!(err, Error::AlreadyExists { .. }),
        "a taken username must be AlreadyExists, got {err:?}"
    );
    let err = store
        .create_account(account(&id, &other_name))
        .await
        .expect_err("a taken user id must be refused");
    assert!(
        matches!(err, Error::AlreadyExists { .. }),
        "a taken user id must be AlreadyExists, got {err:?}"
    );

    assert_eq!(
        store.account_by_username(&name).await.expect("read failed"),
        Some(first),
        "the first account must stay"
    );
    assert_eq!(
        store.account(&other_id).await.expect("read failed"),
        None,
        "the refused account must not exist"
    );
    assert_eq!(
        store
            .account_by_username(&other_name)
            .await
            .expect("read failed"),
        None,
        "the refused username must not exist"
    );
}

/// Many sign-ups race for one username: exactly one wins, the others get
/// `AlreadyExists`, and the username names the winner.
pub async fn account_concurrent_signups_one_wins(store: Arc<dyn AccountStore>) {
    const TASKS: usize = 16;
    let name = unique("contested");
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..TASKS {
        let (store, acct) = (store.clone(), account(&user(&format!("racer{n}")), &name));
        tasks.spawn(async move { (acct.clone(), store.create_account(acct).await) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("a sign-up task panicked") {
            (acct, Ok(())) => winners.push(acct),
            (_, Err(Error::AlreadyExists { .. })) => {}
            (_, Err(e)) => panic!("a losing sign-up must be AlreadyExists, got {e:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {TASKS} racing sign-ups must win, {} did",
        winners.len()
    );
    assert_eq!(
        store
            .account_by_username(&name)
            .await
            .expect("account_by_username failed"),
        winners.pop(),
        "the username must name the winner"
    );
}

/// `set_display_name` changes the display name only and returns the
/// account; an unknown id is `NotFound`.
pub async fn account_set_display_name(store: &dyn AccountStore) {
    let id = user("acct");
    let acct = account(&id, &unique("name"));
    store
        .create_account(acct.clone())
        .await
        .expect("create_account failed");
    let updated = store
        .set_display_name(&id, "Renamed ✓")
        .await
        .expect("set_display_name failed");
    let expected = Account {
        display_name: "Renamed ✓".to_owned(),
        ..acct
    };
    assert_eq!(
        updated, expected,
        "set_display_name must return the updated account"
    );
    assert_eq!(
        store.account(&id).await.expect("account failed"),
        Some(expected),
        "the new name must be stored"
    );
    let err = store
        .set_display_name(&user("nobody"), "x")
        .await
        .expect_err("renaming an unknown account must fail");
    assert!(
        matches!(err, Error::NotFound { .. }),
        "an unknown account must be NotFound, got {err:?}"
    );
}

/// A store that serves answers `ping` (the readiness probe), also twice in a
/// row and from several callers at once.
pub async fn account_store_ping_answers(store: &dyn AccountStore) {
    store.ping().await.expect("ping of a store that serves");
    let (a, b) = tokio::join!(store.ping(), store.ping());
    a.and(b).expect("concurrent pings");
}
