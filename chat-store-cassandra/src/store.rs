//! [`CassandraStore`]: the session, its prepared statements and the helpers
//! that every trait implementation shares.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chat_core::{Error, Result};
use futures::TryStreamExt;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency as CqlConsistency, SerialConsistency};

use crate::codec::backend;
use crate::config::{CassandraConfig, Consistency, SerialConsistency as Serial};
use crate::messages::{BucketLimits, RolledForward};
use crate::reconnect::LiveSession;
use crate::schema;
use crate::statements::Statements;

/// chat-core's [`MessageStore`](chat_core::store::MessageStore),
/// [`ConversationStore`](chat_core::store::ConversationStore) and
/// [`AccountStore`](chat_core::store::AccountStore) on Apache Cassandra.
///
/// See the [crate docs](crate) for the tables, the consistency of each
/// operation and what a reader may see after a failure. One store holds one
/// driver session (a connection pool per node), replaced by a new one when
/// no node has been reachable (see the crate docs on recovery), and is meant
/// to be shared behind an `Arc` by the whole process.
pub struct CassandraStore {
    session: LiveSession,
    pub(crate) st: Statements,
    /// When an append starts a new bucket.
    pub(crate) buckets: BucketLimits,
    /// The newest entries this process finished writing, so that the next
    /// append skips checking them (see `messages::roll`).
    pub(crate) rolled: RolledForward,
}

impl fmt::Debug for CassandraStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CassandraStore")
            .field("keyspace", &self.session().get_keyspace())
            .field("reconnects", &self.reconnects())
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

impl CassandraStore {
    /// Connects, creates the keyspace and tables that are missing (waiting
    /// for schema agreement) and prepares every statement.
    ///
    /// [`Error::InvalidInput`] for a bad keyspace name, replication, bucket
    /// size or reconnect interval, [`Error::Unavailable`] when the cluster
    /// cannot be reached. Needs a Tokio runtime, which runs the store's
    /// reconnect watchdog for as long as the store lives.
    pub async fn connect(config: CassandraConfig) -> Result<Self> {
        if !schema::valid_keyspace(&config.keyspace) {
            return Err(Error::invalid(format!(
                "keyspace {:?}: use 1 to 48 letters, digits or '_'",
                config.keyspace
            )));
        }
        let buckets = BucketLimits::new(config.bucket_max_entries, config.bucket_max_bytes)?;
        config.replication.to_cql()?;
        if config.reconnect_interval.is_zero() {
            return Err(Error::invalid("reconnect_interval must be above zero"));
        }
        let profile = ExecutionProfile::builder()
            .consistency(cql_consistency(config.consistency))
            .serial_consistency(Some(cql_serial(config.serial_consistency)))
            .request_timeout(Some(config.request_timeout))
            .build();
        let builder = SessionBuilder::new()
            .known_nodes(&config.contact_points)
            .connection_timeout(config.connect_timeout)
            .default_execution_profile_handle(profile.into_handle())
            // Only our keyspace's metadata is needed (for token-aware routing).
            .keyspaces_to_fetch([config.keyspace.clone()])
            .keepalive_interval(Duration::from_secs(1))
            .keepalive_timeout(config.request_timeout)
            .tls_context(config.tls.clone());
        let builder = match &config.credentials {
            Some(login) => builder.user(&login.username, &login.password),
            None => builder,
        };
        let session = builder.build().await.map_err(backend("connect"))?;
        schema::create(&session, &config).await?;
        // The keyspace did not exist when the session fetched metadata:
        // refresh it so that statements are routed to their replicas.
        session
            .refresh_metadata()
            .await
            .map_err(backend("refresh metadata"))?;
        let mut st = Statements::prepare(&session, &config.keyspace).await?;
        // A read at the serial level sees every committed transaction and
        // finishes one in flight: what a conflict is confirmed with.
        st.head_serial
            .set_consistency(match config.serial_consistency {
                Serial::LocalSerial => CqlConsistency::LocalSerial,
                Serial::Serial => CqlConsistency::Serial,
            });
        // A replacement session waits for a contact point's TCP connect and
        // then fetches metadata with one request.
        let build_timeout = config.connect_timeout + config.request_timeout;
        Ok(Self {
            session: LiveSession::start(session, builder, config.reconnect_interval, build_timeout),
            st,
            buckets,
            rolled: RolledForward::default(),
        })
    }

    /// The driver session for the next request.
    pub(crate) fn session(&self) -> Arc<Session> {
        self.session.get()
    }

    /// How many times the store replaced its driver session because no node
    /// had been reachable (see the crate docs on recovery). For metrics and
    /// tests; 0 while the first session serves.
    pub fn reconnects(&self) -> u64 {
        self.session.replaced()
    }

    /// The readiness probe behind every trait's `ping`: a one-partition read
    /// of one of our tables (any username will do; Cassandra refuses only
    /// an empty key) at the configured consistency, so it fails while no
    /// replica answers and also when the keyspace is gone (a node that came
    /// back empty).
    pub(crate) async fn ping_cluster(&self) -> Result<()> {
        self.run(&self.st.username, ("readiness probe",), "ping")
            .await
            .map(drop)
    }

