//! PostgreSQL restarted under a running chat-server (see `db_restart` for
//! the scenario and when it runs): a cluster of the test's own, stopped
//! with a fast shutdown and started again, as `scripts/services down
//! postgres` and `up postgres` do.

mod db_restart;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_survives_a_postgres_restart() {
    let Some(db) = db_restart::Database::start("postgres").await else {
        return;
    };
    db_restart::chat_survives_a_database_restart(&db, db.url()).await;
}
