//! [`CassandraConfig`]: where the cluster is, how the keyspace is
//! replicated, at which consistency the adapter talks to it, and how big a
//! message partition may grow.

use std::time::Duration;

/// The consistency level of ordinary reads and writes (see the crate docs
/// for which statement uses it).
///
/// A copy of the driver's levels that this crate supports, so that callers
/// configure the store without naming a driver type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// One replica answers: fastest; with more than one replica a read may
    /// miss a write acknowledged by another one, which the store's
    /// read-then-write steps (cursors, the append's chain) do not tolerate.
    /// Only for replication factor 1.
    One,
    /// One replica in the local data centre (replication factor 1 only, as
    /// [`Consistency::One`]).
    LocalOne,
    /// A majority of replicas in the whole cluster.
    Quorum,
    /// A majority of replicas in the local data centre: a read sees every
    /// write acknowledged before it in that data centre, while a minority
    /// of its replicas is down. The default: on a single node (replication
    /// factor 1) it is that one replica, and it stays correct when the
    /// keyspace is replicated 3 ways.
    #[default]
    LocalQuorum,
    /// Every replica: fails while any replica is down.
    All,
}

/// The consistency of the Paxos phase of lightweight transactions (the
/// append's head, unique usernames, invites, membership) and of the serial
/// reads that confirm a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SerialConsistency {
    /// Paxos among the replicas of the local data centre (the default):
    /// linearizable within a data centre, which is where one conversation's
    /// appends run.
    #[default]
    LocalSerial,
    /// Paxos among every replica of every data centre: linearizable across
    /// data centres, at the cost of a cross-data-centre round trip per
    /// transaction.
    Serial,
}

/// How the keyspace is replicated when [`CassandraStore::connect`]
/// creates it (an existing keyspace is left as it is).
///
/// [`CassandraStore::connect`]: crate::CassandraStore::connect
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` with this many replicas: one data centre (1 for
    /// tests and a single node).
    Simple {
        /// Replicas of each partition.
        factor: u32,
    },
    /// `NetworkTopologyStrategy`: this many replicas in each named data
    /// centre (as the snitch names them), for production clusters.
    NetworkTopology {
        /// `(data centre, replicas)` pairs.
        datacenters: Vec<(String, u32)>,
    },
}

impl Default for Replication {
    fn default() -> Self {
        Self::Simple { factor: 1 }
    }
}

impl Replication {
    /// The `replication` map of `CREATE KEYSPACE`, or an error naming what
    /// is wrong with it.
    pub(crate) fn to_cql(&self) -> chat_core::Result<String> {
        match self {
            Self::Simple { factor } if *factor > 0 => Ok(format!(
                "{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}"
            )),
            Self::Simple { .. } => Err(chat_core::Error::invalid(
                "a replication factor must be at least 1",
            )),
            Self::NetworkTopology { datacenters } => {
                if datacenters.is_empty() {
                    return Err(chat_core::Error::invalid(
                        "NetworkTopologyStrategy needs at least one data centre",
                    ));
                }
                let mut map = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, factor) in datacenters {
                    let named = !dc.is_empty()
                        && dc
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !named || *factor == 0 {
                        return Err(chat_core::Error::invalid(format!(
                            "data centre {dc:?} with {factor} replicas: use a name of letters, \
                             digits, '_' or '-' and at least 1 replica"
                        )));
                    }
                    map.push_str(&format!(", '{dc}': {factor}"));
                }
                map.push('}');
                Ok(map)
            }
        }
    }
}

/// How [`CassandraStore::connect`](crate::CassandraStore::connect) reaches
/// the cluster and lays out its tables.
#[derive(Clone, Debug)]
pub struct CassandraConfig {
    /// `host:port` addresses of some nodes; the driver discovers the rest.
    pub contact_points: Vec<String>,
    /// The keyspace to create (if missing) and use.
    pub keyspace: String,
    /// How the keyspace is replicated when it is created.
    pub replication: Replication,
    /// Consistency of ordinary reads and writes (default `LOCAL_QUORUM`).
    pub consistency: Consistency,
    /// Consistency of the Paxos phase of lightweight transactions (default
    /// `LOCAL_SERIAL`).
    pub serial_consistency: SerialConsistency,
    /// How long one request may take before it fails with
    /// [`chat_core::Error::Unavailable`].
    pub request_timeout: Duration,
    /// How long to wait for a TCP connection to a node.
    pub connect_timeout: Duration,
    /// A conversation's entries go to a new partition (bucket) once the
    /// current one holds this many (default 10,000). Changing it affects
    /// only buckets started afterwards: each bucket is found through the
    /// conversation's bucket index, never computed.
    pub bucket_max_entries: u32,
    /// ... or once the bodies in the current one reach this many bytes
    /// (default 8 MiB), so that a partition stays around 10 MB even with
    /// large bodies.
    pub bucket_max_bytes: u64,
    /// `gc_grace_seconds` of the tables whose deletes are frequent and whose
    /// deleted rows coming back would be harmless (dedup keys, cursors, the
    /// bucket index): see the crate docs. Default 1 day.
    pub short_gc_grace: Duration,
    /// How often the store checks whether the driver still holds a
    /// connection to some node; while it holds none, the store tries a new
    /// session at this pace (see the crate docs on recovery). Default 1 s.
    pub reconnect_interval: Duration,
    /// TLS to every node, verified with these rustls settings (the node's
    /// certificate must name the address it is reached at). `None` (the
    /// default): plain TCP. [`CassandraConfig::from_url`] asks for it with
    /// `?tls=true`; the caller then fills it in.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Username and password for Cassandra's `PasswordAuthenticator`
    /// (`cassandra://USER:PASSWORD@HOST/KS`); `None`: no login.
    pub credentials: Option<Credentials>,
}

