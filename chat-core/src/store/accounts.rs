//! [`AccountStore`]: accounts, their devices, and who blocked whom.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Account, Device, DeviceId, Millis, UserId};

/// Accounts (unique usernames, password hashes, profiles), devices and blocks.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Stores a new account; [`crate::Error::AlreadyExists`] when the
    /// username (or id) is taken, also when two sign-ups race.
    async fn create_account(&self, account: Account) -> Result<()>;

    /// An account by username (the caller passes the canonical form).
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>>;

    /// An account by id.
    async fn account(&self, id: &UserId) -> Result<Option<Account>>;

    /// Changes the display name; [`crate::Error::NotFound`] when there is no such account.
    async fn set_display_name(&self, id: &UserId, display_name: &str) -> Result<Account>;

    /// Stores a new device. [`crate::Error::AlreadyExists`] when its id is taken.
    async fn create_device(&self, device: Device) -> Result<()>;

    /// A device by id (removed devices are gone).
    async fn device(&self, id: &DeviceId) -> Result<Option<Device>>;

    /// The devices of `user`, oldest first.
    async fn devices(&self, user: &UserId) -> Result<Vec<Device>>;

    /// Removes `user`'s device `id`; false when `user` has no such device.
    async fn remove_device(&self, user: &UserId, id: &DeviceId) -> Result<bool>;

    /// Records that the device connected or disconnected at `at` (its
    /// `last_seen`, never moved backwards).
    async fn touch_device(&self, id: &DeviceId, at: Millis) -> Result<()>;

    /// `blocker` blocks `blocked`; false when it did already.
    async fn block(&self, blocker: &UserId, blocked: &UserId) -> Result<bool>;

    /// `blocker` unblocks `blocked`; false when it had not blocked it.
    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool>;

    /// Whom `blocker` blocks, in a stable order.
    async fn blocked_by(&self, blocker: &UserId) -> Result<Vec<UserId>>;

    /// Whether `blocker` blocks `blocked`.
    async fn is_blocked(&self, blocker: &UserId, blocked: &UserId) -> Result<bool>;

    /// One cheap real round trip to the backend, as [`crate::store::MessageStore::ping`].
    async fn ping(&self) -> Result<()>;
}
