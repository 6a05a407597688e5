//! [`SqliteConfig`]: the database file, its durability, the readers and
//! group commit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::SqliteError;

/// What a commit survives. SQLite runs in WAL mode either way (readers never
/// wait for the writer); this chooses when the write-ahead log reaches the
/// disk (`PRAGMA synchronous`). Both keep the database consistent through
/// any crash: a transaction is there whole or not at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=FULL`: every group commit ends with an fsync of the log,
    /// so a write that was answered survives a crash of the process, of the
    /// operating system and a power loss. The fsync is shared by every write
    /// of the batch, so concurrent senders pay for it once.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits are written to the log but it is
    /// fsynced only at checkpoints. A crash of the process loses nothing
    /// (the operating system holds the writes); a crash of the operating
    /// system or a power loss can lose the writes of the last moments
    /// before it (back to the last checkpoint, at most about 1,000 pages
    /// of log), including messages whose senders were told they were
    /// stored. Faster on slow disks; for data that can be lost.
    Normal,
}

impl Durability {
    /// The `PRAGMA synchronous` value.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Some(Self::Full),
            "normal" => Some(Self::Normal),
            _ => None,
        }
    }
}

/// How a [`SqliteStore`](crate::SqliteStore) opens its file and writes.
///
/// Built with [`SqliteConfig::new`] (every default) or
/// [`SqliteConfig::builder`], or parsed from a `sqlite://` URL
/// ([`SqliteConfig::from_url`]):
///
/// ```
/// use std::time::Duration;
/// use chat_store_sqlite::{Durability, SqliteConfig};
///
/// let config = SqliteConfig::builder("chat-data/chat.db")
///     .durability(Durability::Normal)
///     .readers(4)
///     .busy_timeout(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(config.batch_max, 512);
///
/// let parsed = SqliteConfig::from_url("sqlite://chat-data/chat.db?durability=normal&readers=4")?;
/// assert_eq!(parsed.path, config.path);
/// assert_eq!(parsed.durability, Durability::Normal);
/// # Ok::<(), chat_store_sqlite::SqliteError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file. Created when missing, with its directory; next to
    /// it SQLite keeps `-wal` and `-shm` files while the store is open.
    pub path: PathBuf,
    /// What a commit survives (default [`Durability::Full`]).
    pub durability: Durability,
    /// Read connections, used in parallel (default: the number of CPUs,
    /// from 2 to 8). Reads never wait for the writer.
    pub readers: usize,
    /// Writes applied in one transaction (one commit, one fsync), at most
    /// (default 512).
    pub batch_max: usize,
    /// Writes waiting for the writer, at most (default 4,096); callers
    /// beyond it wait for room.
    pub queue: usize,
    /// How long a statement waits for a lock that another process holds
    /// (default 5 s), e.g. a second program with the same file open.
    pub busy_timeout: Duration,
    /// Pages (4 KiB each) the write-ahead log may grow to before the writer
    /// copies it back into the database file (`PRAGMA wal_autocheckpoint`,
    /// default 1,000 as SQLite's: about 4 MiB). A page written by many
    /// commits is copied once per checkpoint, so a larger log can mean less
    /// disk work under load (10,000 made no difference we could measure, see
    /// the crate docs); reads look up pages in a longer log, and with
    /// [`Durability::Normal`] the log is fsynced only at checkpoints.
    pub checkpoint_pages: u32,
}

/// The file that [`SqliteConfig::default`] and an empty `sqlite://` URL name,
/// relative to the working directory.
pub const DEFAULT_PATH: &str = "chat-data/chat.db";

/// [`DEFAULT_PATH`] as a URL for [`SqliteConfig::from_url`]: a server's
/// default `--store`.
pub const DEFAULT_URL: &str = "sqlite://chat-data/chat.db";

impl Default for SqliteConfig {
    fn default() -> Self {
        Self::new(DEFAULT_PATH)
    }
}

