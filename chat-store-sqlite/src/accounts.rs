//! [`AccountStore`] for [`SqliteStore`]: `accounts`, `devices` and
//! `blocks`. Changes run on the writer, so two sign-ups racing for one
//! username are applied one after the other and the second is refused.

use async_trait::async_trait;
use chat_core::store::AccountStore;
use chat_core::{Account, Device, DeviceId, Error, Millis, Result, UserId, now_millis};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::SqliteError;
use crate::rows::{self, account_columns, device_columns};
use crate::store::SqliteStore;

fn load_account(conn: &Connection, id: &UserId) -> rusqlite::Result<Option<Account>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE user_id = ?1"
    ))?
    .query_row([id.as_str()], rows::account)
    .optional()
}

fn create_account(conn: &Connection, account: &Account) -> Result<(), SqliteError> {
    let taken = conn
        .prepare_cached("SELECT 1 FROM accounts WHERE username = ?1")?
        .exists([account.username.as_str()])?;
    if taken {
        return Err(Error::already_exists(format!("username {}", account.username)).into());
    }
    if load_account(conn, &account.user_id)?.is_some() {
        return Err(Error::already_exists(format!("user {}", account.user_id)).into());
    }
    conn.prepare_cached(concat!(
        "INSERT INTO accounts (",
        account_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?
    .execute(params![
        account.user_id.as_str(),
        account.username,
        account.password_hash,
        account.display_name,
        account.created_at,
    ])?;
    Ok(())
}

fn create_device(conn: &Connection, device: &Device) -> Result<(), SqliteError> {
    let inserted = conn
        .prepare_cached(concat!(
            "INSERT INTO devices (",
            device_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (device_id) DO NOTHING"
        ))?
        .execute(params![
            device.device_id.as_str(),
            device.user_id.as_str(),
            device.name,
            device.created_at,
            device.last_seen,
        ])?;
    if inserted == 0 {
        return Err(Error::already_exists(format!("device {}", device.device_id)).into());
    }
    Ok(())
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, account: Account) -> Result<()> {
        Ok(self.write(move |c| create_account(c, &account)).await?)
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let username = username.to_owned();
        Ok(self
            .read(move |c| {
                let account = c
                    .prepare_cached(concat!(
                        "SELECT ",
                        account_columns!(),
                        " FROM accounts WHERE username = ?1"
                    ))?
                    .query_row([username.as_str()], rows::account)
                    .optional()?;
                Ok(account)
            })
            .await?)
    }

    async fn account(&self, id: &UserId) -> Result<Option<Account>> {
        let id = id.clone();
        Ok(self.read(move |c| Ok(load_account(c, &id)?)).await?)
    }

    async fn set_display_name(&self, id: &UserId, display_name: &str) -> Result<Account> {
        let (id, display_name) = (id.clone(), display_name.to_owned());
        Ok(self
            .write(move |c| {
                c.prepare_cached("UPDATE accounts SET display_name = ?2 WHERE user_id = ?1")?
                    .execute(params![id.as_str(), display_name])?;
                load_account(c, &id)?.ok_or_else(|| Error::not_found(format!("user {id}")).into())
            })
            .await?)
    }

    async fn create_device(&self, device: Device) -> Result<()> {
        Ok(self.write(move |c| create_device(c, &device)).await?)
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<Device>> {
        let id = id.clone();
        Ok(self
            .read(move |c| {
                let device = c
                    .prepare_cached(concat!(
                        "SELECT ",
                        device_columns!(),
                        " FROM devices WHERE device_id = ?1"
                    ))?
                    .query_row([id.as_str()], rows::device)
                    .optional()?;
                Ok(device)
            })
            .await?)
    }

    async fn devices(&self, user: &UserId) -> Result<Vec<Device>> {
        let user = user.clone();
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(concat!(
                    "SELECT ",
                    device_columns!(),
                    " FROM devices WHERE user_id = ?1 \
                     ORDER BY created_at, device_id"
                ))?;
                let rows = stmt.query_map([user.as_str()], rows::device)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await?)
    }

    async fn remove_device(&self, user: &UserId, id: &DeviceId) -> Result<bool> {
        let (user, id) = (user.clone(), id.clone());
        Ok(self
            .write(move |c| {
                let removed = c
                    .prepare_cached("DELETE FROM devices WHERE device_id = ?1 AND user_id = ?2")?
                    .execute(params![id.as_str(), user.as_str()])?;
                Ok(removed == 1)
            })
            .await?)
    }

    async fn touch_device(&self, id: &DeviceId, at: Millis) -> Result<()> {
        let id = id.clone();
        Ok(self
            .write(move |c| {
                // Never backwards; SQL's max() would answer NULL for a first touch.
                c.prepare_cached(
                    "UPDATE devices SET last_seen = ?2 \
                     WHERE device_id = ?1 AND (last_seen IS NULL OR last_seen < ?2)",
                )?
                .execute(params![id.as_str(), at])?;
                Ok(())
            })
            .await?)
    }

    async fn block(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let (blocker, blocked) = (blocker.clone(), blocked.clone());
        Ok(self
            .write(move |c| {
                let inserted = c
                    .prepare_cached(
                        "INSERT INTO blocks (blocker, blocked, since) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (blocker, blocked) DO NOTHING",
                    )?
                    .execute(params![blocker.as_str(), blocked.as_str(), now_millis()])?;
                Ok(inserted == 1)
            })
            .await?)
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let (blocker, blocked) = (blocker.clone(), blocked.clone());
        Ok(self
            .write(move |c| {
                let removed = c
                    .prepare_cached("DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2")?
                    .execute(params![blocker.as_str(), blocked.as_str()])?;
                Ok(removed == 1)
            })
            .await?)
    }

    async fn blocked_by(&self, blocker: &UserId) -> Result<Vec<UserId>> {
        let blocker = blocker.clone();
        Ok(self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT blocked FROM blocks WHERE blocker = ?1 ORDER BY blocked",
                )?;
                let rows = stmt.query_map([blocker.as_str()], |r| {
                    Ok(UserId::from(r.get::<_, String>(0)?))
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await?)
    }

    async fn is_blocked(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let (blocker, blocked) = (blocker.clone(), blocked.clone());
        Ok(self
            .read(move |c| {
                let found = c
                    .prepare_cached("SELECT 1 FROM blocks WHERE blocker = ?1 AND blocked = ?2")?
                    .exists(params![blocker.as_str(), blocked.as_str()])?;
                Ok(found)
            })
            .await?)
    }

    async fn ping(&self) -> Result<()> {
        SqliteStore::ping(self).await
    }
}