/// A Cassandra login. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The role to log in as.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl CassandraConfig {
    /// A config for one keyspace with the defaults: `SimpleStrategy` with
    /// one replica, `LOCAL_QUORUM` and `LOCAL_SERIAL`, 5 s request and
    /// connect timeouts, buckets of 10,000 entries or 8 MiB, 1 day of gc
    /// grace on the frequently-deleted tables and a 1 s reconnect interval.
    pub fn new(contact_points: Vec<String>, keyspace: impl Into<String>) -> Self {
        Self {
            contact_points,
            keyspace: keyspace.into(),
            replication: Replication::default(),
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            bucket_max_entries: 10_000,
            bucket_max_bytes: 8 << 20,
            short_gc_grace: Duration::from_secs(24 * 3600),
            reconnect_interval: Duration::from_secs(1),
            tls: None,
            credentials: None,
        }
    }

    /// A config with the defaults of [`CassandraConfig::new`] from
    /// `cassandra://[USER:PASSWORD@]host:port[,host:port…]/KEYSPACE[?…]`,
    /// the form a server's `--store` takes. The query may hold `tls=true`
    /// (see [`CassandraConfig::split_tls`]) and `replication=N`
    /// (`SimpleStrategy` with N replicas) or
    /// `replication=DC1:N,DC2:M` (`NetworkTopologyStrategy`), used when the
    /// keyspace is created. The password may hold any character but `?`.
    /// [`chat_core::Error::InvalidInput`] when the URL names no host or no
    /// keyspace, or holds a bad parameter.
    pub fn from_url(url: &str) -> chat_core::Result<Self> {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let (url, _) = Self::split_tls(url)?;
        let credentials = Self::credentials_from_url(&url)?;
        let url = url.as_str();
        let contact_points = Self::contact_points_from_url(url)?;
        let keyspace = url
            .strip_prefix("cassandra://")
            .map(|rest| rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts))
            .and_then(|rest| rest.split_once('/'))
            .map(|(_, keyspace)| keyspace.trim_end_matches('/'))
            .filter(|keyspace| !keyspace.is_empty())
            .ok_or_else(|| {
                chat_core::Error::invalid(format!(
                    "{url:?} names no keyspace: use cassandra://HOST:PORT/KEYSPACE"
                ))
            })?;
        let mut config = Self::new(contact_points, keyspace);
        config.credentials = credentials;
        for pair in query.split('&') {
            if let Some(("replication", value)) = pair.split_once('=') {
                config.replication = Self::replication_from(value)?;
            }
        }
        Ok(config)
    }

    /// `USER:PASSWORD@` of a `cassandra://` URL, if any.
    fn credentials_from_url(url: &str) -> chat_core::Result<Option<Credentials>> {
        let rest = url.strip_prefix("cassandra://").unwrap_or(url);
        let Some((login, _)) = rest.rsplit_once('@') else {
            return Ok(None);
        };
        match login.split_once(':') {
            Some((username, password)) if !username.is_empty() => Ok(Some(Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            })),
            _ => Err(chat_core::Error::invalid(
                "cassandra url: a login is USER:PASSWORD@ before the hosts",
            )),
        }
    }

    /// `N` or `DC1:N,DC2:M` of `?replication=`.
    fn replication_from(value: &str) -> chat_core::Result<Replication> {
        let bad = || {
            chat_core::Error::invalid(format!(
                "cassandra url: replication={value:?}: use a replica count (3) or data \
                 centres and their counts (dc1:3,dc2:3)"
            ))
        };
        if let Ok(factor) = value.parse::<u32>() {
            return Ok(Replication::Simple { factor });
        }
        let datacenters = value
            .split(',')
            .map(|dc| {
                let (name, n) = dc.split_once(':').ok_or_else(bad)?;
                Ok((name.to_owned(), n.parse::<u32>().map_err(|_| bad())?))
            })
            .collect::<chat_core::Result<Vec<_>>>()?;
        let replication = Replication::NetworkTopology { datacenters };
        // Names and counts are checked here, not first at connect.
        replication.to_cql()?;
        Ok(replication)
    }

    /// Takes the query off a `cassandra://` URL: whether it asks for TLS
    /// (`?tls=true`; `?tls=false` or no query: plain TCP). Any other
    /// parameter is refused, so a typo is not silently ignored.
    pub fn split_tls(url: &str) -> chat_core::Result<(String, bool)> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), false));
        };
        let mut tls = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("tls", "true")) => tls = true,
                Some(("tls", "false")) => tls = false,
                // Read by `from_url`.
                Some(("replication", _)) => {}
                _ => {
                    return Err(chat_core::Error::invalid(format!(
                        "cassandra url: unknown parameter {pair:?} (tls=true|false, replication=…)"
                    )));
                }
            }
        }
        Ok((base.to_owned(), tls))
    }

    /// Parses `cassandra://host:port[,host:port…]` (the form that
    /// `scripts/services up cassandra` prints) into contact points; a
    /// `/KEYSPACE` after them is ignored.
    pub fn contact_points_from_url(url: &str) -> chat_core::Result<Vec<String>> {
        let rest = url.strip_prefix("cassandra://").ok_or_else(|| {
            chat_core::Error::invalid(format!("{url:?} does not start with cassandra://"))
        })?;
        let rest = rest.split_once('?').map_or(rest, |(rest, _)| rest);
        // After a login, if any (its password may hold '/' or '@').
        let rest = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
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
    fn tls_is_asked_for_in_the_query_and_other_parameters_are_refused() {
        let (base, tls) = CassandraConfig::split_tls("cassandra://h:9142/ks?tls=true").unwrap();
        assert_eq!((base.as_str(), tls), ("cassandra://h:9142/ks", true));
        let (_, tls) = CassandraConfig::split_tls("cassandra://h:9042/ks").unwrap();
        assert!(!tls);
        let (_, tls) = CassandraConfig::split_tls("cassandra://h/ks?tls=false").unwrap();
        assert!(!tls);
        let err = CassandraConfig::split_tls("cassandra://h/ks?tsl=true").unwrap_err();
        assert!(err.to_string().contains("tsl=true"), "{err}");
        let config = CassandraConfig::from_url("cassandra://h:9142/ks?tls=true").unwrap();
        assert_eq!(config.keyspace, "ks");
        assert_eq!(config.contact_points, ["h:9142"]);
        assert_eq!(
            CassandraConfig::contact_points_from_url("cassandra://a:1,b:2?tls=true").unwrap(),
            ["a:1", "b:2"]
        );
    }

    #[test]
    fn logins_and_replication_come_from_the_url() {
        let config =
            CassandraConfig::from_url("cassandra://chat:p@ss/w:rd@a:1,b:2/ks?tls=true").unwrap();
        assert_eq!(config.contact_points, ["a:1", "b:2"]);
        assert_eq!(config.keyspace, "ks");
        let login = config.credentials.unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("chat", "p@ss/w:rd")
        );
        assert!(!format!("{login:?}").contains("p@ss"));
        assert_eq!(
            CassandraConfig::from_url("cassandra://a/ks")
                .unwrap()
                .credentials,
            None
        );
        assert!(CassandraConfig::from_url("cassandra://nopassword@a/ks").is_err());

        let config = CassandraConfig::from_url("cassandra://a/ks?replication=3").unwrap();
        assert_eq!(config.replication, Replication::Simple { factor: 3 });
        let config =
            CassandraConfig::from_url("cassandra://a/ks?tls=true&replication=dc1:3,dc-2:2")
                .unwrap();
        assert_eq!(
            config.replication,
            Replication::NetworkTopology {
                datacenters: vec![("dc1".into(), 3), ("dc-2".into(), 2)]
            }
        );
        for bad in ["dc1", "dc1:x", "dc 1:3", "dc1:0", ""] {
            let url = format!("cassandra://a/ks?replication={bad}");
            assert!(CassandraConfig::from_url(&url).is_err(), "{bad}");
        }
    }

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

    #[test]
    fn replication_maps() {
        assert_eq!(
            Replication::Simple { factor: 3 }.to_cql().unwrap(),
            "{'class': 'SimpleStrategy', 'replication_factor': 3}"
        );
        assert_eq!(
            Replication::NetworkTopology {
                datacenters: vec![("dc1".into(), 3), ("eu-west".into(), 2)]
            }
            .to_cql()
            .unwrap(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'eu-west': 2}"
        );
        assert!(Replication::Simple { factor: 0 }.to_cql().is_err());
        assert!(
            Replication::NetworkTopology {
                datacenters: vec![]
            }
            .to_cql()
            .is_err()
        );
        assert!(
            Replication::NetworkTopology {
                datacenters: vec![("dc'1".into(), 3)]
            }
            .to_cql()
            .is_err(),
            "a quote in a data centre name is refused, not spliced into CQL"
        );
        assert!(
            Replication::NetworkTopology {
                datacenters: vec![("dc1".into(), 0)]
            }
            .to_cql()
            .is_err()
        );
    }
}
