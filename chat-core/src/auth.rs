//! Tokens that prove who a connection or request belongs to.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::UserId;

/// Issues and checks bearer tokens.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// A new token for `user`.
    async fn issue(&self, user: &UserId) -> Result<String>;

    /// The user a token belongs to; [`crate::Error::Unauthorized`] when it is
    /// wrong, forged or expired.
    async fn verify(&self, token: &str) -> Result<UserId>;
}
