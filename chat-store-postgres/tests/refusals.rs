//! Input PostgreSQL cannot hold, or values past what its columns hold, is
//! refused with a clear error and changes nothing.

use chat_core::store::{ConversationStore, MessageStore};
use chat_core::{
    ConversationId, Error, Invite, Message, MessageId, NewMessage, UserId, now_millis,
};
use chat_store_postgres::testing;

fn text(conversation: &str, id: u64) -> NewMessage {
    NewMessage {
        message: Message::text(
            MessageId(id),
            ConversationId::from(conversation),
            UserId::from("sender"),
            "hello",
            now_millis(),
        ),
        client_msg_id: None,
        device: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_a_nul_character_is_invalid_input() {
    let Some(store) = testing::fresh_store().await else {
        return;
    };
    let mut bad_key = text("g:nul", 1);
    bad_key.client_msg_id = Some("k\0".into());
    let mut bad_sender = text("g:nul", 2);
    bad_sender.message.sender_id = UserId::from("a\0b");
    for (what, entry) in [("key", bad_key), ("sender", bad_sender)] {
        let refused = store.append(entry, 0).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput { .. })),
            "a NUL in the {what} must be InvalidInput, got {refused:?}"
        );
    }
    let read = store
        .history(&ConversationId::from("g:\0"), None, None, 10)
        .await;
    assert!(
        matches!(read, Err(Error::InvalidInput { .. })),
        "a NUL in a read's argument must be InvalidInput, got {read:?}"
    );
    assert_eq!(
        store
            .head(&ConversationId::from("g:nul"))
            .await
            .expect("head"),
        Default::default(),
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_past_the_columns_are_refused() {
    let Some(store) = testing::fresh_store().await else {
        return;
    };
    // No head has a version past i64::MAX: a conflict, nothing stored.
    let refused = store.append(text("g:big", 1), u64::MAX).await;
    assert!(
        matches!(refused, Err(Error::Conflict { .. })),
        "an expected version no head can have is a conflict, got {refused:?}"
    );
    let invite = Invite {
        code_hash: "hash".into(),
        conversation_id: ConversationId::from("g:big"),
        created_by: UserId::from("owner"),
        created_at: now_millis(),
        max_uses: Some(u32::MAX),
        uses: 0,
        expires_at: None,
        revoked: false,
    };
    let refused = store.create_invite(invite).await;
    assert!(
        matches!(refused, Err(Error::InvalidInput { .. })),
        "max_uses past the column is InvalidInput, got {refused:?}"
    );
    assert!(
        matches!(
            store.redeem_invite("hash", now_millis()).await,
            Err(Error::NotFound { .. })
        ),
        "the refused invite was not stored"
    );
}
