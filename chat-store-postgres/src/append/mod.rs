//! How one batch of appends is written: in one round trip and one commit
//! for the whole batch, by one of two statements.
//!
//! - `batch.sql` (see `batch.rs`): set-based, about as cheap per append as
//!   a bulk insert of the same rows. It writes the whole batch or fails
//!   (nothing written), so it gets only batches whose appends agree among
//!   themselves, and fails when any append would be refused.
//! - Otherwise, or after it failed, the schema's `append_entries` function
//!   (migrations/0002_log_heads_cursors.sql), which takes the appends one
//!   by one and answers each exactly (several statements per append).
//!
//! `append_entries`, for each append in order:
//! 1. locks the conversation's head row (`SELECT … FOR UPDATE`, creating
//!    an all-zero head first for a new conversation): appends to one
//!    conversation take turns, in this batch and across batches, nodes and
//!    processes;
//! 2. answers a known `(sender, client_msg_id)` with its first entry
//!    (`duplicate`), before any check of the head;
//! 3. answers `Conflict` with the head when the id is not above `last_id`
//!    or the expected version is not the head's;
//! 4. for an edit, delete or reaction, locks the target row, or answers
//!    `NotFound` when the conversation has no such entry;
//! 5. inserts the entry (`ON CONFLICT DO NOTHING` on the dedup key: taken
//!    only by a racing append of the same key into another conversation,
//!    whose commit the insert waits for; then it answers that one);
//! 6. writes the effect on the target, the head (a HOT update), and the
//!    sender's cursors: read moves to the entry; the user's and the
//!    device's delivered cursors only when they covered `prev` (a device
//!    behind on others' entries must not skip them).
//!
//! Every check comes before the first write, so a refused append writes
//! nothing (the locks it took go at commit). A batch is sorted by
//! conversation (stably: each conversation's appends keep their order, so
//! its chain is the order they came in), so batches lock heads in one
//! order and do not deadlock on them; a deadlock elsewhere (with a purge,
//! say) fails the whole statement, which is then run again.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chat_core::store::Appended;
use chat_core::{Error, Head, NewMessage, Result};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use tokio_postgres::error::SqlState;

use crate::conn::Conn;
use crate::error;
use crate::ids::{from_db, to_db};
use crate::rows;
use crate::store::Shared;

mod batch;

/// How often a batch is run when the server breaks a deadlock by failing it.
const ATTEMPTS: usize = 3;

/// The one-by-one call for the whole batch; one row per append (see the
/// function).
const APPEND: &str = "SELECT * FROM append_entries($1::text[], $2::int8[], $3::int2[], \
     $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::text[], $10::text[], \
     $11::int8[])";

/// The function's answers (`r_status`).
const STORED: i16 = 0;
const DUPLICATE: i16 = 1;
const CONFLICT: i16 = 2;
const NO_TARGET: i16 = 3;
const HOLDER_GONE: i16 = 4;

/// Where the first entry's columns start in a duplicate's row.
const ENTRY_AT: usize = 6;

/// One append waiting for its batch.
pub(crate) struct Job {
    pub(crate) entry: NewMessage,
    pub(crate) expected_version: u64,
    /// Not written after this: the caller has been waiting long enough.
    pub(crate) deadline: Instant,
    pub(crate) reply: oneshot::Sender<Result<Appended>>,
}

impl Job {
    fn answer(self, result: Result<Appended>) {
        // The caller may have gone away; nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// Refuses an append that PostgreSQL could not store, before it joins a
/// batch (where it would fail every append beside it): text cannot hold
/// NUL characters.
pub(crate) fn check(entry: &NewMessage) -> Result<()> {
    let m = &entry.message;
    let texts = [
        ("conversation id", m.conversation_id.as_str()),
        ("sender id", m.sender_id.as_str()),
        ("body", m.body.as_str()),
        (
            "client_msg_id",
            entry.client_msg_id.as_deref().unwrap_or(""),
        ),
        (
            "device id",
            entry.device.as_ref().map_or("", |d| d.as_str()),
        ),
    ];
    match texts.iter().find(|(_, text)| text.contains('\0')) {
        Some((what, _)) => Err(Error::invalid(format!(
            "the {what} contains a NUL character, which PostgreSQL cannot store"
        ))),
        None => Ok(()),
    }
}

/// Writes `jobs` and answers each of them.
pub(crate) async fn write(shared: &Shared, jobs: Vec<Job>) {
    let now = Instant::now();
    let (mut jobs, expired): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| j.deadline > now);
    for job in expired {
        job.answer(Err(Error::unavailable_msg(
            "postgres: the append waited too long for a connection and was not written",
        )));
    }
    if jobs.is_empty() {
        return;
    }
    // Stable: each conversation's appends keep the order they came in.
    jobs.sort_by(|a, b| {
        a.entry
            .message
            .conversation_id
            .cmp(&b.entry.message.conversation_id)
    });
    let mut conn = match shared.conn("append").await {
        Ok(conn) => conn,
        Err(e) => return fail_all(jobs, e),
    };
    let arrays = Arrays::of(&jobs);
    shared.stats.batches.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .appends
        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
    if shared.config.set_based_appends && batch::agrees(&jobs) {
        match conn.raw("append", batch::BATCH, &arrays.params()).await {
            Ok(Ok(rows)) => return stored_all(jobs, &rows),
            // Some append would be refused: the exact answers come from
            // the one-by-one path.
            Ok(Err(e)) if refused(&e) => {
                tracing::debug!(error = %e, size = jobs.len(), "append batch refused; writing it one by one");
            }
            Ok(Err(e)) => return fail_all(jobs, error::from_pg("append", e)),
            Err(e) => return fail_all(jobs, e),
        }
    }
    shared.stats.one_by_one.fetch_add(1, Ordering::Relaxed);
    match one_by_one(&mut conn, &jobs, &arrays).await {
        Ok(rows) => answer(jobs, &rows),
        Err(e) => fail_all(jobs, e),
    }
}

/// Whether the set-based statement failed because some append of its batch
/// would be refused (or on a deadlock): nothing was written, and the batch
/// can be written one by one.
fn refused(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|code| *code == SqlState::UNIQUE_VIOLATION || code.code() == BATCH_REFUSED)
        || error::is_conflict(e)
}

