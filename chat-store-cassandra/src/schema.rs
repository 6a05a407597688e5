//! The keyspace and tables, created by the adapter with `IF NOT EXISTS`.
//!
//! Every message id column holds [`crate::codec::id_to_cql`] of the id: the
//! unsigned id with its top bit flipped, so that all of `u64` fits a CQL
//! `bigint` and sorts the same (`MessageId(u64::MAX)` is a valid cursor).

use scylla::client::session::Session;

use crate::codec::backend;
use crate::config::CassandraConfig;

/// The tables, in creation order; `{ks}` is the keyspace and `{gc}` the
/// delivery tables' gc grace in seconds.
const TABLES: &[&str] = &[
    // Messages of one conversation and one time bucket, newest first: a
    // history page is one slice of one partition, and no partition grows
    // past one bucket's messages.
    "CREATE TABLE IF NOT EXISTS {ks}.messages (
        conversation_id text, bucket bigint, message_id bigint,
        sender_id text, body text, ts bigint, client_msg_id text,
        PRIMARY KEY ((conversation_id, bucket), message_id)
    ) WITH CLUSTERING ORDER BY (message_id DESC)",
    // Which buckets of a conversation ever held a message, newest first:
    // history walks these instead of probing every bucket back to the epoch.
    "CREATE TABLE IF NOT EXISTS {ks}.message_buckets (
        conversation_id text, bucket bigint,
        PRIMARY KEY (conversation_id, bucket)
    ) WITH CLUSTERING ORDER BY (bucket DESC)",
    // Dedup keys, claimed by INSERT IF NOT EXISTS. The row carries the whole
    // message and its recipients so that a retry can finish an append whose
    // writer died after the claim (see `append`).
    "CREATE TABLE IF NOT EXISTS {ks}.dedup (
        sender_id text, client_msg_id text, conversation_id text, message_id bigint,
        body text, ts bigint, recipients set<text>,
        PRIMARY KEY ((sender_id, client_msg_id))
    )",
    // A user's pending deliveries across conversations, oldest first.
    "CREATE TABLE IF NOT EXISTS {ks}.pending_by_user (
        user_id text, message_id bigint, conversation_id text,
        PRIMARY KEY (user_id, message_id, conversation_id)
    ) WITH gc_grace_seconds = {gc}",
    // The same deliveries per (user, conversation), for ack and clear_pending.
    "CREATE TABLE IF NOT EXISTS {ks}.pending_by_conversation (
        user_id text, conversation_id text, message_id bigint, sender_id text,
        PRIMARY KEY ((user_id, conversation_id), message_id)
    ) WITH gc_grace_seconds = {gc}",
    // The same deliveries per message, so purge_delivered asks one small
    // partition whether anybody still waits for a message.
    "CREATE TABLE IF NOT EXISTS {ks}.pending_by_message (
        conversation_id text, message_id bigint, user_id text,
        PRIMARY KEY ((conversation_id, message_id), user_id)
    ) WITH gc_grace_seconds = {gc}",
    "CREATE TABLE IF NOT EXISTS {ks}.cursors (
        user_id text, conversation_id text, delivered bigint, read bigint,
        PRIMARY KEY ((user_id, conversation_id))
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.conversations (
        conversation_id text PRIMARY KEY, kind text, name text,
        created_by text, created_at bigint
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.members_by_conversation (
        conversation_id text, user_id text,
        PRIMARY KEY (conversation_id, user_id)
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.conversations_by_user (
        user_id text, conversation_id text,
        PRIMARY KEY (user_id, conversation_id)
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.accounts (
        user_id text PRIMARY KEY, username text, password_hash text,
        display_name text, created_at bigint
    )",
    "CREATE TABLE IF NOT EXISTS {ks}.accounts_by_username (
        username text PRIMARY KEY, user_id text
    )",
];

/// Whether `name` is a keyspace name Cassandra accepts unquoted.
pub(crate) fn valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Creates the keyspace and tables that are missing. The driver waits for schema agreement after
/// each DDL statement (its default), so the tables exist on every node
/// before the first statement is prepared.
pub(crate) async fn create(session: &Session, config: &CassandraConfig) -> chat_core::Result<()> {
    let ks = &config.keyspace;
    let ddl = format!(
        "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = \
         {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
        config.replication_factor
    );
    session
        .query_unpaged(ddl, &[])
        .await
        .map_err(backend("create keyspace"))?;
    let gc = config.delivery_gc_grace.as_secs().to_string();
    for table in TABLES {
        session
            .query_unpaged(table.replace("{ks}", ks).replace("{gc}", &gc), &[])
            .await
            .map_err(backend("create table"))?;
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
