//! Opening a database file: what is refused at connect, with which error,
//! and that a refused file is left exactly as it was.

use std::path::Path;

use chat_core::store::{AccountStore, MessageStore};
use chat_core::{Account, ConversationId, Message, MessageId, NewMessage};
use chat_store_sqlite::{SqliteConfig, SqliteError, SqliteStore};

fn account(id: &str) -> Account {
    Account {
        user_id: id.into(),
        username: id.into(),
        password_hash: "h".into(),
        display_name: id.into(),
        created_at: 0,
    }
}

/// The file's bytes, and whether SQLite left a log beside it.
fn contents(path: &Path) -> (Vec<u8>, bool) {
    let wal = Path::new(&format!("{}-wal", path.display())).exists();
    (std::fs::read(path).expect("read the file"), wal)
}

#[tokio::test]
async fn a_new_file_and_its_directory_are_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chat-data").join("nested").join("chat.db");
    let store = SqliteStore::open(&path).await.expect("open");
    store.create_account(account("a")).await.expect("write");
    assert!(path.is_file());
    assert_eq!(store.path(), path);
    store.ping().await.expect("ping");

    // An empty file (say, made by `touch`) is a new database too.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("touch");
    SqliteStore::open(&empty)
        .await
        .expect("an empty file opens");
}

#[tokio::test]
async fn a_path_that_cannot_be_opened_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = SqliteStore::open(dir.path())
        .await
        .expect_err("a directory is not a database file");
    assert!(
        matches!(err, SqliteError::Open { .. }),
        "a directory: {err:?}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "the error names the path: {err}"
    );

    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    let err = SqliteStore::open(file.join("chat.db"))
        .await
        .expect_err("a file is not a directory");
    assert!(
        matches!(err, SqliteError::CreateDir { .. }),
        "a path under a file: {err:?}"
    );
    let core = chat_core::Error::from(err);
    assert_eq!(core.code(), "unavailable");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.db");
    let text = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &text).expect("write");
    let err = SqliteStore::open(&path)
        .await
        .expect_err("a text file is not a database");
    assert!(matches!(err, SqliteError::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert_eq!(
        contents(&path),
        (text.into_bytes(), false),
        "the file is unchanged"
    );
    assert_eq!(chat_core::Error::from(err).code(), "invalid_input");
}

#[tokio::test]
async fn another_programs_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("create");
        conn.execute_batch(
            "CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');",
        )
        .expect("fill");
    }
    let before = contents(&path);
    let err = SqliteStore::open(&path)
        .await
        .expect_err("another program's database");
    assert!(
        matches!(
            err,
            SqliteError::ForeignDatabase {
                application_id: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        contents(&path),
        before,
        "not even switched to WAL: the file is unchanged"
    );
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).await.expect("create"));
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", 1_000)
            .expect("a version from the future");
    }
    let before = contents(&path);
    let err = SqliteStore::open(&path).await.expect_err("a newer schema");
    match &err {
        SqliteError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, 1_000);
            assert!(*supported < 1_000);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(contents(&path), before, "the file is unchanged");
}

#[tokio::test]
async fn bad_configuration_is_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = SqliteConfig::builder(dir.path().join("x.db"))
        .readers(0)
        .build()
        .expect_err("no readers");
    assert!(matches!(err, SqliteError::Config(_)), "{err:?}");
    let err = SqliteStore::connect_blocking(SqliteConfig::new(":memory:"))
        .expect_err("an in-memory database cannot be shared");
    assert!(matches!(err, SqliteError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("MemoryStore"), "{err}");
    assert!(!dir.path().join("x.db").exists());
}

/// Two stores on one file (as two processes would have): each writer takes
/// the file's write lock per batch, and each sees the other's commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_see_each_others_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chat.db");
    let a = SqliteStore::open(&path).await.expect("open a");
    let b = SqliteStore::open(&path).await.expect("open b");
    let conversation = ConversationId::from("g:two");
    for (i, store) in [&a, &b, &a, &b].into_iter().enumerate() {
        let head = store.head(&conversation).await.expect("head");
        let entry = NewMessage {
            message: Message::text(
                MessageId(100 + i as u64),
                conversation.clone(),
                "u".into(),
                "hi",
                0,
            ),
            client_msg_id: None,
            device: None,
        };
        let appended = store.append(entry, head.version).await.expect("append");
        assert_eq!(
            appended.prev, head.last_id,
            "each store sees the other's head"
        );
    }
    b.create_account(account("b")).await.expect("create");
    assert!(a.account(&"b".into()).await.expect("read").is_some());
    assert!(
        a.create_account(account("b")).await.is_err(),
        "the unique username holds across stores"
    );
}
