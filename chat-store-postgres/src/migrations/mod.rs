//! The numbered schema migrations, oldest first, each a file beside this
//! one. A migration is never edited once released: changes go into a new
//! one, and each must upgrade a schema holding data, not only an empty one.
//!
//! Text columns that are sorted or compared use `COLLATE "C"`: byte order,
//! as Rust compares the ids, whatever the database's locale.

/// One step of the schema.
pub(crate) struct Migration {
    /// Its number in `schema_migrations`; ascending, never reused.
    pub(crate) version: i32,
    /// What it does, stored beside the number.
    pub(crate) name: &'static str,
    /// The statements, run in the migrating transaction.
    pub(crate) sql: &'static str,
}

/// Every migration, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "messages, dedup keys, pending deliveries, cursors, conversations, members, accounts",
        sql: include_str!("0001_messages_pending_cursors.sql"),
    },
    Migration {
        version: 2,
        name: "entry logs with heads, user and device cursors, roles, bans, invites, devices, blocks",
        sql: include_str!("0002_log_heads_cursors.sql"),
    },
    Migration {
        version: 3,
        name: "departures: the end of a membership for devices that were away",
        sql: include_str!("0003_departures.sql"),
    },
    Migration {
        version: 4,
        name: "intents of sends to two shards",
        sql: include_str!("0004_intents.sql"),
    },
];

/// The newest schema version.
pub(crate) const LATEST: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;
