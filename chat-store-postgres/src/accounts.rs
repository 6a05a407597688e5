//! [`AccountStore`] for [`PostgresStore`]: accounts, devices and blocks,
//! one statement per call. The unique username is the table's unique
//! index: two racing sign-ups both insert, one wins and the other gets a
//! unique violation, which is `AlreadyExists`.

use async_trait::async_trait;
use chat_core::store::AccountStore;
use chat_core::{Account, Device, DeviceId, Error, Millis, Result, UserId, now_millis};
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

const CREATE_DEVICE: &str = "INSERT INTO devices (device_id, user_id, name, created_at, last_seen) \
     VALUES ($1::text, $2::text, $3::text, $4::int8, $5::int8)";

const DEVICE: &str = "SELECT device_id, user_id, name, created_at, last_seen FROM devices WHERE device_id = $1::text";

/// A user's devices oldest first, along `devices_by_user`.
const DEVICES: &str = "SELECT device_id, user_id, name, created_at, last_seen FROM devices \
     WHERE user_id = $1::text ORDER BY created_at, device_id";

const REMOVE_DEVICE: &str =
    "DELETE FROM devices WHERE device_id = $2::text AND user_id = $1::text RETURNING 1";

/// `last_seen` forward only: a late "disconnected at" never moves it back.
const TOUCH_DEVICE: &str = "UPDATE devices SET last_seen = $2::int8 \
     WHERE device_id = $1::text AND (last_seen IS NULL OR last_seen < $2::int8)";

const BLOCK: &str = "INSERT INTO blocks (blocker, blocked, since) VALUES ($1::text, $2::text, $3::int8) \
     ON CONFLICT DO NOTHING RETURNING 1";

const UNBLOCK: &str =
    "DELETE FROM blocks WHERE blocker = $1::text AND blocked = $2::text RETURNING 1";

const BLOCKED_BY: &str = "SELECT blocked FROM blocks WHERE blocker = $1::text ORDER BY blocked";

const IS_BLOCKED: &str =
    "SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker = $1::text AND blocked = $2::text)";

fn account(row: &Row) -> Account {
    Account {
        user_id: UserId::from(row.get::<_, &str>(0)),
        username: row.get(1),
        password_hash: row.get(2),
        display_name: row.get(3),
        created_at: row.get(4),
    }
}

fn device(row: &Row) -> Device {
    Device {
        device_id: DeviceId::from(row.get::<_, &str>(0)),
        user_id: UserId::from(row.get::<_, &str>(1)),
        name: row.get(2),
        created_at: row.get(3),
        last_seen: row.get(4),
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

    async fn create_device(&self, device: Device) -> Result<()> {
        let mut conn = self.shared.conn("create_device").await?;
        conn.query(
            "create_device",
            CREATE_DEVICE,
            &[
                &device.device_id.as_str(),
                &device.user_id.as_str(),
                &device.name,
                &device.created_at,
                &device.last_seen,
            ],
        )
        .await?;
        Ok(())
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<Device>> {
        let mut conn = self.shared.conn("device").await?;
        let rows = conn.query("device", DEVICE, &[&id.as_str()]).await?;
        Ok(rows.first().map(device))
    }

    async fn devices(&self, user: &UserId) -> Result<Vec<Device>> {
        let mut conn = self.shared.conn("devices").await?;
        let rows = conn.query("devices", DEVICES, &[&user.as_str()]).await?;
        Ok(rows.iter().map(device).collect())
    }

    async fn remove_device(&self, user: &UserId, id: &DeviceId) -> Result<bool> {
        let mut conn = self.shared.conn("remove_device").await?;
        let rows = conn
            .query(
                "remove_device",
                REMOVE_DEVICE,
                &[&user.as_str(), &id.as_str()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn touch_device(&self, id: &DeviceId, at: Millis) -> Result<()> {
        let mut conn = self.shared.conn("touch_device").await?;
        conn.query("touch_device", TOUCH_DEVICE, &[&id.as_str(), &at])
            .await?;
        Ok(())
    }

    async fn block(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let mut conn = self.shared.conn("block").await?;
        let rows = conn
            .query(
                "block",
                BLOCK,
                &[&blocker.as_str(), &blocked.as_str(), &now_millis()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let mut conn = self.shared.conn("unblock").await?;
        let rows = conn
            .query("unblock", UNBLOCK, &[&blocker.as_str(), &blocked.as_str()])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn blocked_by(&self, blocker: &UserId) -> Result<Vec<UserId>> {
        let mut conn = self.shared.conn("blocked_by").await?;
        let rows = conn
            .query("blocked_by", BLOCKED_BY, &[&blocker.as_str()])
            .await?;
        Ok(rows
            .iter()
            .map(|r| UserId::from(r.get::<_, &str>(0)))
            .collect())
    }

    async fn is_blocked(&self, blocker: &UserId, blocked: &UserId) -> Result<bool> {
        let mut conn = self.shared.conn("is_blocked").await?;
        let rows = conn
            .query(
                "is_blocked",
                IS_BLOCKED,
                &[&blocker.as_str(), &blocked.as_str()],
            )
            .await?;
        Ok(rows.first().is_some_and(|r| r.get(0)))
    }

    async fn ping(&self) -> Result<()> {
        self.shared.ping().await
    }
}
