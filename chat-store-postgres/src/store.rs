//! [`PostgresStore`]: the pool, the schema and the group-commit batcher.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_core::{Error, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

use crate::batcher::Batcher;
use crate::config::PostgresConfig;
use crate::conn::Conn;
use crate::schema;

/// What the store's calls and its batcher share.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) config: PostgresConfig,
    pub(crate) stats: Counters,
}

/// Counts of the batcher's work (see [`AppendStats`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) appends: AtomicU64,
    pub(crate) one_by_one: AtomicU64,
}

/// What the group-commit batcher has done since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Batches written (each one round trip and one commit; one that was
    /// written again one by one counts once).
    pub batches: u64,
    /// Appends in them.
    pub appends: u64,
    /// Batches written one append at a time by `append_entries` (several
    /// statements per append): a set-based write was refused (a conflict,
    /// a duplicate, a missing target) or not tried (appends that depend on
    /// each other). Many of these mean contention on some conversations.
    pub one_by_one: u64,
}

impl Shared {
    /// A pooled connection, for doing `what`.
    pub(crate) async fn conn(&self, what: &str) -> Result<Conn> {
        Conn::get(&self.pool, self.config.reply_deadline(), what).await
    }

    /// The readiness probe behind every trait's `ping`: a pooled connection
    /// and one statement on a table of the schema, so it fails while the
    /// server is down and also when the schema is gone.
    pub(crate) async fn ping(&self) -> Result<()> {
        let mut conn = self.conn("ping").await?;
        conn.query("ping", "SELECT 1 FROM schema_migrations LIMIT 1", &[])
            .await?;
        Ok(())
    }
}

/// Conversation logs with their heads, cursors, conversations, members,
/// invites, accounts, devices and blocks in PostgreSQL: implements
/// [`MessageStore`](chat_core::store::MessageStore),
/// [`ConversationStore`](chat_core::store::ConversationStore) and
/// [`AccountStore`](chat_core::store::AccountStore). See the
/// [crate docs](crate) for the schema, the query plans and group commit.
///
/// Share it behind an `Arc`; every call is safe to make concurrently, from
/// any number of processes on one database.
pub struct PostgresStore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) batcher: Batcher,
    /// Drops a test's schema when the store goes (see [`crate::testing`]).
    /// Last, so that it runs after the batcher has stopped taking appends.
    pub(crate) schema_guard: Option<crate::testing::SchemaGuard>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.config.schema)
            .field("pool", &self.shared.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`)
    /// with the default [`PostgresConfig`], and creates or upgrades the
    /// schema. Must be called within a tokio runtime: it starts the
    /// group-commit batcher there.
    ///
    /// [`Error::InvalidInput`] for a malformed URL, [`Error::Unavailable`]
    /// when the server cannot be reached or the schema not migrated.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresConfig::default()).await
    }

    /// Like [`connect`](Self::connect), with `config`.
    pub async fn connect_with(url: &str, config: PostgresConfig) -> Result<Self> {
        let shared = Arc::new(Shared::open(url, config)?);
        shared.migrate_to(crate::migrations::LATEST).await?;
        let batcher = Batcher::start(shared.clone());
        Ok(Self {
            shared,
            batcher,
            schema_guard: None,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PostgresConfig {
        &self.shared.config
    }

    /// What the group-commit batcher has done so far.
    pub fn append_stats(&self) -> AppendStats {
        let c = &self.shared.stats;
        AppendStats {
            batches: c.batches.load(Ordering::Relaxed),
            appends: c.appends.load(Ordering::Relaxed),
            one_by_one: c.one_by_one.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    /// Brings the schema up to migration `version`, on a connection whose
    /// deadline is the migration timeout.
    pub(crate) async fn migrate_to(&self, version: i32) -> Result<()> {
        let deadline = self.config.migration_timeout + Duration::from_secs(1);
        let mut conn = Conn::get(&self.pool, deadline, "migrate").await?;
        schema::migrate_to(
            &mut conn,
            &self.config.schema,
            version,
            self.config.migration_timeout,
        )
        .await
    }

    /// The pool for `url` (no connection is opened yet).
    pub(crate) fn open(url: &str, config: PostgresConfig) -> Result<Self> {
        config.validate()?;
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::invalid(format!("postgres url: {e}")))?;
        pg.connect_timeout(config.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("chat-store-postgres");
        }
        // Every connection of the pool works in the schema, and the server
        // cancels any statement that runs too long: a cancelled statement
        // wrote nothing, so "unavailable" stays "not stored".
        let mut options = pg.get_options().map(str::to_owned).unwrap_or_default();
        options.push_str(&format!(
            " -c search_path={} -c statement_timeout={}",
            config.schema,
            config.statement_timeout.as_millis()
        ));
        pg.options(options.trim_start());
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match (&config.tls, pg.get_ssl_mode()) {
            (Some(tls), SslMode::Require) => Manager::from_config(
                pg,
                tokio_postgres_rustls::MakeRustlsConnect::new((*tls.0).clone()),
                manager_config,
            ),
            (None, SslMode::Require) => {
                return Err(Error::invalid(
                    "postgres url: sslmode=require needs a TLS configuration (PostgresConfig::tls)",
                ));
            }
            _ => Manager::from_config(pg, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.statement_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| Error::invalid(format!("postgres pool: {e}")))?;
        Ok(Self {
            pool,
            config,
            stats: Counters::default(),
        })
    }
}
