//! Group commit: appends that share one batch (a long linger and one batch
//! in flight put everything sent at once into one statement) keep every
//! promise of appends made one by one: dedup between the appends of one
//! batch, and a taken message id failing only its own append.

use std::sync::Arc;
use std::time::Duration;

use chat_core::store::{Appended, MessageStore};
use chat_core::{ConversationId, Error, Message, MessageId, NewMessage, UserId, now_millis};
use chat_store_postgres::{PostgresConfig, PostgresStore, testing};

async fn batching_store() -> Option<Arc<PostgresStore>> {
    testing::fresh_store_with(PostgresConfig {
        batch_inflight: 1,
        batch_linger: Duration::from_millis(300),
        ..PostgresConfig::default()
    })
    .await
}

fn msg(conversation: &ConversationId, sender: &UserId, id: u64, key: Option<&str>) -> NewMessage {
    NewMessage {
        message: Message {
            message_id: MessageId(id),
            conversation_id: conversation.clone(),
            sender_id: sender.clone(),
            body: format!("body of {id}"),
            ts: now_millis(),
        },
        client_msg_id: key.map(str::to_owned),
    }
}

/// Starts every append at once and collects the answers in input order.
async fn append_all(
    store: &Arc<PostgresStore>,
    msgs: Vec<NewMessage>,
    recipients: &[UserId],
) -> Vec<chat_core::Result<Appended>> {
    let calls = msgs.into_iter().map(|m| {
        let store = store.clone();
        let recipients = recipients.to_vec();
        async move { store.append(m, &recipients).await }
    });
    futures::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_batch_dedups_equal_keys_and_stores_the_rest() {
    let Some(store) = batching_store().await else {
        return;
    };
    let conv = ConversationId::from("g:batch");
    let (sender, r) = (UserId::from("sender"), UserId::from("r"));
    let mut msgs = Vec::new();
    // Ten retries of one key, each with its own id ...
    for n in 0..10 {
        msgs.push(msg(&conv, &sender, 100 + n, Some("same")));
    }
    // ... beside fresh keys and messages without a key.
    for n in 0..5 {
        msgs.push(msg(&conv, &sender, 200 + n, Some(&format!("fresh-{n}"))));
        msgs.push(msg(&conv, &sender, 300 + n, None));
    }
    let answers = append_all(&store, msgs, std::slice::from_ref(&r)).await;
    let answers: Vec<Appended> = answers
        .into_iter()
        .map(|a| a.expect("every append of the batch must succeed"))
        .collect();

    let same: Vec<&Appended> = answers[..10].iter().collect();
    let winners: Vec<&&Appended> = same.iter().filter(|a| !a.duplicate).collect();
    assert_eq!(winners.len(), 1, "exactly one of the equal keys must store");
    let winner = &winners[0].message;
    for a in &same {
        assert_eq!(
            &a.message, winner,
            "every equal key must answer the stored message"
        );
    }
    for a in &answers[10..] {
        assert!(
            !a.duplicate,
            "distinct keys and keyless messages must all store"
        );
    }
    let history = store.history(&conv, None, 100).await.expect("history");
    assert_eq!(
        history.len(),
        11,
        "one of the equal keys and the ten others"
    );
    assert!(history.contains(winner));
    let pending = store.pending(&r, None, 100).await.expect("pending");
    assert_eq!(pending.len(), 11, "one delivery per stored message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_message_id_fails_only_its_own_append() {
    let Some(store) = batching_store().await else {
        return;
    };
    let conv = ConversationId::from("g:clash");
    let (sender, r) = (UserId::from("sender"), UserId::from("r"));
    store
        .append(
            msg(&conv, &sender, 1, Some("first")),
            std::slice::from_ref(&r),
        )
        .await
        .expect("first append");
    // One batch: a message id that is taken (under a new key), and others.
    let answers = append_all(
        &store,
        vec![
            msg(&conv, &sender, 1, Some("clash")),
            msg(&conv, &sender, 2, Some("ok-1")),
            msg(&conv, &sender, 3, None),
            msg(&conv, &sender, 4, Some("first")),
        ],
        std::slice::from_ref(&r),
    )
    .await;
    let mut answers = answers.into_iter();
    let clash = answers.next().expect("four answers");
    assert!(
        matches!(clash, Err(Error::AlreadyExists { .. })),
        "a taken message id must be AlreadyExists, got {clash:?}"
    );
    for (n, a) in answers.by_ref().take(2).enumerate() {
        let a = a.unwrap_or_else(|e| panic!("append {n} beside the clash failed: {e}"));
        assert!(!a.duplicate);
    }
    let retry = answers
        .next()
        .expect("fourth")
        .expect("a retry of the first key");
    assert!(retry.duplicate, "the first key must still dedup");
    assert_eq!(retry.message.message_id, MessageId(1));

    // The failed append left nothing, not even its key.
    let ids: Vec<MessageId> = store
        .history(&conv, None, 100)
        .await
        .expect("history")
        .iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids, vec![MessageId(3), MessageId(2), MessageId(1)]);
    let again = store
        .append(
            msg(&conv, &sender, 5, Some("clash")),
            std::slice::from_ref(&r),
        )
        .await
        .expect("the clashing key, with a free id");
    assert!(
        !again.duplicate,
        "the failed append must not have kept its key"
    );
}
