//! Shared by the test binaries: the server's URL from the environment, and
//! one keyspace per test binary, created by the first test that asks and
//! dropped when the last test of the run ends.
//!
//! - `CHAT_TEST_CASSANDRA_URL`: the server (`scripts/services up cassandra`
//!   prints it; `scripts/test` exports it).
//! - `CHAT_TEST_REQUIRE_SERVICES=1` (set by `scripts/test` under CI): a
//!   missing URL fails the test, never skips it. Without it, the binary
//!   prints one line saying what it skips and exits successfully (the
//!   conformance macros cannot skip one test).
//! - A URL that is set but unusable always fails: a skip decided mid-run
//!   would end the binary with a success and hide its other tests'
//!   failures.
//!
//! Why one keyspace per binary, and how it goes away: creating a keyspace
//! and its 16 tables takes seconds of schema agreement, and a node with
//! hundreds of tables runs out of heap, so the tests of a binary share one
//! (the suite's random ids keep them apart). libtest has no hook after the
//! last test, so each test holds a lease while it runs, and the test that
//! ends the run (the count of tests this run selects, asked from this same
//! binary with `--list` and the same arguments) drops the keyspace before it
//! returns. A run that is killed leaves its keyspace behind: the next run
//! drops keyspaces of this naming older than an hour.

#![allow(dead_code, unreachable_pub)]

use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_store_cassandra::{CassandraConfig, CassandraStore};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio::sync::OnceCell;

const URL_VAR: &str = "CHAT_TEST_CASSANDRA_URL";
const REQUIRE_VAR: &str = "CHAT_TEST_REQUIRE_SERVICES";

/// Test keyspaces are named `chat_cas_<unix seconds>_<random>`.
const PREFIX: &str = "chat_cas_";

/// Leftover test keyspaces older than this are dropped by the next run.
const STALE_AFTER: Duration = Duration::from_secs(3600);

fn services_required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// Skips the whole binary (or fails under CI) with one clear line.
fn skip(why: &str) -> ! {
    if services_required() {
        panic!("{REQUIRE_VAR}=1 but {why}");
    }
    // Straight to stderr: libtest captures eprintln! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED chat-store-cassandra tests: {why}"
    );
    std::process::exit(0)
}

/// The contact points of the test server.
pub fn contact_points() -> Vec<String> {
    let url = match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => skip(&format!(
            "{URL_VAR} is not set (run `scripts/services up cassandra`)"
        )),
    };
    CassandraConfig::contact_points_from_url(&url)
        .unwrap_or_else(|e| panic!("{URL_VAR}={url:?} is not a cassandra:// URL: {e}"))
}

/// A config for `keyspace` on the test server, replication factor 1.
pub fn config(contact_points: Vec<String>, keyspace: &str) -> CassandraConfig {
    let mut config = CassandraConfig::new(contact_points, keyspace);
    config.request_timeout = Duration::from_secs(10);
    config
}

async fn session(points: &[String]) -> Result<Session, String> {
    SessionBuilder::new()
        .known_nodes(points)
        .build()
        .await
        .map_err(|e| e.to_string())
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Drops this naming's keyspaces left by runs that were killed.
async fn drop_stale(session: &Session) {
    let Ok(result) = session
        .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces", &[])
        .await
    else {
        return;
    };
    let Ok(rows) = result.into_rows_result() else {
        return;
    };
    let Ok(names) = rows.rows::<(String,)>() else {
        return;
    };
    let cutoff = unix_secs().saturating_sub(STALE_AFTER.as_secs());
    for (name,) in names.flatten() {
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(secs, _)| secs.parse::<u64>().ok());
        if created.is_some_and(|secs| secs < cutoff) {
            let _ = session
                .query_unpaged(format!("DROP KEYSPACE IF EXISTS {name}"), &[])
                .await;
        }
    }
}

/// A name for a keyspace of a test's own, swept like the binary's own if a
/// run is killed before the test drops it.
pub fn fresh_keyspace_name() -> String {
    format!("{PREFIX}{}_{:08x}", unix_secs(), rand::random::<u32>())
}

