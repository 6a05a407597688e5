//! Accounts, profiles and devices.

use super::{DeviceId, Millis, UserId};
use serde::{Deserialize, Serialize};

/// A stored account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub user_id: UserId,
    /// The unique login name.
    pub username: String,
    /// A PHC-format password hash (argon2id by default).
    pub password_hash: String,
    /// The name shown to others.
    pub display_name: String,
    /// When it signed up.
    pub created_at: Millis,
}

/// What others may see of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Its id.
    pub user_id: UserId,
    /// The unique login name.
    pub username: String,
    /// The name shown to others.
    pub display_name: String,
}

impl From<&Account> for Profile {
    fn from(a: &Account) -> Self {
        Profile {
            user_id: a.user_id.clone(),
            username: a.username.clone(),
            display_name: a.display_name.clone(),
        }
    }
}

/// One device of a user: a sign-up or a login. Its tokens name it; removing
/// it makes them stop working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its id.
    pub device_id: DeviceId,
    /// Whose.
    pub user_id: UserId,
    /// The name the client gave at login (may be empty).
    pub name: String,
    /// When it was created (the login), in ms.
    pub created_at: Millis,
    /// When it last connected or disconnected, in ms (`None`: it never connected).
    pub last_seen: Option<Millis>,
}

impl Device {
    /// Whether it has ever opened a WebSocket: until then it holds no
    /// message back under until_delivered retention.
    pub fn ever_connected(&self) -> bool {
        self.last_seen.is_some()
    }
}
