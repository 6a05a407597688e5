//! The append statements and how one batch of appends is written.
//!
//! A batch is one statement, committed on its own and therefore atomic:
//! all of it lands or none. Two statements do the work:
//!
//! - [`FAST`] inserts the dedup keys, the messages and the pending
//!   deliveries of the whole batch with plain `INSERT`s: the cost of the
//!   bulk load it is compared with. If any key is taken (by an earlier
//!   append, a racing one, whose transaction the insert waits for, or
//!   another append of the same batch), the unique index fails the whole
//!   statement and nothing is written.
//! - [`SAFE`] then writes the same batch with `ON CONFLICT DO NOTHING` on
//!   the keys (speculative insertion, about twice the cost of a plain
//!   insert per key): only the appends whose key was new are stored, and it
//!   returns the others. A second statement, after the commit, reads the
//!   message holding each of those keys, which that append answers as a
//!   duplicate. Client retries are rare, so a batch normally takes [`FAST`]
//!   only; a retry storm after an outage costs one failed statement per
//!   batch, not one statement per append.
//!
//! Neither statement has `ON CONFLICT` on the messages: a message id already
//! stored fails the statement, and the batch is written again one append
//! at a time with [`SAFE`], so that only the append at fault gets
//! `AlreadyExists` with nothing stored, as in the reference store. A
//! deadlock between two batches (sorting each batch by key makes it rare)
//! is retried the same way.

use std::collections::HashMap;
use std::sync::Arc;

use chat_core::store::Appended;
use chat_core::{Error, Message, NewMessage, Result, UserId};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;

use crate::conn::Conn;
use crate::error;
use crate::ids::to_db;
use crate::rows;
use crate::store::Shared;

/// How often one append is tried when its dedup key keeps changing under it
/// (taken, then the holder removed before it could be read) or deadlocks.
const ATTEMPTS: usize = 3;

/// The batch with plain inserts: fails on any taken key or message id.
const FAST: &str = r#"
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[])
        WITH ORDINALITY AS t(conversation_id, message_id, sender_id, body, ts, client_msg_id, n)
), keys AS (
    INSERT INTO dedup (sender_id, client_msg_id, conversation_id, message_id)
    SELECT sender_id, client_msg_id, conversation_id, message_id
    FROM input WHERE client_msg_id IS NOT NULL
), stored AS (
    INSERT INTO messages (conversation_id, message_id, sender_id, body, ts, client_msg_id)
    SELECT conversation_id, message_id, sender_id, body, ts, client_msg_id FROM input
)
INSERT INTO pending (user_id, message_id, conversation_id, sender_id)
SELECT p.user_id, i.message_id, i.conversation_id, i.sender_id
FROM unnest($7::text[], $8::int8[]) AS p(user_id, n) JOIN input i ON i.n = p.n
"#;

/// The batch storing only the appends whose key is new; returns the
/// (1-based) positions of the others. Fails on a taken message id.
const SAFE: &str = r#"
WITH input AS (    SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[])
        WITH ORDINALITY AS t(conversation_id, message_id, sender_id, body, ts, client_msg_id, n)
), keys AS (
    INSERT INTO dedup (sender_id, client_msg_id, conversation_id, message_id)
    SELECT sender_id, client_msg_id, conversation_id, message_id
    FROM input WHERE client_msg_id IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING conversation_id, message_id
), fresh AS (
    SELECT i.* FROM input i
    WHERE i.client_msg_id IS NULL OR EXISTS (
        SELECT 1 FROM keys k
        WHERE k.conversation_id = i.conversation_id AND k.message_id = i.message_id
    )
), stored AS (
    INSERT INTO messages (conversation_id, message_id, sender_id, body, ts, client_msg_id)
    SELECT conversation_id, message_id, sender_id, body, ts, client_msg_id FROM fresh
), deliveries AS (
    INSERT INTO pending (user_id, message_id, conversation_id, sender_id)
    SELECT p.user_id, f.message_id, f.conversation_id, f.sender_id
    FROM unnest($7::text[], $8::int8[]) AS p(user_id, n) JOIN fresh f ON f.n = p.n
)
SELECT n FROM input EXCEPT ALL SELECT n FROM fresh
"#;

