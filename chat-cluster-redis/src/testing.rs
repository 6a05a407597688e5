//! Helpers for tests against a real Redis: the URL from the environment and
//! a fresh key prefix per call.
//!
//! - `CHAT_TEST_REDIS_URL`: the server (`scripts/services up redis` prints
//!   it; `scripts/test` exports it).
//! - `CHAT_TEST_REQUIRE_SERVICES=1` (set by `scripts/test` under CI): a
//!   missing URL is a failure (a panic), never a skip. Without it, the
//!   helpers print one line saying what is skipped and answer `None`.
//! - A URL that is set but unusable is always a failure: the tests were
//!   meant to run, and a skip decided mid-run would hide the failures of
//!   the binary's other tests.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{RedisCluster, RedisOptions};

/// The environment variable with the test server's URL.
pub const URL_VAR: &str = "CHAT_TEST_REDIS_URL";
/// The environment variable that turns a skip into a failure.
pub const REQUIRE_VAR: &str = "CHAT_TEST_REQUIRE_SERVICES";

/// Whether tests must fail rather than skip without their server.
pub fn services_required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The test server's URL; `None` (after printing why) when it is not set
/// and not required.
///
/// # Panics
/// When it is not set and [`services_required`].
pub fn test_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip_or_fail(&format!(
                "{URL_VAR} is not set (run `scripts/services up redis`)"
            ));
            None
        }
    }
}

/// A prefix no other call produces: `t-` and 64 random bits in hex.
pub fn fresh_prefix() -> String {
    format!("t-{:016x}", rand::random::<u64>())
}

/// A deployment on the test server under a fresh prefix, with short
/// reconnect waits. `None`, after printing why, when there is no server and
/// it is not required.
///
/// # Panics
/// When the server is required but not set or not reachable.
pub async fn fresh_cluster() -> Option<RedisCluster> {
    let url = test_url()?;
    let options = RedisOptions {
        reconnect_max: std::time::Duration::from_millis(500),
        ..RedisOptions::with_prefix(fresh_prefix())
    };
    match RedisCluster::connect(&url, options).await {
        Ok(cluster) => Some(cluster),
        // The URL was given: the tests were meant to run, and a skip
        // decided mid-run would hide the failures of the binary's others.
        Err(e) => panic!("{URL_VAR} is set but Redis at {url} cannot be used: {e}"),
    }
}

/// Marks the deployment under `prefix` on the Redis at `url` as
/// established, as if its nodes had run there before: a node that then
/// starts on a Redis that started moments ago claims its id at once,
/// instead of waiting the settle time that protects running nodes after
/// Redis lost its data (see [`crate::RedisNodeIds`]; that wait has a test
/// of its own). For tests that start their own Redis and then their nodes.
///
/// # Panics
/// When Redis cannot be reached.
pub fn mark_established(url: &str, prefix: &str) {
    let mut con = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("redis at {url}: {e}"));
    redis::cmd("SET")
        .arg(crate::keys::Keys::new(prefix).epoch())
        .arg(chat_core::model::now_millis())
        .exec(&mut con)
        .unwrap_or_else(|e| panic!("redis at {url}: {e}"));
}

/// Panics when services are required, else prints the skip line where
/// `cargo test` shows it even for a passing test (straight to stderr).
fn skip_or_fail(why: &str) {
    if services_required() {
        panic!("{REQUIRE_VAR}=1 but {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED (no Redis): {why}");
}

/// A `redis-server` of a test's own on `port` (no persistence), for tests
/// that stop Redis, which the shared server must not be. Killed on drop.
#[derive(Debug)]
pub struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    /// Starts `redis-server` (from PATH) on 127.0.0.1:`port`.
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (is it installed?): {e}"));
        Self {
            child: Some(child),
            port,
        }
    }

    /// A free port on 127.0.0.1 to start one on.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until it answers PING.
    ///
    /// # Panics
    /// When it does not within 30 s (a hang guard, not a speed check).
    pub async fn ready(&self) {
        let client = redis::Client::open(self.url()).expect("a valid url");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut con) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut con)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "private redis-server on port {} never answered",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// FLUSHALL: every key of every deployment on it is gone, while its
    /// clients stay connected and subscribed.
    ///
    /// # Panics
    /// When it does not answer.
    pub async fn flushall(&self) {
        let client = redis::Client::open(self.url()).expect("a valid url");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("private redis-server answers");
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut con)
            .await
            .expect("FLUSHALL");
    }

    /// Kills it (SIGKILL) and waits for it to end: its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
