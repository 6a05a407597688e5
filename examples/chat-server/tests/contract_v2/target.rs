//! The stores the suite runs on, and what it takes to start a server on
//! each: in this process for one node (with write budgets and connection
//! caps off: the scenarios run at once from one address), two chat-server
//! processes for the cluster. Each target cleans up after itself: the
//! PostgreSQL schema and the Cassandra keyspace are dropped, the SQLite file
//! lives in a temporary directory.

use std::io::Write;

use chat_core::Retention;
use chat_server::Config;
use chat_server::config::{Protection, retention_name};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

use crate::client::Env;
use crate::cluster_harness::{self, Launch, Node};
use crate::common::TestServer;

/// A store the suite runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The in-memory store.
    Memory,
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// PostgreSQL (`CHAT_TEST_POSTGRES_URL`), a fresh schema.
    Postgres,
    /// Cassandra (`CHAT_TEST_CASSANDRA_URL`), a fresh keyspace.
    Cassandra,
    /// Two nodes on Redis (`CHAT_TEST_REDIS_URL`) and a PostgreSQL schema.
    Cluster,
}

const REQUIRE_VAR: &str = "CHAT_TEST_REQUIRE_SERVICES";

/// Says what is skipped and why (or fails under CHAT_TEST_REQUIRE_SERVICES=1).
fn skip<T>(what: &str, why: &str) -> Option<T> {
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!("{REQUIRE_VAR}=1 but {why}");
    }
    // Straight to stderr: libtest captures eprintln! of a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED contract_v2 on {what}: {why}");
    None
}

/// The configuration of an in-process node: fast hashing, a fixed secret,
/// no budgets or connection caps, and room for bursts of sign-ups (the
/// scenarios make their users at once).
pub fn open_config(store: String, retention: Retention) -> Config {
    Config {
        store,
        retention,
        protection: Protection {
            user_rate: 0.0,
            addr_rate: 0.0,
            max_connections_per_addr: 0,
            max_sockets_per_user: 0,
            hash_queue: 10_000,
            ..Protection::default()
        },
        ..TestServer::config()
    }
}

/// A started target: the servers and what must outlive them.
pub struct Running {
    servers: Vec<TestServer>,
    /// Dropped after the servers stop: the schema guard, the keyspace, the
    /// SQLite directory, the node processes.
    _keep: Vec<Box<dyn std::any::Any + Send>>,
    keyspace: Option<Keyspace>,
}

impl Running {
    /// Stops the servers, then drops what they used.
    pub async fn stop(mut self) {
        for server in self.servers.drain(..) {
            server.stop().await;
        }
        if let Some(keyspace) = self.keyspace.take() {
            keyspace.drop_now().await;
        }
    }
}

impl Store {
    /// The store's name in test output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Cassandra => "cassandra",
            Self::Cluster => "cluster",
        }
    }

    /// Starts a server (two nodes for the cluster) on this store: what the
    /// scenarios talk to, and what to stop after them. `None` after saying
    /// what is skipped when its service is not configured.
    pub async fn start(self, retention: Retention) -> Option<(Env, Running)> {
        let label = format!("{}/{}", self.name(), retention_name(retention));
        match self {
            Self::Memory => Some(one_node("memory".into(), retention, label, Vec::new()).await),
            Self::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("chat.db").display());
                Some(one_node(url, retention, label, vec![Box::new(dir)]).await)
            }
            Self::Postgres => {
                let schema = chat_store_postgres::testing::fresh_migrated_schema().await?;
                let url = chat_store_postgres::testing::test_url()?;
                let join = if url.contains('?') { '&' } else { '?' };
                let url = format!("{url}{join}schema={}", schema.schema());
                Some(one_node(url, retention, label, vec![Box::new(schema)]).await)
            }
            Self::Cassandra => {
                let keyspace = match Keyspace::fresh().await {
                    Ok(k) => k,
                    Err(why) => return skip(&label, &why),
                };
                let (env, mut running) =
                    one_node(keyspace.url(), retention, label, Vec::new()).await;
                running.keyspace = Some(keyspace);
                Some((env, running))
            }
            Self::Cluster => {
                let redis = chat_cluster_redis::testing::test_url()?;
                let store = cluster_harness::shared_store().await?;
                let prefix = chat_cluster_redis::testing::fresh_prefix();
                let nodes: Vec<Node> = [61, 62]
                    .into_iter()
                    .map(|host| {
                        Node::launch(&Launch {
                            host,
                            id: None,
                            redis: &redis,
                            prefix: &prefix,
                            store: &store,
                            push_webhook: None,
                            retention: Some(retention_name(retention)),
                        })
                        .unwrap_or_else(|log| panic!("a cluster node did not start:\n{log}"))
                    })
                    .collect();
                let urls = nodes.iter().map(|n| n.http.clone()).collect();
                let running = Running {
                    servers: Vec::new(),
                    // The nodes go before the schema they use.
                    _keep: vec![Box::new(nodes), Box::new(store)],
                    keyspace: None,
                };
                Some((Env::new(label, retention, urls), running))
            }
        }
    }
}

async fn one_node(
    store: String,
    retention: Retention,
    label: String,
    keep: Vec<Box<dyn std::any::Any + Send>>,
) -> (Env, Running) {
    let server = TestServer::start_with(open_config(store, retention)).await;
    let env = Env::new(label, retention, vec![format!("http://{}", server.addr)]);
    let running = Running {
        servers: vec![server],
        _keep: keep,
        keyspace: None,
    };
    (env, running)
}

/// A Cassandra keyspace of the test's own (the server creates it), dropped
/// at the end, or by `Drop` when the test panicked first.
struct Keyspace {
    points: String,
    name: String,
    dropped: bool,
}

impl Keyspace {
    async fn fresh() -> Result<Self, String> {
        const URL_VAR: &str = "CHAT_TEST_CASSANDRA_URL";
        let url = match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                return Err(format!(
                    "{URL_VAR} is not set (run `scripts/services up cassandra`)"
                ));
            }
        };
        let points = url
            .strip_prefix("cassandra://")
            .map(|rest| rest.trim_end_matches('/').to_owned())
            .ok_or_else(|| format!("{URL_VAR}={url:?} is not a cassandra:// URL"))?;
        session(&points)
            .await
            .map_err(|e| format!("cannot reach Cassandra at {url}: {e}"))?;
        Ok(Self {
            points,
            name: format!("chat_v2_{:016x}", rand::random::<u64>()),
            dropped: false,
        })
    }

    fn url(&self) -> String {
        format!("cassandra://{}/{}", self.points, self.name)
    }

    async fn drop_now(mut self) {
        match drop_keyspace(&self.points, &self.name).await {
            Ok(()) => self.dropped = true,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "keyspace {}: {e}", self.name);
            }
        }
    }
}

impl Drop for Keyspace {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (points, name) = (self.points.clone(), self.name.clone());
        // Maybe inside a runtime that is unwinding: a runtime of its own, on
        // a thread of its own, does the drop.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(drop_keyspace(&points, &name))
        })
        .join();
    }
}

async fn session(points: &str) -> Result<Session, String> {
    SessionBuilder::new()
        .known_nodes(points.split(','))
        .build()
        .await
        .map_err(|e| e.to_string())
}

async fn drop_keyspace(points: &str, name: &str) -> Result<(), String> {
    session(points)
        .await?
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {name}"), &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
