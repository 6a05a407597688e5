//! [`PostgresConfig`]: pool, timeouts, schema and group commit.

use std::sync::Arc;
use std::time::Duration;

use chat_core::{Error, Result};

/// How a [`PostgresStore`](crate::PostgresStore) connects and writes.
///
/// ```
/// use std::time::Duration;
/// use chat_store_postgres::PostgresConfig;
///
/// let config = PostgresConfig {
///     schema: "chat".into(),
///     statement_timeout: Duration::from_secs(2),
///     ..PostgresConfig::default()
/// };
/// assert_eq!(config.pool_size, 16);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// Connections in the pool, at most (opened on demand). The group-commit
    /// batcher uses up to [`batch_inflight`](Self::batch_inflight) of them.
    pub pool_size: usize,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long one statement may run, enforced by the server
    /// (`statement_timeout`), which cancels it: a statement that timed out
    /// wrote nothing. Waiting for a pooled connection is bounded by it too.
    /// The client gives up on a reply one second after this (a server that
    /// no longer answers at all) and drops that connection.
    pub statement_timeout: Duration,
    /// The schema that holds the tables; created when missing. Lowercase
    /// ASCII letters, digits and `_`, starting with a letter or `_`, at most
    /// 63 bytes.
    pub schema: String,
    /// Appends written in one group-commit statement, at most.
    pub batch_max: usize,
    /// How long the batcher waits for more appends once it has one and a
    /// free slot. Zero (the default) writes at once: under load, batches
    /// form by themselves from what queues while earlier batches are in
    /// flight.
    pub batch_linger: Duration,
    /// Group-commit statements in flight at once (each on its own
    /// connection).
    pub batch_inflight: usize,
    /// Whether a batch is first written with the set-based statement (one
    /// statement for the whole batch, about the cost of a bulk insert), as
    /// by default. With `false` every batch is written by the
    /// `append_entries` function, which takes its appends one by one
    /// (several statements each): same answers, slower; for comparison and
    /// diagnosis (see the crate docs).
    pub set_based_appends: bool,
    /// How long creating or upgrading the schema may take at `connect`
    /// (instead of `statement_timeout`): an upgrade rewrites tables, which
    /// takes minutes on a large database. Processes that start meanwhile
    /// wait for it, up to this long.
    pub migration_timeout: Duration,
    /// TLS for connections whose URL says `sslmode=require`: the server's
    /// certificate is verified against these roots and its name (as libpq's
    /// `verify-full` does). `None` (the default): such a URL fails to
    /// connect. Other URLs connect over plain TCP whatever this holds.
    pub tls: Option<TlsConfig>,
}

/// A rustls client configuration for [`PostgresConfig::tls`]; two are
/// equal when they are the same object.
#[derive(Clone)]
pub struct TlsConfig(pub Arc<rustls::ClientConfig>);

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsConfig {}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn", &self.0.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            schema: "public".to_owned(),
            batch_max: 256,
            batch_linger: Duration::ZERO,
            batch_inflight: 2,
            set_based_appends: true,
            migration_timeout: Duration::from_secs(3600),
            tls: None,
        }
    }
}

impl PostgresConfig {
    /// Checks the values that would otherwise fail late or inject SQL.
    pub(crate) fn validate(&self) -> Result<()> {
        if !valid_schema(&self.schema) {
            return Err(Error::invalid(format!(
                "schema name {:?}: use lowercase ASCII letters, digits and '_', starting with a letter or '_', at most 63 bytes",
                self.schema
            )));
        }
        if self.pool_size == 0 || self.batch_max == 0 || self.batch_inflight == 0 {
            return Err(Error::invalid(
                "pool_size, batch_max and batch_inflight must be at least 1",
            ));
        }
        if self.batch_inflight > self.pool_size {
            return Err(Error::invalid(
                "batch_inflight cannot exceed pool_size: each batch in flight holds a connection",
            ));
        }
        if self.statement_timeout.is_zero()
            || self.connect_timeout.is_zero()
            || self.migration_timeout.is_zero()
        {
            return Err(Error::invalid("timeouts must be above zero"));
        }
        Ok(())
    }

    /// How long the client waits for any one reply before it calls the
    /// server unreachable.
    pub(crate) fn reply_deadline(&self) -> Duration {
        self.statement_timeout + Duration::from_secs(1)
    }
}

/// Whether `name` is a schema name that needs no quoting: it goes into the
/// connection's `search_path` option and into DDL.
fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 63
        && (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_that_need_no_quoting() {
        for ok in ["public", "chat", "t_0123abcd", "_x"] {
            assert!(valid_schema(ok), "{ok} is valid");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "Chat",
            "1abc",
            "a-b",
            "a b",
            "a;drop",
            "a\"b",
            long.as_str(),
        ] {
            assert!(!valid_schema(bad), "{bad:?} is not valid");
        }
    }

    #[test]
    fn validate_rejects_what_cannot_work() {
        assert!(PostgresConfig::default().validate().is_ok());
        let bad = PostgresConfig {
            batch_inflight: 17,
            ..PostgresConfig::default()
        };
        assert!(matches!(bad.validate(), Err(Error::InvalidInput { .. })));
        let bad = PostgresConfig {
            statement_timeout: Duration::ZERO,
            ..PostgresConfig::default()
        };
        assert!(matches!(bad.validate(), Err(Error::InvalidInput { .. })));
        let bad = PostgresConfig {
            migration_timeout: Duration::ZERO,
            ..PostgresConfig::default()
        };
        assert!(matches!(bad.validate(), Err(Error::InvalidInput { .. })));
    }
}
