//! Tokens that prove who a connection or request belongs to: a user and one
//! of its devices.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{DeviceId, UserId};

/// Whom a verified token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The user.
    pub user_id: UserId,
    /// The device (the login) the token was issued to.
    pub device_id: DeviceId,
}

/// Issues and checks bearer tokens. Whether the device still exists (a
/// removed device's tokens stop working at once) is the engine's check, on
/// top of this one.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// A new token for `device` of `user`; each call gives a different one.
    async fn issue(&self, user: &UserId, device: &DeviceId) -> Result<String>;

    /// Whom a token belongs to; [`crate::Error::Unauthorized`] when it is
    /// wrong, forged, expired or not yet valid.
    async fn verify(&self, token: &str) -> Result<Identity>;
}