/// This binary's keyspace, once created.
static KEYSPACE: OnceCell<String> = OnceCell::const_new();

/// This binary's keyspace, created with its tables by the first caller.
pub async fn keyspace() -> &'static str {
    lease();
    KEYSPACE
        .get_or_init(|| async {
            let points = contact_points();
            let name = fresh_keyspace_name();
            if let Ok(session) = session(&points).await {
                drop_stale(&session).await;
            }
            // This store only creates the schema; dropping it closes its
            // session, which lives on this first test's runtime.
            if let Err(e) = CassandraStore::connect(config(points, &name)).await {
                // The URL is set: the tests were meant to run. A skip here
                // (or below, mid-run) would hide other tests' failures.
                panic!("{URL_VAR} is set but keyspace {name} cannot be created: {e}");
            }
            name
        })
        .await
}

/// A store on this binary's keyspace. Each test gets its own session
/// because each `#[tokio::test]` has its own runtime, and a session's
/// connections live on the runtime that opened them.
pub async fn store() -> Arc<CassandraStore> {
    store_with(|_| {}).await
}

/// A store on this binary's keyspace with `adjust` applied to its config
/// (settings of the store, not of the schema: the keyspace exists).
pub async fn store_with(adjust: impl FnOnce(&mut CassandraConfig)) -> Arc<CassandraStore> {
    let keyspace = keyspace().await;
    let mut config = config(contact_points(), keyspace);
    adjust(&mut config);
    match CassandraStore::connect(config).await {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("{URL_VAR} is set but keyspace {keyspace} cannot be reached: {e}"),
    }
}

/// Tests of this run that have ended.
static ENDED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether the test running on this thread (libtest runs each test on
    /// a thread of its own) holds its lease.
    static LEASED: Cell<bool> = const { Cell::new(false) };
}

/// How many tests this run selects: this binary's own `--list` with the
/// arguments it was started with (filters, `--exact`, `--skip`, …).
fn selected_tests() -> usize {
    static SELECTED: OnceLock<usize> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        let listed = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .args(["--list", "--format", "terse"])
                .stderr(std::process::Stdio::null())
                .output()
        });
        match listed {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.ends_with(": test"))
                .count(),
            // Unknown: never drop (the next run's sweep will).
            _ => usize::MAX,
        }
    })
}

/// The current test's lease on the keyspace, released when its runtime
/// shuts down (after the test passed or panicked).
fn lease() {
    if LEASED.with(|l| l.replace(true)) {
        return;
    }
    selected_tests();
    // A task that never ends holds the lease: the runtime drops it at
    // shutdown.
    tokio::spawn(async move {
        let _lease = Lease;
        std::future::pending::<()>().await
    });
}

/// The current test's lease, held by the caller until it returns: for
/// tests that run their own long-lived runtime, whose shutdown would never
/// come (see `lease` for `#[tokio::test]`s).
pub fn hold() -> Lease {
    LEASED.with(|l| l.set(true));
    selected_tests();
    Lease
}

/// A test's lease on the keyspace: the last one dropped drops the keyspace.
pub struct Lease;

impl Drop for Lease {
    fn drop(&mut self) {
        let ended = ENDED.fetch_add(1, Ordering::SeqCst) + 1;
        if ended != selected_tests() {
            return;
        }
        let (Some(name), Some(points)) = (
            KEYSPACE.get().cloned(),
            std::env::var(URL_VAR)
                .ok()
                .and_then(|url| CassandraConfig::contact_points_from_url(&url).ok()),
        ) else {
            return;
        };
        // The last test: drop the keyspace from a runtime of its own, on a
        // thread of its own (this one is shutting its runtime down).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                session(&points)
                    .await?
                    .query_unpaged(format!("DROP KEYSPACE IF EXISTS {name}"), &[])
                    .await
                    .map_err(|e| e.to_string())
            })?;
            Ok::<_, String>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop the test keyspace: {dropped:?}"
            );
        }
    }
}