/// The SQLSTATE that `batch_refused` raises.
const BATCH_REFUSED: &str = "CH409";

/// Answers every job of a batch that the set-based statement stored: its
/// rows are (position, prev).
fn stored_all(jobs: Vec<Job>, rows: &[Row]) {
    let mut prevs: Vec<Option<i64>> = vec![None; jobs.len()];
    for row in rows {
        let n: i32 = row.get(0);
        if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| prevs.get_mut(i)) {
            *slot = row.get(1);
        }
    }
    for (job, prev) in jobs.into_iter().zip(prevs) {
        let message = job.entry.message.clone();
        job.answer(Ok(Appended {
            message,
            prev: prev.map(from_db),
            duplicate: false,
        }));
    }
}

/// Runs `append_entries` over the batch, again when the server broke a
/// deadlock by failing it.
async fn one_by_one(conn: &mut Conn, jobs: &[Job], arrays: &Arrays<'_>) -> Result<Vec<Row>> {
    let params = arrays.params();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match conn.raw("append", APPEND, &params).await? {
            Ok(rows) => return Ok(rows),
            Err(e) if error::is_conflict(&e) && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, size = jobs.len(), attempt, "append batch failed on a deadlock; running it again");
            }
            Err(e) => return Err(error::from_pg("append", e)),
        }
    }
}

/// Answers each job from its row (`r_n` is its 1-based position).
fn answer(jobs: Vec<Job>, rows: &[Row]) {
    let mut by_position: Vec<Option<&Row>> = vec![None; jobs.len()];
    for row in rows {
        let n: i32 = row.get(0);
        if let Some(slot) = usize::try_from(n - 1)
            .ok()
            .and_then(|i| by_position.get_mut(i))
        {
            *slot = Some(row);
        }
    }
    for (job, row) in jobs.into_iter().zip(by_position) {
        let result = match row {
            Some(row) => outcome(&job, row),
            None => Err(Error::unavailable_msg(
                "postgres: the append function answered nothing for this append",
            )),
        };
        job.answer(result);
    }
}

/// What one row of the function says about `job`.
fn outcome(job: &Job, row: &Row) -> Result<Appended> {
    outcome_of(&job.entry.message, row)
}

/// What one row of the function says about an append of `m`.
fn outcome_of(m: &chat_core::Message, row: &Row) -> Result<Appended> {
    match row.get::<_, i16>(1) {
        STORED => Ok(Appended {
            message: m.clone(),
            prev: row.get::<_, Option<i64>>(2).map(from_db),
            duplicate: false,
        }),
        DUPLICATE => Ok(Appended {
            message: rows::entry(row, ENTRY_AT)?,
            prev: None,
            duplicate: true,
        }),
        CONFLICT => Err(Error::Conflict {
            head: Head {
                last_id: row.get::<_, Option<i64>>(3).map(from_db),
                seq: count(row.get(4)),
                version: count(row.get(5)),
            },
        }),
        NO_TARGET => Err(Error::not_found(format!(
            "message {} in {}",
            m.ref_id
                .map_or_else(|| "(none)".to_owned(), |id| id.to_string()),
            m.conversation_id
        ))),
        HOLDER_GONE => Err(Error::unavailable_msg(
            "postgres: the entry holding this client_msg_id was removed while the append ran; retry",
        )),
        other => Err(Error::unavailable_msg(format!(
            "postgres: the append function answered an unknown status {other}"
        ))),
    }
}

