//! Every statement the adapter runs, prepared once at connect.
//!
//! Prepared statements carry their partition key's position, so the
//! driver's default load-balancing policy routes each one to a replica that
//! owns the partition (token-aware) and skips a coordinator hop. Table names
//! are qualified with the keyspace so that no connection depends on `USE`.
//! Every select that may meet more than a handful of rows has a `LIMIT` or
//! is paged by the driver.

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
                        // by the driver; lightweight transactions may not.
                        st.set_is_idempotent($idempotent);
                        st
                    },)+
                })
            }
        }
    };
}

/// The static columns of a head, in the order `heads::HeadRow` reads them.
macro_rules! head_columns {
    () => {
        "conversation_id, last_id, seq, version, bucket_start, bucket_entries, bucket_bytes, \
         purged_up_to, purged_seq, p_sender, p_kind, p_body, p_ts, p_ref, p_ref_bucket, \
         p_reply, p_keyed, p_key, p_device, p_apply, p_move_delivered, p_move_device, p_removed"
    };
}

/// The columns of an entry, in the order `log::EntryRow` reads them.
macro_rules! entry_columns {
    () => {
        "message_id, sender_id, kind, body, ts, ref_id, in_reply_to, client_msg_id, edited, \
         deleted, reactions"
    };
}

/// The assignments of an append's head, shared by its two conditions.
macro_rules! head_assignments {
    () => {
        "SET last_id = ?, seq = ?, version = ?, bucket_start = ?, bucket_entries = ?, \
         bucket_bytes = ?, p_sender = ?, p_kind = ?, p_body = ?, p_ts = ?, p_ref = ?, \
         p_ref_bucket = ?, p_reply = ?, p_keyed = ?, p_key = ?, p_device = ?, p_apply = ?, \
         p_move_delivered = ?, p_move_device = ?, p_removed = false WHERE conversation_id = ?"
    };
}

