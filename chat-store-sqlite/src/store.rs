//! [`SqliteStore`]: opening the file, the writer and the readers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

use crate::config::{Durability, SqliteConfig};
use crate::error::SqliteError;
use crate::readers::Readers;
use crate::schema;
use crate::writer::{WriteStats, Writer};

/// Conversation logs with their heads, cursors, conversations, members,
/// invites, accounts, devices and blocks in one SQLite file: implements
/// [`MessageStore`](chat_core::store::MessageStore),
/// [`ConversationStore`](chat_core::store::ConversationStore) and
/// [`AccountStore`](chat_core::store::AccountStore). See the
/// [crate docs](crate) for the design.
///
/// Share it behind an `Arc`; every call is safe to make concurrently. Calls
/// must be made within a tokio runtime (reads run on its blocking threads;
/// the writer is a thread of the store's own, so one store may serve
/// several runtimes).
/// Dropping the last handle finishes the writes already queued and closes
/// the file (it waits for that).
pub struct SqliteStore {
    // Fields drop in order: the readers close first, so that the writer's
    // connection is the last and checkpoints the log into the file.
    readers: Arc<Readers>,
    writer: Writer,
    config: SqliteConfig,
    /// The directory of a [`temporary`](Self::temporary) store, removed
    /// after both closed.
    temp_dir: Option<tempfile::TempDir>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.config.path)
            .field("durability", &self.config.durability)
            .field("temporary", &self.temp_dir.is_some())
            .field("writes", &self.writer.stats())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` with the default
    /// [`SqliteConfig`].
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, SqliteError> {
        Self::connect(SqliteConfig::new(path)).await
    }

    /// Opens (or creates, with its directory) the database file that
    /// `config` names, and creates or upgrades its schema. The file work
    /// runs on a blocking thread; see [`connect_blocking`](Self::connect_blocking)
    /// for the errors.
    pub async fn connect(config: SqliteConfig) -> Result<Self, SqliteError> {
        match tokio::task::spawn_blocking(move || Self::connect_blocking(config)).await {
            Ok(opened) => opened,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(SqliteError::Stopped("the runtime is shutting down")),
        }
    }

    /// [`connect`](Self::connect) on the calling thread (outside an async
    /// context, or where blocking is fine).
    ///
    /// Nothing in an existing file is changed before it is known to be a
    /// SQLite database that is empty or this store's, at a schema version
    /// this build knows. The errors:
    /// - [`SqliteError::Config`]: a value in `config` that cannot work;
    /// - [`SqliteError::CreateDir`], [`SqliteError::Open`]: the directory
    ///   cannot be created, or the file cannot be opened (a directory, no
    ///   permission);
    /// - [`SqliteError::NotADatabase`]: the file is something else;
    /// - [`SqliteError::ForeignDatabase`]: another program's database;
    /// - [`SqliteError::NewerSchema`]: written by a newer version of this
    ///   store.
    pub fn connect_blocking(config: SqliteConfig) -> Result<Self, SqliteError> {
        Self::connect_in(config, None)
    }

    /// A store in a new temporary directory, removed (with the database)
    /// when the store is dropped: for tests, and for programs that want
    /// SQLite's behaviour without keeping anything. Uses
    /// [`Durability::Normal`]: what is deleted on drop needs no fsync.
    pub async fn temporary() -> Result<Self, SqliteError> {
        let dir = tempfile::Builder::new()
            .prefix("chat-sqlite-")
            .tempdir()
            .map_err(|source| SqliteError::CreateDir {
                path: std::env::temp_dir(),
                source,
            })?;
        let config = SqliteConfig::builder(dir.path().join("chat.db"))
            .durability(Durability::Normal)
            .build()?;
        match tokio::task::spawn_blocking(move || Self::connect_in(config, Some(dir))).await {
            Ok(opened) => opened,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(SqliteError::Stopped("the runtime is shutting down")),
        }
    }

    fn connect_in(
        config: SqliteConfig,
        temp_dir: Option<tempfile::TempDir>,
    ) -> Result<Self, SqliteError> {
        config.validate()?;
        create_dir(&config.path)?;
        let mut conn = open_writer(&config)?;
        schema::migrate(&mut conn, &config.path)?;
        let readers = Readers::open(&config)?;
        let writer = Writer::start(conn, config.batch_max, config.queue)?;
        Ok(Self {
            readers,
            writer,
            config,
            temp_dir,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// What the writer has done so far: `writes / batches` is how many
    /// writes shared each commit.
    pub fn write_stats(&self) -> WriteStats {
        self.writer.stats()
    }

    /// One cheap real round trip to the file (`SELECT 1` on a read
    /// connection), for readiness checks: what the three store traits'
    /// `ping` answer.
    pub async fn ping(&self) -> chat_core::Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
            .map_err(Into::into)
    }

    /// Writes queued and not yet taken by the writer.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.writer.queued()
    }

    /// Runs `read` on a read connection.
    pub(crate) async fn read<T, F>(&self, read: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        self.readers.read(read).await
    }

    /// Runs `write` in the writer's next batch; answers once it committed.
    pub(crate) async fn write<T, F>(&self, write: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        self.writer.write(write).await
    }
}

/// Creates the directory of `path` when it is missing.
fn create_dir(path: &Path) -> Result<(), SqliteError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => std::fs::create_dir_all(dir)
            .map_err(|source| SqliteError::CreateDir {
                path: dir.to_owned(),
                source,
            }),
        _ => Ok(()),
    }
}

/// The write connection: opened, checked (read only), then switched to WAL
/// with the durability asked for.
fn open_writer(config: &SqliteConfig) -> Result<Connection, SqliteError> {
    let path = &config.path;
    let opened = |source| SqliteError::Open {
        path: path.clone(),
        source,
    };
    // No URI flag: the path is a file name, never `file:…?mode=memory`.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(opened)?;
    conn.busy_timeout(config.busy_timeout)?;
    // SQLite reads the file at the first statement: this is where a
    // directory, a file that is not a database, or another program's
    // database is found, before anything is written.
    schema::check(&conn, path).map_err(|e| match e {
        SqliteError::Sqlite(source) => opened(source),
        other => other,
    })?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SqliteError::Config(format!(
            "{} cannot use WAL mode (SQLite answered journal_mode={mode}); \
             is it on a network file system?",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", config.durability.pragma())?;
    conn.pragma_update(None, "wal_autocheckpoint", config.checkpoint_pages)?;
    Ok(conn)
}
