//! Cassandra restarted under a running chat-server (see `db_restart` for the
//! scenario and when it runs): a node of the test's own, stopped with a
//! drain and started again on the same data, as `scripts/services down
//! cassandra` and `up cassandra` do.

mod db_restart;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_survives_a_cassandra_restart() {
    let Some(db) = db_restart::Database::start("cassandra").await else {
        return;
    };
    let store = format!("{}/chat_restart", db.url());
    db_restart::chat_survives_a_database_restart(&db, &store).await;
}
