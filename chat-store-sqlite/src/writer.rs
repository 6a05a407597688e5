//! The one writer: a thread that owns the write connection and applies the
//! queued writes in batches, each batch one transaction (group commit).
//!
//! SQLite lets one connection write at a time, so writes from many tasks
//! queue here instead of fighting over the file lock. The thread takes
//! every write waiting (up to `batch_max`), opens one transaction, runs
//! each write in its own savepoint, commits once and only then answers
//! every caller: many concurrent appends cost one commit and one fsync.
//!
//! - Writes run in the order they were queued, each seeing the ones before
//!   it, so the appends to one conversation in a batch form its chain in
//!   order (a later one that raced an earlier one gets its `Conflict`, as
//!   it would have one transaction later).
//! - A write that fails (a conflict, a duplicate name, a missing target, a
//!   SQLite error) is rolled back to its savepoint and answers its own
//!   error; the rest of the batch goes on.
//! - When the commit fails, or SQLite rolls the transaction back by itself
//!   (a full disk, an I/O error), every write of it answers
//!   [`SqliteError::NotCommitted`]: nothing of it was stored.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::error::SqliteError;

/// What the writer has done since the store was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteStats {
    /// Transactions committed or tried (one per batch).
    pub batches: u64,
    /// Writes in them (appends, acks, sign-ups, …).
    pub writes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    writes: AtomicU64,
}

/// A queued write, answered once its batch is settled.
trait Job: Send {
    /// Runs the write inside the batch's transaction.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Pending>;
    /// Answers without running: the batch could not start.
    fn refuse(self: Box<Self>, why: String);
}

/// A write that ran, waiting for its batch's commit.
trait Pending: Send {
    /// Whether the write failed on its own (and was rolled back).
    fn failed(&self) -> bool;
    /// Answers the caller: its own result, or `lost` when the transaction
    /// did not commit.
    fn answer(self: Box<Self>, lost: Option<&str>);
}

struct Task<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T, SqliteError>>,
}

struct Done<T> {
    out: Result<T, SqliteError>,
    reply: oneshot::Sender<Result<T, SqliteError>>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, SqliteError> + Send,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Pending> {
        let out = (self.work)(conn);
        Box::new(Done {
            out,
            reply: self.reply,
        })
    }

    fn refuse(self: Box<Self>, why: String) {
        // The caller may have gone (its future dropped): nobody to tell.
        let _ = self.reply.send(Err(SqliteError::NotCommitted(why)));
    }
}

impl<T: Send> Pending for Done<T> {
    fn failed(&self) -> bool {
        self.out.is_err()
    }

    fn answer(self: Box<Self>, lost: Option<&str>) {
        let out = match (self.out, lost) {
            (Err(e), _) => Err(e),
            (Ok(_), Some(why)) => Err(SqliteError::NotCommitted(why.to_owned())),
            (Ok(value), None) => Ok(value),
        };
        let _ = self.reply.send(out);
    }
}

/// The handle to the writer thread. Dropping it lets the thread finish the
/// writes already queued, close the connection and end; the drop waits for
/// that, so the file is closed when the store is gone.
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(crate) fn start(
        conn: Connection,
        batch_max: usize,
        queue: usize,
    ) -> Result<Self, SqliteError> {
        let (tx, rx) = mpsc::channel(queue);
        let counters = Arc::new(Counters::default());
        let thread = std::thread::Builder::new()
            .name("chat-sqlite-writer".into())
            .spawn({
                let counters = counters.clone();
                move || run(conn, rx, batch_max, &counters)
            })
            .map_err(|e| SqliteError::Config(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            queue: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// Queues `work` and answers its result once its batch committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let queue = self
            .queue
            .as_ref()
            .ok_or(SqliteError::Stopped("the store is closing"))?;
        queue
            .send(Box::new(Task { work, reply }))
            .await
            .map_err(|_| SqliteError::Stopped("the writer thread ended"))?;
        answer
            .await
            .map_err(|_| SqliteError::Stopped("the write panicked or the writer thread ended"))?
    }

    /// Writes queued and not yet taken by the writer.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }

    /// What the writer has done so far.
    pub(crate) fn stats(&self) -> WriteStats {
        WriteStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the sqlite writer thread panicked");
        }
    }
}

/// The thread's loop: a batch of everything waiting, until the queue closes.
fn run(
    conn: Connection,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    batch_max: usize,
    counters: &Counters,
) {
    let mut batch = Vec::with_capacity(batch_max.min(1024));
    while let Some(job) = queue.blocking_recv() {
        batch.push(job);
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        apply(&conn, batch.drain(..));
    }
    // Refresh the planner's statistics where they drifted (SQLite's advice
    // for long-lived connections, cheap when nothing changed).
    if let Err(e) = conn.execute_batch("PRAGMA optimize") {
        tracing::debug!(error = %e, "sqlite optimize at close failed");
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Applies one batch in one transaction and answers every write of it.
fn apply(conn: &Connection, mut jobs: impl Iterator<Item = Box<dyn Job>>) {
    let mut ran: Vec<Box<dyn Pending>> = Vec::new();
    let mut open = false;
    while let Some(job) = jobs.next() {
        if !open {
            if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
                // Another process holds the lock past the busy timeout, or
                // the file is unwritable: the rest of the batch would wait
                // and fail the same way.
                let why = format!("cannot begin a transaction: {e}");
                job.refuse(why.clone());
                jobs.for_each(|j| j.refuse(why.clone()));
                return;
            }
            open = true;
        }
        if let Err(e) = exec(conn, "SAVEPOINT write") {
            job.refuse(format!("cannot set a savepoint: {e}"));
            continue;
        }
        // A panicking write drops its reply (its caller hears the store
        // stopped) and is rolled back like a failed one; the thread goes on.
        let done = catch_unwind(AssertUnwindSafe(|| job.run(conn))).ok();
        let keep = match &done {
            Some(d) if !d.failed() => exec(conn, "RELEASE write").is_ok(),
            _ => false,
        };
        if !keep && !conn.is_autocommit() {
            let undone = exec(conn, "ROLLBACK TO write").and_then(|()| exec(conn, "RELEASE write"));
            if let Err(e) = undone {
                tracing::error!(error = %e, "sqlite: rolling back one write failed; dropping its batch");
                let _ = exec(conn, "ROLLBACK");
            }
        }
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a full
            // disk): the writes before this one are lost with it.
            for d in ran.drain(..) {
                d.answer(Some(
                    "the transaction was rolled back by an error in its batch",
                ));
            }
            open = false;
        }
        if let Some(d) = done {
            if open {
                ran.push(d);
            } else {
                d.answer(Some(
                    "the transaction was rolled back by an error in its batch",
                ));
            }
        }
    }
    if !open {
        return;
    }
    match exec(conn, "COMMIT") {
        Ok(()) => ran.into_iter().for_each(|d| d.answer(None)),
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = exec(conn, "ROLLBACK");
            }
            let why = format!("commit failed: {e}");
            ran.into_iter().for_each(|d| d.answer(Some(&why)));
        }
    }
}

#[cfg(test)]
mod tests;
