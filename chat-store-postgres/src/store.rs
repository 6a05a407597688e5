//! [`PostgresStore`]: the pool, the schema and the group-commit batcher.

use std::fmt;
use std::sync::Arc;

use chat_core::{Error, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::batcher::Batcher;
use crate::config::PostgresConfig;
use crate::conn::Conn;
use crate::schema;

/// What the store's calls and its batcher share.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) config: PostgresConfig,
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

/// Messages, deliveries, cursors, conversations and accounts in PostgreSQL:
/// implements [`MessageStore`](chat_core::store::MessageStore),
/// [`ConversationStore`](chat_core::store::ConversationStore) and
/// [`AccountStore`](chat_core::store::AccountStore). See the
/// [crate docs](crate) for the schema, the query plans and group commit.
///
/// Share it behind an `Arc`; every call is safe to make concurrently, from
/// any number of processes on one database.
pub struct PostgresStore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) batcher: Batcher,
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
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.statement_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| Error::invalid(format!("postgres pool: {e}")))?;
        let shared = Arc::new(Shared { pool, config });
        let mut conn = shared.conn("migrate").await?;
        schema::migrate(&mut conn, &shared.config.schema).await?;
        drop(conn);
        let batcher = Batcher::start(shared.clone());
        Ok(Self { shared, batcher })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PostgresConfig {
        &self.shared.config
    }
}
