//! The keyspace and tables, created by the adapter with `IF NOT EXISTS`.
//! The crate docs describe each table and why it is shaped so.
//!
//! Every message id column holds [`crate::codec::id_to_cql`] of the id: the
//! unsigned id with its top bit flipped, so that all of `u64` fits a CQL
//! `bigint` and sorts the same (`MessageId(u64::MAX)` is a valid cursor).

use std::time::Duration;

use scylla::client::session::Session;
use scylla::statement::Statement;

use crate::codec::backend;
use crate::config::CassandraConfig;

/// The tables, in creation order; `{ks}` is the keyspace and `{short_gc}`
/// the gc grace (seconds) of tables whose deleted rows may come back
/// harmlessly (see the crate docs, "Tombstones").
const TABLES: &[&str] = &[
    // One partition per conversation: the head as static columns (moved
    // only by the append's lightweight transaction, which also carries the
    // newest entry, `p_*`), and one clustering row per bucket of entries,
    // keyed by the first entry id of the bucket, newest first.
    "CREATE TABLE IF NOT EXISTS {ks}.heads (
        conversation_id text,
        bucket bigint,
        last_id bigint static,
        seq bigint static,
        version bigint static,
        bucket_start bigint static,
        bucket_entries int static,
        bucket_bytes bigint static,
        purged_up_to bigint static,
        purged_seq bigint static,
        p_sender text static,
        p_kind tinyint static,
        p_body text static,
        p_ts bigint static,
        p_ref bigint static,
        p_ref_bucket bigint static,
        p_reply bigint static,
        p_keyed boolean static,
        p_key text static,
        p_device text static,
        p_apply boolean static,
        p_move_delivered boolean static,
        p_move_device boolean static,
        p_removed boolean static,
        PRIMARY KEY (conversation_id, bucket)
    ) WITH CLUSTERING ORDER BY (bucket DESC) AND gc_grace_seconds = {short_gc}",
    // The entries of one bucket of one conversation, oldest first. `seq` is
    // the head's seq once the entry was appended (a text entry's own seq).
    "CREATE TABLE IF NOT EXISTS {ks}.messages (
        conversation_id text,
        bucket bigint,
        message_id bigint,
        sender_id text,
        kind tinyint,
        body text,
        ts bigint,
        ref_id bigint,
        in_reply_to bigint,
        seq bigint,
        client_msg_id text,
        edited boolean,
        deleted boolean,
        reactions map<text, text>,
        PRIMARY KEY ((conversation_id, bucket), message_id)
    ) WITH CLUSTERING ORDER BY (message_id ASC)",
    // (sender, client_msg_id) to the entry that used it first.
    "CREATE TABLE IF NOT EXISTS {ks}.dedup (
        sender_id text,
        client_msg_id text,
        conversation_id text,
        message_id bigint,
        PRIMARY KEY ((sender_id, client_msg_id))
    ) WITH gc_grace_seconds = {short_gc}",
    // A user's cursors, one row per conversation: the conversations list
    // reads many of them from one partition.
    "CREATE TABLE IF NOT EXISTS {ks}.user_cursors (
        user_id text,
        conversation_id text,
        delivered bigint,
        read bigint,
        read_seq bigint,
        PRIMARY KEY (user_id, conversation_id)
    ) WITH gc_grace_seconds = {short_gc}",
    // A device's cursors, one row per conversation: what its sync starts from.
    "CREATE TABLE IF NOT EXISTS {ks}.device_cursors (
        device_id text,
        conversation_id text,
        user_id text,
        delivered bigint,
        PRIMARY KEY (device_id, conversation_id)
    ) WITH gc_grace_seconds = {short_gc}",
    // Every device cursor of a conversation, and every user's delivered
    // cursor there (device_id ''): what the low-water mark reads.
    "CREATE TABLE IF NOT EXISTS {ks}.conversation_cursors (
        conversation_id text,
        user_id text,
        device_id text,
        delivered bigint,
        PRIMARY KEY (conversation_id, user_id, device_id)
    ) WITH gc_grace_seconds = {short_gc}",
    "CREATE TABLE IF NOT EXISTS {ks}.conversations (
        conversation_id text PRIMARY KEY,
        kind text,
        name text,
        created_by text,
        created_at bigint,
        join_policy text,
        history text
    )",
    // Members by conversation, with the count as a static column that every
    // add and remove moves in the same lightweight transaction.
    "CREATE TABLE IF NOT EXISTS {ks}.members (
        conversation_id text,
        user_id text,
        role text,
        joined bigint,
        joined_at bigint,
        member_count bigint static,
        PRIMARY KEY (conversation_id, user_id)
    )",
    // The same memberships by user.
    "CREATE TABLE IF NOT EXISTS {ks}.memberships (
        user_id text,
        conversation_id text,
        role text,
        joined bigint,
        joined_at bigint,
        PRIMARY KEY (user_id, conversation_id)
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.bans (
        conversation_id text,
        user_id text,
        PRIMARY KEY (conversation_id, user_id)
    )",
    // Memberships that ended, one per user and group, written at the write
    // time of the event that ended each (the latest wins): what the
    // devices that were away still get at their next sync.
    "CREATE TABLE IF NOT EXISTS {ks}.departures (
        user_id text,
        conversation_id text,
        joined bigint,
        left_id bigint,
        by_user text,
        ts bigint,
        body text,
        PRIMARY KEY (user_id, conversation_id)
    )",
    // Invites by the SHA-256 of their code; `uses` moves by compare-and-set.
    "CREATE TABLE IF NOT EXISTS {ks}.invites (
        code_hash text PRIMARY KEY,
        conversation_id text,
        created_by text,
        created_at bigint,
        max_uses int,
        uses int,
        expires_at bigint,
        revoked boolean
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.accounts (
        user_id text PRIMARY KEY,
        username text,
        password_hash text,
        display_name text,
        created_at bigint
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.accounts_by_username (
        username text PRIMARY KEY,
        user_id text
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.devices (
        device_id text PRIMARY KEY,
        user_id text,
        name text,
        created_at bigint,
        last_seen bigint
    )",
    // A user's devices, oldest first.
    "CREATE TABLE IF NOT EXISTS {ks}.devices_by_user (
        user_id text,
        created_at bigint,
        device_id text,
        PRIMARY KEY (user_id, created_at, device_id)
    )",
    // Sends to two shards that began (chat_core::store::Intent), one
    // partition per UTC day of their id: a send writes one row and deletes
    // it moments later, so a day's partition is mostly tombstones, read
    // only by the reconciler and gone after the short gc grace.
    "CREATE TABLE IF NOT EXISTS {ks}.intents (
        day bigint,
        message_id bigint,
        conversation_id text,
        PRIMARY KEY (day, message_id, conversation_id)
    ) WITH gc_grace_seconds = {short_gc}",
    "CREATE TABLE IF NOT EXISTS {ks}.blocks (
        blocker text,
        blocked text,
        since bigint,
        PRIMARY KEY (blocker, blocked)
    )",
];

