//! Every statement the adapter runs, prepared once at connect.
//!
//! Prepared statements carry their partition key's position, so the
//! driver's default load-balancing policy routes each one to a replica that
//! owns the partition (token-aware) and skips a coordinator hop. Table names
//! are qualified with the keyspace so that no connection depends on `USE`.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use crate::codec::backend;

/// Declares the struct of prepared statements and its `prepare` function
/// from one list of `name: idempotent, "CQL with {ks} for the keyspace"`.
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident: $idempotent:expr, $cql:expr;)+) => {
        /// The prepared statements.
        #[derive(Debug)]
        pub(crate) struct Statements {
            $($(#[$doc])* pub(crate) $name: PreparedStatement,)+
        }

        impl Statements {
            /// Prepares every statement against `keyspace`.
            pub(crate) async fn prepare(
                session: &Session,
                keyspace: &str,
            ) -> chat_core::Result<Self> {
                Ok(Self {
                    $($name: {
                        let mut st = session
                            .prepare($cql.replace("{ks}", keyspace))
                            .await
                            .map_err(backend(concat!("prepare ", stringify!($name))))?;
                        // Idempotent statements may be retried and sped up
                        // by the driver; LWTs and deletes-then-reads may not.
                        st.set_is_idempotent($idempotent);
                        st
                    },)+
                })
            }
        }
    };
}

statements! {
    // Messages.
    insert_message: true, "INSERT INTO {ks}.messages \
        (conversation_id, bucket, message_id, sender_id, body, ts, client_msg_id) \
        VALUES (?, ?, ?, ?, ?, ?, ?)";
    insert_bucket: true, "INSERT INTO {ks}.message_buckets (conversation_id, bucket) VALUES (?, ?)";
    select_message: true, "SELECT sender_id, body, ts, client_msg_id FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    delete_message: true, "DELETE FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    /// Buckets at or below a bucket, newest first.
    select_buckets: true, "SELECT bucket FROM {ks}.message_buckets \
        WHERE conversation_id = ? AND bucket <= ?";
    /// One bucket's messages at or below an id, newest first.
    history_page: true, "SELECT message_id, sender_id, body, ts FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id <= ? LIMIT ?";
    /// Which of some ids of one bucket are stored (ack skips the others).
    existing_messages: true, "SELECT message_id FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id IN ?";
    /// Senders of one bucket's messages at or above an id (for `unread`).
    senders_since: true, "SELECT sender_id FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id >= ?";

    // Dedup keys.
    claim_dedup: false, "INSERT INTO {ks}.dedup \
        (sender_id, client_msg_id, conversation_id, message_id, body, ts, recipients) \
        VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    delete_dedup: true, "DELETE FROM {ks}.dedup WHERE sender_id = ? AND client_msg_id = ?";

    // Pending deliveries; `USING TTL 0` means no TTL.
    insert_pending_user: true, "INSERT INTO {ks}.pending_by_user \
        (user_id, message_id, conversation_id) VALUES (?, ?, ?) USING TTL ?";
    insert_pending_conversation: true, "INSERT INTO {ks}.pending_by_conversation \
        (user_id, conversation_id, message_id, sender_id) VALUES (?, ?, ?, ?) USING TTL ?";
    insert_pending_message: true, "INSERT INTO {ks}.pending_by_message \
        (conversation_id, message_id, user_id) VALUES (?, ?, ?) USING TTL ?";
    /// A user's pending deliveries at or above an id, oldest first.
    pending_page: true, "SELECT message_id, conversation_id FROM {ks}.pending_by_user \
        WHERE user_id = ? AND message_id >= ? LIMIT ?";
    /// A user's pending deliveries in one conversation at or below an id.
    pending_in_conversation: true, "SELECT message_id, sender_id \
        FROM {ks}.pending_by_conversation \
        WHERE user_id = ? AND conversation_id = ? AND message_id <= ?";
    /// Who still waits for one message.
    pending_users: true, "SELECT user_id FROM {ks}.pending_by_message \
        WHERE conversation_id = ? AND message_id = ?";
    delete_pending_user: true, "DELETE FROM {ks}.pending_by_user \
        WHERE user_id = ? AND message_id = ? AND conversation_id = ?";
    delete_pending_conversation: true, "DELETE FROM {ks}.pending_by_conversation \
        WHERE user_id = ? AND conversation_id = ? AND message_id = ?";
    delete_pending_message: true, "DELETE FROM {ks}.pending_by_message \
        WHERE conversation_id = ? AND message_id = ? AND user_id = ?";
    /// Every pending row of one message in `pending_by_message` (`remove`).
    delete_pending_of_message: true, "DELETE FROM {ks}.pending_by_message \
        WHERE conversation_id = ? AND message_id = ?";
    // Residue deletes, dated at the residue cutoff (see `residue`).
    clean_pending_user: true, "DELETE FROM {ks}.pending_by_user USING TIMESTAMP ? \
        WHERE user_id = ? AND message_id = ? AND conversation_id = ?";
    clean_pending_conversation: true, "DELETE FROM {ks}.pending_by_conversation \
        USING TIMESTAMP ? WHERE user_id = ? AND conversation_id = ? AND message_id = ?";
    clean_pending_message: true, "DELETE FROM {ks}.pending_by_message USING TIMESTAMP ? \
        WHERE conversation_id = ? AND message_id = ? AND user_id = ?";

    // Cursors: compare-and-set so that they never move backwards.
    select_cursors: true, "SELECT delivered, read FROM {ks}.cursors \
        WHERE user_id = ? AND conversation_id = ?";
    raise_delivered: false, "UPDATE {ks}.cursors SET delivered = ? \
        WHERE user_id = ? AND conversation_id = ? IF delivered < ?";
    start_delivered: false, "UPDATE {ks}.cursors SET delivered = ? \
        WHERE user_id = ? AND conversation_id = ? IF delivered = null";
    raise_read: false, "UPDATE {ks}.cursors SET read = ? \
        WHERE user_id = ? AND conversation_id = ? IF read < ?";
    start_read: false, "UPDATE {ks}.cursors SET read = ? \
        WHERE user_id = ? AND conversation_id = ? IF read = null";

    // Conversations and membership.
    claim_conversation: false, "INSERT INTO {ks}.conversations \
        (conversation_id, kind, name, created_by, created_at) VALUES (?, ?, ?, ?, ?) \
        IF NOT EXISTS";
    select_conversation: true, "SELECT kind, name, created_by, created_at \
        FROM {ks}.conversations WHERE conversation_id = ?";
    insert_member: true, "INSERT INTO {ks}.members_by_conversation (conversation_id, user_id) \
        VALUES (?, ?)";
    claim_member: false, "INSERT INTO {ks}.members_by_conversation (conversation_id, user_id) \
        VALUES (?, ?) IF NOT EXISTS";
    release_member: false, "DELETE FROM {ks}.members_by_conversation \
        WHERE conversation_id = ? AND user_id = ? IF EXISTS";
    select_members: true, "SELECT user_id FROM {ks}.members_by_conversation \
        WHERE conversation_id = ?";
    select_member: true, "SELECT user_id FROM {ks}.members_by_conversation \
        WHERE conversation_id = ? AND user_id = ?";
    insert_conversation_of_user: true, "INSERT INTO {ks}.conversations_by_user \
        (user_id, conversation_id) VALUES (?, ?)";
    delete_conversation_of_user: true, "DELETE FROM {ks}.conversations_by_user \
        WHERE user_id = ? AND conversation_id = ?";
    select_conversations_of_user: true, "SELECT conversation_id FROM {ks}.conversations_by_user \
        WHERE user_id = ?";

    // Accounts.
    claim_account: false, "INSERT INTO {ks}.accounts \
        (user_id, username, password_hash, display_name, created_at) VALUES (?, ?, ?, ?, ?) \
        IF NOT EXISTS";
    release_account: false, "DELETE FROM {ks}.accounts WHERE user_id = ? IF username = ?";
    claim_username: false, "INSERT INTO {ks}.accounts_by_username (username, user_id) \
        VALUES (?, ?) IF NOT EXISTS";
    select_account: true, "SELECT user_id, username, password_hash, display_name, created_at \
        FROM {ks}.accounts WHERE user_id = ?";
    select_username: true, "SELECT user_id FROM {ks}.accounts_by_username WHERE username = ?";
    set_display_name: false, "UPDATE {ks}.accounts SET display_name = ? WHERE user_id = ? \
        IF EXISTS";
}
