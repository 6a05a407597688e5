//! [`CassandraConfig`]: where the cluster is and how the adapter talks to it.

use std::time::Duration;

use chat_core::id::DEFAULT_BUCKET_MS;

/// The consistency level of ordinary reads and writes (lightweight
/// transactions always use `LOCAL_SERIAL` for their Paxos phase).
///
/// A copy of the driver's levels that this crate supports, so that callers
/// configure the store without naming a driver type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// One replica answers: fastest, may read stale data.
    One,
    /// A majority of replicas in the whole cluster.
    Quorum,
    /// A majority of replicas in the local data centre: read-your-writes
    /// within a data centre while a minority of its replicas is down.
    #[default]
    LocalQuorum,
    /// Every replica: fails while any replica is down.
    All,
}

/// How [`CassandraStore::connect`](crate::CassandraStore::connect) reaches
/// the cluster and lays out its tables.
#[derive(Clone, Debug)]
pub struct CassandraConfig {
    /// `host:port` addresses of some nodes; the driver discovers the rest.
    pub contact_points: Vec<String>,
    /// The keyspace to create (if missing) and use.
    pub keyspace: String,
    /// Replication factor of `SimpleStrategy` when the keyspace is created
    /// (1 in tests, 3 in production). An existing keyspace is left as it is.
    pub replication_factor: u32,
    /// Consistency of ordinary reads and writes (default `LOCAL_QUORUM`).
    pub consistency: Consistency,
    /// How long one request may take before it fails with
    /// [`chat_core::Error::Unavailable`].
    pub request_timeout: Duration,
    /// How long to wait for a TCP connection to a node.
    pub connect_timeout: Duration,
    /// Width of a message partition's time bucket in milliseconds
    /// ([`chat_core::id::DEFAULT_BUCKET_MS`], 10 days, by default). Fixed
    /// for the life of a keyspace: changing it hides stored messages.
    pub bucket_ms: u64,
    /// `gc_grace_seconds` of the three pending-delivery tables, whose rows
    /// are deleted at every ack (see the crate docs for the trade-off).
    pub delivery_gc_grace: Duration,
    /// Optional TTL of pending deliveries: an undelivered message stops
    /// being pending after this long (see the crate docs). `None` keeps
    /// pending deliveries until they are acked, as the trait promises.
    pub pending_ttl: Option<Duration>,
    /// How often the store checks whether the driver still holds a
    /// connection to some node; while it holds none, the store tries a new
    /// session at this pace (see the crate docs on recovery). Default 1 s.
    pub reconnect_interval: Duration,
}

impl CassandraConfig {
    /// A config for one keyspace with the defaults: replication factor 1,
    /// `LOCAL_QUORUM`, 5 s request and connect timeouts, 10-day buckets, 1 h
    /// gc grace on the delivery tables, no pending TTL and a 1 s reconnect
    /// interval.
    pub fn new(contact_points: Vec<String>, keyspace: impl Into<String>) -> Self {
        Self {
            contact_points,
            keyspace: keyspace.into(),
            replication_factor: 1,
            consistency: Consistency::LocalQuorum,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            bucket_ms: DEFAULT_BUCKET_MS,
            delivery_gc_grace: Duration::from_secs(3600),
            pending_ttl: None,
            reconnect_interval: Duration::from_secs(1),
        }
    }

    /// A config with the defaults of [`CassandraConfig::new`] from
    /// `cassandra://host:port[,host:port…]/KEYSPACE`, the form a server's
    /// `--store` takes. [`chat_core::Error::InvalidInput`] when the URL names
    /// no host or no keyspace.
    pub fn from_url(url: &str) -> chat_core::Result<Self> {
        let contact_points = Self::contact_points_from_url(url)?;
        let keyspace = url
            .strip_prefix("cassandra://")
            .and_then(|rest| rest.split_once('/'))
            .map(|(_, keyspace)| keyspace.trim_end_matches('/'))
            .filter(|keyspace| !keyspace.is_empty())
            .ok_or_else(|| {
                chat_core::Error::invalid(format!(
                    "{url:?} names no keyspace: use cassandra://HOST:PORT/KEYSPACE"
                ))
            })?;
        Ok(Self::new(contact_points, keyspace))
    }

    /// Parses `cassandra://host:port[,host:port…]` (the form that
    /// `scripts/services up cassandra` prints) into contact points; a
    /// `/KEYSPACE` after them is ignored.
    pub fn contact_points_from_url(url: &str) -> chat_core::Result<Vec<String>> {
        let rest = url.strip_prefix("cassandra://").ok_or_else(|| {
            chat_core::Error::invalid(format!("{url:?} does not start with cassandra://"))
        })?;
        let hosts = rest.split_once('/').map_or(rest, |(hosts, _)| hosts);
        let points: Vec<String> = hosts
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if points.is_empty() {
            return Err(chat_core::Error::invalid(format!("{url:?} names no host")));
        }
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_urls() {
        assert_eq!(
            CassandraConfig::contact_points_from_url("cassandra://127.0.0.1:9042").unwrap(),
            vec!["127.0.0.1:9042".to_owned()]
        );
        assert_eq!(
            CassandraConfig::contact_points_from_url("cassandra://a:1,b:2/").unwrap(),
            vec!["a:1".to_owned(), "b:2".to_owned()]
        );
        assert!(CassandraConfig::contact_points_from_url("redis://x").is_err());
        assert!(CassandraConfig::contact_points_from_url("cassandra://").is_err());
        assert!(CassandraConfig::contact_points_from_url("cassandra:///chat").is_err());
    }

    #[test]
    fn parses_store_urls_with_a_keyspace() {
        let config = CassandraConfig::from_url("cassandra://a:1,b:2/chat_prod").unwrap();
        assert_eq!(
            config.contact_points,
            vec!["a:1".to_owned(), "b:2".to_owned()]
        );
        assert_eq!(config.keyspace, "chat_prod");
        assert_eq!(
            CassandraConfig::from_url("cassandra://a:1/chat/")
                .unwrap()
                .keyspace,
            "chat"
        );
        assert!(CassandraConfig::from_url("cassandra://a:1").is_err());
        assert!(CassandraConfig::from_url("cassandra://a:1/").is_err());
        assert!(CassandraConfig::from_url("cassandra:///chat").is_err());
    }
}
