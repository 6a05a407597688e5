//! Store selection from `--store`: the one place that knows every backend.

use std::sync::Arc;

#[cfg(feature = "redis")]
use chat_cluster_redis::{RedisCluster, RedisOptions};
use chat_core::Retention;
#[cfg(feature = "redis")]
use chat_core::cluster::NodeIds;
use chat_core::engine::EngineBuilder;
use chat_core::memory::MemoryStore;
use chat_core::observe::Observer;
use chat_core::store::{AccountStore, ConversationStore, MessageStore, Observed};
#[cfg(feature = "cassandra")]
use chat_store_cassandra::{CassandraConfig, CassandraStore};
#[cfg(feature = "postgres")]
use chat_store_postgres::{PostgresConfig, PostgresStore, TlsConfig};
#[cfg(feature = "sqlite")]
use chat_store_sqlite::{SqliteConfig, SqliteStore};

use crate::config::{Config, redact_url};
use crate::error::ServerError;

/// The store a server without `--store` uses: a SQLite file under
/// `./chat-data/`, so a newcomer's accounts and messages survive a restart
/// with no server to install. Builds without SQLite keep memory.
#[cfg(feature = "sqlite")]
pub const DEFAULT_STORE: &str = chat_store_sqlite::DEFAULT_URL;
/// The store a server without `--store` uses (this build has no SQLite).
#[cfg(not(feature = "sqlite"))]
pub const DEFAULT_STORE: &str = "memory";

/// Gives `builder` the store that `url` names. `memory` keeps the engine's
/// in-memory default (nothing survives a restart: for tests);
/// `sqlite://PATH`, `postgres://…` and `cassandra://…` open those backends
/// (creating their schema when missing). A `postgres://` URL may name the
/// schema to work in with a `schema` query parameter (default `public`),
/// which PostgreSQL's own URL syntax has no place for.
pub async fn with_store(
    builder: EngineBuilder,
    url: &str,
    _retention: Retention,
    backends: &Backends,
) -> Result<EngineBuilder, ServerError> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        _ if url == "memory" => {
            Ok(backends.observed(builder, Arc::new(MemoryStore::default()), "memory"))
        }
        #[cfg(feature = "sqlite")]
        Some("sqlite") => {
            let store = SqliteStore::connect(SqliteConfig::from_url(url)?).await?;
            tracing::info!(path = %store.path().display(), "SQLite store open");
            Ok(backends.observed(builder, Arc::new(store), "sqlite"))
        }
        #[cfg(feature = "postgres")]
        Some("postgres" | "postgresql") => {
            let (url, schema) = split_schema(url);
            let (url, tls) = postgres_tls_mode(&url);
            let config = PostgresConfig {
                schema: schema.unwrap_or_else(|| PostgresConfig::default().schema),
                tls: match tls {
                    true => Some(TlsConfig(backends.client_tls()?)),
                    false => None,
                },
                ..PostgresConfig::default()
            };
            let store = PostgresStore::connect_with(&url, config).await?;
            Ok(backends.observed(builder, Arc::new(store), "postgres"))
        }
        #[cfg(feature = "cassandra")]
        Some("cassandra") => {
            let mut config = CassandraConfig::from_url(url)?;
            if CassandraConfig::split_tls(url)?.1 {
                config.tls = Some(backends.client_tls()?);
            }
            let store = CassandraStore::connect(config).await?;
            Ok(backends.observed(builder, Arc::new(store), "cassandra"))
        }
        _ => Err(ServerError::UnknownStore(redact_url(url))),
    }
}

/// What every backend connection shares: TLS trust (`--backend-ca` and the
/// system's store) and the metrics observer that store calls report to.
#[derive(Clone, Default)]
pub struct Backends {
    /// PEM CA certificates of `--backend-ca`.
    pub ca_pem: Option<Vec<u8>>,
    /// Where store calls are reported (none: not observed).
    pub observer: Option<Arc<dyn Observer>>,
}

