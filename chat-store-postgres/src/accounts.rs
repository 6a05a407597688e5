//! [`AccountStore`] for [`PostgresStore`]. The unique username is the
//! table's unique index: two racing sign-ups both insert, one wins and the
//! other gets a unique violation, which is `AlreadyExists`.

use async_trait::async_trait;
use chat_core::store::AccountStore;
use chat_core::{Account, Error, Result, UserId};
use tokio_postgres::Row;

use crate::store::PostgresStore;

const CREATE: &str = "INSERT INTO accounts (user_id, username, password_hash, display_name, created_at) \
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::int8)";

const BY_USERNAME: &str = "SELECT user_id, username, password_hash, display_name, created_at \
     FROM accounts WHERE username = $1::text";

const BY_ID: &str = "SELECT user_id, username, password_hash, display_name, created_at \
     FROM accounts WHERE user_id = $1::text";

const SET_DISPLAY_NAME: &str = "UPDATE accounts SET display_name = $2::text WHERE user_id = $1::text \
     RETURNING user_id, username, password_hash, display_name, created_at";

fn account(row: &Row) -> Account {
    Account {
        user_id: UserId::from(row.get::<_, &str>(0)),
        username: row.get(1),
        password_hash: row.get(2),
        display_name: row.get(3),
        created_at: row.get(4),
    }
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_account(&self, account: Account) -> Result<()> {
        let mut conn = self.shared.conn("create_account").await?;
        conn.query(
            "create_account",
            CREATE,
            &[
                &account.user_id.as_str(),
                &account.username,
                &account.password_hash,
                &account.display_name,
                &account.created_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let mut conn = self.shared.conn("account_by_username").await?;
        let rows = conn
            .query("account_by_username", BY_USERNAME, &[&username])
            .await?;
        Ok(rows.first().map(account))
    }

    async fn account(&self, id: &UserId) -> Result<Option<Account>> {
        let mut conn = self.shared.conn("account").await?;
        let rows = conn.query("account", BY_ID, &[&id.as_str()]).await?;
        Ok(rows.first().map(account))
    }

    async fn set_display_name(&self, id: &UserId, display_name: &str) -> Result<Account> {
        let mut conn = self.shared.conn("set_display_name").await?;
        let rows = conn
            .query(
                "set_display_name",
                SET_DISPLAY_NAME,
                &[&id.as_str(), &display_name],
            )
            .await?;
        rows.first()
            .map(account)
            .ok_or_else(|| Error::not_found(format!("user {id}")))
    }

    async fn ping(&self) -> Result<()> {
        self.shared.ping().await
    }
}