    /// Runs a statement that returns no rows we need.
    pub(crate) async fn run(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
        what: &'static str,
    ) -> Result<QueryResult> {
        self.session()
            .execute_unpaged(st, values)
            .await
            .map_err(backend(what))
    }

    /// Runs a select and deserializes every row it returns.
    pub(crate) async fn rows<R>(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
        what: &'static str,
    ) -> Result<Vec<R>>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let result = self.run(st, values, what).await?;
        let rows = result.into_rows_result().map_err(backend(what))?;
        let typed = rows.rows::<R>().map_err(backend(what))?;
        typed.collect::<Result<Vec<R>, _>>().map_err(backend(what))
    }

    /// Runs a select through the driver's pager (pages of the statement's
    /// page size, fetched as consumed) and keeps at most `limit` rows.
    pub(crate) async fn paged<R>(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<R>>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Send + 'static,
    {
        let pager = self
            .session()
            .execute_iter(st.clone(), values)
            .await
            .map_err(backend(what))?;
        let mut stream = pager.rows_stream::<R>().map_err(backend(what))?;
        let mut out = Vec::new();
        while out.len() < limit {
            match stream.try_next().await.map_err(backend(what))? {
                Some(row) => out.push(row),
                None => break,
            }
        }
        Ok(out)
    }

    /// Runs statements of one partition, at least one of them conditional,
    /// as one lightweight transaction: every condition must hold, and then
    /// every statement applies (Cassandra's conditional batch). Answers the
    /// transaction's result (`[applied]` and the current values).
    pub(crate) async fn conditional_batch(
        &self,
        statements: Vec<(&PreparedStatement, BoxedRow)>,
        what: &'static str,
    ) -> Result<QueryResult> {
        self.batch(BatchType::Logged, statements, what).await
    }

    /// Runs idempotent writes to one partition as one unlogged batch: a
    /// single mutation for Cassandra (applied together, no batch log, exempt
    /// from the batch size limit), and safe for the driver to retry.
    pub(crate) async fn partition_batch(
        &self,
        statements: Vec<(&PreparedStatement, BoxedRow)>,
        what: &'static str,
    ) -> Result<()> {
        if statements.is_empty() {
            return Ok(());
        }
        self.batch(BatchType::Unlogged, statements, what).await?;
        Ok(())
    }

    async fn batch(
        &self,
        kind: BatchType,
        statements: Vec<(&PreparedStatement, BoxedRow)>,
        what: &'static str,
    ) -> Result<QueryResult> {
        let mut batch = Batch::new(kind);
        batch.set_is_idempotent(statements.iter().all(|(st, _)| st.get_is_idempotent()));
        let mut values = Vec::with_capacity(statements.len());
        for (st, row) in statements {
            batch.append_statement(st.clone());
            values.push(row);
        }
        self.session()
            .batch(&batch, values)
            .await
            .map_err(backend(what))
    }
}

/// One statement's values in a batch of mixed statements.
pub(crate) type BoxedRow = Box<dyn SerializeRow + Send + Sync>;

/// Boxes one statement's values for a batch.
pub(crate) fn row(values: impl SerializeRow + Send + Sync + 'static) -> BoxedRow {
    Box::new(values)
}

fn cql_serial(c: Serial) -> SerialConsistency {
    match c {
        Serial::LocalSerial => SerialConsistency::LocalSerial,
        Serial::Serial => SerialConsistency::Serial,
    }
}

fn cql_consistency(c: Consistency) -> CqlConsistency {
    match c {
        Consistency::One => CqlConsistency::One,
        Consistency::LocalOne => CqlConsistency::LocalOne,
        Consistency::Quorum => CqlConsistency::Quorum,
        Consistency::LocalQuorum => CqlConsistency::LocalQuorum,
        Consistency::All => CqlConsistency::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings that cannot work are refused before any connection is made
    /// (the contact point is a closed port: reaching it would be Unavailable).
    #[tokio::test]
    async fn bad_settings_are_refused_before_connecting() {
        let base = CassandraConfig::new(vec!["127.0.0.1:1".to_owned()], "chat");
        type Spoil = fn(&mut CassandraConfig);
        let cases: [(&str, Spoil); 5] = [
            ("keyspace", |c| c.keyspace = "no-dashes".to_owned()),
            ("bucket_max_entries", |c| c.bucket_max_entries = 0),
            ("bucket_max_bytes", |c| c.bucket_max_bytes = 0),
            ("replication", |c| {
                c.replication = crate::Replication::Simple { factor: 0 };
            }),
            ("reconnect_interval", |c| {
                c.reconnect_interval = Duration::ZERO;
            }),
        ];
        for (what, spoil) in cases {
            let mut config = base.clone();
            spoil(&mut config);
            let err = CassandraStore::connect(config).await.unwrap_err();
            assert_eq!(err.code(), "invalid_input", "{what}: {err}");
            assert!(err.to_string().contains(what), "{what}: {err}");
        }
    }
}
