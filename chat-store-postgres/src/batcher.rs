//! Group commit: appends from many callers written together.
//!
//! Callers hand their append to one background task over a bounded channel
//! and wait for its answer. The task takes a free slot (at most
//! `batch_inflight` batches are in flight, each on its own connection),
//! waits for the first append, takes everything else already queued up to
//! `batch_max` (lingering up to `batch_linger` for more when configured)
//! and writes the lot with one statement (see `append.rs`). While a batch
//! is in flight the next one fills up, so under load a batch holds about
//! what arrived during one round trip and commit, and a sender waits for
//! one shared commit instead of queueing for a connection of its own.

use std::sync::Arc;

use chat_core::store::Appended;
use chat_core::{Error, NewMessage, Result};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::append::{self, Job};
use crate::store::Shared;

/// The handle that [`PostgresStore`](crate::PostgresStore) sends appends
/// through. Dropping it stops the task once the queue is empty.
pub(crate) struct Batcher {
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl Batcher {
    /// Starts the batch task on the current tokio runtime.
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (queue, jobs) = mpsc::channel(shared.config.batch_max * 4);
        tokio::spawn(run(shared.clone(), jobs));
        Self { queue, shared }
    }

    /// Appends through the next batch and waits for the answer.
    pub(crate) async fn append(
        &self,
        entry: NewMessage,
        expected_version: u64,
    ) -> Result<Appended> {
        append::check(&entry)?;
        let config = &self.shared.config;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            entry,
            expected_version,
            deadline: Instant::now() + config.statement_timeout,
            reply,
        };
        self.queue
            .send(job)
            .await
            .map_err(|_| Error::unavailable_msg("postgres: the append writer has stopped"))?;
        // No timer of its own: the writer answers every job within a
        // bounded time (expired jobs are refused, every call to the server
        // has a deadline), and a writer that died drops the job, which
        // closes this channel.
        answer.await.unwrap_or_else(|_| {
            Err(Error::unavailable_msg(
                "postgres: the append writer stopped before answering",
            ))
        })
    }
}

async fn run(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Job>) {
    let config = &shared.config;
    let slots = Arc::new(Semaphore::new(config.batch_inflight));
    let finished = Arc::new(Notify::new());
    // The size of the batch started last: what a batch started beside
    // another one waits to reach.
    let mut last = 1;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = jobs.recv().await else {
            return;
        };
        let mut batch = vec![first];
        drain(&mut jobs, &mut batch, config.batch_max);
        // A second batch in flight lets the server work on one while the
        // client answers the other, but started at once it would hold the
        // few appends that came in since, and every batch after it would
        // be as small. So while another is in flight, this one fills up to
        // the size of the last one, or until a batch finishes (its senders
        // then queue their next appends): no timer, and at most one
        // statement's time of extra wait.
        while batch.len() < last.min(config.batch_max) {
            let done = finished.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            let others = config.batch_inflight - slots.available_permits() - 1;
            if others == 0 {
                break;
            }
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => {
                        batch.push(job);
                        drain(&mut jobs, &mut batch, config.batch_max);
                    }
                    None => break,
                },
                () = &mut done => {
                    drain(&mut jobs, &mut batch, config.batch_max);
                    break;
                }
            }
        }
        if !config.batch_linger.is_zero() {
            let until = Instant::now() + config.batch_linger;
            while batch.len() < config.batch_max {
                match tokio::time::timeout_at(until, jobs.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        last = batch.len();
        let shared = shared.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            append::write(&shared, batch).await;
            drop(slot);
            finished.notify_waiters();
        });
    }
}

/// Moves what is queued into `batch`, up to `max` in all, without waiting.
fn drain(jobs: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max: usize) {
    while batch.len() < max {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}
