//! [`MemoryAuthenticator`]: random opaque tokens kept in memory.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::auth::{Authenticator, Identity};
use crate::error::{Error, Result};
use crate::model::{DeviceId, UserId};

/// An [`Authenticator`] that issues random tokens (32 bytes from the
/// operating system's generator, as 64 hex digits) and remembers whose they
/// are. Tokens never expire and do not survive a restart; [`revoke`]
/// forgets one.
///
/// [`revoke`]: MemoryAuthenticator::revoke
#[derive(Debug, Default)]
pub struct MemoryAuthenticator {
    tokens: RwLock<HashMap<String, Identity>>,
}

impl MemoryAuthenticator {
    /// An authenticator that knows no token yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets `token`; returns whether it was known.
    pub fn revoke(&self, token: &str) -> bool {
        self.tokens.write().remove(token).is_some()
    }
}

fn random_token() -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 32] = rand::random();
    bytes.iter().fold(String::with_capacity(64), |mut hex, b| {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

#[async_trait]
impl Authenticator for MemoryAuthenticator {
    async fn issue(&self, user: &UserId, device: &DeviceId) -> Result<String> {
        let token = random_token();
        let identity = Identity {
            user_id: user.clone(),
            device_id: device.clone(),
        };
        self.tokens.write().insert(token.clone(), identity);
        Ok(token)
    }

    async fn verify(&self, token: &str) -> Result<Identity> {
        self.tokens
            .read()
            .get(token)
            .cloned()
            .ok_or_else(|| Error::unauthorized("unknown token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoked_tokens_no_longer_verify() {
        let auth = MemoryAuthenticator::new();
        let user = UserId::from("u");
        let device = DeviceId::from("d");
        let token = auth.issue(&user, &device).await.unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(auth.verify(&token).await.unwrap().user_id, user);
        assert!(auth.revoke(&token));
        assert!(matches!(
            auth.verify(&token).await,
            Err(Error::Unauthorized { .. })
        ));
    }
}
