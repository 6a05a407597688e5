//! [`JwtAuthenticator`]: HS256 bearer tokens that any node sharing the secret
//! can check without a store lookup.

use std::time::Duration;

use async_trait::async_trait;
use chat_core::auth::{Authenticator, Identity};
use chat_core::{DeviceId, Error, Result, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The claims of a token: who, and until when.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// The device (login) the token belongs to.
    dev: String,
    iat: u64,
    exp: u64,
    /// A unique id, so two tokens issued in one second differ.
    jti: String,
}

/// Issues and checks HS256 JWTs.
pub struct JwtAuthenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl JwtAuthenticator {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// Tokens signed with a fresh random secret: they stop working when the
    /// process restarts.
    pub fn random(ttl: Duration) -> Self {
        use rand::Rng;
        let secret: [u8; 32] = rand::rng().random();
        Self::new(&secret, ttl)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn issue(&self, user: &UserId, device: &DeviceId) -> Result<String> {
        let iat = now_secs();
        let jti: [u8; 16] = rand::random();
        let claims = Claims {
            sub: user.to_string(),
            dev: device.to_string(),
            iat,
            exp: iat + self.ttl.as_secs(),
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::unavailable("cannot sign a token", e))
    }

    async fn verify(&self, token: &str) -> Result<Identity> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| Identity {
                user_id: UserId::from(data.claims.sub),
                device_id: DeviceId::from(data.claims.dev),
            })
            .map_err(|e| Error::unauthorized(format!("bad token: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_round_trip_and_forgeries_fail() {
        let auth = JwtAuthenticator::new(b"secret", Duration::from_secs(60));
        let token = auth
            .issue(&UserId::from("u1"), &DeviceId::from("d1"))
            .await
            .unwrap();
        assert_eq!(
            auth.verify(&token).await.unwrap().user_id,
            UserId::from("u1")
        );
        let other = JwtAuthenticator::new(b"other", Duration::from_secs(60));
        assert!(matches!(
            other.verify(&token).await,
            Err(Error::Unauthorized { .. })
        ));
        assert!(auth.verify("not a token").await.is_err());
        let random = JwtAuthenticator::random(Duration::from_secs(60));
        assert!(random.verify(&token).await.is_err());
    }

    #[tokio::test]
    async fn expired_tokens_fail() {
        let auth = JwtAuthenticator::new(b"secret", Duration::from_secs(60));
        let claims = Claims {
            sub: "u1".into(),
            dev: "d1".into(),
            iat: 1,
            exp: 2,
            jti: "x".into(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &auth.encoding).unwrap();
        assert!(matches!(
            auth.verify(&token).await,
            Err(Error::Unauthorized { .. })
        ));
    }
}