impl Backends {
    /// From `--backend-ca`, reporting to `observer`.
    pub fn from_config(
        config: &Config,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Self, ServerError> {
        let ca_pem = match &config.ops.backend_ca {
            Some(path) => Some(crate::tls::backend_ca_pem(path)?),
            None => None,
        };
        Ok(Self { ca_pem, observer })
    }

    /// rustls client settings for a backend that asked for TLS.
    pub fn client_tls(&self) -> Result<Arc<rustls::ClientConfig>, ServerError> {
        crate::tls::backend_client_config(self.ca_pem.as_deref())
    }

    /// `builder` with `store`, its calls reported as `backend` when there
    /// is an observer.
    fn observed<S>(&self, builder: EngineBuilder, store: Arc<S>, backend: &str) -> EngineBuilder
    where
        S: MessageStore + ConversationStore + AccountStore,
    {
        match &self.observer {
            Some(observer) => {
                builder.store(Arc::new(Observed::new(store, observer.clone(), backend)))
            }
            None => builder.store(store),
        }
    }
}

#[cfg(feature = "postgres")]
/// libpq's `sslmode=verify-full` and `verify-ca` as the driver knows them
/// (`require`, which here always verifies the certificate and the name),
/// and whether the URL asks for TLS.
fn postgres_tls_mode(url: &str) -> (String, bool) {
    let url = url
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let tls = url.contains("sslmode=require");
    (url, tls)
}

#[cfg(feature = "postgres")]
/// Takes the `schema` query parameter out of a `postgres://` URL: the
/// driver refuses parameters it does not know. Returns the URL without it
/// and the schema, if one was named (checked when the store connects).
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some(("schema", value)) => {
                schema = Some(value.to_owned());
                false
            }
            _ => !pair.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

/// The store as the readiness line names it (no password in logs).
pub fn store_label(url: &str) -> String {
    redact_url(url)
}

/// Gives `builder` this node's id and the cluster parts (id lease, bus,
/// presence, discovery) that `--cluster` names (`redis://…`, keys under
/// `--cluster-prefix`). In a cluster the node claims `--node-id` (refused
/// while another live node holds it) or, without it, a free id, with
/// `public_url` as its holder's name; the node is named `node-N` after it.
/// Without `--cluster` the engine's one-node defaults stay, with worker id
/// `--node-id` (default 0).
pub async fn with_cluster(
    builder: EngineBuilder,
    config: &Config,
    public_url: &str,
    backends: &Backends,
) -> Result<EngineBuilder, ServerError> {
    let Some(url) = config.cluster.as_deref() else {
        return Ok(builder.worker_id(config.node_id.unwrap_or(0)));
    };
    if !matches!(url.split_once("://"), Some(("redis" | "rediss", _))) {
        return Err(ServerError::UnknownCluster(redact_url(url)));
    }
    redis_cluster(builder, config, url, public_url, backends).await
}

/// This build leaves Redis out (`--no-default-features` without `redis`).
#[cfg(not(feature = "redis"))]
async fn redis_cluster(
    _builder: EngineBuilder,
    _config: &Config,
    url: &str,
    _public_url: &str,
    _backends: &Backends,
) -> Result<EngineBuilder, ServerError> {
    Err(ServerError::UnknownCluster(format!(
        "{} (this build has no Redis support: build with the `redis` feature)",
        redact_url(url)
    )))
}

/// Joins the cluster in the Redis at `url`.
#[cfg(feature = "redis")]
async fn redis_cluster(
    builder: EngineBuilder,
    config: &Config,
    url: &str,
    public_url: &str,
    backends: &Backends,
) -> Result<EngineBuilder, ServerError> {
    let options = RedisOptions {
        tls_root_ca: backends.ca_pem.clone(),
        ..RedisOptions::with_prefix(config.cluster_prefix.clone())
    };
    let cluster = RedisCluster::connect(url, options)
        .await
        .map_err(ServerError::Cluster)?;
    let lease_ms = config.limits().id_lease.as_millis() as i64;
    let lease = match cluster
        .node_ids()
        .claim(config.node_id, public_url, lease_ms)
        .await
    {
        Ok(lease) => lease,
        Err(e @ chat_core::Error::AlreadyExists { .. }) => {
            return Err(ServerError::NodeIdInUse(e));
        }
        Err(e) => return Err(ServerError::Cluster(e)),
    };
    let node = chat_core::NodeId::from(format!("node-{}", lease.worker_id()));
    if config.node_id.is_none() {
        tracing::info!(
            worker_id = lease.worker_id(),
            "no --node-id: claimed the free id {} in the cluster; this node is {node}",
            lease.worker_id()
        );
    }
    let bus = cluster
        .bus(node.clone())
        .await
        .map_err(ServerError::Cluster)?;
    Ok(builder
        .lease(Arc::from(lease))
        .node_name(node)
        .bus(Arc::new(bus))
        .presence(Arc::new(cluster.presence()))
        .discovery(Arc::new(cluster.discovery())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::engine::Engine;

    #[tokio::test]
    async fn unknown_stores_are_named() {
        let err = with_store(
            Engine::builder(),
            "mysql://x",
            Retention::Forever,
            &Backends::default(),
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("unknown store"));
        assert!(
            with_store(
                Engine::builder(),
                "memory",
                Retention::Forever,
                &Backends::default()
            )
            .await
            .is_ok()
        );
        assert_eq!(
            store_label("postgres://u:pw@db:5432/chat"),
            "postgres://db:5432/chat"
        );
    }

    #[test]
    fn the_schema_parameter_leaves_the_postgres_url() {
        let cases = [
            ("postgres://u:p@h:5432/db", "postgres://u:p@h:5432/db", None),
            (
                "postgres://u:p@h/db?schema=chat",
                "postgres://u:p@h/db",
                Some("chat"),
            ),
            (
                "postgres://h/db?sslmode=disable&schema=t_1&connect_timeout=3",
                "postgres://h/db?sslmode=disable&connect_timeout=3",
                Some("t_1"),
            ),
            (
                "postgres://h/db?application_name=x",
                "postgres://h/db?application_name=x",
                None,
            ),
        ];
        for (url, base, schema) in cases {
            assert_eq!(
                split_schema(url),
                (base.to_owned(), schema.map(str::to_owned)),
                "{url}"
            );
        }
    }

    #[test]
    fn libpq_ssl_modes_map_to_what_the_driver_knows() {
        assert_eq!(
            postgres_tls_mode("postgres://h/db?sslmode=verify-full"),
            ("postgres://h/db?sslmode=require".to_owned(), true)
        );
        assert_eq!(
            postgres_tls_mode("postgres://h/db?sslmode=verify-ca&x=1"),
            ("postgres://h/db?sslmode=require&x=1".to_owned(), true)
        );
        assert!(postgres_tls_mode("postgres://h/db?sslmode=require").1);
        assert!(!postgres_tls_mode("postgres://h/db?sslmode=disable").1);
        assert!(!postgres_tls_mode("postgres://h/db").1);
    }

    #[tokio::test]
    async fn a_bad_schema_name_is_refused_before_connecting() {
        let err = with_store(
            Engine::builder(),
            "postgres://127.0.0.1:1/chat?schema=Bad-Name",
            Retention::Forever,
            &Backends::default(),
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("schema name"), "{err}");
    }

    #[tokio::test]
    async fn only_redis_clusters_are_known() {
        let config = Config {
            cluster: Some("memcached://x".into()),
            ..Config::default()
        };
        let err = with_cluster(
            Engine::builder(),
            &config,
            "ws://x/ws",
            &Backends::default(),
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("unknown cluster"), "{err}");
        let config = Config {
            cluster: Some("redis://".into()),
            ..Config::default()
        };
        let err = with_cluster(
            Engine::builder(),
            &config,
            "ws://x/ws",
            &Backends::default(),
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().starts_with("cluster: "), "{err}");
        assert!(
            with_cluster(
                Engine::builder(),
                &Config::default(),
                "ws://x/ws",
                &Backends::default()
            )
            .await
            .is_ok()
        );
    }
}
