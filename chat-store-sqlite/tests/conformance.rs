//! chat-core's conformance suite over SQLite files: every promise of the
//! three store traits.
//!
//! - `fresh`: a new database file per test (a temporary store, removed
//!   when the test ends).
//! - `shared_file`: one file for every test of the three groups at once, as
//!   a long-lived server's file is; the suite's random names keep the tests
//!   apart. It runs with the default configuration, so with
//!   `Durability::Full` (the fresh files use `Normal`).

use std::sync::Arc;

use chat_store_sqlite::SqliteStore;

async fn fresh() -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::temporary()
            .await
            .expect("a temporary store opens"),
    )
}

mod fresh {
    mod messages {
        chat_core::message_store_conformance!(super::super::fresh());
    }
    mod conversations {
        chat_core::conversation_store_conformance!(super::super::fresh());
    }
    mod accounts {
        chat_core::account_store_conformance!(super::super::fresh());
    }
}

/// One store over one file, opened by the first test that needs it. The
/// store's writer is a thread of its own and its reads run on the calling
/// runtime, so tests on different runtimes can share it. The file lives in
/// cargo's scratch directory for tests and is replaced at the next run.
mod shared_file {
    use super::*;
    use tokio::sync::OnceCell;

    static STORE: OnceCell<Arc<SqliteStore>> = OnceCell::const_new();

    async fn shared() -> Arc<SqliteStore> {
        STORE
            .get_or_init(|| async {
                let path =
                    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-shared.db");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Arc::new(
                    SqliteStore::open(path)
                        .await
                        .expect("the shared file opens"),
                )
            })
            .await
            .clone()
    }

    mod messages {
        chat_core::message_store_conformance!(super::shared());
    }
    mod conversations {
        chat_core::conversation_store_conformance!(super::shared());
    }
    mod accounts {
        chat_core::account_store_conformance!(super::shared());
    }
}
