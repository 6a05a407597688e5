//! [`AccountStore`] for [`CassandraStore`]: the account row and the unique
//! username (each claimed with `INSERT … IF NOT EXISTS`), devices (with a
//! by-user index, oldest first) and blocks.

use async_trait::async_trait;
use chat_core::store::AccountStore;
use chat_core::{Account, Device, DeviceId, Error, Millis, Result, UserId};
use futures::{StreamExt, TryStreamExt, stream};

use crate::codec::Lwt;
use crate::store::CassandraStore;

/// Device reads in flight at once when listing a user's devices.
const READS_IN_FLIGHT: usize = 16;

impl CassandraStore {
    /// The account row of `id`, if its username row names it back: an
    /// account whose username claim failed or never happened is not one.
    async fn committed_account(&self, id: &str) -> Result<Option<Account>> {
        let rows: Vec<(String, String, String, String, i64)> =
            self.rows(&self.st.account, (id,), "read account").await?;
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
            .rows(&self.st.username, (username,), "read username")
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

    /// The device row is claimed (`IF NOT EXISTS`), then indexed by user.
    async fn create_device(&self, device: Device) -> Result<()> {
        let result = self
            .run(
                &self.st.claim_device,
                (
                    device.device_id.as_str(),
                    device.user_id.as_str(),
                    device.name.as_str(),
                    device.created_at,
                ),
                "create device",
            )
            .await?;
        if !Lwt::from_result(result, "create device")?.applied {
            return Err(Error::already_exists(format!(
                "device {}",
                device.device_id
            )));
        }
        self.run(
            &self.st.insert_device_of_user,
            (
                device.user_id.as_str(),
                device.created_at,
                device.device_id.as_str(),
            ),
            "index device",
        )
        .await?;
        if let Some(at) = device.last_seen {
            self.touch_device(&device.device_id, at).await?;
        }
        Ok(())
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<Device>> {
        let rows: Vec<(Option<String>, Option<String>, Option<i64>, Option<i64>)> = self
            .rows(&self.st.device, (id.as_str(),), "read device")
            .await?;
        // A row without its owner holds only a `last_seen` written after
        // the device was removed (an UPDATE creates the row it changes).
        Ok(rows
            .into_iter()
            .next()
            .and_then(|(user, name, created_at, last_seen)| {
                Some(Device {
                    device_id: id.clone(),
                    user_id: UserId::from(user?),
                    name: name.unwrap_or_default(),
                    created_at: created_at?,
                    last_seen,
                })
            }))
    }

    async fn devices(&self, user: &UserId) -> Result<Vec<Device>> {
        let rows: Vec<(String,)> = self
            .paged(
                &self.st.devices_of_user,
                (user.as_str(),),
                usize::MAX,
                "read devices",
            )
            .await?;
        let devices: Vec<Option<Device>> = stream::iter(rows)
            .map(|(id,)| async move { self.device(&DeviceId::from(id)).await })
            .buffered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(devices
            .into_iter()
            .flatten()
            .filter(|d| d.user_id == *user)
            .collect())
    }

    /// Only the device's own user removes it: the row is read first.
    async fn remove_device(&self, user: &UserId, id: &DeviceId) -> Result<bool> {
        let Some(device) = self.device(id).await? else {
            return Ok(false);
        };
        if device.user_id != *user {
            return Ok(false);
        }
        futures::try_join!(
            self.run(&self.st.delete_device, (id.as_str(),), "remove device"),
            self.run(
                &self.st.delete_device_of_user,
                (user.as_str(), device.created_at, id.as_str()),
                "remove device",
            ),
        )?;
        Ok(true)
    }

    /// Dated by `at` itself (`USING TIMESTAMP`), so the latest `at` wins
    /// whatever order touches arrive in: `last_seen` never moves back.
    async fn touch_device(&self, id: &DeviceId, at: Millis) -> Result<()> {
        self.run(
            &self.st.touch_device,
            (at.saturating_mul(1000), at, id.as_str()),
            "touch device",
        )
        .await?;
        Ok(())
    }

    async fn block(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let result = self
            .run(
                &self.st.block,
                (blocker.as_str(), blocked.as_str(), chat_core::now_millis()),
                "block",
            )
            .await?;
        Ok(Lwt::from_result(result, "block")?.applied)
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let result = self
            .run(
                &self.st.unblock,
                (blocker.as_str(), blocked.as_str()),
                "unblock",
            )
            .await?;
        Ok(Lwt::from_result(result, "unblock")?.applied)
    }

    async fn blocked_by(&self, blocker: &UserId) -> Result<Vec<UserId>> {
        let rows: Vec<(String,)> = self
            .paged(
                &self.st.blocked_by,
                (blocker.as_str(),),
                usize::MAX,
                "read blocks",
            )
            .await?;
        Ok(rows.into_iter().map(|(u,)| UserId::from(u)).collect())
    }

    async fn is_blocked(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let rows: Vec<(String,)> = self
            .rows(
                &self.st.is_blocked,
                (blocker.as_str(), blocked.as_str()),
                "read block",
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn ping(&self) -> Result<()> {
        self.ping_cluster().await
    }
}