const HOLDERS: &str = r#"
SELECT d.sender_id, d.client_msg_id, m.conversation_id, m.message_id, m.sender_id, m.body, m.ts
FROM unnest($1::text[], $2::text[]) AS k(sender_id, client_msg_id)
JOIN dedup d ON d.sender_id = k.sender_id AND d.client_msg_id = k.client_msg_id
JOIN messages m ON m.conversation_id = d.conversation_id AND m.message_id = d.message_id
"#;

/// One append waiting for its batch.
pub(crate) struct Job {
    pub(crate) msg: NewMessage,
    pub(crate) recipients: Vec<UserId>,
    /// Not written after this: the caller has been waiting long enough.
    pub(crate) deadline: Instant,
    pub(crate) reply: oneshot::Sender<Result<Appended>>,
}

impl Job {
    fn answer(self, result: Result<Appended>) {
        // The caller may have gone away; nothing to do then.
        let _ = self.reply.send(result);
    }

    /// Answers that the message was stored as given.
    fn stored(self) {
        let _ = self.reply.send(Ok(Appended {
            message: self.msg.message,
            duplicate: false,
        }));
    }

    fn key(&self) -> Option<(&UserId, &str)> {
        self.msg
            .client_msg_id
            .as_deref()
            .map(|key| (&self.msg.message.sender_id, key))
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
    // Batches that share keys take them in the same order: fewer deadlocks.
    jobs.sort_by(|a, b| a.key().cmp(&b.key()));
    let mut conn = match shared.conn("append").await {
        Ok(conn) => conn,
        Err(e) => return fail_all(jobs, e),
    };
    let failure = match run(&mut conn, FAST, &jobs).await {
        Ok(Ok(_)) => {
            for job in jobs {
                job.stored();
            }
            return;
        }
        Ok(Err(e)) => e,
        Err(e) => return fail_all(jobs, e),
    };
    if error::is_unique_violation(&failure) && error::constraint(&failure) == Some(DEDUP_KEY) {
        return write_safe(&mut conn, jobs).await;
    }
    if error::is_unique_violation(&failure) || error::is_conflict(&failure) {
        tracing::debug!(error = %failure, size = jobs.len(), "batch rejected; writing its appends one by one");
        return write_each(&mut conn, jobs).await;
    }
    fail_all(jobs, error::from_pg("append", failure));
}

/// The unique index of the dedup keys (PostgreSQL's name for the primary
/// key of `dedup`).
const DEDUP_KEY: &str = "dedup_pkey";

/// Writes a batch in which some keys are taken with [`SAFE`].
async fn write_safe(conn: &mut Conn, jobs: Vec<Job>) {
    let rows = match run(conn, SAFE, &jobs).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) if error::is_unique_violation(&e) || error::is_conflict(&e) => {
            return write_each(conn, jobs).await;
        }
        Ok(Err(e)) => return fail_all(jobs, error::from_pg("append", e)),
        Err(e) => return fail_all(jobs, e),
    };
    // The rows name (1-based) the appends that stored nothing.
    let mut taken_at = vec![false; jobs.len()];
    for row in &rows {
        let n: i64 = row.get(0);
        if let Some(slot) = usize::try_from(n - 1)
            .ok()
            .and_then(|i| taken_at.get_mut(i))
        {
            *slot = true;
        }
    }
    let mut taken = Vec::new();
    for (job, was_taken) in jobs.into_iter().zip(taken_at) {
        if was_taken {
            taken.push(job);
        } else {
            job.stored();
        }
    }
    if !taken.is_empty() {
        answer_duplicates(conn, taken).await;
    }
}

/// Writes each append of a rejected batch on its own.
async fn write_each(conn: &mut Conn, jobs: Vec<Job>) {
    for job in jobs {
        let result = write_one(conn, &job).await;
        job.answer(result);
    }
}

