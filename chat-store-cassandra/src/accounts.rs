//! [`AccountStore`] for [`CassandraStore`]: the account row and the unique
//! username, each claimed with `INSERT … IF NOT EXISTS`.

use async_trait::async_trait;
use chat_core::store::AccountStore;
use chat_core::{Account, Error, Result, UserId};

use crate::codec::Lwt;
use crate::store::CassandraStore;

impl CassandraStore {
    /// The account row of `id`, if its username row names it back: an
    /// account whose username claim failed or never happened is not one.
    async fn committed_account(&self, id: &str) -> Result<Option<Account>> {
        let rows: Vec<(String, String, String, String, i64)> = self
            .rows(&self.st.select_account, (id,), "read account")
            .await?;
        let Some((user_id, username, password_hash, display_name, created_at)) =
            rows.into_iter().next()
        else {
            return Ok(None);
        };
        if self.username_owner(&username).await?.as_deref() != Some(id) {
            return Ok(None);
        }
        Ok(Some(Account {
            user_id: UserId::from(user_id),
            username,
            password_hash,
            display_name,
            created_at,
        }))
    }

    async fn username_owner(&self, username: &str) -> Result<Option<String>> {
        let rows: Vec<(String,)> = self
            .rows(&self.st.select_username, (username,), "read username")
            .await?;
        Ok(rows.into_iter().next().map(|(id,)| id))
    }
}

#[async_trait]
impl AccountStore for CassandraStore {
    /// The account row is claimed first, then the username: the username
    /// row is the commit point. A lost username race releases the account
    /// row again; a crash in between leaves an account row that no lookup
    /// returns, because lookups require the username row to name it.
    async fn create_account(&self, account: Account) -> Result<()> {
        let result = self
            .run(
                &self.st.claim_account,
                (
                    account.user_id.as_str(),
                    account.username.as_str(),
                    account.password_hash.as_str(),
                    account.display_name.as_str(),
                    account.created_at,
                ),
                "create account",
            )
            .await?;
        if !Lwt::from_result(result, "create account")?.applied {
            return Err(Error::already_exists(format!("user {}", account.user_id)));
        }
        let result = self
            .run(
                &self.st.claim_username,
                (account.username.as_str(), account.user_id.as_str()),
                "claim username",
            )
            .await?;
        if Lwt::from_result(result, "claim username")?.applied {
            return Ok(());
        }
        self.run(
            &self.st.release_account,
            (account.user_id.as_str(), account.username.as_str()),
            "release account",
        )
        .await?;
        Err(Error::already_exists(format!(
            "username {}",
            account.username
        )))
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        match self.username_owner(username).await? {
            Some(id) => self.committed_account(&id).await,
            None => Ok(None),
        }
    }

    async fn account(&self, id: &UserId) -> Result<Option<Account>> {
        self.committed_account(id.as_str()).await
    }

    async fn set_display_name(&self, id: &UserId, display_name: &str) -> Result<Account> {
        let not_found = || Error::not_found(format!("user {id}"));
        if self.committed_account(id.as_str()).await?.is_none() {
            return Err(not_found());
        }
        let result = self
            .run(
                &self.st.set_display_name,
                (display_name, id.as_str()),
                "set display name",
            )
            .await?;
        if !Lwt::from_result(result, "set display name")?.applied {
            return Err(not_found());
        }
        self.committed_account(id.as_str())
            .await?
            .ok_or_else(not_found)
    }

    async fn ping(&self) -> Result<()> {
        self.ping_cluster().await
    }
}
