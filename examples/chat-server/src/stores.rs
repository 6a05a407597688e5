//! Store selection from `--store`: the one place that knows every backend.

use std::sync::Arc;

use chat_cluster_redis::{RedisCluster, RedisOptions};
use chat_core::Retention;
use chat_core::engine::EngineBuilder;
use chat_store_cassandra::{CassandraConfig, CassandraStore};

use crate::config::Config;
use crate::error::ServerError;

/// Gives `builder` the store that `url` names. `memory` keeps the engine's
/// in-memory default; `postgres://…` and `cassandra://…` open those backends
/// (creating their schema when missing).
pub async fn with_store(
    builder: EngineBuilder,
    url: &str,
    _retention: Retention,
) -> Result<EngineBuilder, ServerError> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        _ if url == "memory" => Ok(builder),
        Some("postgres" | "postgresql") => Err(ServerError::StoreNotBuilt("postgres")),
        Some("cassandra") => {
            let config = CassandraConfig::from_url(url)?;
            Ok(builder.store(Arc::new(CassandraStore::connect(config).await?)))
        }
        _ => Err(ServerError::UnknownStore(url.to_owned())),
    }
}

/// The store as the readiness line names it (no password in logs).
pub fn store_label(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}

/// Gives `builder` the cluster parts (bus, presence, discovery) that
/// `--cluster` names (`redis://…`, keys under `--cluster-prefix`, this node
/// named by [`Config::node_name`]); without it the engine's one-node
/// defaults stay.
pub async fn with_cluster(
    builder: EngineBuilder,
    config: &Config,
) -> Result<EngineBuilder, ServerError> {
    let Some(url) = config.cluster.as_deref() else {
        return Ok(builder);
    };
    if !matches!(url.split_once("://"), Some(("redis" | "rediss", _))) {
        return Err(ServerError::UnknownCluster(url.to_owned()));
    }
    let options = RedisOptions::with_prefix(config.cluster_prefix.clone());
    let cluster = RedisCluster::connect(url, options)
        .await
        .map_err(ServerError::Cluster)?;
    let node = config.node_name();
    let bus = cluster
        .bus(node.clone())
        .await
        .map_err(ServerError::Cluster)?;
    Ok(builder
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
    async fn unknown_and_unbuilt_stores_are_named() {
        let err = with_store(Engine::builder(), "postgres://x", Retention::Forever)
            .await
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "postgres store not built yet");
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

    #[tokio::test]
    async fn only_redis_clusters_are_known() {
        let config = Config {
            cluster: Some("memcached://x".into()),
            ..Config::default()
        };
        let err = with_cluster(Engine::builder(), &config)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown cluster"), "{err}");
        let config = Config {
            cluster: Some("redis://".into()),
            ..Config::default()
        };
        let err = with_cluster(Engine::builder(), &config)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("cluster: "), "{err}");
        assert!(
            with_cluster(Engine::builder(), &Config::default())
                .await
                .is_ok()
        );
    }
}
