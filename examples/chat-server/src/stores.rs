//! Store selection from `--store`: the one place that knows every backend.

use std::sync::Arc;

use chat_cluster_redis::{RedisCluster, RedisOptions};
use chat_core::cluster::NodeIds;
use chat_core::engine::EngineBuilder;
use chat_core::{NodeId, Retention};
use chat_store_cassandra::{CassandraConfig, CassandraStore};
use chat_store_postgres::{PostgresConfig, PostgresStore};

use crate::config::{Config, redact_url};
use crate::error::ServerError;

/// Gives `builder` the store that `url` names. `memory` keeps the engine's
/// in-memory default; `postgres://…` and `cassandra://…` open those backends
/// (creating their schema when missing). A `postgres://` URL may name the
/// schema to work in with a `schema` query parameter (default `public`),
/// which PostgreSQL's own URL syntax has no place for.
pub async fn with_store(
    builder: EngineBuilder,
    url: &str,
    _retention: Retention,
) -> Result<EngineBuilder, ServerError> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        _ if url == "memory" => Ok(builder),
        Some("postgres" | "postgresql") => {
            let (url, schema) = split_schema(url);
            let config = PostgresConfig {
                schema: schema.unwrap_or_else(|| PostgresConfig::default().schema),
                ..PostgresConfig::default()
            };
            let store = PostgresStore::connect_with(&url, config).await?;
            Ok(builder.store(Arc::new(store)))
        }
        Some("cassandra") => {
            let config = CassandraConfig::from_url(url)?;
            Ok(builder.store(Arc::new(CassandraStore::connect(config).await?)))
        }
        _ => Err(ServerError::UnknownStore(redact_url(url))),
    }
}

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
) -> Result<EngineBuilder, ServerError> {
    let Some(url) = config.cluster.as_deref() else {
        return Ok(builder.worker_id(config.node_id.unwrap_or(0)));
    };
    if !matches!(url.split_once("://"), Some(("redis" | "rediss", _))) {
        return Err(ServerError::UnknownCluster(redact_url(url)));
    }
    let options = RedisOptions::with_prefix(config.cluster_prefix.clone());
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
    let node = NodeId::from(format!("node-{}", lease.worker_id()));
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
        let err = with_store(Engine::builder(), "mysql://x", Retention::Forever)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown store"));
        assert!(
            with_store(Engine::builder(), "memory", Retention::Forever)
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

    #[tokio::test]
    async fn a_bad_schema_name_is_refused_before_connecting() {
        let err = with_store(
            Engine::builder(),
            "postgres://127.0.0.1:1/chat?schema=Bad-Name",
            Retention::Forever,
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
        let err = with_cluster(Engine::builder(), &config, "ws://x/ws")
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown cluster"), "{err}");
        let config = Config {
            cluster: Some("redis://".into()),
            ..Config::default()
        };
        let err = with_cluster(Engine::builder(), &config, "ws://x/ws")
            .await
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("cluster: "), "{err}");
        assert!(
            with_cluster(Engine::builder(), &Config::default(), "ws://x/ws")
                .await
                .is_ok()
        );
    }
}
