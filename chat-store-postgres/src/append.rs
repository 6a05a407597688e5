//! The append statement and how one batch of appends is written with it.
//!
//! One statement, committed on its own, writes a whole batch: the dedup
//! keys (`ON CONFLICT DO NOTHING`), the messages whose key was new (or that
//! have none) and their pending deliveries. Being one statement, it is
//! atomic: all of it lands or none. A key that was taken, by an earlier
//! append, a racing one (the insert waits for that transaction to finish)
//! or an earlier row of the same batch, stores nothing; after the commit a
//! second statement reads the message that holds the key, and that append
//! answers it as a duplicate.
//!
//! The messages insert has no `ON CONFLICT`: a message id already stored
//! fails the whole statement with a unique violation, which the reference
//! store answers with `AlreadyExists` and nothing stored. The batch is then
//! written again one append at a time, so that only the append at fault
//! gets the error. A deadlock between two batches (they take the same keys
//! in another order, which sorting each batch by key makes rare) is retried
//! the same way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chat_core::store::Appended;
use chat_core::{ConversationId, Error, Message, MessageId, NewMessage, Result, UserId};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;

use crate::conn::Conn;
use crate::error;
use crate::ids::{from_db, to_db};
use crate::rows;
use crate::store::Shared;

/// How often one append is tried when its dedup key keeps changing under it
/// (taken, then the holder removed before it could be read) or deadlocks.
const ATTEMPTS: usize = 3;

const APPEND: &str = r#"
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[])
        AS t(conversation_id, message_id, sender_id, body, ts, client_msg_id)
), keys AS (
    INSERT INTO dedup (sender_id, client_msg_id, conversation_id, message_id)
    SELECT sender_id, client_msg_id, conversation_id, message_id
    FROM input WHERE client_msg_id IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING conversation_id, message_id
), stored AS (
    INSERT INTO messages (conversation_id, message_id, sender_id, body, ts, client_msg_id)
    SELECT i.conversation_id, i.message_id, i.sender_id, i.body, i.ts, i.client_msg_id
    FROM input i LEFT JOIN keys k
        ON k.conversation_id = i.conversation_id AND k.message_id = i.message_id
    WHERE i.client_msg_id IS NULL OR k.message_id IS NOT NULL
    RETURNING conversation_id, message_id
), deliveries AS (
    INSERT INTO pending (user_id, message_id, conversation_id, sender_id)
    SELECT p.user_id, p.message_id, p.conversation_id, p.sender_id
    FROM unnest($7::text[], $8::int8[], $9::text[], $10::text[])
        AS p(user_id, message_id, conversation_id, sender_id)
    JOIN stored s ON s.conversation_id = p.conversation_id AND s.message_id = p.message_id
    ON CONFLICT DO NOTHING
)
SELECT conversation_id, message_id FROM stored
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
    let (mut jobs, expired): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.deadline > now);
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
    let result = match run(&mut conn, &jobs).await {
        Ok(result) => result,
        Err(e) => return fail_all(jobs, e),
    };
    match result {
        Ok(rows) => {
            let stored: HashSet<(ConversationId, MessageId)> = rows
                .iter()
                .map(|r| (ConversationId::from(r.get::<_, &str>(0)), from_db(r.get(1))))
                .collect();
            let (new, taken): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| {
                stored.contains(&(j.msg.message.conversation_id.clone(), j.msg.message.message_id))
            });
            for job in new {
                let message = job.msg.message.clone();
                job.answer(Ok(Appended {
                    message,
                    duplicate: false,
                }));
            }
            if !taken.is_empty() {
                answer_duplicates(&mut conn, taken).await;
            }
        }
        Err(e) if jobs.len() > 1 && (error::is_unique_violation(&e) || error::is_conflict(&e)) => {
            tracing::debug!(error = %e, size = jobs.len(), "batch rejected; writing its appends one by one");
            for job in jobs {
                let result = write_one(&mut conn, &job).await;
                job.answer(result);
            }
        }
        Err(e) if jobs.len() == 1 && error::is_conflict(&e) => {
            for job in jobs {
                let result = write_one(&mut conn, &job).await;
                job.answer(result);
            }
        }
        Err(e) => fail_all(jobs, error::from_pg("append", e)),
    }
}

/// Answers appends whose key was taken with the message holding it; those
/// whose holder is gone again are tried once more on their own.
async fn answer_duplicates(conn: &mut Conn, taken: Vec<Job>) {
    let senders: Vec<&str> = taken.iter().map(|j| j.msg.message.sender_id.as_str()).collect();
    let keys: Vec<&str> = taken
        .iter()
        .map(|j| j.msg.client_msg_id.as_deref().unwrap_or_default())
        .collect();
    let rows = match conn.query("append: read duplicates", HOLDERS, &[&senders, &keys]).await {
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
        match run(conn, one).await? {
            Ok(rows) if !rows.is_empty() => {
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
                    .query("append: read duplicate", HOLDERS, &[&vec![sender.as_str()], &vec![key]])
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

/// The ten arrays of [`APPEND`] for `jobs`.
struct Arrays<'a> {
    conversations: Vec<&'a str>,
    ids: Vec<i64>,
    senders: Vec<&'a str>,
    bodies: Vec<&'a str>,
    ts: Vec<i64>,
    keys: Vec<Option<&'a str>>,
    to_users: Vec<&'a str>,
    to_ids: Vec<i64>,
    to_conversations: Vec<&'a str>,
    to_senders: Vec<&'a str>,
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
        to_ids: Vec::new(),
        to_conversations: Vec::new(),
        to_senders: Vec::new(),
    };
    for job in jobs {
        let m = &job.msg.message;
        let id = to_db(m.message_id);
        a.conversations.push(m.conversation_id.as_str());
        a.ids.push(id);
        a.senders.push(m.sender_id.as_str());
        a.bodies.push(&m.body);
        a.ts.push(m.ts);
        a.keys.push(job.msg.client_msg_id.as_deref());
        let mut seen = HashSet::new();
        for user in &job.recipients {
            if *user != m.sender_id && seen.insert(user) {
                a.to_users.push(user.as_str());
                a.to_ids.push(id);
                a.to_conversations.push(m.conversation_id.as_str());
                a.to_senders.push(m.sender_id.as_str());
            }
        }
    }
    a
}

impl Arrays<'_> {
    fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.conversations,
            &self.ids,
            &self.senders,
            &self.bodies,
            &self.ts,
            &self.keys,
            &self.to_users,
            &self.to_ids,
            &self.to_conversations,
            &self.to_senders,
        ]
    }
}

/// Runs [`APPEND`] for `jobs`, handing back the driver's error untouched so
/// that the caller can tell its kind.
async fn run(
    conn: &mut Conn,
    jobs: &[Job],
) -> Result<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> {
    let arrays = arrays(jobs);
    conn.raw("append", APPEND, &arrays.params()).await
}
