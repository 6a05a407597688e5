//! [`Conn`]: a pooled connection whose every call has a client-side
//! deadline.

use std::time::Duration;

use chat_core::{Error, Result};
use deadpool_postgres::{Object, Pool};
use tokio::time::error::Elapsed;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error;

/// The parameters of one statement.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// One pooled connection.
///
/// The server cancels a statement at `statement_timeout`; the deadline here
/// is for a server that does not answer at all (a dead network). A
/// connection that missed it is in an unknown state, so it is closed rather
/// than handed back to the pool.
pub(crate) struct Conn {
    client: Option<Object>,
    deadline: Duration,
    poisoned: bool,
}

impl Conn {
    /// A connection from `pool` (bounded by the pool's own wait and create
    /// timeouts, and by `deadline` in case those do not fire).
    pub(crate) async fn get(pool: &Pool, deadline: Duration, what: &str) -> Result<Self> {
        match tokio::time::timeout(deadline, pool.get()).await {
            Ok(Ok(client)) => Ok(Self {
                client: Some(client),
                deadline,
                poisoned: false,
            }),
            Ok(Err(e)) => Err(error::from_pool(what, e)),
            Err(_) => Err(error::no_reply(what)),
        }
    }

    /// Runs `sql` (prepared once per connection) and returns its rows.
    pub(crate) async fn query(
        &mut self,
        what: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>> {
        self.raw(what, sql, params)
            .await?
            .map_err(|e| error::from_pg(what, e))
    }

    /// Like [`query`](Self::query), but hands back the driver's error so the
    /// caller can tell a conflict or a unique violation from the rest.
    pub(crate) async fn raw(
        &mut self,
        what: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Result<Vec<Row>, tokio_postgres::Error>> {
        let Some(client) = self.client.as_ref() else {
            return Err(Error::unavailable_msg("postgres: connection was closed"));
        };
        let call = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        };
        let answer = tokio::time::timeout(self.deadline, call).await;
        self.settle(what, answer)
    }

    /// Runs several statements as one simple query (no parameters).
    pub(crate) async fn batch_execute(&mut self, what: &str, sql: &str) -> Result<()> {
        let Some(client) = self.client.as_ref() else {
            return Err(Error::unavailable_msg("postgres: connection was closed"));
        };
        let answer = tokio::time::timeout(self.deadline, client.batch_execute(sql)).await;
        self.settle(what, answer)?
            .map_err(|e| error::from_pg(what, e))
    }

    /// Marks the connection as not reusable until [`done`](Self::done):
    /// for a multi-statement transaction, where a failure half-way must
    /// not hand an open transaction to the next user.
    pub(crate) fn poison_until_done(&mut self) {
        self.poisoned = true;
    }

    /// The connection is back in a clean state and may be pooled again.
    pub(crate) fn done(&mut self) {
        self.poisoned = false;
    }

    /// A reply, or the deadline missed: then the connection is closed
    /// rather than pooled.
    fn settle<T>(&mut self, what: &str, answer: Result<T, Elapsed>) -> Result<T> {
        answer.map_err(|_| {
            self.poisoned = true;
            error::no_reply(what)
        })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.poisoned
            && let Some(client) = self.client.take()
        {
            // Detached from the pool and dropped: the connection closes.
            drop(Object::take(client));
        }
    }
}