/// A table of the first layout (per-recipient pending rows), which this
/// one replaces.
const PREVIOUS_LAYOUT_TABLE: &str = "pending_by_user";

/// Refuses a keyspace that holds the first layout: its `messages` table has
/// other columns, and nothing migrates it in place (see the crate docs,
/// "Migrating from the previous layout").
async fn refuse_previous_layout(session: &Session, ks: &str) -> chat_core::Result<()> {
    let rows = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables \
             WHERE keyspace_name = ? AND table_name = ?",
            (ks, PREVIOUS_LAYOUT_TABLE),
        )
        .await
        .map_err(backend("read the schema"))?
        .into_rows_result()
        .map_err(backend("read the schema"))?;
    if rows.rows_num() > 0 {
        return Err(chat_core::Error::invalid(format!(
            "keyspace {ks} holds the previous layout (table {PREVIOUS_LAYOUT_TABLE}): \
             use a new keyspace and import into it (chat-store-cassandra's docs, \
             \"Migrating from the previous layout\")"
        )));
    }
    Ok(())
}

/// Whether `name` is a keyspace name Cassandra accepts unquoted.
pub(crate) fn valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How long one DDL statement may take. Far above the request timeout of
/// reads and writes: a schema change waits for every node to agree, and a
/// busy node (other keyspaces being created and dropped, compaction) takes
/// seconds for what is otherwise instant.
const DDL_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries of one DDL statement: each is idempotent (`IF NOT EXISTS`), so one
/// that timed out, perhaps after it took effect, is simply sent again.
const DDL_TRIES: u32 = 3;

/// Runs one idempotent DDL statement with [`DDL_TIMEOUT`], again after a
/// timeout or an unavailable coordinator.
async fn ddl(session: &Session, cql: String, what: &'static str) -> chat_core::Result<()> {
    let mut statement = Statement::new(cql);
    statement.set_request_timeout(Some(DDL_TIMEOUT));
    let mut tries = 0;
    loop {
        tries += 1;
        match session.query_unpaged(statement.clone(), &[]).await {
            Ok(_) => return Ok(()),
            Err(e) if tries < DDL_TRIES => {
                tracing::warn!(error = %e, what, tries, "schema statement failed; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(backend(what)(e)),
        }
    }
}

/// Creates the keyspace and tables that are missing. The driver waits for
/// schema agreement after each DDL statement (its default), so the tables
/// exist on every node before the first statement is prepared.
pub(crate) async fn create(session: &Session, config: &CassandraConfig) -> chat_core::Result<()> {
    let ks = &config.keyspace;
    refuse_previous_layout(session, ks).await?;
    let cql = format!(
        "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
        config.replication.to_cql()?
    );
    ddl(session, cql, "create keyspace").await?;
    let short_gc = config.short_gc_grace.as_secs().to_string();
    for table in TABLES {
        let cql = table.replace("{ks}", ks).replace("{short_gc}", &short_gc);
        ddl(session, cql, "create table").await?;
    }
    session
        .await_schema_agreement()
        .await
        .map_err(backend("schema agreement"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_names() {
        assert!(valid_keyspace("chat_test_01"));
        assert!(!valid_keyspace(""));
        assert!(!valid_keyspace("chat-test"));
        assert!(!valid_keyspace("x; DROP"));
        assert!(!valid_keyspace(&"k".repeat(49)));
    }
}