/// Creates an all-zero head for a new conversation (locked by the insert
/// until commit); the first statement of [`append_after`]'s transaction.
const MAKE_HEAD: &str =
    "INSERT INTO heads (conversation_id) VALUES ($1::text) ON CONFLICT DO NOTHING";

/// Locks and reads the head row.
const LOCK_HEAD: &str =
    "SELECT last_id, seq, version FROM heads WHERE conversation_id = $1::text FOR UPDATE";

/// [`chat_core::store::MessageStore::append_after`]: one transaction of its
/// own, outside the batcher (copies to a second shard are rare next to
/// sends). It locks the head row, checks its `last_id`, and runs
/// `append_entries` at the version it read: under the lock the version
/// cannot move, so the function's own check is the same one, and its
/// answers (duplicate, missing target) are those of `append`.
pub(crate) async fn append_after(
    shared: &Shared,
    entry: NewMessage,
    after: Option<chat_core::MessageId>,
) -> Result<Appended> {
    check(&entry)?;
    let what = "append_after";
    let mut conn = shared.conn(what).await?;
    conn.poison_until_done();
    conn.batch_execute(what, "BEGIN").await?;
    let conversation = entry.message.conversation_id.as_str();
    conn.query(what, MAKE_HEAD, &[&conversation]).await?;
    let rows = conn.query(what, LOCK_HEAD, &[&conversation]).await?;
    let head = rows
        .first()
        .map(|r| crate::log::head(r, 0))
        .unwrap_or_default();
    let id = entry.message.message_id;
    if head.last_id != after || after.is_some_and(|a| id <= a) {
        conn.batch_execute(what, "ROLLBACK").await?;
        conn.done();
        return Err(Error::Conflict { head });
    }
    let arrays = Arrays::of_entries(std::iter::once((&entry, head.version)));
    let rows = conn.query(what, APPEND, &arrays.params()).await?;
    let answer = match rows.first() {
        Some(row) => outcome_of(&entry.message, row),
        None => Err(Error::unavailable_msg(
            "postgres: the append function answered nothing for this append",
        )),
    };
    let end = if answer.as_ref().is_ok_and(|a| !a.duplicate) {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    conn.batch_execute(what, end).await?;
    conn.done();
    answer
}

/// A count column (seq, version): never negative.
pub(crate) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Answers every job with `error` (the first gets it, the others a copy
/// that shares its source).
fn fail_all(jobs: Vec<Job>, error: Error) {
    let source: Arc<Error> = Arc::new(error);
    for job in jobs {
        job.answer(Err(Error::unavailable(
            "postgres: the batch holding this append failed; it was not stored",
            source.clone(),
        )));
    }
}

/// The function's eleven arrays for `jobs`, one element per append.
struct Arrays<'a> {
    conversations: Vec<&'a str>,
    ids: Vec<i64>,
    kinds: Vec<i16>,
    senders: Vec<&'a str>,
    bodies: Vec<&'a str>,
    ts: Vec<i64>,
    refs: Vec<Option<i64>>,
    replies: Vec<Option<i64>>,
    keys: Vec<Option<&'a str>>,
    devices: Vec<Option<&'a str>>,
    expected: Vec<i64>,
}

impl<'a> Arrays<'a> {
    fn of(jobs: &'a [Job]) -> Self {
        Self::of_entries(jobs.iter().map(|j| (&j.entry, j.expected_version)))
    }

    fn of_entries(jobs: impl ExactSizeIterator<Item = (&'a NewMessage, u64)>) -> Self {
        let n = jobs.len();
        let mut a = Self {
            conversations: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            senders: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            refs: Vec::with_capacity(n),
            replies: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            devices: Vec::with_capacity(n),
            expected: Vec::with_capacity(n),
        };
        for (entry, expected_version) in jobs {
            let m = &entry.message;
            a.conversations.push(m.conversation_id.as_str());
            a.ids.push(to_db(m.message_id));
            a.kinds.push(rows::kind_to_db(m.kind));
            a.senders.push(m.sender_id.as_str());
            a.bodies.push(&m.body);
            a.ts.push(m.ts);
            a.refs.push(m.ref_id.map(to_db));
            a.replies.push(m.in_reply_to.map(to_db));
            a.keys.push(entry.client_msg_id.as_deref());
            a.devices.push(entry.device.as_ref().map(|d| d.as_str()));
            // A version past i64::MAX matches no head: -1 (no head has a
            // negative version) makes that a conflict.
            a.expected
                .push(i64::try_from(expected_version).unwrap_or(-1));
        }
        a
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.conversations,
            &self.ids,
            &self.kinds,
            &self.senders,
            &self.bodies,
            &self.ts,
            &self.refs,
            &self.replies,
            &self.keys,
            &self.devices,
            &self.expected,
        ]
    }
}