/// Answers appends whose key was taken with the message holding it; those
/// whose holder is gone again are tried once more on their own.
async fn answer_duplicates(conn: &mut Conn, taken: Vec<Job>) {
    let senders: Vec<&str> = taken
        .iter()
        .map(|j| j.msg.message.sender_id.as_str())
        .collect();
    let keys: Vec<&str> = taken
        .iter()
        .map(|j| j.msg.client_msg_id.as_deref().unwrap_or_default())
        .collect();
    let rows = match conn
        .query("append: read duplicates", HOLDERS, &[&senders, &keys])
        .await
    {
        Ok(rows) => rows,
        Err(e) => return fail_all(taken, e),
    };
    let holders: HashMap<(String, String), Message> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), rows::message(r, 2)))
        .collect();
    for job in taken {
        let holder = job
            .key()
            .and_then(|(sender, key)| holders.get(&(sender.as_str().to_owned(), key.to_owned())));
        match holder {
            Some(message) => {
                let message = message.clone();
                job.answer(Ok(Appended {
                    message,
                    duplicate: true,
                }));
            }
            None => {
                let result = write_one(conn, &job).await;
                job.answer(result);
            }
        }
    }
}

/// Writes one append on its own, with the reference store's answers: a
/// duplicate, a new message, or `AlreadyExists` for a taken message id.
async fn write_one(conn: &mut Conn, job: &Job) -> Result<Appended> {
    let one = std::slice::from_ref(job);
    for _ in 0..ATTEMPTS {
        match run(conn, SAFE, one).await? {
            Ok(rows) if rows.is_empty() => {
                return Ok(Appended {
                    message: job.msg.message.clone(),
                    duplicate: false,
                });
            }
            Ok(_) => {
                let Some((sender, key)) = job.key() else {
                    return Err(Error::unavailable_msg(
                        "postgres: append without a key stored nothing",
                    ));
                };
                let rows = conn
                    .query(
                        "append: read duplicate",
                        HOLDERS,
                        &[&vec![sender.as_str()], &vec![key]],
                    )
                    .await?;
                if let Some(row) = rows.first() {
                    return Ok(Appended {
                        message: rows::message(row, 2),
                        duplicate: true,
                    });
                }
                // The holder was removed in between: the key is free again.
            }
            Err(e) if error::is_conflict(&e) => {}
            Err(e) => return Err(error::from_pg("append", e)),
        }
    }
    Err(Error::unavailable_msg(
        "postgres: append kept conflicting with concurrent writes; retry",
    ))
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

/// The eight arrays of [`FAST`] and [`SAFE`] for `jobs`: six columns per message,
/// and per delivery its user and the (1-based) index of its message.
struct Arrays<'a> {
    conversations: Vec<&'a str>,
    ids: Vec<i64>,
    senders: Vec<&'a str>,
    bodies: Vec<&'a str>,
    ts: Vec<i64>,
    keys: Vec<Option<&'a str>>,
    to_users: Vec<&'a str>,
    to_messages: Vec<i64>,
}

fn arrays(jobs: &[Job]) -> Arrays<'_> {
    let mut a = Arrays {
        conversations: Vec::with_capacity(jobs.len()),
        ids: Vec::with_capacity(jobs.len()),
        senders: Vec::with_capacity(jobs.len()),
        bodies: Vec::with_capacity(jobs.len()),
        ts: Vec::with_capacity(jobs.len()),
        keys: Vec::with_capacity(jobs.len()),
        to_users: Vec::new(),
        to_messages: Vec::new(),
    };
    for (n, job) in (1_i64..).zip(jobs) {
        let m = &job.msg.message;
        let id = to_db(m.message_id);
        a.conversations.push(m.conversation_id.as_str());
        a.ids.push(id);
        a.senders.push(m.sender_id.as_str());
        a.bodies.push(&m.body);
        a.ts.push(m.ts);
        a.keys.push(job.msg.client_msg_id.as_deref());
        let first = a.to_users.len();
        for user in &job.recipients {
            // Recipient lists are short: a scan of this message's
            // deliveries so far beats hashing them.
            let user = user.as_str();
            if user != m.sender_id.as_str() && !a.to_users[first..].contains(&user) {
                a.to_users.push(user);
                a.to_messages.push(n);
            }
        }
    }
    a
}

impl Arrays<'_> {
    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.conversations,
            &self.ids,
            &self.senders,
            &self.bodies,
            &self.ts,
            &self.keys,
            &self.to_users,
            &self.to_messages,
        ]
    }
}

/// Runs `sql` ([`FAST`] or [`SAFE`]) for `jobs`, handing back the
/// driver's error untouched so that the caller can tell its kind.
async fn run(
    conn: &mut Conn,
    sql: &str,
    jobs: &[Job],
) -> Result<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> {
    let arrays = arrays(jobs);
    conn.raw("append", sql, &arrays.params()).await
}