impl SqliteConfig {
    /// Every default, for the database file `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            path: path.into(),
            durability: Durability::default(),
            readers: cpus.clamp(2, 8),
            batch_max: 512,
            queue: 4096,
            busy_timeout: Duration::from_secs(5),
            checkpoint_pages: 1_000,
        }
    }

    /// A builder that starts from [`SqliteConfig::new`]`(path)`.
    pub fn builder(path: impl Into<PathBuf>) -> SqliteConfigBuilder {
        SqliteConfigBuilder(Self::new(path))
    }

    /// Parses `sqlite://PATH[?durability=full|normal&readers=N&batch_max=N]`.
    /// PATH is relative to the working directory, or absolute with a third
    /// slash (`sqlite:///var/lib/chat/chat.db`); empty, it is
    /// [`DEFAULT_PATH`].
    pub fn from_url(url: &str) -> Result<Self, SqliteError> {
        let rest = url.strip_prefix("sqlite://").ok_or_else(|| {
            SqliteError::Config(format!("{url:?} is not a sqlite:// URL (sqlite://PATH)"))
        })?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = if path.is_empty() { DEFAULT_PATH } else { path };
        let mut builder = Self::builder(path);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = || {
                value.parse::<usize>().map_err(|_| {
                    SqliteError::Config(format!("{key}={value:?} in {url:?} is not a number"))
                })
            };
            builder = match key {
                "durability" => builder.durability(Durability::parse(value).ok_or_else(|| {
                    SqliteError::Config(format!(
                        "durability={value:?} in {url:?}: expected full or normal"
                    ))
                })?),
                "readers" => builder.readers(number()?),
                "batch_max" => builder.batch_max(number()?),
                _ => {
                    return Err(SqliteError::Config(format!(
                        "unknown parameter {key:?} in {url:?} (known: durability, readers, batch_max)"
                    )));
                }
            };
        }
        builder.build()
    }

    /// Checks the values that would otherwise fail late or never work.
    pub(crate) fn validate(&self) -> Result<(), SqliteError> {
        if self.path.as_os_str().is_empty() {
            return Err(SqliteError::Config("the database path is empty".into()));
        }
        if is_in_memory(&self.path) {
            return Err(SqliteError::Config(format!(
                "{} is not a file: an in-memory SQLite database is not shared between the \
                 writer and the readers; use chat-core's MemoryStore (--store memory) instead",
                self.path.display()
            )));
        }
        if self.readers == 0 || self.batch_max == 0 || self.queue == 0 || self.checkpoint_pages == 0
        {
            return Err(SqliteError::Config(
                "readers, batch_max, queue and checkpoint_pages must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn is_in_memory(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s == ":memory:" || s.starts_with("file:")
}

/// Builds a [`SqliteConfig`] field by field; [`build`](Self::build) checks it.
#[derive(Clone, Debug)]
pub struct SqliteConfigBuilder(SqliteConfig);

impl SqliteConfigBuilder {
    /// See [`SqliteConfig::durability`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.0.durability = durability;
        self
    }

    /// See [`SqliteConfig::readers`].
    pub fn readers(mut self, readers: usize) -> Self {
        self.0.readers = readers;
        self
    }

    /// See [`SqliteConfig::batch_max`].
    pub fn batch_max(mut self, batch_max: usize) -> Self {
        self.0.batch_max = batch_max;
        self
    }

    /// See [`SqliteConfig::queue`].
    pub fn queue(mut self, queue: usize) -> Self {
        self.0.queue = queue;
        self
    }

    /// See [`SqliteConfig::busy_timeout`].
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.0.busy_timeout = busy_timeout;
        self
    }

    /// See [`SqliteConfig::checkpoint_pages`].
    pub fn checkpoint_pages(mut self, pages: u32) -> Self {
        self.0.checkpoint_pages = pages;
        self
    }

    /// The configuration, or [`SqliteError::Config`] naming what cannot work.
    pub fn build(self) -> Result<SqliteConfig, SqliteError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_file_and_the_options() {
        let c = SqliteConfig::from_url("sqlite://chat-data/chat.db").unwrap();
        assert_eq!(c.path, PathBuf::from("chat-data/chat.db"));
        assert_eq!(c.durability, Durability::Full);
        let c = SqliteConfig::from_url("sqlite:///var/lib/chat.db?durability=NORMAL&readers=3")
            .unwrap();
        assert_eq!(c.path, PathBuf::from("/var/lib/chat.db"));
        assert_eq!((c.durability, c.readers), (Durability::Normal, 3));
        let c = SqliteConfig::from_url("sqlite://").unwrap();
        assert_eq!(c.path, PathBuf::from(DEFAULT_PATH));
        assert_eq!(SqliteConfig::from_url(DEFAULT_URL).unwrap(), c);
        assert_eq!(SqliteConfig::default(), SqliteConfig::new(DEFAULT_PATH));
    }

    #[test]
    fn bad_urls_and_values_are_refused() {
        for bad in [
            "postgres://x/y",
            "sqlite:chat.db",
            "sqlite://a.db?durability=off",
            "sqlite://a.db?readers=many",
            "sqlite://a.db?readers=0",
            "sqlite://a.db?batch_max=0",
            "sqlite://a.db?colour=blue",
            "sqlite://:memory:",
            "sqlite://file:x?mode=memory",
        ] {
            let err = SqliteConfig::from_url(bad).expect_err(bad);
            assert!(matches!(err, SqliteError::Config(_)), "{bad}: {err}");
        }
        assert!(SqliteConfig::builder("").build().is_err());
        assert!(SqliteConfig::builder("a.db").queue(0).build().is_err());
    }
}
