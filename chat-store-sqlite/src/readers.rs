//! The read connections: a pool used in parallel on tokio's blocking
//! threads. In WAL mode a reader sees the last committed state and never
//! waits for the writer (nor the writer for it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::config::SqliteConfig;
use crate::error::SqliteError;

/// Up to `readers` read-only connections; a read takes one (waiting for a
/// free one), runs on a blocking thread and puts it back.
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    path: PathBuf,
    busy_timeout: Duration,
}

impl Readers {
    /// Opens `config.readers` read-only connections to the file, which
    /// the writer has already opened in WAL mode.
    pub(crate) fn open(config: &SqliteConfig) -> Result<Arc<Self>, SqliteError> {
        let readers = Self {
            idle: Mutex::new(Vec::with_capacity(config.readers)),
            permits: Arc::new(Semaphore::new(config.readers)),
            path: config.path.clone(),
            busy_timeout: config.busy_timeout,
        };
        for _ in 0..config.readers {
            let conn = readers.connect()?;
            readers.idle.lock().push(conn);
        }
        Ok(Arc::new(readers))
    }

    fn connect(&self) -> Result<Connection, SqliteError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| SqliteError::Open {
            path: self.path.clone(),
            source,
        })?;
        conn.busy_timeout(self.busy_timeout)?;
        Ok(conn)
    }

    /// Runs `read` on a free connection, on a blocking thread.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        // The permit goes with the work: if the caller stops waiting, the
        // connection is still busy until the work ends.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SqliteError::Stopped("the readers are closed"))?;
        let pool = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // A connection is missing only after a read panicked with it.
            let conn = match pool.idle.lock().pop() {
                Some(conn) => conn,
                None => pool.connect()?,
            };
            let out = read(&conn);
            pool.idle.lock().push(conn);
            out
        });
        match task.await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(SqliteError::Stopped("the runtime is shutting down")),
        }
    }
}