statements! {
    // The head and bucket index (table `heads`).
    /// Every static column of one head (the statics row only).
    head: true, concat!("SELECT DISTINCT ", head_columns!(), " FROM {ks}.heads \
        WHERE conversation_id = ?");
    /// The same at the serial consistency: linearizable with the appends'
    /// transactions, for confirming a conflict.
    head_serial: true, concat!("SELECT DISTINCT ", head_columns!(), " FROM {ks}.heads \
        WHERE conversation_id = ?");
    /// The three numbers of one head, for `head` and `heads`.
    head_short: true, "SELECT DISTINCT conversation_id, last_id, seq, version FROM {ks}.heads \
        WHERE conversation_id = ?";
    /// The three numbers of many heads (an `IN` on partition keys).
    heads_in: true, "SELECT DISTINCT conversation_id, last_id, seq, version FROM {ks}.heads \
        WHERE conversation_id IN ?";
    /// Buckets starting at or below an id, newest first.
    buckets_down: true, "SELECT bucket FROM {ks}.heads \
        WHERE conversation_id = ? AND bucket <= ? LIMIT ?";
    /// Buckets starting in `(lo, hi]`, oldest first.
    buckets_up: true, "SELECT bucket FROM {ks}.heads \
        WHERE conversation_id = ? AND bucket > ? AND bucket <= ? ORDER BY bucket ASC LIMIT ?";
    /// The append: head and newest entry, if the head is as read (both
    /// bound null when nothing was appended yet).
    append: false, concat!("UPDATE {ks}.heads ", head_assignments!(),
        " IF last_id = ? AND version = ?");
    /// A new bucket's index row (in the append's batch).
    insert_bucket: false, "INSERT INTO {ks}.heads (conversation_id, bucket) VALUES (?, ?)";
    /// `remove` of the newest entry: readers and the next append skip it.
    mark_removed: false, "UPDATE {ks}.heads SET p_removed = true \
        WHERE conversation_id = ? IF last_id = ?";
    /// The low-water mark, dated by the id it names.
    set_purged: true, "UPDATE {ks}.heads USING TIMESTAMP ? \
        SET purged_up_to = ?, purged_seq = ? WHERE conversation_id = ?";
    /// A purged bucket's index row.
    delete_bucket: true, "DELETE FROM {ks}.heads USING TIMESTAMP ? \
        WHERE conversation_id = ? AND bucket = ?";

    // Entries (table `messages`).
    insert_entry: true, "INSERT INTO {ks}.messages (conversation_id, bucket, message_id, \
        sender_id, kind, body, ts, ref_id, in_reply_to, seq, client_msg_id) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    entry: true, concat!("SELECT ", entry_columns!(), " FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?");
    /// Whether an entry was written (the last write of its roll-forward).
    entry_written: true, "SELECT sender_id FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    /// One bucket's entries in `[lo, hi]`, oldest first.
    entries_up: true, concat!("SELECT ", entry_columns!(), " FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id >= ? AND message_id <= ? \
        LIMIT ?");
    /// One bucket's entries in `[lo, hi]`, newest first.
    entries_down: true, concat!("SELECT ", entry_columns!(), " FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id >= ? AND message_id <= ? \
        ORDER BY message_id DESC LIMIT ?");
    /// The seqs of one bucket's entries in `[lo, hi]`, newest first.
    seqs_down: true, "SELECT sender_id, seq, message_id FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id >= ? AND message_id <= ? \
        ORDER BY message_id DESC LIMIT ?";
    /// What purge needs of one bucket's entries in `[lo, hi]` (paged).
    purge_scan: true, "SELECT message_id, sender_id, client_msg_id, seq FROM {ks}.messages \
        WHERE conversation_id = ? AND bucket = ? AND message_id >= ? AND message_id <= ?";
    apply_edit: true, "UPDATE {ks}.messages USING TIMESTAMP ? SET body = ?, edited = true \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    apply_delete: true, "UPDATE {ks}.messages USING TIMESTAMP ? SET body = '', deleted = true \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    set_reaction: true, "UPDATE {ks}.messages USING TIMESTAMP ? SET reactions[?] = ? \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    remove_reaction: true, "DELETE reactions[?] FROM {ks}.messages USING TIMESTAMP ? \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    delete_entry: true, "DELETE FROM {ks}.messages USING TIMESTAMP ? \
        WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    /// Purge of part of a bucket: one range tombstone.
    purge_range: true, "DELETE FROM {ks}.messages USING TIMESTAMP ? \
        WHERE conversation_id = ? AND bucket = ? AND message_id <= ?";
    /// Purge of a whole bucket: one partition tombstone.
    purge_bucket: true, "DELETE FROM {ks}.messages USING TIMESTAMP ? \
        WHERE conversation_id = ? AND bucket = ?";

    // Dedup keys.
    insert_dedup: true, "INSERT INTO {ks}.dedup \
        (sender_id, client_msg_id, conversation_id, message_id) VALUES (?, ?, ?, ?) \
        USING TIMESTAMP ?";
    dedup: true, "SELECT conversation_id, message_id FROM {ks}.dedup \
        WHERE sender_id = ? AND client_msg_id = ?";
    delete_dedup: true, "DELETE FROM {ks}.dedup USING TIMESTAMP ? \
        WHERE sender_id = ? AND client_msg_id = ?";

    // Intents of sends to two shards.
    put_intent: true, "INSERT INTO {ks}.intents (day, message_id, conversation_id) \
        VALUES (?, ?, ?)";
    intents: true, "SELECT message_id, conversation_id FROM {ks}.intents \
        WHERE day = ? AND message_id > ? AND message_id < ? LIMIT ?";
    clear_intent: true, "DELETE FROM {ks}.intents \
        WHERE day = ? AND message_id = ? AND conversation_id = ?";

    // Cursors, each write dated by the id it names (see `codec::write_time`).
    user_cursor: true, "SELECT delivered, read, read_seq FROM {ks}.user_cursors \
        WHERE user_id = ? AND conversation_id = ?";
    user_cursors_in: true, "SELECT conversation_id, delivered, read, read_seq \
        FROM {ks}.user_cursors WHERE user_id = ? AND conversation_id IN ?";
    /// Every cursor of a user (paged).
    user_cursors_all: true, "SELECT conversation_id, delivered, read, read_seq \
        FROM {ks}.user_cursors WHERE user_id = ?";
    /// Every delivered cursor of a user (paged), for `start_device`.
    user_delivered_all: true, "SELECT conversation_id, delivered FROM {ks}.user_cursors \
        WHERE user_id = ?";
    set_user_delivered: true, "UPDATE {ks}.user_cursors USING TIMESTAMP ? SET delivered = ? \
        WHERE user_id = ? AND conversation_id = ?";
    set_user_read: true, "UPDATE {ks}.user_cursors USING TIMESTAMP ? \
        SET read = ?, read_seq = ? WHERE user_id = ? AND conversation_id = ?";
    set_user_all: true, "UPDATE {ks}.user_cursors USING TIMESTAMP ? \
        SET delivered = ?, read = ?, read_seq = ? WHERE user_id = ? AND conversation_id = ?";
    device_cursor: true, "SELECT delivered FROM {ks}.device_cursors \
        WHERE device_id = ? AND conversation_id = ?";
    /// Every cursor of a device (paged).
    device_cursors_all: true, "SELECT conversation_id, user_id, delivered \
        FROM {ks}.device_cursors WHERE device_id = ?";
    set_device_cursor: true, "UPDATE {ks}.device_cursors USING TIMESTAMP ? \
        SET user_id = ?, delivered = ? WHERE device_id = ? AND conversation_id = ?";
    delete_device_cursors: true, "DELETE FROM {ks}.device_cursors USING TIMESTAMP ? \
        WHERE device_id = ?";
    set_conversation_cursor: true, "UPDATE {ks}.conversation_cursors USING TIMESTAMP ? \
        SET delivered = ? WHERE conversation_id = ? AND user_id = ? AND device_id = ?";
    delete_conversation_cursor: true, "DELETE FROM {ks}.conversation_cursors \
        USING TIMESTAMP ? WHERE conversation_id = ? AND user_id = ? AND device_id = ?";
    /// Every cursor of a conversation (paged).
    conversation_cursors_all: true, "SELECT user_id, device_id, delivered \
        FROM {ks}.conversation_cursors WHERE conversation_id = ?";

    // Conversations, members, bans and invites.
    claim_conversation: false, "INSERT INTO {ks}.conversations \
        (conversation_id, kind, name, created_by, created_at, join_policy, history) \
        VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    conversation: true, "SELECT kind, name, created_by, created_at, join_policy, history \
        FROM {ks}.conversations WHERE conversation_id = ?";
    /// Settings of a group (unset values stay), if it is one.
    update_group: false, "UPDATE {ks}.conversations \
        SET name = ?, join_policy = ?, history = ? WHERE conversation_id = ? IF kind = 'group'";
    /// A member row with the count, written when a conversation is created.
    insert_member: true, "INSERT INTO {ks}.members \
        (conversation_id, user_id, role, joined, joined_at) VALUES (?, ?, ?, ?, ?)";
    set_member_count: true, "UPDATE {ks}.members SET member_count = ? \
        WHERE conversation_id = ?";
    /// The add of one member (in a batch with `move_member_count`).
    claim_member: false, "INSERT INTO {ks}.members \
        (conversation_id, user_id, role, joined, joined_at) VALUES (?, ?, ?, ?, ?) \
        IF NOT EXISTS";
    /// The remove of one member (in a batch with `move_member_count`).
    release_member: false, "DELETE FROM {ks}.members \
        WHERE conversation_id = ? AND user_id = ? IF EXISTS";
    move_member_count: false, "UPDATE {ks}.members SET member_count = ? \
        WHERE conversation_id = ? IF member_count = ?";
    set_role: false, "UPDATE {ks}.members SET role = ? \
        WHERE conversation_id = ? AND user_id = ? IF EXISTS";
    member: true, "SELECT role, joined, joined_at, member_count FROM {ks}.members \
        WHERE conversation_id = ? AND user_id = ?";
    /// The members of a conversation (paged).
    members: true, "SELECT user_id, role, joined, joined_at FROM {ks}.members \
        WHERE conversation_id = ?";
    member_count: true, "SELECT DISTINCT conversation_id, member_count FROM {ks}.members \
        WHERE conversation_id = ?";
    /// How many member rows there are, for a count that a crash left unset.
    count_members: true, "SELECT COUNT(*) FROM {ks}.members WHERE conversation_id = ?";
    insert_membership: true, "INSERT INTO {ks}.memberships \
        (user_id, conversation_id, role, joined, joined_at) VALUES (?, ?, ?, ?, ?)";
    set_membership_role: true, "UPDATE {ks}.memberships SET role = ? \
        WHERE user_id = ? AND conversation_id = ?";
    delete_membership: true, "DELETE FROM {ks}.memberships \
        WHERE user_id = ? AND conversation_id = ?";
    /// A user's memberships (paged).
    memberships: true, "SELECT conversation_id, role, joined, joined_at FROM {ks}.memberships \
        WHERE user_id = ?";
    insert_ban: true, "INSERT INTO {ks}.bans (conversation_id, user_id) VALUES (?, ?)";
    delete_ban: true, "DELETE FROM {ks}.bans WHERE conversation_id = ? AND user_id = ?";
    ban: true, "SELECT user_id FROM {ks}.bans WHERE conversation_id = ? AND user_id = ?";
    /// A departure, dated by the event that ended it: the latest wins.
    record_departure: true, "INSERT INTO {ks}.departures \
        (user_id, conversation_id, joined, left_id, by_user, ts, body) \
        VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    /// A user's departures (paged).
    departures: true, "SELECT conversation_id, joined, left_id, by_user, ts, body \
        FROM {ks}.departures WHERE user_id = ?";
    claim_invite: false, "INSERT INTO {ks}.invites (code_hash, conversation_id, created_by, \
        created_at, max_uses, uses, expires_at, revoked) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
        IF NOT EXISTS";
    invite: true, "SELECT conversation_id, max_uses, uses, expires_at, revoked \
        FROM {ks}.invites WHERE code_hash = ?";
    use_invite: false, "UPDATE {ks}.invites SET uses = ? WHERE code_hash = ? \
        IF uses = ? AND revoked = false";
    revoke_invite: false, "UPDATE {ks}.invites SET revoked = true WHERE code_hash = ? \
        IF conversation_id = ? AND revoked = false";

    // Accounts, devices and blocks.
    claim_account: false, "INSERT INTO {ks}.accounts \
        (user_id, username, password_hash, display_name, created_at) VALUES (?, ?, ?, ?, ?) \
        IF NOT EXISTS";
    release_account: false, "DELETE FROM {ks}.accounts WHERE user_id = ? IF username = ?";
    claim_username: false, "INSERT INTO {ks}.accounts_by_username (username, user_id) \
        VALUES (?, ?) IF NOT EXISTS";
    account: true, "SELECT user_id, username, password_hash, display_name, created_at \
        FROM {ks}.accounts WHERE user_id = ?";
    username: true, "SELECT user_id FROM {ks}.accounts_by_username WHERE username = ?";
    set_display_name: false, "UPDATE {ks}.accounts SET display_name = ? WHERE user_id = ? \
        IF EXISTS";
    claim_device: false, "INSERT INTO {ks}.devices (device_id, user_id, name, created_at) \
        VALUES (?, ?, ?, ?) IF NOT EXISTS";
    insert_device_of_user: true, "INSERT INTO {ks}.devices_by_user \
        (user_id, created_at, device_id) VALUES (?, ?, ?)";
    device: true, "SELECT user_id, name, created_at, last_seen FROM {ks}.devices \
        WHERE device_id = ?";
    /// A user's devices, oldest first (paged).
    devices_of_user: true, "SELECT device_id FROM {ks}.devices_by_user WHERE user_id = ?";
    /// `last_seen`, dated by itself so that it never moves backwards.
    touch_device: true, "UPDATE {ks}.devices USING TIMESTAMP ? SET last_seen = ? \
        WHERE device_id = ?";
    delete_device: true, "DELETE FROM {ks}.devices WHERE device_id = ?";
    delete_device_of_user: true, "DELETE FROM {ks}.devices_by_user \
        WHERE user_id = ? AND created_at = ? AND device_id = ?";
    block: false, "INSERT INTO {ks}.blocks (blocker, blocked, since) VALUES (?, ?, ?) \
        IF NOT EXISTS";
    unblock: false, "DELETE FROM {ks}.blocks WHERE blocker = ? AND blocked = ? IF EXISTS";
    /// Whom a user blocks (paged).
    blocked_by: true, "SELECT blocked FROM {ks}.blocks WHERE blocker = ?";
    is_blocked: true, "SELECT blocked FROM {ks}.blocks WHERE blocker = ? AND blocked = ?";
}
